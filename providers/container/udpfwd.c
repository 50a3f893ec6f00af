#include "providers/container/udpfwd.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/base/util.h"

#define BURST 64 /* datagrams taken from one socket per step, so none starves */

struct session {
	struct sockaddr_in client;
	int fd; /* connected to the guest port */
	uint64_t last;
};

struct udp_relay {
	int fd;
	struct sockaddr_in guest;
	unsigned idle_ms;
	size_t max, n;
	struct session *s;
	struct pollfd *p;
	char buf[65536];
};

struct udp_relay *udp_relay_new(int fd, const struct sockaddr_in *guest, unsigned idle_ms,
				size_t max)
{
	struct udp_relay *r = xcalloc(1, sizeof(*r));
	r->fd = fd;
	r->guest = *guest;
	r->idle_ms = idle_ms;
	r->max = max ? max : 1;
	r->s = xcalloc(r->max, sizeof(*r->s));
	r->p = xcalloc(r->max + 1, sizeof(*r->p));
	return r;
}

size_t udp_relay_sessions(const struct udp_relay *r) { return r->n; }

static void drop(struct udp_relay *r, size_t i)
{
	close(r->s[i].fd);
	r->s[i] = r->s[--r->n];
}

static bool same_client(const struct sockaddr_in *a, const struct sockaddr_in *b)
{
	return a->sin_addr.s_addr == b->sin_addr.s_addr && a->sin_port == b->sin_port;
}

/* The client's session, made (evicting the least recently used when full)
 * if it has none; NULL when no socket can be had. */
static struct session *session_of(struct udp_relay *r, const struct sockaddr_in *client,
				  uint64_t now)
{
	for (size_t i = 0; i < r->n; i++)
		if (same_client(&r->s[i].client, client))
			return &r->s[i];
	if (r->n == r->max) {
		size_t lru = 0;
		for (size_t i = 1; i < r->n; i++)
			if (r->s[i].last < r->s[lru].last)
				lru = i;
		drop(r, lru);
	}
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return NULL;
	if (connect(fd, (const struct sockaddr *)&r->guest, sizeof(r->guest)) < 0) {
		close(fd);
		return NULL;
	}
	r->s[r->n] = (struct session){.client = *client, .fd = fd, .last = now};
	return &r->s[r->n++];
}

static void from_clients(struct udp_relay *r, uint64_t now)
{
	for (int k = 0; k < BURST; k++) {
		struct sockaddr_in c;
		socklen_t len = sizeof(c);
		ssize_t n = recvfrom(r->fd, r->buf, sizeof(r->buf), MSG_DONTWAIT,
				     (struct sockaddr *)&c, &len);
		if (n < 0)
			return;
		struct session *s = session_of(r, &c, now);
		if (s) {
			s->last = now;
			send(s->fd, r->buf, (size_t)n, MSG_DONTWAIT); /* UDP: a loss is a loss */
		}
	}
}

static void from_guest(struct udp_relay *r, struct session *s, uint64_t now)
{
	for (int k = 0; k < BURST; k++) {
		ssize_t n = recv(s->fd, r->buf, sizeof(r->buf), MSG_DONTWAIT);
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
			continue; /* e.g. ECONNREFUSED: nothing listened yet; the session stays */
		if (n < 0)
			return;
		s->last = now;
		sendto(r->fd, r->buf, (size_t)n, MSG_DONTWAIT, (const struct sockaddr *)&s->client,
		       sizeof(s->client));
	}
}

static void expire(struct udp_relay *r, uint64_t now)
{
	for (size_t i = r->n; i-- > 0;)
		if (now - r->s[i].last >= r->idle_ms)
			drop(r, i);
}

/* How long poll may sleep: until the oldest session is due to expire. */
static int wait_for(const struct udp_relay *r, int timeout_ms, uint64_t now)
{
	for (size_t i = 0; i < r->n; i++) {
		uint64_t due = r->s[i].last + r->idle_ms;
		int left = due > now ? (int)(due - now) : 0;
		if (timeout_ms < 0 || left < timeout_ms)
			timeout_ms = left;
	}
	return timeout_ms;
}

void udp_relay_step(struct udp_relay *r, int timeout_ms)
{
	size_t n = r->n;
	r->p[0] = (struct pollfd){.fd = r->fd, .events = POLLIN};
	for (size_t i = 0; i < n; i++)
		r->p[i + 1] = (struct pollfd){.fd = r->s[i].fd, .events = POLLIN};
	if (poll(r->p, n + 1, wait_for(r, timeout_ms, now_ms())) < 0)
		return;
	uint64_t now = now_ms();
	/* Guest replies first: taking client datagrams may evict sessions and
	 * so move them in r->s. */
	for (size_t i = 0; i < n; i++)
		if (r->p[i + 1].revents)
			from_guest(r, &r->s[i], now);
	if (r->p[0].revents & POLLIN)
		from_clients(r, now);
	expire(r, now);
}

void udp_relay_free(struct udp_relay *r)
{
	if (!r)
		return;
	while (r->n)
		drop(r, 0);
	close(r->fd);
	free(r->s);
	free(r->p);
	free(r);
}

void *udp_relay_main(void *r)
{
	for (;;)
		udp_relay_step(r, -1);
	return NULL;
}
