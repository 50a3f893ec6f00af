/* The VirtualBox provider's vtable: a machine is a VM (state "id") that
 * VirtualBox keeps; corral asks VBoxManage for its state every time and
 * reaches it over SSH through a NAT forward on 127.0.0.1 ("ssh_port"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/ssh/ssh.h"
#include "core/host/mstate.h"
#include "providers/provider.h"
#include "providers/virtualbox/vbox.h"

#define HALT_SSH_MS 5000   /* to reach a guest for a graceful shutdown */
#define POLL_MS 250
#define START_TRIES 3      /* power-ups when a forward's host port was lost */
#define LOST_STOP_MS 30000 /* for a VM powered off for that */
#define SHUTDOWN_CMD "sudo -n shutdown -h now 2>/dev/null || sudo -n poweroff"

extern const struct provider provider_virtualbox;

/* VMState values that mean "running" for corral, as in Vagrant. */
static const char *const running_states[] = {
	"running", "paused", "starting", "stopping", "saving", "restoring",
	"livesnapshotting", "teleporting", "onlinesnapshotting", "gurumeditation", NULL,
};

/* A saved state to resume or discard; 7.x's "aborted-saved" (the VM died
 * after saving) is one too, and cannot be modified either. */
static const char *const saved_states[] = {"saved", "aborted-saved"};

static int created(const struct machine *m, struct diag *d)
{
	if (machine_str(m, MK_ID))
		return 0;
	diag_fail(d, "%s is not created", m->cfg ? m->cfg->name : "the machine");
	return diag_hint(d, "create it with `corral up`");
}

static int vb_usable(struct diag *why)
{
	return vbox_check_version(why);
}

int vbox_showvminfo(const char *id, struct vbox_kvs *k, bool *gone, struct diag *d)
{
	struct vbox_res r;
	*k = (struct vbox_kvs){0};
	*gone = false;
	int rc = vbox_runv("read the VM's state", &r, d, "showvminfo", id, "--machinereadable", NULL);
	if (rc == 0)
		vbox_kv_parse(r.out.s, k);
	else if (vbox_not_found(&r))
		*gone = true, rc = 0;
	vbox_res_free(&r);
	return rc;
}

static const char *vm_id(const struct machine *m)
{
	return machine_str(m, MK_ID);
}

/* A VM removed outside corral: the machine is not created any more, and
 * what described it goes (its host key and key swap were that VM's). */
static int forget(struct machine *m, struct diag *d)
{
	machine_state_clear(m);
	_cleanup_free_ char *kh = machine_path(m, "known_hosts");
	unlink(kh);
	return path_is_dir(m->dir) ? machine_save(m, d) : 0;
}

/* showvminfo of a VM whose settings VirtualBox cannot read has no VMState
 * (name "<inaccessible>"): neither stopped nor gone. */
static int inaccessible(const struct machine *m, const char *id, struct diag *d)
{
	diag_fail(d, "%s: VirtualBox cannot read VM %s (it is inaccessible)",
		  m->cfg ? m->cfg->name : "the machine", id);
	return diag_hint(d, "`VBoxManage showvminfo %s` and the VirtualBox Manager say why: "
			    "restore its settings file or disks, or remove it with `VBoxManage "
			    "unregistervm %s`", id, id);
}

/* The VM's VMState ("" when not created) and corral's view of it. */
static int vm_state(struct machine *m, char *raw, size_t n, enum mstate *s, struct diag *d)
{
	const char *id = vm_id(m);
	struct vbox_kvs k;
	bool gone;
	*s = MS_NOT_CREATED;
	raw[0] = '\0';
	if (!id)
		return 0;
	if (vbox_showvminfo(id, &k, &gone, d) < 0)
		return -1;
	if (gone)
		return forget(m, d);
	const char *vs = vbox_kv_get(&k, "VMState");
	snprintf(raw, n, "%s", vs ? vs : "");
	vbox_kv_free(&k);
	if (!vs)
		return inaccessible(m, id, d);
	*s = MS_STOPPED;
	for (size_t i = 0; i < sizeof(saved_states) / sizeof(saved_states[0]); i++)
		if (strcmp(raw, saved_states[i]) == 0)
			*s = MS_SAVED;
	if (vbox_running_state(raw))
		*s = MS_RUNNING;
	return 0;
}

bool vbox_running_state(const char *raw)
{
	return raw && str_in_list(raw, running_states);
}

static int vb_state(struct machine *m, enum mstate *s, struct diag *d)
{
	char raw[32];
	return vm_state(m, raw, sizeof(raw), s, d);
}

/* Polls until the VM is no longer running, up to timeout_ms. */
static bool wait_stopped(struct machine *m, uint64_t timeout_ms)
{
	uint64_t end = now_ms() + timeout_ms;
	for (;;) {
		enum mstate s;
		struct diag ignored = {0};
		if (vb_state(m, &s, &ignored) == 0 && s != MS_RUNNING)
			return true;
		if (now_ms() >= end)
			return false;
		sleep_ms(POLL_MS);
	}
}

