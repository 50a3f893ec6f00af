/* `ports: auto` on VirtualBox: the shared watcher (providers/autoports.h)
 * with NAT rules added and deleted on the running VM — `VBoxManage
 * controlvm VM natpf1 "auto-G,tcp,127.0.0.1,H,,G"` and `controlvm VM natpf1
 * delete auto-G` — ending when the VM no longer runs. The rules' names
 * start with "auto-"; the next boot's configure clears them with the rest. */
#include <stdio.h>
#include <string.h>

#include "core/host/mstate.h"
#include "providers/autoports.h"
#include "providers/virtualbox/vbox.h"

#define ENTRY "__vbox-ports"

struct vbox_watch {
	const char *vm;
};

static void rule_name(char *out, size_t n, unsigned guest) { snprintf(out, n, "auto-%u", guest); }

static int remove_fwd(void *ctx, unsigned host, unsigned guest, struct diag *d)
{
	(void)host;
	const struct vbox_watch *w = ctx;
	char name[32];
	rule_name(name, sizeof(name), guest);
	return vbox_runv("remove an automatic port forward", NULL, d, "controlvm", w->vm, "natpf1",
			 "delete", name, NULL);
}

/* A rule of that name left by an earlier watcher (a restored snapshot
 * keeps the rules it had) is replaced. */
static int add(void *ctx, unsigned host, unsigned guest, struct diag *d)
{
	const struct vbox_watch *w = ctx;
	char name[32], rule[96];
	rule_name(name, sizeof(name), guest);
	snprintf(rule, sizeof(rule), "%s,tcp,127.0.0.1,%u,,%u", name, host, guest);
	const char *doing = "add an automatic port forward";
	if (vbox_runv(doing, NULL, d, "controlvm", w->vm, "natpf1", rule, NULL) == 0)
		return 0;
	struct diag ignored = {0};
	if (remove_fwd(ctx, host, guest, &ignored) < 0)
		return -1;
	*d = (struct diag){0};
	return vbox_runv(doing, NULL, d, "controlvm", w->vm, "natpf1", rule, NULL);
}

static bool alive(void *ctx)
{
	const struct vbox_watch *w = ctx;
	struct vbox_kvs k;
	bool gone;
	struct diag ignored = {0};
	if (vbox_showvminfo(w->vm, &k, &gone, &ignored) < 0 || gone)
		return false;
	bool on = vbox_running_state(vbox_kv_get(&k, "VMState"));
	vbox_kv_free(&k);
	return on;
}

/* vm=UUID */
static bool arg(void *ctx, const char *key, size_t k, const char *v)
{
	struct vbox_watch *w = ctx;
	if (k == 2 && strncmp(key, "vm", 2) == 0)
		return w->vm = v, true;
	return false;
}

static bool ready(const void *ctx)
{
	const struct vbox_watch *w = ctx;
	return w->vm != NULL;
}

int vbox_ports_main(int argc, char **argv)
{
	static const struct autoports_ops ops = {.arg = arg, .ready = ready, .add = add,
						 .remove = remove_fwd, .alive = alive};
	struct vbox_watch w = {0};
	return autoports_main(argc, argv, &ops, &w);
}

void vbox_ports_stop(struct machine *m)
{
	bool had = machine_proc(m, MP_PORTFWD).pid != 0;
	autoports_stop(m);
	struct diag ignored = {0};
	if (had && path_is_dir(m->dir))
		machine_save(m, &ignored);
}

int vbox_ports_start(struct machine *m, struct diag *d)
{
	autoports_stop(m); /* one left by a VM that stopped outside corral */
	if (!m->cfg || !m->cfg->ports_auto.on)
		return 0;
	struct strv extra = {0};
	strv_pushf(&extra, "vm=%s", machine_str(m, MK_ID));
	int rc = autoports_start(m, ENTRY, &extra, d);
	strv_free(&extra);
	return rc;
}
