/* Readiness probes (`ready:`): once a machine is provisioned, `up` checks
 * its probes in order, each until it passes or its timeout has passed
 * since its first try, trying again every interval. tcp and http are
 * checked from the host: the guest port through its forward when there is
 * one, else at the machine's address; command runs over SSH. A machine is
 * up (and the machines that depend on it may start) once every probe has
 * passed. A probe that does not pass fails the machine with its last
 * output and the console's last lines. Each probe is an EV_PROBE event. */
#include "engine/probe.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "core/base/cancel.h"
#include "core/base/event.h"
#include "core/base/log.h"
#include "core/base/util.h"
#include "core/box/download.h"
#include "core/host/mstate.h"

#define TRY_MAX_MS 5000u /* one try of a probe at most */
#define TAIL_LINES 10

static const char *const kind_names[] = {[PROBE_TCP] = "tcp", [PROBE_HTTP] = "http",
					 [PROBE_COMMAND] = "command"};

/* Where the host reaches guest port `guest`: its TCP forward (0.0.0.0
 * reached at 127.0.0.1), else the machine's address. */
int probe_target(const struct machine *m, unsigned guest, char host[64], unsigned *port,
		 struct diag *d)
{
	struct mport *v = NULL;
	size_t n = machine_ports(m, &v);
	for (size_t i = 0; i < n; i++)
		if (!v[i].udp && v[i].guest == guest && v[i].host) {
			bool any = strcmp(v[i].host_ip, "0.0.0.0") == 0 || !v[i].host_ip[0];
			snprintf(host, 64, "%s", any ? "127.0.0.1" : v[i].host_ip);
			*port = v[i].host;
			free(v);
			return 0;
		}
	free(v);
	const char *ip = machine_host_ip(m);
	if (!ip || !*ip) {
		diag_fail(d, "guest port %u is not forwarded, and the host has no address of "
			     "the machine to reach it at", guest);
		return diag_hint(d, "forward it in `ports:` ({ guest: %u })", guest);
	}
	snprintf(host, 64, "%s", ip);
	*port = guest;
	return 0;
}

static int tcp_try(const char *host, unsigned port, unsigned ms, struct buf *out)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
		buf_printf(out, "%s is not an IPv4 address", host);
		return -1;
	}
	_cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err = 0;
	socklen_t len = sizeof(err);
	if (fd < 0)
		err = errno;
	else if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS)
		err = errno;
	else if (poll(&(struct pollfd){.fd = fd, .events = POLLOUT}, 1, (int)ms) != 1)
		err = ETIMEDOUT;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		err = errno;
	if (err)
		buf_printf(out, "connect to %s:%u: %s", host, port, strerror(err));
	return err ? -1 : 0;
}

/* The port the URL names (its scheme's default when none). */
static unsigned url_port(const char *url)
{
	_cleanup_free_ char *p = download_url_part(url, CURLUPART_PORT);
	if (p)
		return (unsigned)strtoul(p, NULL, 10);
	return strncmp(url, "https://", 8) == 0 ? 443 : 80;
}

static int http_try(const struct machine *m, const struct probe *p, unsigned ms, struct buf *out)
{
	char host[64];
	unsigned port;
	long status = 0;
	struct diag d = {0};
	struct buf body = {0};
	int rc = probe_target(m, url_port(p->http), host, &port, &d);
	if (rc == 0)
		rc = download_probe(p->http, host, port, ms, &status, &body, &d);
	if (rc == 0 && status != (long)p->status) {
		buf_printf(out, "HTTP %ld (want %u)%s%.*s", status, p->status, body.len ? ": " : "",
			   (int)body.len, body.s ? body.s : "");
		rc = -1;
	} else if (rc < 0) {
		buf_printf(out, "%s", d.msg);
	}
	buf_free(&body);
	return rc;
}

/* The command under the guest's timeout(1) when it has one (coreutils and
 * busybox do): a hung command ends with the probe's time. */
