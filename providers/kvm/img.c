/* Disk images through qemu-img (argv only), and a box's metadata.json. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/host/proc.h"
#include "core/host/state.h"
#include "core/base/util.h"
#include "providers/kvm/kvm.h"

extern char **environ;

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
	if (strcmp(fmt, "qcow2") != 0)
		return diag_fail(d, "box %s: disk format `%s`; the kvm provider boots qcow2", box_dir,
				 fmt);
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
	*b = (struct kvm_box){0};
}

/* Runs argv with stdout and stderr into *out; 0 when it exited 0. */
static int run_capture(const char *const argv[], char **out, struct diag *d)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return diag_errno(d, "pipe");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_adddup2(&fa, p[1], 2);
	pid_t pid;
	int e = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	struct buf b = {0};
	char tmp[4096];
	ssize_t n;
	while (e == 0 && ((n = read(p[0], tmp, sizeof(tmp))) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			buf_add(&b, tmp, (size_t)n);
	close(p[0]);
	int st = 0;
	while (e == 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*out = b.s ? b.s : xstrdup("");
	if (e != 0) {
		errno = e;
		return diag_errno(d, "run %s", argv[0]);
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	size_t len = strlen(*out);
	while (len && (*out)[len - 1] == '\n')
		(*out)[--len] = '\0';
	return diag_fail(d, "%s failed: %s", argv[0], *out);
}

/* `qemu-img info --output=json` of image; -U: QEMU may hold it open. */
static int img_info(const char *image, json_t **info, struct diag *d)
{
	const char *argv[] = {"qemu-img", "info", "-U", "--output=json", image, NULL};
	_cleanup_free_ char *out = NULL;
	if (run_capture(argv, &out, d) < 0)
		return -1;
	json_error_t je;
	*info = json_loads(out, 0, &je);
	return *info ? 0 : diag_fail(d, "qemu-img info %s: unreadable output: %s", image, je.text);
}

int img_overlay(const char *backing, const char *overlay, uint64_t size, struct diag *d)
{
	const char *create[] = {"qemu-img", "create", "-q", "-f", "qcow2", "-F", "qcow2",
				"-b", backing, overlay, NULL};
	if (proc_run(create, NULL, d) < 0) {
		diag_wrap(d, "box disk %s", backing);
		return diag_hint(d, "the box's disk is not a readable qcow2 image: remove the box "
				 "(`corral box remove`) and add it again");
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

int img_snapshot_list(const char *image, struct snapshot_list *out, struct diag *d)
{
	json_t *info, *s;
	size_t i;
	*out = (struct snapshot_list){0};
	if (img_info(image, &info, d) < 0)
		return -1;
	json_t *snaps = json_object_get(info, "snapshots");
	out->names = xcalloc(json_array_size(snaps) + 1, sizeof(char *));
	json_array_foreach(snaps, i, s)
		out->names[out->n++] = xstrdup(state_str(s, "name", "?"));
	json_decref(info);
	return 0;
}
