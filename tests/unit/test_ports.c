/* The host-port picker every provider uses (core/host/ports.c): the
 * envfile's port, then with auto_correct the previous one, then the range;
 * UDP checked with a UDP bind; SSH never on a forward's port; a provider's
 * binder and taken set; the plan recorded in state and read back. Ports
 * other programs hold here are held by the test itself (real sockets). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/host/mstate.h"
#include "core/host/ports.h"
#include "tests/unit/t.h"

/* A socket holding a free loopback port (TCP listening, or UDP bound). */
static int hold(bool udp, unsigned port, unsigned *got)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				.sin_port = htons((uint16_t)port)};
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || (!udp && listen(fd, 1) < 0) ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*got = ntohs(a.sin_port);
	return fd;
}

static struct machine new_machine(struct machine_cfg *mc)
{
	return (struct machine){.cfg = mc, .dir = (char *)"/m/web", .state = json_object()};
}

static bool in_range(unsigned p) { return p >= PORT_AUTO_FIRST && p <= PORT_AUTO_LAST; }

static void test_busy_port(void)
{
	unsigned busy;
	int fd = hold(false, 0, &busy);
	CHECK(fd >= 0 && port_try("127.0.0.1", busy, false) == 0);
	CHECK(port_try("127.0.0.1", busy, true) == 1); /* TCP does not hold UDP */
	struct port_fwd fw = {.guest = 80, .host = busy};
	struct machine_cfg mc = {.name = (char *)"web", .ports = &fw, .nports = 1};
	struct machine m = new_machine(&mc);
	struct port_plan p;
	struct diag d = {0};
	CHECK(ports_pick(&m, false, NULL, NULL, &p, &d) == -1);
	CHECK(strstr(d.msg, "is in use") && strstr(d.hint, "auto_correct"));
	fw.auto_correct = true;
	CHECK(ports_pick(&m, true, NULL, NULL, &p, &d) == 0);
	CHECK(in_range(p.host[0]) && p.ssh != p.host[0]);
	CHECK(p.ssh == PORT_SSH_HOST || in_range(p.ssh));
	port_plan_free(&p);
	close(fd);
	/* free again: the envfile's port wins */
	CHECK(ports_pick(&m, false, NULL, NULL, &p, &d) == 0 && p.host[0] == busy);
	port_plan_free(&p);
	json_decref(m.state);
}

static void test_previous_port(void)
{
	unsigned busy, prev;
	int fd = hold(false, 0, &busy), pfd = hold(false, 0, &prev);
	close(pfd); /* a free port the machine had before */
	struct port_fwd fw = {.guest = 80, .host = busy, .auto_correct = true};
	struct machine_cfg mc = {.name = (char *)"web", .ports = &fw, .nports = 1};
	struct machine m = new_machine(&mc);
	struct mport old = {.guest = 80, .host = prev};
	machine_set_ports(&m, &old, 1);
	struct port_plan p;
	struct diag d = {0};
	CHECK(ports_pick(&m, false, NULL, NULL, &p, &d) == 0 && p.host[0] == prev);
	port_plan_free(&p);
	/* without auto_correct the previous port is not a way out */
	fw.auto_correct = false;
	CHECK(ports_pick(&m, false, NULL, NULL, &p, &d) == -1);
	/* no host: at all: the previous port, else the range */
	fw.host = 0;
	CHECK(ports_pick(&m, false, NULL, NULL, &p, &d) == 0 && p.host[0] == prev);
	port_plan_free(&p);
	machine_set_ports(&m, NULL, 0);
	CHECK(ports_pick(&m, false, NULL, NULL, &p, &d) == 0 && in_range(p.host[0]));
	port_plan_free(&p);
	close(fd);
	json_decref(m.state);
}

static void test_udp(void)
{
	unsigned busy;
	int fd = hold(true, 0, &busy);
	CHECK(fd >= 0 && port_try("127.0.0.1", busy, true) == 0);
	struct port_fwd fw = {.guest = 53, .host = busy, .udp = true};
	struct machine_cfg mc = {.name = (char *)"dns", .ports = &fw, .nports = 1};
	struct machine m = new_machine(&mc);
	struct port_plan p;
	struct diag d = {0};
	CHECK(ports_pick(&m, false, NULL, NULL, &p, &d) == -1 && strstr(d.msg, "/udp"));
	fw.udp = false; /* the same number over TCP is free */
	CHECK(ports_pick(&m, false, NULL, NULL, &p, &d) == 0 && p.host[0] == busy);
	port_plan_free(&p);
	close(fd);
	json_decref(m.state);
}

