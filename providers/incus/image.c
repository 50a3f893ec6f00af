/* A machine's container box as an image on the server: the box's rootfs/
 * with an LXD metadata.yaml, as one uncompressed tarball (written by tar
 * next to the machine's state, removed after), uploaded with POST
 * /1.0/images and named "corral-<16 hex of the box's store path>". Every
 * machine and envfile using the same box finds it by that alias and
 * uploads nothing. One corral process uploads one box at a time. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/host/proc.h"
#include "providers/incus/incus.h"

static pthread_mutex_t upload_mu = PTHREAD_MUTEX_INITIALIZER;

static char *alias_of(const char *box_dir)
{
	unsigned char raw[32];
	char hex[65];
	hash_str(box_dir, raw, hex);
	return xasprintf("corral-%.16s", hex);
}

static int exists(struct incus_client *c, const char *alias, bool *yes, struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/images/aliases/%s", alias);
	long st;
	*yes = incus_call(c, "GET", p, NULL, NULL, &st, d) == 0;
	return *yes || st == 404 ? 0 : -1;
}

/* metadata.yaml in dir: the host's architecture (the box is the host's). */
static int write_metadata(const char *dir, const char *box_dir, struct diag *d)
{
	struct utsname u;
	uname(&u);
	_cleanup_free_ char *p = path_join(dir, "metadata.yaml");
	_cleanup_free_ char *text = xasprintf(
		"architecture: %s\ncreation_date: %lld\nproperties:\n  description: \"corral box %s\"\n",
		u.machine, (long long)time(NULL), box_dir);
	return write_file_atomic(p, text, strlen(text), 0644, d);
}

static int build_tarball(struct machine *m, const char *tar, struct diag *d)
{
	_cleanup_free_ char *meta = machine_path(m, "incus-image");
	_cleanup_free_ char *rootfs = path_join(m->box_dir, "rootfs");
	if (!path_is_dir(rootfs)) {
		diag_fail(d, "incus: box %s has no rootfs/", m->box_dir);
		return diag_hint(d, "the incus provider boots container boxes (a rootfs/ tree)");
	}
	if (mkdir_p(meta, 0700, d) < 0 || write_metadata(meta, m->box_dir, d) < 0)
		return -1;
	const char *argv[] = {"tar", "--numeric-owner", "-cf", tar, "-C", meta, "metadata.yaml",
			      "-C", m->box_dir, "rootfs", NULL};
	int rc = proc_run(argv, NULL, d);
	struct diag ignored = {0};
	rm_rf(meta, &ignored);
	return rc < 0 ? diag_wrap(d, "incus: the image tarball") : 0;
}

static int upload(struct incus_client *c, struct machine *m, const char *alias, struct diag *d)
{
	_cleanup_free_ char *tar = machine_path(m, "incus-image.tar");
	if (build_tarball(m, tar, d) < 0) {
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
	json_t *body = json_pack("{s:s, s:s, s:s}", "name", alias, "target", fp ? fp : "",
				 "description", "corral box image");
	rc = incus_call(c, "POST", "/1.0/images/aliases", body, NULL, NULL, d);
	json_decref(body);
	json_decref(meta);
	return rc;
}

int incus_image_ensure(struct incus_client *c, struct machine *m, char **alias, struct diag *d)
{
	*alias = alias_of(m->box_dir);
	bool have;
	pthread_mutex_lock(&upload_mu);
	int rc = exists(c, *alias, &have, d);
	if (rc == 0 && !have)
		rc = upload(c, m, *alias, d);
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
