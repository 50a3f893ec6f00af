/* Snapshots and suspend/resume. A running machine's snapshots hold disk,
 * RAM and devices (savevm/loadvm/delvm through QMP); a stopped one's hold
 * the disk, through `qemu-img snapshot`. Both live in disk.qcow2. Suspend is
 * a savevm under a reserved tag, then quit; resume boots with -loadvm.
 * The `provisioned` checkpoint of a machine whose guest mounted a 9p folder
 * holds its disk only: QEMU refuses savevm while the guest has a VirtFS
 * export mounted. */
#include <string.h>

#include "core/base/util.h"
#include "core/host/mstate.h"
#include "providers/kvm/kvm.h"

/* The name goes into a monitor command line: letters, digits, . _ - only. */
static int check_name(const char *name, struct diag *d)
{
	size_t n = strlen(name);
	if (n && n <= 64 && name[0] != '-' && strcmp(name, KVM_SUSPEND_TAG) != 0 &&
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n)
		return 0;
	diag_fail(d, "snapshot name `%s` is not allowed", name);
	return diag_hint(d, "use up to 64 letters, digits, '.', '_' or '-' (not starting with '-'; "
			 "`%s` is reserved)", KVM_SUSPEND_TAG);
}

static int need_created(struct machine *m, struct diag *d)
{
	if (machine_flag(m, MK_CREATED))
		return 0;
	diag_fail(d, "%s is not created", m->cfg ? m->cfg->name : m->dir);
	return diag_hint(d, "`corral up` it first");
}

/* One snapshot operation, online (monitor command) or offline (qemu-img). */
static int snap_op(struct machine *m, const char *hmp, char op, const char *name, struct diag *d)
{
	if (need_created(m, d) < 0 || check_name(name, d) < 0)
		return -1;
	if (kvm_running(m)) {
		_cleanup_free_ char *sock = machine_path(m, "qmp.sock");
		_cleanup_free_ char *line = xasprintf("%s %s", hmp, name);
		struct qmp *q;
		if (qmp_open(sock, 2000, &q, d) < 0)
			return -1;
		int rc = qmp_hmp(q, line, d);
		/* A loadvm that fails leaves the guest paused (QEMU resumes it only
		 * on success): let it run on as it was. */
		struct diag ignored = {0};
		if (rc < 0 && op == 'a')
			qmp_exec(q, "cont", NULL, NULL, &ignored);
		qmp_close(q);
		return rc;
	}
	_cleanup_free_ char *disk = machine_path(m, "disk.qcow2");
	return img_snapshot(disk, op, name, d);
}

int kvm_snapshot_save(struct machine *m, const char *name, struct diag *d)
{
	return snap_op(m, "savevm", 'c', name, d);
}

bool kvm_guest_9p(const struct machine *m)
{
	for (size_t i = 0; m->cfg && i < m->cfg->nsynced; i++) {
		const struct synced_folder *sf = &m->cfg->synced[i];
		const char *t = machine_map_get(m, MK_SYNCED, sf->guest);
		if (t ? strcmp(t, "9p") == 0 : kvm_folder_9p(sf))
			return true;
	}
	return false;
}

/* A QMP command on disk0's internal snapshot named `provisioned`. */
static int disk0_checkpoint(const char *sock, const char *cmd, struct diag *d)
{
	return qmp_call(sock, cmd, json_pack("{s:s, s:s}", "device", "disk0", "name", PROVIDER_CHECKPOINT),
			NULL, d);
}

/* The running machine's `provisioned` checkpoint: savevm, or, when the
 * guest mounted a 9p folder (kvm_guest_9p), an internal snapshot of disk0
 * alone (kvm_reset then boots the machine anew from it). A disk-only one
 * of an earlier checkpoint goes first. */
int kvm_checkpoint(struct machine *m, struct diag *d)
{
	machine_del(m, MK_CHECKPOINT_DISK);
	if (!kvm_guest_9p(m))
		return kvm_snapshot_save(m, PROVIDER_CHECKPOINT, d);
	_cleanup_free_ char *sock = machine_path(m, "qmp.sock");
	struct diag ignored = {0};
	disk0_checkpoint(sock, "blockdev-snapshot-delete-internal-sync", &ignored);
	if (disk0_checkpoint(sock, "blockdev-snapshot-internal-sync", d) < 0)
		return -1;
	machine_set_flag(m, MK_CHECKPOINT_DISK, true);
	return 0;
}

int kvm_snapshot_restore(struct machine *m, const char *name, struct diag *d)
{
	return snap_op(m, "loadvm", 'a', name, d);
}

int kvm_snapshot_delete(struct machine *m, const char *name, struct diag *d)
{
	return snap_op(m, "delvm", 'd', name, d);
}

/* -U: the image may be open in a running QEMU; its snapshot table is
 * written before savevm returns. The suspend image is not listed. */
int kvm_snapshot_list(struct machine *m, struct strv *out, struct diag *d)
{
	if (need_created(m, d) < 0)
		return -1;
	_cleanup_free_ char *disk = machine_path(m, "disk.qcow2");
	if (img_snapshot_list(disk, out, d) < 0)
		return -1;
	size_t k = 0;
	for (size_t i = 0; i < out->n; i++)
		if (strcmp(out->v[i], KVM_SUSPEND_TAG) == 0)
			free(out->v[i]);
		else
			out->v[k++] = out->v[i];
	out->n = k;
	if (out->v)
		out->v[k] = NULL;
	return 0;
}

int kvm_suspend(struct machine *m, struct diag *d)
{
	if (need_created(m, d) < 0)
		return -1;
	if (!kvm_running(m))
		return diag_fail(d, "%s is not running", m->cfg->name);
	_cleanup_free_ char *sock = machine_path(m, "qmp.sock");
	struct qmp *q;
	if (qmp_open(sock, 2000, &q, d) < 0)
		return -1;
	int rc = qmp_exec(q, "stop", NULL, NULL, d);
	if (rc == 0)
		rc = qmp_hmp(q, "savevm " KVM_SUSPEND_TAG, d);
	qmp_close(q);
	if (rc < 0 || kvm_stop(m, true, d) < 0)
		return diag_wrap(d, "%s: suspend", m->cfg->name);
	machine_set_flag(m, MK_SUSPENDED, true);
	return machine_save(m, d);
}

int kvm_resume(struct machine *m, struct diag *d)
{
	if (!machine_flag(m, MK_SUSPENDED))
		return diag_fail(d, "%s is not suspended", m->cfg->name);
	if (kvm_boot(m, KVM_SUSPEND_TAG, d) < 0)
		return diag_wrap(d, "%s: resume", m->cfg->name);
	_cleanup_free_ char *sock = machine_path(m, "qmp.sock");
	struct qmp *q;
	if (qmp_open(sock, 2000, &q, d) < 0)
		return -1;
	int rc = qmp_hmp(q, "delvm " KVM_SUSPEND_TAG, d);
	qmp_close(q);
	machine_del(m, MK_SUSPENDED);
	return machine_save(m, d) < 0 ? -1 : rc;
}
