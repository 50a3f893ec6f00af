/* `ports: auto`: the provider-independent watcher (see autoports.h). The
 * provider only adds and removes a forward (kvm: QEMU hostfwd over QMP;
 * virtualbox: `VBoxManage controlvm VM natpf1`) and says whether the
 * machine still runs; the SSH loop, the /proc/net/tcp diffing, the exclude
 * ranges and the auto-ports list are here. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/config/envfile.h"
#include "core/host/mstate.h"
#include "core/host/ports.h"
#include "core/host/proc.h"
#include "core/ssh/ssh.h"
#include "providers/autoports.h"

#define MAX_AUTO 64
#define HOST_TRIES 100
#define LOG_FILE "ports.log"
static const char scan_cmd[] =
	"while :; do cat /proc/net/tcp /proc/net/tcp6 2>/dev/null; echo .; sleep 1; done";

struct watch {
	struct endpoint ep;
	const char *file;
	const struct autoports_ops *ops;
	void *ctx;
	struct auto_ports ex; /* the SSH port and the `exclude` ranges */
	struct buf text;      /* the scan being read */
	struct mport fwd[MAX_AUTO];
	size_t n;
};

/* Nobody listens on 127.0.0.1:port now. */
static bool port_free(unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	bool ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

static void add_fwd(struct watch *w, unsigned guest)
{
	const char *ip = w->ops->host_ip ? w->ops->host_ip(w->ctx) : NULL;
	ip = ip ? ip : "127.0.0.1";
	for (unsigned p = guest, k = 0; p <= 65535 && k <= HOST_TRIES && w->n < MAX_AUTO; p++, k++) {
		if (!port_free(p))
			continue;
		struct diag d = {0};
		if (w->ops->add(w->ctx, p, guest, &d) < 0) {
			printf("corral: ports: auto: %s\n", d.msg);
			if (!w->ops->alive(w->ctx))
				return;
			continue;
		}
		w->fwd[w->n] = (struct mport){.guest = guest, .host = p};
		snprintf(w->fwd[w->n++].host_ip, sizeof(w->fwd[0].host_ip), "%s", ip);
		printf("corral: ports: auto: forwarding %s:%u -> %u\n", ip, p, guest);
		return;
	}
}

static void drop_fwd(struct watch *w, size_t i)
{
	struct diag d = {0};
	if (w->ops->remove(w->ctx, w->fwd[i].host, w->fwd[i].guest, &d) < 0)
		printf("corral: ports: auto: %s\n", d.msg);
	printf("corral: ports: auto: guest port %u closed: forward removed\n", w->fwd[i].guest);
	w->fwd[i] = w->fwd[--w->n];
}

static bool listed(const unsigned *v, size_t n, unsigned port)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == port)
			return true;
	return false;
}

/* A whole scan read: forwards what the guest listens on, drops the rest. */
static void scan(struct watch *w)
{
	unsigned now[MAX_AUTO];
	size_t n = ports_listening(w->text.s ? w->text.s : "", now, MAX_AUTO);
	size_t was = w->n;
	bool changed = false;
	for (size_t i = w->n; i-- > 0;)
		if (!listed(now, n, w->fwd[i].guest)) {
			drop_fwd(w, i);
			changed = true;
		}
	for (size_t k = 0; k < n; k++) {
		bool have = false;
		for (size_t i = 0; i < w->n; i++)
			have |= w->fwd[i].guest == now[k];
		if (!have && !auto_ports_excluded(&w->ex, now[k])) {
			add_fwd(w, now[k]);
			changed = true;
		}
	}
	struct diag d = {0};
	if ((changed || was != w->n) && ports_auto_save(w->file, w->fwd, w->n, &d) < 0)
		printf("corral: ports: auto: %s\n", d.msg);
	fflush(stdout);
	w->text.len = 0;
	if (w->text.s)
		w->text.s[0] = '\0';
}

static void on_line(void *ctx, const char *line)
{
	struct watch *w = ctx;
	if (strcmp(line, ".") == 0)
		scan(w);
	else
		buf_printf(&w->text, "%s\n", line);
}

static void copy(char *dst, size_t n, const char *src) { snprintf(dst, n, "%s", src); }

