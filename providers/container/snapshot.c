/* Snapshots of container machines, as Incus/LXD's dir driver makes them: a
 * copy of the machine's file system (its upper layer: what it changed over
 * the box), no memory state. They live in the machine's snapshots/NAME,
 * each written as snapshots/.NAME.tmp and renamed into place, so a save cut
 * short (kill -9) leaves no snapshot, only a hidden directory the next
 * save removes. A running machine is frozen for the copy (its cgroup's
 * freezer), so the copy is consistent and the guest cannot swap a
 * directory for a symlink under it; as LXD does, a running machine that
 * cannot be frozen (without root and without a delegated cgroup) is not
 * copied: halt it first. Restore stops the machine, copies the snapshot
 * beside the upper layer and swaps the two in one rename, then boots it
 * again if it was running (or suspended). Suspend and resume freeze and
 * thaw its processes where they are (state "saved"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/host/mstate.h"
#include "providers/container/container.h"

#define NAME_MAX_LEN 64

/* A directory name: letters, digits, . _ - and no leading '.' or '-'. */
static int check_name(const char *name, struct diag *d)
{
	size_t n = strlen(name);
	if (n && n <= NAME_MAX_LEN && name[0] != '.' && name[0] != '-' &&
	    strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n)
		return 0;
	diag_fail(d, "snapshot name `%s` is not allowed", name);
	return diag_hint(d, "use up to %d letters, digits, '.', '_' or '-', not starting with "
			 "'.' or '-'", NAME_MAX_LEN);
}

static char *snap_path(const struct machine *m, const char *name)
{
	_cleanup_free_ char *dir = machine_path(m, CT_SNAPSHOTS);
	return path_join(dir, name);
}