static int command_try(struct ssh_conn *c, const struct probe *p, uint64_t left_ms,
		       struct buf *out)
{
	int status;
	struct diag d = {0};
	_cleanup_free_ char *q = ssh_quote(p->command);
	_cleanup_free_ char *cmd = xasprintf(
		"if command -v timeout >/dev/null 2>&1; then exec timeout %llu sh -c %s; "
		"else exec sh -c %s; fi", (unsigned long long)(left_ms + 999) / 1000, q, q);
	if (ssh_exec_quiet(c, cmd, &status, out, TAIL_LINES, &d) < 0) {
		buf_printf(out, "%s%s", out->len ? "\n" : "", d.msg);
		return -1;
	}
	if (status == 124 || status == 255 + SIGTERM) /* coreutils' timeout; busybox's kills */
		buf_printf(out, "%s(timed out)", out->len ? "\n" : "");
	else if (status != 0)
		buf_printf(out, "%s(exit status %d)", out->len ? "\n" : "", status);
	return status == 0 ? 0 : -1;
}

/* One try; out gets what it said when it did not pass. */
static int try_once(const struct machine *m, struct ssh_conn *c, const struct probe *p,
		    unsigned ms, uint64_t left_ms, struct buf *out)
{
	char host[64];
	unsigned port;
	struct diag d = {0};
	out->len = 0;
	if (out->s)
		out->s[0] = '\0';
	switch (p->kind) {
	case PROBE_TCP:
		if (probe_target(m, p->tcp, host, &port, &d) < 0) {
			buf_printf(out, "%s", d.msg);
			return -1;
		}
		return tcp_try(host, port, ms, out);
	case PROBE_HTTP: return http_try(m, p, ms, out);
	case PROBE_COMMAND: return command_try(c, p, left_ms, out);
	}
	return -1;
}

void probe_describe(const struct probe *p, char *out, size_t n)
{
	if (p->kind == PROBE_TCP)
		snprintf(out, n, "tcp %u", p->tcp);
	else
		snprintf(out, n, "%s %s", kind_names[p->kind],
			 p->kind == PROBE_HTTP ? p->http : p->command);
}

static int not_ready(const struct machine *m, const struct probe *p, size_t i, uint64_t ms,
		     const struct buf *out, struct diag *d)
{
	char what[160];
	probe_describe(p, what, sizeof(what));
	struct buf b = {0};
	_cleanup_free_ char *console = machine_path(m, "console.log");
	buf_printf(&b, "%s: not ready: probe %zu (%s) did not pass in %.1fs; last output:\n    %s",
		   m->cfg->name, i + 1, what, (double)ms / 1000, out->len ? out->s : "(none)");
	ssh_console_tail(console, &b);
	diag_fail(d, "%s", b.s);
	buf_free(&b);
	return diag_hint(d, "check the service in the machine (`corral ssh %s`), or raise the "
			    "probe's `timeout`", m->cfg->name);
}

static int wait_one(struct machine *m, struct ssh_conn *c, size_t i, struct diag *d)
{
	const struct probe *p = &m->cfg->ready[i];
	uint64_t t0 = now_ms();
	char what[160];
	probe_describe(p, what, sizeof(what));
	event_start(EV_PROBE, m->cfg->name, what);
	struct buf out = {0};
	int rc;
	for (;;) {
		uint64_t spent = now_ms() - t0;
		uint64_t left = p->timeout_ms > spent ? p->timeout_ms - spent : 1;
		unsigned ms = left < TRY_MAX_MS ? (unsigned)left : TRY_MAX_MS;
		if ((rc = cancel_check(m->cfg->name, d)) < 0)
			break;
		if ((rc = try_once(m, c, p, ms ? ms : 1, left, &out)) == 0)
			break;
		if (now_ms() - t0 + p->interval_ms > p->timeout_ms) {
			rc = not_ready(m, p, i, now_ms() - t0, &out, d);
			break;
		}
		sleep_ms((unsigned)p->interval_ms);
	}
	event_end(EV_PROBE, m->cfg->name, what, rc == 0, now_ms() - t0, rc ? d->msg : NULL);
	buf_free(&out);
	return rc;
}

int probes_wait(struct machine *m, struct ssh_conn *c, struct diag *d)
{
	for (size_t i = 0; i < m->cfg->nready; i++) {
		uint64_t t0 = now_ms();
		if (wait_one(m, c, i, d) < 0)
			return -1;
		char what[160];
		probe_describe(&m->cfg->ready[i], what, sizeof(what));
		log_machine(m->cfg->name, "ready: %s (%.2fs)", what, (double)(now_ms() - t0) / 1000);
	}
	return 0;
}