/* A forward asking for SSH's port keeps it; SSH moves. */
static void test_ssh_yields(void)
{
	if (port_try("127.0.0.1", PORT_SSH_HOST, false) != 1) {
		printf("# %u is busy here: skipped\n", PORT_SSH_HOST);
		return;
	}
	struct port_fwd fw = {.guest = 8000, .host = PORT_SSH_HOST};
	struct machine_cfg mc = {.name = (char *)"web", .ports = &fw, .nports = 1};
	struct machine m = new_machine(&mc);
	struct port_plan p;
	struct diag d = {0};
	CHECK(ports_pick(&m, true, NULL, NULL, &p, &d) == 0);
	CHECK(p.host[0] == PORT_SSH_HOST && in_range(p.ssh) && p.ssh != PORT_SSH_HOST);
	port_plan_free(&p);
	json_decref(m.state);
}

static void test_taken_set(void)
{
	struct port_fwd fw = {.guest = 80, .host = 0};
	struct machine_cfg mc = {.name = (char *)"web", .ports = &fw, .nports = 1};
	struct machine m = new_machine(&mc);
	struct port_set taken = {0};
	for (unsigned q = PORT_AUTO_FIRST; q < PORT_AUTO_FIRST + 5; q++)
		port_set_add(&taken, q, false);
	struct port_plan p;
	struct diag d = {0};
	CHECK(ports_pick(&m, true, &taken, NULL, &p, &d) == 0);
	CHECK(p.host[0] >= PORT_AUTO_FIRST + 5 && in_range(p.host[0]));
	/* what was picked joined the set */
	CHECK(taken.n == 7 && taken.v[5].port == p.host[0] && taken.v[6].port == p.ssh);
	port_plan_free(&p);
	port_set_free(&taken);
	json_decref(m.state);
}

struct binds {
	size_t calls, last_i;
	int fail_errno;
	unsigned deny_below; /* EACCES under this port, as for a user without root */
};

static int fake_bind(void *arg, size_t i, const char *ip, unsigned port, bool udp)
{
	struct binds *b = arg;
	(void)ip, (void)udp;
	b->calls++;
	b->last_i = i;
	if (b->fail_errno)
		return errno = b->fail_errno, -1;
	if (port < b->deny_below)
		return errno = EACCES, -1;
	return port == 9000 ? 0 : 1; /* 9000 "taken" */
}

static void test_binder(void)
{
	struct port_fwd fw[2] = {{.guest = 80, .host = 9000, .auto_correct = true},
				 {.guest = 81, .host = 9001}};
	struct machine_cfg mc = {.name = (char *)"web", .ports = fw, .nports = 2};
	struct machine m = new_machine(&mc);
	struct binds b = {0};
	struct port_binder binder = {fake_bind, &b};
	struct port_plan p;
	struct diag d = {0};
	CHECK(ports_pick(&m, false, NULL, &binder, &p, &d) == 0);
	CHECK(p.host[0] == ports_auto_start(m.dir) && p.host[1] == 9001 && b.last_i == 1);
	port_plan_free(&p);
	b.fail_errno = EADDRNOTAVAIL;
	CHECK(ports_pick(&m, false, NULL, &binder, &p, &d) == -1 && strstr(d.msg, "9000"));
	fw[0].host_ip = (char *)"localhost";
	CHECK(ports_pick(&m, false, NULL, &binder, &p, &d) == -1 && strstr(d.msg, "not an IPv4"));
	json_decref(m.state);
}

/* A port the user may not bind (below 1024 without root) is named as such,
 * not as "in use"; with auto_correct another is taken. */
static void test_not_allowed(void)
{
	struct port_fwd fw[2] = {{.guest = 80, .host = 80, .auto_correct = true}, {.guest = 443, .host = 443}};
	struct machine_cfg mc = {.name = (char *)"web", .ports = fw, .nports = 2};
	struct machine m = new_machine(&mc);
	struct binds b = {.deny_below = 1024};
	struct port_binder binder = {fake_bind, &b};
	struct port_plan p;
	struct diag d = {0};
	CHECK(ports_pick(&m, false, NULL, &binder, &p, &d) == -1);
	CHECK(strstr(d.msg, "443") && strstr(d.msg, "not allowed") && !strstr(d.msg, "in use"));
	CHECK(strstr(d.hint, "1024") != NULL);
	fw[1].auto_correct = true;
	CHECK(ports_pick(&m, false, NULL, &binder, &p, &d) == 0);
	unsigned first = ports_auto_start(m.dir);
	CHECK(p.host[0] == first && p.host[1] == (first == PORT_AUTO_LAST ? PORT_AUTO_FIRST : first + 1));
	port_plan_free(&p);
	json_decref(m.state);
}

