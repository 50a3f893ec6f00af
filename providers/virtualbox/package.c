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
static int write_box(const char *out, const char *stage, const char *box_dir, struct diag *d)
{
	DIR *dir = opendir(stage);
	if (!dir)
		return diag_errno(d, "read %s", stage);
	struct strv names = {0}, paths = {0};
	strv_push(&names, "box.ovf");
	struct dirent *de;
	while ((de = readdir(dir)))
		if (de->d_name[0] != '.' && strcmp(de->d_name, "box.ovf") != 0)
			strv_push(&names, de->d_name);
	closedir(dir);
	qsort(names.v + 1, names.n - 1, sizeof(names.v[0]), cmp_str);
	for (size_t i = 0; i < names.n; i++)
		strv_pushf(&paths, "%s/%s", stage, names.v[i]);
	int r = boxpack_files(out, box_dir, "virtualbox", (const char *const *)names.v,
			      (const char *const *)paths.v, names.n, d);
	strv_free(&names);
	strv_free(&paths);
	return r;
}

int vbox_package(struct machine *m, const char *out, struct diag *d)
{
	const char *id = machine_str(m, MK_ID);
	if (!id)
		return diag_fail(d, "%s: its state names no VirtualBox VM", m->cfg->name);
	char *stage = boxpack_stage(out, d);
	_cleanup_free_ char *ovf = stage ? path_join(stage, "box.ovf") : NULL;
	int r = stage ? vbox_runv("export the VM", NULL, d, "export", id, "--output", ovf, NULL) : -1;
	if (r == 0)
		r = write_box(out, stage, m->box_dir, d);
	boxpack_unstage(stage);
	return r;
}
