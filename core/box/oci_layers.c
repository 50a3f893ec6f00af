/* The layer store and the assembly of an image's root tree. Each layer is
 * unpacked once (by unpack.c's layer mode, under the rules of container root
 * trees) into boxes/.oci/layers/sha256-HEX/rootfs with its manifest, and
 * shared by every image that has it. A box's rootfs/ is then built from its
 * layers, lowest first, as hard links to the layers' files (same inodes:
 * owners, modes and xattrs come along; the container mounts the tree
 * read-only under its overlay, so nothing writes through them), with new
 * directories carrying the layer's owner, mode and xattrs. Per layer: its
 * whiteouts first — `.wh..wh..opq` empties its directory of what lower
 * layers put there, `.wh.NAME` removes NAME — then its entries, then its hard
 * links to lower layers' files. Paths come from the layers' manifests
 * (already clean); one that would pass through a symlink or a file of the
 * tree so far is refused, so assembly never follows a path out of the box. */
#include "core/box/oci_priv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/box/fetch.h"
#include "core/box/store_priv.h"
#include "core/base/util.h"

#define WH ".wh."
#define OPAQUE ".wh..wh..opq"

struct assembly {
	const char *box;
	json_t *files; /* the tree so far: path -> manifest record */
	const char *layer;
};

char *oci_layer_dir(const char *digest)
{
	_cleanup_free_ char *root = boxes_root();
	return xasprintf("%s/.oci/layers/sha256-%s", root, digest + 7);
}

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static const char *type_of(json_t *files, const char *path)
{
	return json_string_value(json_object_get(json_object_get(files, path), "type"));
}

static int refuse(const struct assembly *a, const char *path, const char *why, struct diag *d)
{
	diag_fail(d, "image layer %s: `%s`: %s", a->layer, path, why);
	return diag_hint(d, "the image is unsafe or damaged; it was not installed");
}

/* Every parent of path in the tree so far is a directory (or absent). */
static int check_parents(const struct assembly *a, const char *path, struct diag *d)
{
	char prefix[4096];
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(s - path), path);
		const char *t = type_of(a->files, prefix);
		if (t && strcmp(t, "dir") != 0)
			return refuse(a, path, "it would pass through a symlink or file of a lower layer", d);
	}
	return 0;
}

/* Drops path (when self) and everything under it from the records. */
static void forget(json_t *files, const char *path, bool self)
{
	size_t n = strlen(path);
	const char *key;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(files, tmp, key, v) {
		if ((self && strcmp(key, path) == 0) || (strncmp(key, path, n) == 0 && key[n] == '/'))
			json_object_del(files, key);
	}
}

static int remove_path(struct assembly *a, const char *path, struct diag *d)
{
	_cleanup_free_ char *full = path_join(a->box, path);
	struct stat st;
	const char *t = type_of(a->files, path);
	if (t && strcmp(t, "dir") == 0)
		forget(a->files, path, true);
	else
		json_object_del(a->files, path);
	if (lstat(full, &st) < 0)
		return errno == ENOENT ? 0 : diag_errno(d, "stat %s", full);
	if (S_ISDIR(st.st_mode))
		return rm_rf(full, d);
	return unlink(full) < 0 ? diag_errno(d, "remove %s", full) : 0;
}

/* Owner, mode and extended attributes of a layer's directory. */
static int copy_meta(const char *from, const char *to, struct diag *d)
{
	struct stat st;
	char names[8192], val[65536];
	if (lstat(from, &st) < 0)
		return diag_errno(d, "stat %s", from);
	if (geteuid() == 0 && lchown(to, st.st_uid, st.st_gid) < 0)
		return diag_errno(d, "chown %s", to);
	if (chmod(to, st.st_mode & 07777) < 0)
		return diag_errno(d, "chmod %s", to);
	ssize_t n = llistxattr(from, names, sizeof(names));
	for (ssize_t i = 0; i < n; i += (ssize_t)strlen(names + i) + 1) {
		ssize_t vl = lgetxattr(from, names + i, val, sizeof(val));
		if (vl >= 0 && lsetxattr(to, names + i, val, (size_t)vl, 0) < 0 && errno != ENOTSUP)
			return diag_errno(d, "set %s on %s", names + i, to);
	}
	return 0;
}