/* The common KEY=VALUE arguments: file, host, port, user, key,
 * known_hosts, exclude (repeated); anything else is the provider's. */
static bool parse_arg(struct watch *w, const char *a)
{
	const char *v = strchr(a, '=');
	if (!v)
		return false;
	size_t k = (size_t)(v++ - a);
#define IS(s) (k == strlen(s) && strncmp(a, s, k) == 0)
	if (IS("file"))
		w->file = v;
	else if (IS("host"))
		copy(w->ep.host, sizeof(w->ep.host), v);
	else if (IS("port"))
		w->ep.port = (unsigned)strtoul(v, NULL, 10);
	else if (IS("user"))
		copy(w->ep.user, sizeof(w->ep.user), v);
	else if (IS("key"))
		copy(w->ep.key_path, sizeof(w->ep.key_path), v);
	else if (IS("known_hosts"))
		copy(w->ep.known_hosts, sizeof(w->ep.known_hosts), v);
	else if (IS("exclude"))
		strv_push(&w->ex.exclude, v);
	else
		return w->ops->arg(w->ctx, a, k, v);
#undef IS
	return true;
}

int autoports_main(int argc, char **argv, const struct autoports_ops *ops, void *ctx)
{
	struct watch w = {.ops = ops, .ctx = ctx};
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0); /* ports.log: each line as it happens */
	for (int i = 1; i < argc; i++)
		if (!parse_arg(&w, argv[i])) {
			printf("corral: ports: auto: bad argument `%s`\n", argv[i]);
			return 2;
		}
	if (!w.file || !w.ep.port || !ops->ready(ctx))
		return 2;
	while (ops->alive(ctx)) {
		struct ssh_conn *c = NULL;
		struct diag d = {0};
		int status;
		if (ssh_wait_ready(&w.ep, 30000, NULL, NULL, &c, &d) == 0)
			ssh_exec_lines(c, scan_cmd, on_line, &w, &status, &d);
		ssh_close(c);
		sleep_ms(1000);
	}
	buf_free(&w.text);
	strv_free(&w.ex.exclude);
	return 0;
}

/* corral itself, detached: its output to ports.log. */
int autoports_start(struct machine *m, const char *entry, const struct strv *extra,
		    struct diag *d)
{
	struct endpoint ep;
	if (machine_ssh_endpoint(m, &ep, d) < 0)
		return diag_wrap(d, "ports: auto");
	_cleanup_free_ char *log = machine_path(m, LOG_FILE);
	_cleanup_free_ char *file = ports_auto_path(m);
	int out = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (out < 0)
		return diag_errno(d, "ports: auto: open %s", log);
	struct strv argv = {0};
	strv_push(&argv, "corral");
	strv_push(&argv, entry);
	strv_pushf(&argv, "file=%s", file);
	strv_pushf(&argv, "host=%s", ep.host);
	strv_pushf(&argv, "port=%u", ep.port);
	strv_pushf(&argv, "user=%s", ep.user);
	strv_pushf(&argv, "key=%s", ep.key_path);
	strv_pushf(&argv, "known_hosts=%s", ep.known_hosts);
	strv_pushf(&argv, "exclude=%u", mcfg_ssh_port(m->cfg));
	for (size_t i = 0; i < m->cfg->ports_auto.exclude.n; i++)
		strv_pushf(&argv, "exclude=%s", m->cfg->ports_auto.exclude.v[i]);
	for (size_t i = 0; extra && i < extra->n; i++)
		strv_push(&argv, extra->v[i]);
	int child[3] = {PROC_NULL, out, out};
	struct proc_spawn s = {.argv = (const char *const *)argv.v, .exe = "/proc/self/exe",
			       .fds = child, .nfds = 3, .setsid = true};
	pid_t pid;
	int rc = proc_spawn(&s, &pid, d);
	close(out);
	strv_free(&argv);
	if (rc < 0)
		return diag_wrap(d, "ports: auto: start the watcher");
	machine_set_proc(m, MP_PORTFWD, pid);
	return 0;
}

void autoports_stop(struct machine *m)
{
	machine_stop_proc(m, MP_PORTFWD);
	_cleanup_free_ char *file = ports_auto_path(m);
	unlink(file);
}