static int need_snapshot(const struct machine *m, const char *name, const char *path,
			 struct diag *d)
{
	if (path_is_dir(path))
		return 0;
	diag_fail(d, "%s has no snapshot `%s`", m->cfg->name, name);
	return diag_hint(d, "`corral snapshot list %s` lists them", m->cfg->name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of the snapshots directory, sorted: the snapshots, or
 * (hidden) what interrupted saves left. None when it does not exist. */
static int entries(const struct machine *m, bool hidden, struct strv *out, struct diag *d)
{
	_cleanup_free_ char *dir = machine_path(m, CT_SNAPSHOTS);
	DIR *dh = opendir(dir);
	if (!dh)
		return errno == ENOENT ? 0 : diag_errno(d, "open %s", dir);
	struct dirent *e;
	while ((e = readdir(dh)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
		    (e->d_name[0] == '.') == hidden && e->d_type == DT_DIR)
			strv_push(out, e->d_name);
	closedir(dh);
	if (out->n)
		qsort(out->v, out->n, sizeof(char *), cmp_str);
	return 0;
}

/* The copy of the upper layer to tmp, the machine frozen meanwhile when
 * its processes run (and not already frozen by suspend). */
static int copy_upper(struct machine *m, const char *tmp, bool running, struct diag *d)
{
	_cleanup_free_ char *upper = NULL, *work = NULL;
	bool freeze = running && !machine_flag(m, MK_SUSPENDED);
	if (ct_disk_open(m, false, &upper, &work, d) < 0)
		return -1;
	if (freeze && ct_cgroup_freeze(machine_id(m), machine_str(m, MK_CGROUP), true, d) < 0)
		return diag_wrap(d, "freeze it for a consistent copy");
	int r = ct_copy_tree(upper, tmp, d);
	if (freeze && ct_cgroup_freeze(machine_id(m), machine_str(m, MK_CGROUP), false,
				       r < 0 ? &(struct diag){0} : d) < 0)
		r = -1;
	if (!running)
		ct_disk_close(m);
	return r;
}

int ct_snapshot_save(struct machine *m, const char *name, struct diag *d)
{
	if (check_name(name, d) < 0)
		return -1;
	_cleanup_free_ char *path = snap_path(m, name), *dir = machine_path(m, CT_SNAPSHOTS);
	_cleanup_free_ char *tmp = xasprintf("%s/.%s.tmp", dir, name);
	if (path_exists(path)) {
		diag_fail(d, "%s already has a snapshot `%s`", m->cfg->name, name);
		return diag_hint(d, "delete it first (`corral snapshot delete %s %s`), or pick "
				 "another name", m->cfg->name, name);
	}
	struct strv stale = {0};
	int r = mkdir_p(dir, 0700, d) < 0 || entries(m, true, &stale, d) < 0 ? -1 : 0;
	for (size_t i = 0; r == 0 && i < stale.n; i++) {
		_cleanup_free_ char *p = path_join(dir, stale.v[i]);
		r = ct_rm_tree(p, d);
	}
	strv_free(&stale);
	if (r == 0)
		r = copy_upper(m, tmp, machine_proc_alive(m, MP_MACHINE), d);
	if (r == 0 && rename(tmp, path) < 0)
		r = diag_errno(d, "rename %s", tmp);
	struct diag ignored = {0};
	if (r < 0)
		ct_rm_tree(tmp, &ignored);
	return r;
}

/* The upper layer becomes the copy at fresh in one rename (the old one
 * then goes): a restore cut short leaves the old layer or the new. */
static int swap_upper(const char *fresh, const char *upper, struct diag *d)
{
	if (renameat2(AT_FDCWD, fresh, AT_FDCWD, upper, RENAME_EXCHANGE) < 0) {
		if (errno != ENOENT || rename(fresh, upper) < 0)
			return diag_errno(d, "swap %s and %s", fresh, upper);
		return 0;
	}
	return ct_rm_tree(fresh, d);
}

int ct_upper_replace(const char *upper, const char *work, const char *from, struct diag *d)
{
	_cleanup_free_ char *parent = path_dirname(upper);
	_cleanup_free_ char *fresh = path_join(parent, CT_UPPER_NEW);
	return ct_copy_tree(from, fresh, d) < 0 || ct_rm_tree(work, d) < 0 ||
			       swap_upper(fresh, upper, d) < 0
		       ? -1
		       : 0;
}

int ct_snapshot_restore(struct machine *m, const char *name, struct diag *d)
{
	_cleanup_free_ char *path = snap_path(m, name);
	if (check_name(name, d) < 0 || need_snapshot(m, name, path, d) < 0)
		return -1;
	bool was_up = machine_proc_alive(m, MP_MACHINE);
	if (ct_stop(m, true, d) < 0 || machine_save(m, d) < 0)
		return -1;
	_cleanup_free_ char *upper = NULL, *work = NULL;
	if (ct_disk_open(m, false, &upper, &work, d) < 0)
		return -1;
	int r = ct_upper_replace(upper, work, path, d);
	if (r < 0 || !was_up) {
		ct_disk_close(m);
		return r;
	}
	return ct_up(m, d);
}

int ct_snapshot_delete(struct machine *m, const char *name, struct diag *d)
{
	_cleanup_free_ char *path = snap_path(m, name);
	if (check_name(name, d) < 0 || need_snapshot(m, name, path, d) < 0)
		return -1;
	return ct_rm_tree(path, d);
}

int ct_snapshot_list(struct machine *m, struct strv *out, struct diag *d)
{
	return entries(m, false, out, d);
}

int ct_suspend(struct machine *m, struct diag *d)
{
	if (!machine_proc_alive(m, MP_MACHINE))
		return diag_fail(d, "%s is not running", m->cfg->name);
	if (machine_flag(m, MK_SUSPENDED))
		return 0;
	if (ct_cgroup_freeze(machine_id(m), machine_str(m, MK_CGROUP), true, d) < 0)
		return -1;
	machine_set_flag(m, MK_SUSPENDED, true);
	return machine_save(m, d);
}

int ct_resume(struct machine *m, struct diag *d)
{
	if (!machine_flag(m, MK_SUSPENDED) || !machine_proc_alive(m, MP_MACHINE))
		return diag_fail(d, "%s is not suspended", m->cfg->name);
	if (ct_cgroup_freeze(machine_id(m), machine_str(m, MK_CGROUP), false, d) < 0)
		return -1;
	machine_del(m, MK_SUSPENDED);
	return machine_save(m, d);
}