static int place_dir(struct assembly *a, const char *path, json_t *rec, struct diag *d)
{
	_cleanup_free_ char *full = path_join(a->box, path), *src = path_join(a->layer, path);
	const char *had = type_of(a->files, path);
	if (had && strcmp(had, "dir") != 0 && remove_path(a, path, d) < 0)
		return -1;
	if (mkdir(full, 0700) < 0 && errno != EEXIST)
		return diag_errno(d, "create %s", full);
	json_object_set(a->files, path, rec);
	return copy_meta(src, full, d);
}

static int place_link(struct assembly *a, const char *path, const char *from, json_t *rec,
		      struct diag *d)
{
	_cleanup_free_ char *full = path_join(a->box, path);
	if (type_of(a->files, path) && remove_path(a, path, d) < 0)
		return -1;
	if (linkat(AT_FDCWD, from, AT_FDCWD, full, 0) < 0)
		return diag_errno(d, "link %s", full);
	json_object_set(a->files, path, rec);
	return 0;
}

static int whiteouts(struct assembly *a, json_t *files, struct diag *d)
{
	const char *path;
	json_t *rec;
	json_object_foreach(files, path, rec) {
		const char *name = base_name(path);
		if (!str_starts(name, WH))
			continue;
		_cleanup_free_ char *dir = path_dirname(path);
		if (check_parents(a, path, d) < 0)
			return -1;
		if (strcmp(name, OPAQUE) == 0) {
			_cleanup_free_ char *full = path_join(a->box, dir);
			forget(a->files, dir, false);
			if (type_of(a->files, dir) && (rm_rf(full, d) < 0 || mkdir(full, 0700) < 0))
				return diag_errno(d, "empty %s", full);
			continue;
		}
		const char *what = name + strlen(WH);
		if (str_starts(what, WH))
			continue; /* AUFS's own metadata (.wh..wh.plnk and the like) */
		if (!*what || strcmp(what, ".") == 0 || strcmp(what, "..") == 0)
			return refuse(a, path, "a whiteout of no file", d);
		_cleanup_free_ char *gone = xasprintf("%s/%s", dir, what);
		if (remove_path(a, gone, d) < 0)
			return -1;
	}
	return 0;
}

