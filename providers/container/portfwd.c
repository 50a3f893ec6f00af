/* Forwarded ports: corral binds the host ports itself as the picker
 * (core/host/ports.c) chooses them (so a busy port is reported by `up`, or
 * auto-corrected), then hands the listening sockets to
 * a detached `corral __portfwd` that relays each TCP connection, and each
 * UDP client's datagrams (udpfwd.c), to the guest. It outlives `up`; halt
 * and destroy stop it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/host/mstate.h"
#include "core/host/ports.h"
#include "core/host/proc.h"
#include "providers/container/container.h"
#include "providers/container/udpfwd.h"

#define FIRST_FD 100 /* listening sockets are moved here, clear of 0..99 */
#define MAX_FWD 64

/* A listening socket on ip:port (SO_REUSEADDR for TCP only: a UDP port
 * bound twice would split its datagrams), moved to FIRST_FD or above. */
static int listen_on(const char *host_ip, unsigned port, bool udp)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host_ip, &a.sin_addr) != 1)
		return errno = EINVAL, -1;
	int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0)
		return -1;
	if ((!udp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) ||
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || (!udp && listen(fd, SOMAXCONN) < 0)) {
		int e = errno;
		close(fd);
		return errno = e, -1;
	}
	int high = fcntl(fd, F_DUPFD_CLOEXEC, FIRST_FD);
	close(fd);
	return high;
}

/* The picker's port_binder: forward i keeps the socket it got. */
static int bind_fwd(void *arg, size_t i, const char *ip, unsigned port, bool udp)
{
	int *fds = arg;
	int fd = listen_on(ip, port, udp);
	if (fd < 0)
		return errno == EADDRINUSE || errno == EACCES ? 0 : -1;
	fds[i] = fd;
	return 1;
}

/* corral itself, detached (its own session, never waited for): stdin
 * /dev/null, output to the console log, the sockets as fds 3...; each
 * passed as FD:GUEST_PORT, with /udp for UDP. */
static int spawn_forwarder(struct machine *m, const char *guest_ip, const int *fds,
			   struct diag *d)
{
	const struct machine_cfg *c = m->cfg;
	size_t n = c->nports;
	_cleanup_free_ char *log = machine_path(m, "console.log");
	int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (out < 0)
		return diag_errno(d, "start the port forwarder: open %s", log);
	struct strv argv = {0};
	strv_push(&argv, "corral");
	strv_push(&argv, "__portfwd");
	strv_push(&argv, guest_ip);
	strv_pushf(&argv, "%u", c->container.max_connections ? c->container.max_connections
							     : ENV_CT_MAX_CONNECTIONS);
	int *child = xcalloc(n + 3, sizeof(int));
	child[0] = PROC_NULL;
	child[1] = child[2] = out;
	for (size_t i = 0; i < n; i++) {
		strv_pushf(&argv, "%zu:%u%s", 3 + i, c->ports[i].guest, c->ports[i].udp ? "/udp" : "");
		child[3 + i] = fds[i];
	}
	struct proc_spawn s = {.argv = (const char *const *)argv.v, .exe = "/proc/self/exe",
			       .fds = child, .nfds = n + 3, .setsid = true};
	pid_t pid;
	int rc = proc_spawn(&s, &pid, d);
	close(out);
	free(child);
	strv_free(&argv);
	if (rc < 0)
		return diag_wrap(d, "start the port forwarder");
	machine_set_proc(m, MP_PORTFWD, pid);
	return 0;
}

