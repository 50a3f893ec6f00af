/* A machine's box as an image on the server, keyed by the box's digest
 * (the sha256 its store record holds: the .box archive's, or an OCI
 * image's manifest digest), so a second machine, a second envfile or a
 * second host with the same box finds the image under the alias
 * "corral-<64 hex of that digest>" and uploads nothing. A box without a
 * record (one of Vagrant's store) is keyed by its store path instead.
 * The image is one uncompressed unified tarball (written by tar next to
 * the machine's state, removed after) uploaded with POST /1.0/images:
 * metadata.yaml and, for a container, the box's rootfs/ (a container
 * rootfs box, or an OCI image box's flattened tree); for a virtual
 * machine, the kvm box's disk as rootfs.img (qcow2; a raw disk is
 * converted with qemu-img). The last machine to go deletes it (see
 * incus_image_release). One corral process uploads one box at a time; two
 * hosts racing keep the first alias and drop the second image. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/box/store.h"
#include "core/host/proc.h"
#include "core/host/state.h"
#include "providers/incus/incus.h"

static pthread_mutex_t upload_mu = PTHREAD_MUTEX_INITIALIZER;

char *incus_box_digest(const char *box_dir)
{
	_cleanup_free_ char *rec = path_join(box_dir, BOXSTORE_RECORD);
	json_t *o = NULL;
	struct diag ignored = {0};
	char *hex = NULL;
	if (path_exists(rec) && state_load(rec, &o, &ignored) == 0) {
		const char *sha = state_str(o, "sha256", NULL);
		if (sha && strlen(sha) == 64 && strspn(sha, "0123456789abcdef") == 64)
			hex = xstrdup(sha);
		json_decref(o);
	}
	if (!hex) {
		unsigned char raw[32];
		char h[65];
		hash_str(box_dir, raw, h);
		hex = xstrdup(h);
	}
	return hex;
}

static char *alias_of(const char *box_dir)
{
	_cleanup_free_ char *hex = incus_box_digest(box_dir);
	return xasprintf("corral-%s", hex);
}

static int exists(struct incus_client *c, const char *alias, bool *yes, struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/images/aliases/%s", alias);
	long st;
	*yes = incus_call(c, "GET", p, NULL, NULL, &st, d) == 0;
	return *yes || st == 404 ? 0 : -1;
}

/* metadata.yaml in dir: the host's architecture (the box is the host's),
 * the box's digest as a property. */
static int write_metadata(const char *dir, const char *box_dir, struct diag *d)
{
	struct utsname u;
	uname(&u);
	_cleanup_free_ char *p = path_join(dir, "metadata.yaml");
	_cleanup_free_ char *hex = incus_box_digest(box_dir);
	_cleanup_free_ char *text = xasprintf(
		"architecture: %s\ncreation_date: %lld\nproperties:\n  description: \"corral box %s\"\n"
		"  corral.box_digest: \"sha256:%s\"\n",
		u.machine, (long long)time(NULL), box_dir, hex);
	return write_file_atomic(p, text, strlen(text), 0644, d);
}

/* The kvm box's disk (metadata.json "disk", default box.img) as
 * meta/rootfs.img: a link to a qcow2 disk (tar follows it), a raw one
 * converted. */
static int vm_disk(const char *box_dir, const char *meta, struct diag *d)
{
	_cleanup_free_ char *mj = path_join(box_dir, "metadata.json");
	_cleanup_free_ char *img = path_join(meta, "rootfs.img");
	json_t *o = NULL;
	if (state_load(mj, &o, d) < 0)
		return diag_wrap(d, "incus: box %s", box_dir);
	_cleanup_free_ char *disk = path_join(box_dir, state_str(o, "disk", "box.img"));
	bool raw = strcmp(state_str(o, "format", "qcow2"), "raw") == 0;
	json_decref(o);
	if (!path_exists(disk)) {
		diag_fail(d, "incus: box %s has no disk %s", box_dir, disk);
		return diag_hint(d, "a virtual-machine instance boots a kvm box (a qcow2 or raw disk)");
	}
	if (!raw)
		return symlink(disk, img) < 0 ? diag_errno(d, "symlink %s", img) : 0;
	const char *argv[] = {"qemu-img", "convert", "-f", "raw", "-O", "qcow2", disk, img, NULL};
	return proc_run(argv, NULL, d);
}