/* Starts the VM; *lost: it runs without a forward whose host port another
 * program took since the pick, and has been powered off again. */
static int startvm(struct machine *m, bool *lost, struct diag *d)
{
	bool gui = m->cfg && m->cfg->vbox.gui;
	if (vbox_runv("start the VM", NULL, d, "startvm", vm_id(m), "--type",
		      gui ? "gui" : "headless", NULL) < 0 ||
	    vbox_ports_lost(m, vm_id(m), lost, d) < 0)
		return -1;
	if (!*lost)
		return vbox_ports_start(m, d);
	log_machine(m->cfg->name, "a forwarded host port was taken as the VM started; "
				  "powering it off to forward another");
	if (vbox_runv("power off the VM", NULL, d, "controlvm", vm_id(m), "poweroff", NULL) < 0)
		return -1;
	if (!wait_stopped(m, LOST_STOP_MS))
		return diag_fail(d, "the VM did not power off");
	return 0;
}

/* Configures the VM (unless saved: it resumes as it was) and starts it;
 * again, with other ports, while another program takes a forward's host
 * port between the pick and the power-up. */
static int boot(struct machine *m, enum mstate s, struct diag *d)
{
	struct vbox_hostif ifs[32];
	size_t nifs = SIZE_MAX;
	bool fresh = s == MS_NOT_CREATED, lost = true;
	for (int i = 0; lost && i < START_TRIES; i++, fresh = false, s = MS_STOPPED) {
		if (s != MS_SAVED && nifs == SIZE_MAX && vbox_list_hostifs(ifs, 32, &nifs, d) < 0)
			return diag_wrap(d, "%s", m->cfg->name);
		if (s != MS_SAVED && vbox_configure(m, fresh, ifs, nifs, d) < 0)
			return -1;
		if (startvm(m, &lost, d) < 0)
			return diag_wrap(d, "%s", m->cfg->name);
	}
	if (!lost)
		return 0;
	diag_fail(d, "%s: %d times a forwarded host port was taken by another program as the VM "
		     "started", m->cfg->name, START_TRIES);
	return diag_hint(d, "see which program binds ports in 2200-2999 (`ss -ltnp`)");
}

static int vb_up(struct machine *m, struct diag *d)
{
	char raw[32];
	enum mstate s;
	if (vm_state(m, raw, sizeof(raw), &s, d) < 0)
		return diag_wrap(d, "%s", m->cfg->name);
	if (strcmp(raw, "paused") == 0)
		return vbox_runv("resume the VM", NULL, d, "controlvm", vm_id(m), "resume", NULL);
	if (s == MS_RUNNING)
		return 0;
	if (vbox_check_ranges(m, d) < 0)
		return diag_wrap(d, "%s", m->cfg->name);
	_cleanup_free_ char *pub = NULL;
	if (ssh_machine_key(m->dir, &pub, d) < 0)
		return diag_wrap(d, "%s", m->cfg->name);
	if (s == MS_NOT_CREATED && vbox_create_vm(m, d) < 0)
		return diag_wrap(d, "%s", m->cfg->name);
	return boot(m, s, d);
}

/* Asks the guest to shut down: over SSH as Vagrant does, else with the
 * ACPI power button (a guest corral cannot log in to yet). */
static void request_shutdown(struct machine *m)
{
	struct endpoint ep;
	struct ssh_conn *c = NULL;
	struct diag ignored = {0};
	int st;
	if (machine_flag(m, MK_SSH_KEY_INSTALLED) && machine_ssh_endpoint(m, &ep, &ignored) == 0 &&
	    ssh_wait_ready(&ep, HALT_SSH_MS, NULL, NULL, &c, &ignored) == 0) {
		/* The connection drops as the guest goes down: no status to check. */
		ssh_exec(c, SHUTDOWN_CMD, NULL, &st, NULL, 0, &ignored);
		ssh_close(c);
		return;
	}
	vbox_runv("press the ACPI power button", NULL, &ignored, "controlvm", vm_id(m),
		  "acpipowerbutton", NULL);
}

static int vb_halt(struct machine *m, bool force, struct diag *d)
{
	char raw[32];
	enum mstate s;
	vbox_ports_stop(m);
	if (vm_state(m, raw, sizeof(raw), &s, d) < 0)
		return -1;
	if (s == MS_SAVED)
		return vbox_runv("discard the saved state", NULL, d, "discardstate", vm_id(m), NULL);
	if (s != MS_RUNNING)
		return 0;
	uint64_t grace = mcfg_halt_timeout_ms(m->cfg);
	if (!force) {
		request_shutdown(m);
		if (wait_stopped(m, grace))
			return 0;
		log_machine(m->cfg ? m->cfg->name : "machine",
			    "still running after %llus; powering it off",
			    (unsigned long long)(grace / 1000));
	}
	return vbox_runv("power off the VM", NULL, d, "controlvm", vm_id(m), "poweroff", NULL);
}