int ct_ports_start(struct machine *m, const char *guest_ip, struct diag *d)
{
	const struct machine_cfg *c = m->cfg;
	if (c->nports > MAX_FWD) {
		diag_fail(d, "%s: more than %d forwarded ports", c->name, MAX_FWD);
		return diag_hint(d, "reach the guest's address directly for the others");
	}
	int fds[MAX_FWD];
	for (size_t i = 0; i < MAX_FWD; i++)
		fds[i] = -1;
	struct port_binder binder = {bind_fwd, fds};
	struct port_plan plan = {0};
	int r = 0;
	if (c->nports && (r = ports_pick(m, false, NULL, &binder, &plan, d)) == 0)
		r = spawn_forwarder(m, guest_ip, fds, d);
	for (size_t i = 0; i < c->nports; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (r == 0)
		ports_record(m, &plan);
	port_plan_free(&plan);
	return r;
}

void ct_ports_stop(struct machine *m)
{
	struct proc_ident p = machine_proc(m, MP_PORTFWD);
	if (p.pid && proc_stop(p.pid, p.start, SIGTERM, 1000) == 1)
		proc_stop(p.pid, p.start, SIGKILL, 1000);
	machine_clear_proc(m, MP_PORTFWD);
}

/* One forwarded TCP port: where it goes, and how many connections it has
 * open against its cap (more are accepted and closed at once, so a flood
 * of connections cannot exhaust the forwarder's threads or the host). */
struct fwd_port {
	struct sockaddr_in guest;
	unsigned open, max; /* atomic */
};

struct relay {
	int client;
	struct fwd_port *port;
};

/* Copies both ways until both sides have closed; a half-close is passed on. */
static void pump(int a, int b)
{
	struct pollfd p[2] = {{.fd = a, .events = POLLIN}, {.fd = b, .events = POLLIN}};
	char buf[65536];
	int open_dirs = 2;
	while (open_dirs > 0 && poll(p, 2, -1) > 0) {
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			int to = i ? a : b;
			if (n <= 0) {
				shutdown(to, SHUT_WR);
				p[i].fd = -1;
				open_dirs--;
				continue;
			}
			for (ssize_t off = 0; off < n;) {
				ssize_t w = write(to, buf + off, (size_t)(n - off));
				if (w <= 0)
					return;
				off += w;
			}
		}
	}
}

static void *relay_main(void *arg)
{
	struct relay *r = arg;
	int g = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	const struct sockaddr_in *to = &r->port->guest;
	if (g >= 0 && connect(g, (const struct sockaddr *)to, sizeof(*to)) == 0)
		pump(r->client, g);
	if (g >= 0)
		close(g);
	close(r->client);
	__atomic_sub_fetch(&r->port->open, 1, __ATOMIC_RELAXED);
	free(r);
	return NULL;
}

/* Parses FD:GUEST_PORT[/udp]; false when malformed. */
static bool parse_spec(const char *spec, int *fd, unsigned *port, bool *udp)
{
	unsigned f;
	int end = 0;
	if (sscanf(spec, "%u:%u%n", &f, port, &end) != 2 || *port > 65535)
		return false;
	*udp = strcmp(spec + end, "/udp") == 0;
	*fd = (int)f;
	return *udp || spec[end] == '\0';
}

static bool start_thread(void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	pthread_t t;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	bool ok = pthread_create(&t, &attr, fn, arg) == 0;
	pthread_attr_destroy(&attr);
	return ok;
}

int ct_portfwd_main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	size_t n = 0;
	struct pollfd *p = xcalloc((size_t)argc, sizeof(*p));
	struct fwd_port *g = xcalloc((size_t)argc, sizeof(*g));
	char *end = NULL;
	unsigned long max = strtoul(argv[2], &end, 10);
	if (!*argv[2] || *end || max < 1 || max > 65536)
		return 2;
	for (int i = 3; i < argc; i++) {
		struct sockaddr_in to = {.sin_family = AF_INET};
		unsigned port;
		int fd;
		bool udp;
		if (!parse_spec(argv[i], &fd, &port, &udp) ||
		    inet_pton(AF_INET, argv[1], &to.sin_addr) != 1)
			return 2;
		to.sin_port = htons((uint16_t)port);
		if (udp) {
			if (!start_thread(udp_relay_main,
					  udp_relay_new(fd, &to, UDP_IDLE_MS, UDP_MAX_SESSIONS)))
				return 1; /* halt/up starts a new forwarder */
			continue;
		}
		p[n] = (struct pollfd){.fd = fd, .events = POLLIN};
		g[n++] = (struct fwd_port){.guest = to, .max = (unsigned)max};
	}
	while (poll(p, n, -1) >= 0 || errno == EINTR) {
		for (size_t i = 0; i < n; i++) {
			if (!(p[i].revents & POLLIN))
				continue;
			int c = accept4(p[i].fd, NULL, NULL, SOCK_CLOEXEC);
			if (c < 0)
				continue;
			if (__atomic_add_fetch(&g[i].open, 1, __ATOMIC_RELAXED) > g[i].max) {
				__atomic_sub_fetch(&g[i].open, 1, __ATOMIC_RELAXED);
				close(c); /* over the cap: refused */
				continue;
			}
			struct relay *r = xmalloc(sizeof(*r));
			*r = (struct relay){c, &g[i]};
			if (!start_thread(relay_main, r)) {
				__atomic_sub_fetch(&g[i].open, 1, __ATOMIC_RELAXED);
				close(c);
				free(r);
			}
		}
	}
	return 1;
}