/* A container's rootfs/ next to metadata.yaml; a VM's rootfs.img in it. */
static int build_tarball(struct machine *m, bool vm, const char *tar, struct diag *d)
{
	_cleanup_free_ char *meta = machine_path(m, "incus-image");
	_cleanup_free_ char *rootfs = path_join(m->box_dir, "rootfs");
	if (!vm && !path_is_dir(rootfs)) {
		diag_fail(d, "incus: box %s has no rootfs/", m->box_dir);
		return diag_hint(d, "container instances boot container boxes (a rootfs/ tree); "
				    "a kvm box needs provider_options.incus.type: virtual-machine");
	}
	struct diag ignored = {0};
	rm_rf(meta, &ignored);
	if (mkdir_p(meta, 0700, d) < 0 || write_metadata(meta, m->box_dir, d) < 0 ||
	    (vm && vm_disk(m->box_dir, meta, d) < 0)) {
		rm_rf(meta, &ignored);
		return -1;
	}
	const char *ct[] = {"tar", "--numeric-owner", "-cf", tar, "-C", meta, "metadata.yaml",
			    "-C", m->box_dir, "rootfs", NULL};
	const char *vt[] = {"tar", "--numeric-owner", "-h", "-cf", tar, "-C", meta,
			    "metadata.yaml", "rootfs.img", NULL};
	int rc = proc_run(vm ? vt : ct, NULL, d);
	rm_rf(meta, &ignored);
	return rc < 0 ? diag_wrap(d, "incus: the image tarball") : 0;
}

/* alias -> fp; another host may have made the alias first: then its
 * image is the one, and ours goes unless it is the same. */
static int name_image(struct incus_client *c, const char *alias, const char *fp, struct diag *d)
{
	json_t *body = json_pack("{s:s, s:s, s:s}", "name", alias, "target", fp, "description",
				 "corral box image");
	struct diag e = {0};
	int rc = incus_call(c, "POST", "/1.0/images/aliases", body, NULL, NULL, &e);
	json_decref(body);
	bool there = false;
	if (rc == 0 || exists(c, alias, &there, d) < 0 || !there) {
		if (rc < 0)
			*d = e;
		return rc;
	}
	_cleanup_free_ char *p = xasprintf("/1.0/images/aliases/%s", alias);
	json_t *a = NULL;
	if (incus_call(c, "GET", p, NULL, &a, NULL, d) < 0)
		return -1;
	const char *won = json_string_value(json_object_get(a, "target"));
	_cleanup_free_ char *img = xasprintf("/1.0/images/%s", fp);
	rc = won && strcmp(won, fp) != 0 ? incus_call(c, "DELETE", img, NULL, NULL, NULL, d) : 0;
	json_decref(a);
	return rc;
}

static int upload(struct incus_client *c, struct machine *m, bool vm, const char *alias,
		  struct diag *d)
{
	_cleanup_free_ char *tar = machine_path(m, "incus-image.tar");
	if (build_tarball(m, vm, tar, d) < 0) {
		unlink(tar);
		return -1;
	}
	static const char *const hdrs[] = {"Content-Type: application/octet-stream", NULL};
	struct incus_raw raw = {.file = tar, .headers = hdrs};
	json_t *meta = NULL;
	int rc = incus_call_raw(c, "POST", "/1.0/images", &raw, &meta, NULL, d);
	unlink(tar);
	if (rc < 0)
		return diag_wrap(d, "upload box %s", m->box_dir);
	const char *fp = json_string_value(json_object_get(meta, "fingerprint"));
	rc = name_image(c, alias, fp ? fp : "", d);
	json_decref(meta);
	return rc;
}

int incus_image_ensure(struct incus_client *c, struct machine *m, bool vm, char **alias,
		       struct diag *d)
{
	*alias = alias_of(m->box_dir);
	bool have;
	pthread_mutex_lock(&upload_mu);
	int rc = exists(c, *alias, &have, d);
	if (rc == 0 && !have)
		rc = upload(c, m, vm, *alias, d);
	pthread_mutex_unlock(&upload_mu);
	if (rc < 0) {
		free(*alias);
		*alias = NULL;
	}
	return rc;
}

/* Whether an instance of the project was made from image fp. */
static int in_use(struct incus_client *c, const char *fp, bool *used, struct diag *d)
{
	json_t *list = NULL;
	*used = false;
	if (incus_call(c, "GET", "/1.0/instances?recursion=1", NULL, &list, NULL, d) < 0)
		return -1;
	size_t i;
	json_t *inst;
	json_array_foreach(list, i, inst) {
		const char *base = json_string_value(
			json_object_get(json_object_get(inst, "config"), "volatile.base_image"));
		if (base && strcmp(base, fp) == 0)
			*used = true;
	}
	json_decref(list);
	return 0;
}

int incus_image_release(struct incus_client *c, const char *alias, struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/images/aliases/%s", alias);
	json_t *a = NULL;
	long st;
	pthread_mutex_lock(&upload_mu);
	int rc = incus_call(c, "GET", p, NULL, &a, &st, d);
	if (rc < 0 && st == 404)
		rc = 0; /* gone already */
	const char *fp = json_string_value(json_object_get(a, "target"));
	bool used = true;
	if (rc == 0 && fp && in_use(c, fp, &used, d) < 0)
		rc = -1;
	if (rc == 0 && fp && !used) {
		_cleanup_free_ char *img = xasprintf("/1.0/images/%s", fp);
		rc = incus_call(c, "DELETE", img, NULL, NULL, NULL, d);
	}
	pthread_mutex_unlock(&upload_mu);
	json_decref(a);
	return rc;
}
