/* The UDP relay on loopback: a real echo server as the guest, real client
 * sockets; replies reach the client that asked, sessions are bounded and
 * expire when idle. */
#include <arpa/inet.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "providers/container/udpfwd.h"
#include "tests/unit/t.h"

static int udp_bound(struct sockaddr_in *a)
{
	*a = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(*a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof(*a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)a, &len) < 0)
		abort();
	return fd;
}

/* One echo: whatever arrived, sent back prefixed with "echo:". */
static void echo_once(int fd)
{
	char buf[64] = "echo:";
	struct sockaddr_in from;
	socklen_t len = sizeof(from);
	ssize_t n = recvfrom(fd, buf + 5, sizeof(buf) - 6, MSG_DONTWAIT, (struct sockaddr *)&from, &len);
	if (n > 0)
		sendto(fd, buf, (size_t)n + 5, 0, (struct sockaddr *)&from, len);
}

struct rig {
	int guest, host;
	struct sockaddr_in guest_a, host_a;
	struct udp_relay *r;
};

static void rig_up(struct rig *g, unsigned idle_ms, size_t max)
{
	g->guest = udp_bound(&g->guest_a);
	g->host = udp_bound(&g->host_a);
	g->r = udp_relay_new(g->host, &g->guest_a, idle_ms, max);
}

static void rig_down(struct rig *g)
{
	udp_relay_free(g->r);
	close(g->guest);
}

static int client(void)
{
	struct sockaddr_in a;
	return udp_bound(&a);
}

/* Sends msg from client c through the relay, lets the echo answer, and
 * returns what c received ("" when nothing came). */
static const char *round_trip(struct rig *g, int c, const char *msg)
{
	static char got[64];
	sendto(c, msg, strlen(msg), 0, (struct sockaddr *)&g->host_a, sizeof(g->host_a));
	udp_relay_step(g->r, 200);
	struct pollfd p = {.fd = g->guest, .events = POLLIN};
	if (poll(&p, 1, 200) == 1)
		echo_once(g->guest);
	udp_relay_step(g->r, 200);
	ssize_t n = recv(c, got, sizeof(got) - 1, MSG_DONTWAIT);
	got[n > 0 ? n : 0] = '\0';
	return got;
}

static void replies_reach_the_client_that_asked(void)
{
	struct rig g;
	rig_up(&g, 10000, 8);
	int a = client(), b = client();
	CHECK_STR(round_trip(&g, a, "from-a"), "echo:from-a");
	CHECK_STR(round_trip(&g, b, "from-b"), "echo:from-b");
	CHECK_STR(round_trip(&g, a, "again-a"), "echo:again-a");
	CHECK(udp_relay_sessions(g.r) == 2);
	close(a);
	close(b);
	rig_down(&g);
}

static void sessions_are_bounded(void)
{
	struct rig g;
	rig_up(&g, 10000, 2);
	int c[3] = {client(), client(), client()};
	for (int i = 0; i < 3; i++)
		CHECK_STR(round_trip(&g, c[i], "hi"), "echo:hi");
	CHECK(udp_relay_sessions(g.r) == 2);
	CHECK_STR(round_trip(&g, c[0], "back"), "echo:back"); /* evicted, then made again */
	CHECK(udp_relay_sessions(g.r) == 2);
	for (int i = 0; i < 3; i++)
		close(c[i]);
	rig_down(&g);
}

static void idle_sessions_expire(void)
{
	struct rig g;
	rig_up(&g, 100, 8);
	int c = client();
	CHECK_STR(round_trip(&g, c, "x"), "echo:x");
	CHECK(udp_relay_sessions(g.r) == 1);
	usleep(150 * 1000);
	udp_relay_step(g.r, 0);
	CHECK(udp_relay_sessions(g.r) == 0);
	CHECK_STR(round_trip(&g, c, "y"), "echo:y"); /* a new session serves it */
	close(c);
	rig_down(&g);
}

int main(void)
{
	RUN(replies_reach_the_client_that_asked);
	RUN(sessions_are_bounded);
	RUN(idle_sessions_expire);
	return T_END();
}