static int entries(struct assembly *a, json_t *files, struct diag *d)
{
	const char *path;
	json_t *rec;
	json_object_foreach(files, path, rec) {
		const char *type = json_string_value(json_object_get(rec, "type"));
		if (str_starts(base_name(path), WH) || !type)
			continue;
		if (check_parents(a, path, d) < 0)
			return -1;
		_cleanup_free_ char *parent = path_dirname(path);
		_cleanup_free_ char *pfull = path_join(a->box, parent);
		if (strcmp(path, "rootfs") != 0 && !type_of(a->files, parent) && mkdir_p(pfull, 0755, d) < 0)
			return -1;
		_cleanup_free_ char *src = path_join(a->layer, path);
		int rc = strcmp(type, "dir") == 0 ? place_dir(a, path, rec, d)
						   : place_link(a, path, src, rec, d);
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* A layer's hard links to files of the layers below it. */
static int lower_links(struct assembly *a, json_t *links, struct diag *d)
{
	const char *path;
	json_t *t;
	json_object_foreach(links, path, t) {
		const char *target = json_string_value(t);
		const char *type = target ? type_of(a->files, target) : NULL;
		if (!type || strcmp(type, "file") != 0)
			return refuse(a, path, "hard link to a file no lower layer holds", d);
		if (check_parents(a, path, d) < 0 || check_parents(a, target, d) < 0)
			return -1;
		_cleanup_free_ char *from = path_join(a->box, target);
		json_t *rec = json_deep_copy(json_object_get(a->files, target));
		int rc = place_link(a, path, from, rec, d);
		json_decref(rec);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int apply_layer(struct assembly *a, const char *layer, struct diag *d)
{
	_cleanup_free_ char *mpath = path_join(layer, BOXFETCH_MANIFEST);
	char why[160];
	json_t *m;
	json_t *files = boxfetch_manifest_files(layer, &m, why);
	a->layer = layer;
	int rc = !files ? diag_fail(d, "%s: damaged layer manifest (%s)", mpath, why)
			: whiteouts(a, files, d);
	if (rc == 0)
		rc = entries(a, files, d);
	if (rc == 0)
		rc = lower_links(a, json_object_get(m, "links"), d);
	json_decref(m);
	return rc;
}

int oci_assemble(const char *box_dir, char *const *layer_dirs, size_t n, json_t *extra,
		 struct diag *d)
{
	struct assembly a = {.box = box_dir, .files = json_object()};
	_cleanup_free_ char *root = path_join(box_dir, "rootfs");
	int rc = mkdir(root, 0755) < 0 ? diag_errno(d, "create %s", root) : 0;
	if (rc == 0)
		json_object_set_new(a.files, "rootfs",
				    json_pack("{s:s, s:s, s:i, s:i}", "type", "dir", "mode", "0755", "uid", 0, "gid", 0));
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = apply_layer(&a, layer_dirs[i], d);
	if (rc == 0) {
		json_object_update(a.files, extra);
		json_t *doc = json_pack("{s:i, s:O}", "version", 1, "files", a.files);
		_cleanup_free_ char *text = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(1));
		_cleanup_free_ char *path = path_join(box_dir, BOXFETCH_MANIFEST);
		json_decref(doc);
		rc = write_file_atomic(path, text, strlen(text), 0644, d);
	}
	json_decref(a.files);
	return rc;
}

/* The layer store's lock (boxes/.oci/layers.lock): a pull holds it shared
 * from its first layer to its box's rename, the collector exclusively, so
 * a layer is never collected between its fetch and its box. -1 on error. */
int oci_layers_lock(bool exclusive, struct diag *d)
{
	_cleanup_free_ char *root = boxes_root();
	_cleanup_free_ char *dir = path_join(root, ".oci"), *path = path_join(dir, "layers.lock");
	if (mkdir_p(dir, 0700, d) < 0)
		return -1;
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return diag_errno(d, "open %s", path);
	if (flock(fd, exclusive ? LOCK_EX : LOCK_SH) < 0) {
		close(fd);
		return diag_errno(d, "lock %s", path);
	}
	return fd;
}

/* The layers the store's OCI boxes use, into keep (digest -> true); false
 * when a box does not list its layers (pulled before they were recorded):
 * then nothing is known to be unused. */
static bool layers_in_use(json_t *keep, struct diag *d)
{
	struct box_list l = {0};
	bool known = boxstore_list(&l, d) == 0;
	for (size_t i = 0; known && i < l.n; i++) {
		json_t *oci = oci_box_info(l.v[i].dir), *layers = json_object_get(oci, "layers"), *v;
		size_t j;
		known = !oci || json_is_array(layers);
		json_array_foreach(layers, j, v)
			if (json_is_string(v))
				json_object_set_new(keep, json_string_value(v), json_true());
		json_decref(oci);
	}
	box_list_free(&l);
	return known;
}

int oci_layers_gc(unsigned *removed, struct diag *d)
{
	*removed = 0;
	_cleanup_free_ char *root = boxes_root();
	_cleanup_free_ char *dir = xasprintf("%s/.oci/layers", root);
	if (!path_is_dir(dir))
		return 0;
	int fd = oci_layers_lock(true, d);
	if (fd < 0)
		return -1;
	json_t *keep = json_object();
	DIR *dp = layers_in_use(keep, d) ? opendir(dir) : NULL;
	int rc = 0;
	for (struct dirent *e; rc == 0 && dp && (e = readdir(dp));) {
		_cleanup_free_ char *dg = xasprintf("sha256:%s", e->d_name + 7);
		if (!str_starts(e->d_name, "sha256-") || !oci_digest_valid(dg) ||
		    json_object_get(keep, dg))
			continue;
		_cleanup_free_ char *path = path_join(dir, e->d_name);
		rc = rm_rf(path, d);
		*removed += rc == 0;
	}
	if (dp)
		closedir(dp);
	json_decref(keep);
	close(fd);
	return rc;
}