/* The scan starts at a place drawn from the machine's directory, in the
 * range, the same for the same directory, and wraps at the end. */
static void test_auto_start(void)
{
	CHECK(ports_auto_start(NULL) == PORT_AUTO_FIRST);
	unsigned a = ports_auto_start("/p/one/.corral/machines/web");
	CHECK(in_range(a) && a == ports_auto_start("/p/one/.corral/machines/web"));
	int differ = 0;
	char dir[64];
	for (int i = 0; i < 8; i++) {
		snprintf(dir, sizeof(dir), "/p/%d/.corral/machines/web", i);
		differ += ports_auto_start(dir) != a;
	}
	CHECK(differ >= 6);
}

static void test_record(void)
{
	struct port_fwd fw[2] = {{.guest = 22, .host = 2201},
				 {.guest = 53, .host = 5353, .udp = true, .host_ip = (char *)"0.0.0.0"}};
	struct machine_cfg mc = {.name = (char *)"web", .ports = fw, .nports = 2};
	struct machine m = new_machine(&mc);
	unsigned host[2] = {2201, 5353};
	struct port_plan p = {.host = host, .ssh = 2230};
	ports_record(&m, &p);
	struct mport *v;
	size_t n = machine_ports(&m, &v);
	CHECK(n == 3 && v[0].guest == 22 && v[0].host == 2230 && !v[0].udp);
	CHECK(v[2].udp && v[2].host == 5353 && strcmp(v[2].host_ip, "0.0.0.0") == 0);
	free(v);
	CHECK(machine_int(&m, MK_SSH_PORT) == 2230);
	/* the forward of guest 22 is not mistaken for SSH's */
	CHECK(machine_previous_port(&m, 22, false) == 2201);
	CHECK(machine_previous_port(&m, 53, true) == 5353 && machine_previous_port(&m, 53, false) == 0);
	/* a port taken since the pick is lost */
	unsigned busy;
	int fd = hold(false, 0, &busy);
	struct port_plan q = {.host = host, .ssh = busy};
	host[0] = host[1] = 0;
	CHECK(ports_lost(&m, &q));
	close(fd);
	CHECK(!ports_lost(&m, &q));
	json_decref(m.state);
}

/* /proc/net/tcp and tcp6 as the kernel writes them: LISTEN (0A) on a
 * wildcard or the machine's address counts, loopback and other states not. */
static void listening(void)
{
	static const char tcp[] =
		"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
		"   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0\n"
		"   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0\n"
		"   2: 0500140A:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0\n"
		"   3: 0500140A:0016 0100140A:C350 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0\n"
		"   4: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 5 1 0 100 0 0 10 0\n";
	static const char tcp6[] =
		"  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
		"   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 6 1 0 100 0 0 10 0\n"
		"   1: 00000000000000000000000001000000:0277 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1 0 100 0 0 10 0\n"
		"   2: 0000000000000000FFFF00000100007F:0278 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 8 1 0 100 0 0 10 0\n";
	unsigned v[8];
	size_t n = ports_listening(tcp, v, 8);
	CHECK(n == 2 && v[0] == 8080 && v[1] == 5432); /* 3306 loopback, 22 established, 8080 once */
	n = ports_listening(tcp6, v, 8);
	CHECK(n == 1 && v[0] == 80);
	CHECK(ports_listening(tcp, v, 1) == 1);
	CHECK(ports_listening("", v, 8) == 0 && ports_listening("garbage\n\n", v, 8) == 0);
}

int main(void)
{
	RUN(test_busy_port);
	RUN(test_previous_port);
	RUN(test_udp);
	RUN(test_ssh_yields);
	RUN(test_taken_set);
	RUN(test_binder);
	RUN(test_not_allowed);
	RUN(test_auto_start);
	RUN(test_record);
	RUN(listening);
	return T_END();
}
