/* `corral package` for kvm: the machine's disk (its qcow2 overlay over the
 * box's box.img) flattened into one compressed qcow2 (`qemu-img convert
 * -c`, argv only) as the new box's box.img, with the source box's
 * metadata.json and, for a box booted by direct kernel boot, its kernel
 * and initrd. Internal snapshots stay behind (convert copies the current
 * state only). The flattened disk is staged in OUT.d/ beside the box and
 * removed afterwards, whatever happened. */
#include <stdio.h>
#include <string.h>

#include "core/base/util.h"
#include "core/box/pack.h"
#include "core/host/proc.h"
#include "providers/kvm/kvm.h"

static int flatten(const char *disk, const char *img, struct diag *d)
{
	const char *argv[] = {"qemu-img", "convert", "-q", "-O", "qcow2", "-c", disk, img, NULL};
	if (proc_run(argv, NULL, d) < 0)
		return diag_wrap(d, "flatten %s", disk);
	return 0;
}

/* box.img, then kernel and initrd by the names metadata.json gives them. */
static int write_box(const char *out, const char *img, const char *box_dir,
		     const struct kvm_box *b, struct diag *d)
{
	const char *names[3] = {"box.img"}, *paths[3] = {img};
	size_t n = 1;
	const char *extra[] = {b->kernel, b->initrd};
	for (size_t i = 0; i < 2; i++)
		if (extra[i]) {
			names[n] = strrchr(extra[i], '/') + 1;
			paths[n++] = extra[i];
		}
	return boxpack_files(out, box_dir, "kvm", names, paths, n, d);
}

int kvm_package(struct machine *m, const char *out, struct diag *d)
{
	if (!m->box_dir)
		return diag_fail(d, "%s: its state names no box", m->cfg->name);
	struct kvm_box b;
	if (kvm_box_load(m->box_dir, &b, d) < 0)
		return -1;
	_cleanup_free_ char *disk = machine_path(m, "disk.qcow2");
	char *stage = boxpack_stage(out, d);
	_cleanup_free_ char *img = stage ? path_join(stage, "box.img") : NULL;
	int r = stage && flatten(disk, img, d) == 0 ? write_box(out, img, m->box_dir, &b, d) : -1;
	boxpack_unstage(stage);
	kvm_box_free(&b);
	return r;
}
