/* Forwarded ports: corral binds the host ports itself as the picker
 * (core/host/ports.c) chooses them (so a busy port is reported by `up`, or
 * auto-corrected), then hands the listening sockets to
 * a detached `corral __portfwd` that relays each TCP connection, and each
 * UDP client's datagrams (udpfwd.c), to the guest. It outlives `up`; halt
 * and destroy stop it.
 *
 * Without root pasta forwards the envfile's ports, and the guest's address
 * is not the host's to reach: the forwarder runs for `ports: auto` only,
 * joins the machine's user namespace (the user owns it) and connects to
 * the guest from a relay thread that joined its network namespace, while
 * its listening sockets stay in the host's. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/config/envfile.h"
#include "core/host/mstate.h"
#include "core/host/paths.h"
#include "core/host/ports.h"
#include "core/host/proc.h"
#include "providers/autoports.h"
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

/* ports: auto: the init's pid (its /proc/PID/net/tcp is the guest's), the
 * file the forwards are listed in, the guest ports not to forward (SSH's,
 * and the `exclude` ranges). */
static void auto_args(struct machine *m, struct strv *argv)
{
	_cleanup_free_ char *file = ports_auto_path(m);
	strv_pushf(argv, "auto=%d", (int)machine_proc(m, MP_MACHINE).pid);
	strv_pushf(argv, "file=%s", file);
	strv_pushf(argv, "exclude=%u", mcfg_ssh_port(m->cfg));
	for (size_t i = 0; i < m->cfg->ports_auto.exclude.n; i++)
		strv_pushf(argv, "exclude=%s", m->cfg->ports_auto.exclude.v[i]);
	if (!host_rootless())
		return;
	strv_push(argv, "userns");
	for (size_t i = 0; i < m->cfg->nports; i++) /* pasta's */
		if (!m->cfg->ports[i].udp)
			strv_pushf(argv, "exclude=%u", m->cfg->ports[i].guest);
}

/* corral itself, detached (its own session, never waited for): stdin
 * /dev/null, output to the console log, the sockets as fds 3...; each
 * passed as FD:GUEST_PORT, with /udp for UDP. */
