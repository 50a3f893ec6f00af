/* `ports: auto` on kvm: the shared watcher (providers/autoports.h) with
 * QEMU's user-mode networking forwards — hostfwd_add / hostfwd_remove on
 * netdev net0, over QMP — ending with QEMU. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/host/mstate.h"
#include "core/host/proc.h"
#include "providers/autoports.h"
#include "providers/kvm/kvm.h"

struct kvm_watch {
	const char *qmp;
	pid_t qemu;
	unsigned long long qemu_start;
};

/* One HMP command on a QMP connection of its own (the provider's calls
 * need the socket between two). hostfwd_add says nothing when it worked;
 * hostfwd_remove says "host forwarding rule for ... removed". */
static int hmp(const struct kvm_watch *w, const char *line, const char *ok_tail, struct diag *d)
{
	struct qmp *q;
	json_t *ret = NULL;
	if (qmp_open(w->qmp, 2000, &q, d) < 0)
		return -1;
	int rc = qmp_exec(q, "human-monitor-command", json_pack("{s:s}", "command-line", line),
			  &ret, d);
	qmp_close(q);
	const char *out = rc == 0 ? json_string_value(ret) : NULL;
	size_t n = out ? strcspn(out, "\r\n") : 0;
	size_t k = ok_tail ? strlen(ok_tail) : 0;
	if (n && !(k && n >= k && strncmp(out + n - k, ok_tail, k) == 0))
		rc = diag_fail(d, "%s: %.*s", line, (int)n, out);
	json_decref(ret);
	return rc;
}

static int add(void *ctx, unsigned host, unsigned guest, struct diag *d)
{
	char line[96];
	snprintf(line, sizeof(line), "hostfwd_add net0 tcp:127.0.0.1:%u-:%u", host, guest);
	return hmp(ctx, line, NULL, d);
}

static int remove_fwd(void *ctx, unsigned host, unsigned guest, struct diag *d)
{
	(void)guest;
	char line[96];
	snprintf(line, sizeof(line), "hostfwd_remove net0 tcp:127.0.0.1:%u", host);
	return hmp(ctx, line, " removed", d);
}

static bool alive(void *ctx)
{
	const struct kvm_watch *w = ctx;
	return proc_alive(w->qemu, w->qemu_start);
}

/* qmp=PATH, qemu=PID:START */
static bool arg(void *ctx, const char *key, size_t k, const char *v)
{
	struct kvm_watch *w = ctx;
	if (k == 3 && strncmp(key, "qmp", 3) == 0)
		return w->qmp = v, true;
	if (k == 4 && strncmp(key, "qemu", 4) == 0)
		return sscanf(v, "%d:%llu", &w->qemu, &w->qemu_start) == 2;
	return false;
}

static bool ready(const void *ctx)
{
	const struct kvm_watch *w = ctx;
	return w->qmp && w->qemu;
}

int kvm_ports_main(int argc, char **argv)
{
	static const struct autoports_ops ops = {.arg = arg, .ready = ready, .add = add,
						 .remove = remove_fwd, .alive = alive};
	struct kvm_watch w = {0};
	return autoports_main(argc, argv, &ops, &w);
}

int kvm_ports_start(struct machine *m, struct diag *d)
{
	_cleanup_free_ char *qmp = machine_path(m, "qmp.sock");
	struct proc_ident q = machine_proc(m, MP_MACHINE);
	struct strv extra = {0};
	strv_pushf(&extra, "qmp=%s", qmp);
	strv_pushf(&extra, "qemu=%d:%llu", (int)q.pid, q.start);
	int rc = autoports_start(m, "__kvm-ports", &extra, d);
	strv_free(&extra);
	return rc;
}

void kvm_ports_stop(struct machine *m) { autoports_stop(m); }
