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

/* The payload after metadata.json: box.img, then kernel and initrd by the
 * names metadata.json gives them. */
static int pack_files(struct boxpack *p, const char *img, const struct kvm_box *b,
		      struct diag *d)
{
	const char *extra[] = {b->kernel, b->initrd};
	if (boxpack_add_file(p, "box.img", img, d) < 0)
		return -1;
	for (size_t i = 0; i < 2; i++)
		if (extra[i] && boxpack_add_file(p, strrchr(extra[i], '/') + 1, extra[i], d) < 0)
			return -1;
	return 0;
}

static int write_box(const char *out, const char *img, const char *box_dir,
		     const struct kvm_box *b, struct diag *d)
{
	static const char *const drop[] = {"virtual_size", NULL};
	struct boxpack *p;
	if (boxpack_open(out, &p, d) < 0)
		return -1;
	if (boxpack_metadata(p, box_dir, "kvm", drop, d) < 0 || pack_files(p, img, b, d) < 0) {
		boxpack_abort(p);
		return -1;
	}
	return boxpack_close(p, d);
}

int kvm_package(struct machine *m, const char *out, struct diag *d)
{
	if (!m->box_dir)
		return diag_fail(d, "%s: its state names no box", m->cfg->name);
	struct kvm_box b;
	if (kvm_box_load(m->box_dir, &b, d) < 0)
		return -1;
	_cleanup_free_ char *disk = machine_path(m, "disk.qcow2");
	_cleanup_free_ char *stage = xasprintf("%s.d", out);
	_cleanup_free_ char *img = path_join(stage, "box.img");
	struct diag ignored = {0};
	rm_rf(stage, &ignored);
	int r = mkdir_p(stage, 0700, d);
	if (r == 0)
		r = flatten(disk, img, d);
	if (r == 0)
		r = write_box(out, img, m->box_dir, &b, d);
	rm_rf(stage, &ignored);
	kvm_box_free(&b);
	return r;
}
