/* Disk images through qemu-img (argv only), and a box's metadata.json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/host/proc.h"
#include "core/host/state.h"
#include "core/base/util.h"
#include "providers/kvm/kvm.h"

/* A file the box names must be a plain name inside the box directory. */
static int box_file(const char *box_dir, const json_t *meta, const char *key, char **out,
		    struct diag *d)
{
	const char *name = state_str(meta, key, NULL);
	*out = NULL;
	if (!name)
		return 0;
	if (!*name || strchr(name, '/') || strcmp(name, "..") == 0 || strcmp(name, ".") == 0)
		return diag_fail(d, "box %s: metadata.json `%s` must name a file in the box, "
				 "not `%s`", box_dir, key, name);
	*out = path_join(box_dir, name);
	if (path_exists(*out))
		return 0;
	diag_fail(d, "box %s: metadata.json names %s `%s`, but the box has no such file", box_dir,
		  key, name);
	return diag_hint(d, "the box is incomplete: remove it (`corral box remove`) and add it again");
}

static int check_meta(const char *box_dir, const json_t *meta, struct diag *d)
{
	static const char *const ok[] = {"kvm", "libvirt", "qemu"};
	const char *prov = state_str(meta, "provider", "");
	const char *fmt = state_str(meta, "format", "qcow2");
	bool known = false;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		known |= strcmp(prov, ok[i]) == 0;
	if (!known)
		return diag_fail(d, "box %s is for provider `%s`, not kvm/libvirt/qemu", box_dir, prov);
	if (strcmp(fmt, "qcow2") != 0 && strcmp(fmt, "raw") != 0)
		return diag_fail(d, "box %s: disk format `%s`; the kvm provider boots qcow2 and raw",
				 box_dir, fmt);
	return 0;
}

int kvm_box_load(const char *box_dir, struct kvm_box *b, struct diag *d)
{
	*b = (struct kvm_box){0};
	_cleanup_free_ char *mp = path_join(box_dir, "metadata.json");
	json_t *meta;
	if (state_load(mp, &meta, d) < 0)
		return -1;
	int rc = check_meta(box_dir, meta, d);
	b->disk = path_join(box_dir, "box.img");
	if (rc == 0 && !path_exists(b->disk)) {
		rc = diag_fail(d, "box %s has no box.img", box_dir);
		diag_hint(d, "the box is incomplete: remove it (`corral box remove`) and add it again");
	}
	if (rc == 0)
		rc = box_file(box_dir, meta, "kernel", &b->kernel, d);
	if (rc == 0)
		rc = box_file(box_dir, meta, "initrd", &b->initrd, d);
	if (rc == 0 && b->initrd && !b->kernel)
		rc = diag_fail(d, "box %s: metadata.json has an initrd but no kernel", box_dir);
	b->cmdline = xstrdup(state_str(meta, "cmdline", NULL));
	b->cloud_init = json_is_true(json_object_get(meta, "cloud_init"));
	b->format = xstrdup(state_str(meta, "format", "qcow2"));
	const char *fw = state_str(meta, "firmware", "bios");
	if (rc == 0 && strcmp(fw, "bios") != 0 && strcmp(fw, "uefi") != 0)
		rc = diag_fail(d, "box %s: metadata.json firmware `%s` is neither bios nor uefi",
			       box_dir, fw);
	b->firmware = xstrdup(fw);
	json_decref(meta);
	if (rc < 0)
		kvm_box_free(b);
	return rc;
}

void kvm_box_free(struct kvm_box *b)
{
	free(b->disk);
	free(b->kernel);
	free(b->initrd);
	free(b->cmdline);
	free(b->format);
	free(b->firmware);
	*b = (struct kvm_box){0};
}

/* `qemu-img info --output=json` of image; -U: QEMU may hold it open. */
static int img_info(const char *image, json_t **info, struct diag *d)
{
	const char *argv[] = {"qemu-img", "info", "-U", "--output=json", image, NULL};
	struct proc_cmd c = {.argv = argv};
	int rc = proc_cmd_run(&c, d) < 0 || proc_cmd_check(&c, d) < 0 ? -1 : 0;
	json_error_t je;
	*info = rc == 0 ? json_loads(c.out.s, 0, &je) : NULL;
	proc_cmd_free(&c);
	if (rc < 0)
		return -1;
	return *info ? 0 : diag_fail(d, "qemu-img info %s: unreadable output: %s", image, je.text);
}

int img_overlay(const char *backing, const char *fmt, const char *overlay, uint64_t size,
		struct diag *d)
{
	const char *create[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", fmt,
				"-b", backing, overlay, NULL};
	if (proc_run(create, NULL, d) < 0) {
		diag_wrap(d, "box disk %s", backing);
		return diag_hint(d, "the box's disk is not a readable %s image: remove the box "
				 "(`corral box remove`) and add it again", fmt);
	}
	json_t *info;
	if (!size || img_info(overlay, &info, d) < 0)
		return size ? -1 : 0;
	uint64_t have = (uint64_t)json_integer_value(json_object_get(info, "virtual-size"));
	json_decref(info);
	if (size <= have)
		return 0;
	char sz[32];
	snprintf(sz, sizeof(sz), "%llu", (unsigned long long)size);
	const char *resize[] = {"qemu-img", "resize", "-q", overlay, sz, NULL};
	return proc_run(resize, NULL, d);
}

int img_snapshot(const char *image, char op, const char *name, struct diag *d)
{
	char flag[3] = {'-', op, '\0'};
	const char *argv[] = {"qemu-img", "snapshot", flag, name, image, NULL};
	return proc_run(argv, NULL, d);
}

int img_snapshot_list(const char *image, struct strv *out, struct diag *d)
{
	json_t *info, *s;
	size_t i;
	*out = (struct strv){0};
	if (img_info(image, &info, d) < 0)
		return -1;
	json_array_foreach(json_object_get(info, "snapshots"), i, s)
		strv_push(out, state_str(s, "name", "?"));
	json_decref(info);
	return 0;
}
