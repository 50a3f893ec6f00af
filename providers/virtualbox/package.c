/* `corral package` for VirtualBox, as `vagrant package` does it: the
 * powered-off VM exported with `VBoxManage export VM --output box.ovf`
 * (VirtualBox writes the OVF, its disks as streamOptimized VMDKs and a
 * manifest) into a staging directory OUT.d/ beside the box, then packed
 * after a metadata.json naming the virtualbox provider. The staging
 * directory is removed afterwards, whatever happened. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/box/pack.h"
#include "core/host/mstate.h"
#include "providers/virtualbox/vbox.h"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* box.ovf first, then what export wrote beside it, in name order. */
static int pack_stage(struct boxpack *p, const char *stage, struct diag *d)
{
	DIR *dir = opendir(stage);
	if (!dir)
		return diag_errno(d, "read %s", stage);
	struct strv names = {0};
	struct dirent *de;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.' && strcmp(de->d_name, "box.ovf") != 0)
			strv_push(&names, de->d_name);
	closedir(dir);
	if (names.n)
		qsort(names.v, names.n, sizeof(names.v[0]), cmp_str);
	_cleanup_free_ char *ovf = path_join(stage, "box.ovf");
	int r = boxpack_add_file(p, "box.ovf", ovf, d);
	for (size_t i = 0; r == 0 && i < names.n; i++) {
		_cleanup_free_ char *f = path_join(stage, names.v[i]);
		r = boxpack_add_file(p, names.v[i], f, d);
	}
	strv_free(&names);
	return r;
}

static int write_box(const char *out, const char *stage, const char *box_dir, struct diag *d)
{
	static const char *const drop[] = {"virtual_size", NULL};
	struct boxpack *p;
	if (boxpack_open(out, &p, d) < 0)
		return -1;
	if (boxpack_metadata(p, box_dir, "virtualbox", drop, d) < 0 ||
	    pack_stage(p, stage, d) < 0) {
		boxpack_abort(p);
		return -1;
	}
	return boxpack_close(p, d);
}

int vbox_package(struct machine *m, const char *out, struct diag *d)
{
	const char *id = machine_str(m, MK_ID);
	if (!id)
		return diag_fail(d, "%s: its state names no VirtualBox VM", m->cfg->name);
	_cleanup_free_ char *stage = xasprintf("%s.d", out);
	_cleanup_free_ char *ovf = path_join(stage, "box.ovf");
	struct diag ignored = {0};
	rm_rf(stage, &ignored);
	int r = mkdir_p(stage, 0700, d);
	if (r == 0)
		r = vbox_runv("export the VM", NULL, d, "export", id, "--output", ovf, NULL);
	if (r == 0)
		r = write_box(out, stage, m->box_dir, d);
	rm_rf(stage, &ignored);
	return r;
}
