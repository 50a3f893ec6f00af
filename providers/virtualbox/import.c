/* Boxes into VMs. Each box is imported once as a master VM with a "base"
 * snapshot; machines are linked clones of it, so a second machine copies
 * nothing (Vagrant's linked_clone). linked_clone: false imports the box
 * for the machine alone. Imports use the dry run to learn the disk units,
 * and give each disk a path in the VM's own folder (the suggested settings
 * file's folder, its name replaced, as Vagrant does: VirtualBox 6.0+ names
 * only the file, and a bare name would land in the current directory), so
 * two imports of one box never collide. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/digest.h"
#include "core/host/lock.h"
#include "core/host/mstate.h"
#include "providers/virtualbox/vbox.h"

#define MASTER_LOCK_MS (30u * 60 * 1000) /* another corral may be importing a big box */

static void short_hash(const char *s, char out[9])
{
	char hex[HASH_HEX_MAX];
	hash_str(s, NULL, hex);
	snprintf(out, 9, "%.8s", hex);
}

/* Box names hold "/"; VM names and file names should not. */
static void sanitize(char *s)
{
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_", *s))
			*s = '-';
}

char *vbox_vm_name(struct machine *m)
{
	return xasprintf("corral_%s_%s", m->cfg->name, machine_id(m));
}

static char *master_name(const struct machine *m)
{
	char h[9];
	short_hash(m->box_dir, h);
	const char *box = machine_str(m, MK_BOX), *version = machine_str(m, MK_BOX_VERSION);
	char *n = xasprintf("corral_box_%s_%s_%s", box ? box : "box", version ? version : "0", h);
	sanitize(n);
	return n;
}

int vbox_find_vm(const char *name, char **uuid, struct diag *d)
{
	struct vbox_res r;
	if (vbox_runv("list VMs", &r, d, "list", "vms", NULL) < 0)
		return -1;
	*uuid = vbox_vms_find(r.out.s, name);
	vbox_res_free(&r);
	return 0;
}

static int import_ovf(const char *ovf, const char *name, struct diag *d)
{
	struct vbox_res r;
	struct vbox_import imp;
	if (vbox_runv("import dry run", &r, d, "import", "-n", ovf, NULL) < 0)
		return -1;
	int rc = vbox_parse_import(r.out.s, &imp, d);
	vbox_res_free(&r);
	if (rc < 0)
		return diag_wrap(d, "import %s", ovf);
	struct strv a = {0};
	strv_push(&a, "import");
	strv_push(&a, ovf);
	strv_push(&a, "--vsys");
	strv_push(&a, "0");
	strv_push(&a, "--vmname");
	strv_push(&a, name);
	for (size_t i = 0; i < imp.ndisks; i++) {
		_cleanup_free_ char *t = vbox_disk_target(&imp, i, name);
		if (!t) {
			rc = diag_fail(d, "import %s: the dry run named no settings file for the "
					  "disks' folder", ovf);
			break;
		}
		strv_push(&a, "--vsys");
		strv_push(&a, "0");
		strv_push(&a, "--unit");
		strv_pushf(&a, "%u", imp.disks[i].unit);
		strv_push(&a, "--disk");
		strv_push(&a, t);
	}
	if (rc == 0)
		rc = vbox_run("import the box", &a, NULL, d);
	strv_free(&a);
	vbox_import_free(&imp);
	return rc;
}

int vbox_snapshot_list(const char *id, struct strv *names, struct diag *d)
{
	struct vbox_res r;
	*names = (struct strv){0};
	int rc = vbox_runv("list snapshots", &r, d, "snapshot", id, "list", "--machinereadable", NULL);
	if (rc < 0 && r.status == 1 && strstr(r.out.s ? r.out.s : "", "does not have any snapshots"))
		rc = 0;
	else if (rc == 0)
		vbox_snapshot_names(r.out.s ? r.out.s : "", names);
	vbox_res_free(&r);
	return rc;
}

int vbox_has_snapshot(const char *id, const char *name, bool *has, struct diag *d)
{
	struct strv names;
	if (vbox_snapshot_list(id, &names, d) < 0)
		return -1;
	*has = false;
	for (size_t i = 0; i < names.n; i++)
		*has |= strcmp(names.v[i], name) == 0;
	strv_free(&names);
	return 0;
}

static int ensure_base_snapshot(const char *id, struct diag *d)
{
	bool have;
	if (vbox_has_snapshot(id, "base", &have, d) < 0)
		return -1;
	return have ? 0 : vbox_runv("snapshot the master VM", NULL, d, "snapshot", id, "take", "base", NULL);
}

/* The box's master VM, imported by whichever corral gets there first. */
static int ensure_master(const struct machine *m, const char *ovf, char **id, struct diag *d)
{
	_cleanup_free_ char *name = master_name(m);
	_cleanup_free_ char *dir = path_join(corral_home(), "virtualbox");
	_cleanup_free_ char *lockp = xasprintf("%s/%s.lock", dir, name);
	struct lock l;
	if (mkdir_p(dir, 0755, d) < 0 || lock_acquire(lockp, MASTER_LOCK_MS, &l, d) < 0)
		return diag_wrap(d, "lock the master VM of the box");
	int rc = vbox_find_vm(name, id, d);
	if (rc == 0 && !*id && (rc = import_ovf(ovf, name, d)) == 0 &&
	    (rc = vbox_find_vm(name, id, d)) == 0 && !*id)
		rc = diag_fail(d, "the imported master VM %s is not in `VBoxManage list vms`", name);
	if (rc == 0)
		rc = ensure_base_snapshot(*id, d);
	lock_release(&l);
	return rc;
}

static int linked_clone(const struct machine *m, const char *ovf, const char *name,
			struct diag *d)
{
	_cleanup_free_ char *master = NULL;
	if (ensure_master(m, ovf, &master, d) < 0)
		return -1;
	return vbox_runv("clone the master VM", NULL, d, "clonevm", master, "--register", "--name",
			 name, "--snapshot", "base", "--options", "link", NULL);
}

int vbox_create_vm(struct machine *m, struct diag *d)
{
	if (!m->box_dir)
		return diag_fail(d, "%s: no box to import", m->cfg->name);
	_cleanup_free_ char *ovf = path_join(m->box_dir, "box.ovf");
	if (!path_exists(ovf)) {
		diag_fail(d, "%s: the box has no box.ovf (%s)", m->cfg->name, m->box_dir);
		return diag_hint(d, "use a box made for VirtualBox (metadata provider `virtualbox`)");
	}
	_cleanup_free_ char *name = vbox_vm_name(m), *id = NULL;
	/* A VM of this machine's own name is one an interrupted `up` made. */
	if (vbox_find_vm(name, &id, d) < 0)
		return -1;
	if (!id) {
		int rc = m->cfg->vbox.linked_clone ? linked_clone(m, ovf, name, d)
						   : import_ovf(ovf, name, d);
		if (rc < 0 || vbox_find_vm(name, &id, d) < 0)
			return -1;
		if (!id)
			return diag_fail(d, "the new VM %s is not in `VBoxManage list vms`", name);
	}
	machine_set_str(m, MK_ID, id);
	machine_set_str(m, MK_VM_NAME, name);
	return machine_save(m, d);
}