static int spawn_forwarder(struct machine *m, const char *guest_ip, const int *fds,
			   struct diag *d)
{
	const struct machine_cfg *c = m->cfg;
	size_t n = host_rootless() ? 0 : c->nports;
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
	if (c->ports_auto.on)
		auto_args(m, &argv);
	struct proc_spawn s = {.argv = (const char *const *)argv.v, .exe = "/proc/self/exe",
			       .fds = child, .nfds = n + 3, .setsid = true};
	pid_t pid;
	int rc = proc_spawn(&s, &pid, d);
	close(out);
	free(child);
	strv_free(&argv);
	if (rc < 0)
		return diag_wrap(d, "start the port forwarder");
	machine_set_proc(m, host_rootless() ? MP_AUTOFWD : MP_PORTFWD, pid);
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
	_cleanup_free_ char *autofile = ports_auto_path(m);
	unlink(autofile); /* the last run's; the new watcher writes its own */
	bool fixed = c->nports && !host_rootless(); /* else pasta's */
	if (fixed && (r = ports_pick(m, false, NULL, &binder, &plan, d)) < 0)
		;
	else if (fixed || c->ports_auto.on)
		r = spawn_forwarder(m, guest_ip, fds, d);
	for (size_t i = 0; i < c->nports; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (r == 0 && fixed)
		ports_record(m, &plan);
	port_plan_free(&plan);
	return r;
}

/* The forwarder is the machine's MP_PORTFWD process, as kvm's and
 * VirtualBox's auto-ports watcher is: one way to stop either. */
void ct_ports_stop(struct machine *m)
{
	machine_stop_proc(m, MP_AUTOFWD);
	autoports_stop(m);
}

/* One forwarded TCP port: where it goes, and how many connections it has
 * open against its cap (more are accepted and closed at once, so a flood
 * of connections cannot exhaust the forwarder's threads or the host). */
struct fwd_port {
	struct sockaddr_in guest;
	unsigned open, max; /* atomic */
	int netns;          /* the guest's network namespace to connect from; -1: this one */
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
	/* a thread's own network namespace: the listeners stay in the host's */
	int g = r->port->netns >= 0 && setns(r->port->netns, CLONE_NEWNET) < 0
			? -1
			: socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
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

/* ---- ports: auto: the guest's listening ports, watched ---- */

#define MAX_AUTO 256
#define SCAN_MS 1000
#define HOST_TRIES 100 /* host ports tried above a busy one */
#define PRIV_PORTS_END 1024 /* net.ipv4.ip_unprivileged_port_start's default */

struct fwd {
	struct pollfd *p;    /* listening sockets; fd -1: a free slot */
	struct fwd_port *g;  /* stable: relays hold pointers into it */
	unsigned *auto_guest; /* per slot: the guest port ports: auto forwards, 0: a fixed one */
	size_t n, cap;
	unsigned max;
	struct sockaddr_in guest; /* the guest's address, port 0 */
	pid_t init;               /* 0: no ports: auto */
	bool userns;              /* connect from the init's namespaces (without root) */
	int netns;                /* its network namespace, once joined its user one */
	const char *file;
	struct auto_ports ex;     /* guest ports not forwarded */
	struct strv fixed;        /* guest ports forwarded by the envfile, as text */
};

static size_t add_slot(struct fwd *f, int fd, unsigned guest_port, unsigned auto_guest)
{
	size_t i = 0;
	while (i < f->n && (f->p[i].fd >= 0 || __atomic_load_n(&f->g[i].open, __ATOMIC_RELAXED)))
		i++;
	if (i == f->n)
		f->n++;
	f->p[i] = (struct pollfd){.fd = fd, .events = POLLIN};
	f->g[i] = (struct fwd_port){.guest = f->guest, .max = f->max, .netns = f->netns};
	f->g[i].guest.sin_port = htons((uint16_t)guest_port);
	f->auto_guest[i] = auto_guest;
	return i;
}

/* The guest's listening ports, from both of its /proc/net tables. */
static size_t guest_listening(pid_t init, unsigned *out, size_t max)
{
	size_t n = 0;
	for (int v6 = 0; v6 < 2; v6++) {
		_cleanup_free_ char *path = xasprintf("/proc/%d/net/tcp%s", (int)init, v6 ? "6" : "");
		char *text = NULL;
		size_t len;
		struct diag d = {0};
		if (read_file(path, 1 << 22, &text, &len, &d) < 0)
			continue;
		unsigned got[MAX_AUTO];
		size_t k = ports_listening(text, got, MAX_AUTO);
		for (size_t i = 0; i < k && n < max; i++) {
			bool seen = false;
			for (size_t j = 0; j < n && !seen; j++)
				seen = out[j] == got[i];
			if (!seen)
				out[n++] = got[i];
		}
		free(text);
	}
	return n;
}

static bool wanted(const struct fwd *f, unsigned port, const unsigned *now, size_t n)
{
	char s[8];
	snprintf(s, sizeof(s), "%u", port);
	bool listening = false;
	for (size_t i = 0; i < n && !listening; i++)
		listening = now[i] == port;
	return listening && !auto_ports_excluded(&f->ex, port) && !(f->fixed.v && str_in_list(s, (const char *const *)f->fixed.v));
}

/* The same port on 127.0.0.1 when free, else the next free one above it;
 * one the user may not bind (below 1024 without root): from 1024 up. */
static int auto_listen(unsigned guest, unsigned *host)
{
	for (unsigned p = guest, k = 0; p <= 65535 && k <= HOST_TRIES; p++, k++) {
		int fd = listen_on("127.0.0.1", p, false);
		if (fd >= 0) {
			*host = p;
			return fd;
		}
		if (errno == EACCES && p < PRIV_PORTS_END)
			p = PRIV_PORTS_END - 1, k = 0;
	}
	return -1;
}

static void auto_record(struct fwd *f)
{
	struct mport v[MAX_AUTO];
	size_t k = 0;
	for (size_t i = 0; i < f->n && k < MAX_AUTO; i++) {
		struct sockaddr_in a;
		socklen_t len = sizeof(a);
		if (f->p[i].fd < 0 || !f->auto_guest[i] ||
		    getsockname(f->p[i].fd, (struct sockaddr *)&a, &len) < 0)
			continue;
		v[k] = (struct mport){.guest = f->auto_guest[i], .host = ntohs(a.sin_port)};
		snprintf(v[k++].host_ip, sizeof(v[0].host_ip), "127.0.0.1");
	}
	struct diag d = {0};
	if (ports_auto_save(f->file, v, k, &d) < 0)
		printf("corral: ports: auto: %s\n", d.msg);
}

/* Forwards what the guest listens on now, drops what it stopped. */
static void auto_scan(struct fwd *f)
{
	unsigned now[MAX_AUTO];
	size_t n = guest_listening(f->init, now, MAX_AUTO);
	bool changed = false;
	for (size_t i = 0; i < f->n; i++)
		if (f->p[i].fd >= 0 && f->auto_guest[i] && !wanted(f, f->auto_guest[i], now, n)) {
			printf("corral: ports: auto: guest port %u closed: forward removed\n",
			       f->auto_guest[i]);
			close(f->p[i].fd);
			f->p[i].fd = -1;
			changed = true;
		}
	for (size_t k = 0; k < n; k++) {
		bool have = false;
		for (size_t i = 0; i < f->n && !have; i++)
			have = f->p[i].fd >= 0 && f->auto_guest[i] == now[k];
		unsigned host;
		int fd;
		if (have || !wanted(f, now[k], now, n) || f->n == f->cap ||
		    (fd = auto_listen(now[k], &host)) < 0)
			continue;
		add_slot(f, fd, now[k], now[k]);
		printf("corral: ports: auto: forwarding 127.0.0.1:%u -> %u\n", host, now[k]);
		changed = true;
	}
	fflush(stdout);
	if (changed)
		auto_record(f);
}

static void accept_one(struct fwd *f, size_t i)
{
	int c = accept4(f->p[i].fd, NULL, NULL, SOCK_CLOEXEC);
	if (c < 0)
		return;
	if (__atomic_add_fetch(&f->g[i].open, 1, __ATOMIC_RELAXED) > f->g[i].max) {
		__atomic_sub_fetch(&f->g[i].open, 1, __ATOMIC_RELAXED);
		close(c); /* over the cap: refused */
		return;
	}
	struct relay *r = xmalloc(sizeof(*r));
	*r = (struct relay){c, &f->g[i]};
	if (!start_thread(relay_main, r)) {
		__atomic_sub_fetch(&f->g[i].open, 1, __ATOMIC_RELAXED);
		close(c);
		free(r);
	}
}

/* auto=PID, file=PATH, exclude=RANGE: the ports: auto arguments. */
static bool parse_auto(struct fwd *f, const char *a)
{
	if (strncmp(a, "auto=", 5) == 0)
		f->init = (pid_t)strtol(a + 5, NULL, 10);
	else if (strncmp(a, "file=", 5) == 0)
		f->file = a + 5;
	else if (strncmp(a, "exclude=", 8) == 0)
		strv_push(&f->ex.exclude, a + 8);
	else if (strcmp(a, "userns") == 0)
		f->userns = true;
	else
		return false;
	return true;
}

static int parse_args(struct fwd *f, int argc, char **argv)
{
	for (int i = 3; i < argc; i++) {
		unsigned port;
		int fd;
		bool udp;
		if (parse_auto(f, argv[i]))
			continue;
		if (!parse_spec(argv[i], &fd, &port, &udp))
			return 2;
		strv_pushf(&f->fixed, "%u", port);
		if (!udp) {
			add_slot(f, fd, port, 0);
			continue;
		}
		struct sockaddr_in to = f->guest;
		to.sin_port = htons((uint16_t)port);
		if (!start_thread(udp_relay_main, udp_relay_new(fd, &to, UDP_IDLE_MS, UDP_MAX_SESSIONS)))
			return 1; /* halt/up starts a new forwarder */
	}
	return (f->init && !f->file) || (f->userns && (!f->init || f->n)) ? 2 : 0;
}

/* Without root: into the init's user namespace (while single-threaded),
 * its network namespace kept open for the relays. */
static int join_guest(struct fwd *f)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/ns/user", (int)f->init);
	int user = open(p, O_RDONLY | O_CLOEXEC);
	snprintf(p, sizeof(p), "/proc/%d/ns/net", (int)f->init);
	f->netns = open(p, O_RDONLY | O_CLOEXEC);
	int r = user < 0 || f->netns < 0 || setns(user, CLONE_NEWUSER) < 0 ? -1 : 0;
	if (r < 0)
		printf("corral: ports: auto: join the machine's namespaces: %s\n", strerror(errno));
	if (user >= 0)
		close(user);
	return r;
}

int ct_portfwd_main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	struct fwd f = {.cap = (size_t)argc + MAX_AUTO, .guest = {.sin_family = AF_INET}, .netns = -1};
	f.p = xcalloc(f.cap, sizeof(*f.p));
	f.g = xcalloc(f.cap, sizeof(*f.g));
	f.auto_guest = xcalloc(f.cap, sizeof(*f.auto_guest));
	char *end = NULL;
	unsigned long max = strtoul(argv[2], &end, 10);
	if (!*argv[2] || *end || max < 1 || max > 65536 ||
	    inet_pton(AF_INET, argv[1], &f.guest.sin_addr) != 1)
		return 2;
	f.max = (unsigned)max;
	int rc = parse_args(&f, argc, argv);
	if (rc)
		return rc;
	if (f.userns && join_guest(&f) < 0)
		return 1;
	uint64_t next_scan = 0;
	for (;;) {
		if (f.init && now_ms() >= next_scan) {
			auto_scan(&f);
			next_scan = now_ms() + SCAN_MS;
		}
		int ready = poll(f.p, f.n, f.init ? SCAN_MS : -1);
		if (ready < 0 && errno != EINTR)
			return 1;
		for (size_t i = 0; ready > 0 && i < f.n; i++)
			if (f.p[i].fd >= 0 && (f.p[i].revents & POLLIN))
				accept_one(&f, i);
	}
}