static int vb_destroy(struct machine *m, struct diag *d)
{
	char raw[32];
	enum mstate s;
	vbox_ports_stop(m);
	if (vm_state(m, raw, sizeof(raw), &s, d) < 0)
		return -1;
	if (s == MS_NOT_CREATED)
		return 0;
	if (s == MS_RUNNING &&
	    vbox_runv("power off the VM", NULL, d, "controlvm", vm_id(m), "poweroff", NULL) < 0)
		return -1;
	if (vbox_runv("delete the VM", NULL, d, "unregistervm", vm_id(m), "--delete", NULL) < 0)
		return -1;
	return forget(m, d);
}

static int vb_suspend(struct machine *m, struct diag *d)
{
	if (created(m, d) < 0)
		return -1;
	vbox_ports_stop(m);
	return vbox_runv("save the VM's state", NULL, d, "controlvm", vm_id(m), "savestate", NULL);
}

static int vb_resume(struct machine *m, struct diag *d)
{
	char raw[32];
	enum mstate s;
	if (created(m, d) < 0 || vm_state(m, raw, sizeof(raw), &s, d) < 0)
		return -1;
	if (strcmp(raw, "paused") == 0)
		return vbox_runv("resume the VM", NULL, d, "controlvm", vm_id(m), "resume", NULL);
	return s == MS_RUNNING ? 0 : boot(m, s, d);
}

static int vb_snapshot_save(struct machine *m, const char *name, struct diag *d)
{
	if (created(m, d) < 0)
		return -1;
	return vbox_runv("take a snapshot", NULL, d, "snapshot", vm_id(m), "take", name, NULL);
}

static int require_snapshot(struct machine *m, const char *name, struct diag *d)
{
	bool have = false;
	if (vbox_has_snapshot(vm_id(m), name, &have, d) < 0)
		return -1;
	if (have)
		return 0;
	diag_fail(d, "%s has no snapshot `%s`", m->cfg ? m->cfg->name : "the machine", name);
	return diag_hint(d, "`corral snapshot list` shows the snapshots there are");
}

/* VirtualBox restores only a stopped VM: a running one is powered off
 * first (once the snapshot is known to exist) and started again after. */
static int vb_snapshot_restore(struct machine *m, const char *name, struct diag *d)
{
	enum mstate s;
	if (created(m, d) < 0 || require_snapshot(m, name, d) < 0 || vb_state(m, &s, d) < 0)
		return -1;
	if (s == MS_RUNNING &&
	    vbox_runv("power off the VM", NULL, d, "controlvm", vm_id(m), "poweroff", NULL) < 0)
		return -1;
	if (vbox_runv("restore a snapshot", NULL, d, "snapshot", vm_id(m), "restore", name, NULL) < 0)
		return -1;
	/* A running VM's snapshot comes back saved. */
	return s == MS_RUNNING ? boot(m, MS_SAVED, d) : 0;
}

static int vb_snapshot_delete(struct machine *m, const char *name, struct diag *d)
{
	if (created(m, d) < 0)
		return -1;
	return vbox_runv("delete a snapshot", NULL, d, "snapshot", vm_id(m), "delete", name, NULL);
}

static int vb_snapshot_list(struct machine *m, struct strv *out, struct diag *d)
{
	if (created(m, d) < 0)
		return -1;
	return vbox_snapshot_list(vm_id(m), out, d);
}

static const struct provider_entry vbox_entries[] = {
	{"__vbox-ports", vbox_ports_main},
	{NULL, NULL},
};

const struct provider provider_virtualbox = {
	.name = "virtualbox",
	.box_provider = {"virtualbox", NULL},
	.usable = vb_usable,
	.up = vb_up,
	.halt = vb_halt,
	.destroy = vb_destroy,
	.state = vb_state,
	.ssh_endpoint = machine_ssh_endpoint,
	.guests_on_host = true,
	.suspend = vb_suspend,
	.resume = vb_resume,
	.snapshot_save = vb_snapshot_save,
	.snapshot_restore = vb_snapshot_restore,
	.snapshot_delete = vb_snapshot_delete,
	.snapshot_list = vb_snapshot_list,
	.sync_types = 1u << SYNC_VBOXSF | 1u << SYNC_RSYNC,
	.sync_auto = SYNC_RSYNC, /* vboxsf needs the Guest Additions: only when asked for */
	.guest_nics = vbox_guest_nics,
	.sync_tag = vbox_share_name,
	.package = vbox_package,
	.auto_ports = true, /* autoports.c */
	.entries = vbox_entries,
};
