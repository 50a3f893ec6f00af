/* The .box writer (see pack.h): libarchive's pax tar through zstd, or
 * gzip where this libarchive has no zstd. Each file is streamed in blocks,
 * never held whole in memory. Write errors keep their errno, so a full
 * disk is reported as ENOSPC whether it shows on a block or at close. */
#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/capability.h>
#include <stdlib.h>
#include <string.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/box/catalog.h"
#include "core/box/pack.h"

struct boxpack {
	struct archive *a;
	int fd;
	char *path;
};

/* The failing archive's error, with its errno as the diag's code. */
static int pack_fail(struct boxpack *p, const char *what, struct diag *d)
{
	int e = archive_errno(p->a);
	const char *s = archive_error_string(p->a);
	if (e > 0)
		return diag_code(d, e, "write %s: %s: %s", p->path, what, strerror(e));
	return diag_fail(d, "write %s: %s: %s", p->path, what, s ? s : "archive error");
}

int boxpack_open(const char *path, struct boxpack **out, struct diag *d)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return diag_errno(d, "create %s", path);
	struct boxpack *p = xcalloc(1, sizeof(*p));
	*p = (struct boxpack){.a = archive_write_new(), .fd = fd, .path = xstrdup(path)};
	int r = archive_write_set_format_pax_restricted(p->a);
	if (r == ARCHIVE_OK && archive_write_add_filter(p->a, ARCHIVE_FILTER_ZSTD) != ARCHIVE_OK)
		r = archive_write_add_filter_gzip(p->a);
	if (r == ARCHIVE_OK)
		r = archive_write_open_fd(p->a, fd);
	if (r != ARCHIVE_OK) {
		pack_fail(p, "start", d);
		boxpack_abort(p);
		return -1;
	}
	*out = p;
	return 0;
}

static int add_bytes(struct boxpack *p, const char *name, const char *data, size_t n,
		     struct diag *d)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)n);
	archive_entry_set_mtime(e, time(NULL), 0);
	int r = archive_write_header(p->a, e);
	archive_entry_free(e);
	if (r != ARCHIVE_OK || archive_write_data(p->a, data, n) < 0)
		return pack_fail(p, name, d);
	return 0;
}

int boxpack_metadata(struct boxpack *p, const char *box_dir, const char *provider,
		     const char *const *drop, struct diag *d)
{
	_cleanup_free_ char *path = box_dir ? path_join(box_dir, "metadata.json") : NULL;
	json_t *m = path ? json_load_file(path, 0, NULL) : NULL;
	if (!json_is_object(m)) {
		json_decref(m);
		m = json_object();
	}
	json_object_set_new(m, "provider", json_string(provider));
	if (!json_is_string(json_object_get(m, "architecture")))
		json_object_set_new(m, "architecture", json_string(host_arch()));
	for (size_t i = 0; drop && drop[i]; i++)
		json_object_del(m, drop[i]);
	char *s = json_dumps(m, JSON_SORT_KEYS | JSON_INDENT(2));
	json_decref(m);
	int r = add_bytes(p, "metadata.json", s, strlen(s), d);
	free(s);
	return r;
}

static bool overlay_xattr(const char *name)
{
	return str_starts(name, "trusted.overlay.") || str_starts(name, "user.overlay.");
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* A namespaced file capability of ns_root as the plain one it stands for
 * (the magic's revision byte is its last, little-endian). */
static void cap_unshift(const char *k, unsigned char *val, ssize_t *n, uint32_t ns_root)
{
	if (!ns_root || strcmp(k, "security.capability") != 0 || *n != XATTR_CAPS_SZ_3 ||
	    (le32(val) & VFS_CAP_REVISION_MASK) != VFS_CAP_REVISION_3 ||
	    le32(val + XATTR_CAPS_SZ_2) != ns_root)
		return;
	val[3] = VFS_CAP_REVISION_2 >> VFS_CAP_REVISION_SHIFT;
	*n = XATTR_CAPS_SZ_2;
}

/* The entry's extended attributes from fd, but overlayfs' bookkeeping. */
static int add_xattrs(struct archive_entry *e, int fd, const char *name, uint32_t ns_root,
		      struct diag *d)
{
	char list[65536];
	ssize_t n = flistxattr(fd, list, sizeof(list));
	if (n < 0)
		return errno == ENOTSUP ? 0 : diag_errno(d, "list xattrs of %s", name);
	for (const char *k = list; k < list + n; k += strlen(k) + 1) {
		unsigned char val[65536];
		ssize_t vn = overlay_xattr(k) ? -1 : fgetxattr(fd, k, val, sizeof(val));
		cap_unshift(k, val, &vn, ns_root);
		if (vn >= 0)
			archive_entry_xattr_add_entry(e, k, val, (size_t)vn);
	}
	return 0;
}

static int copy_data(struct boxpack *p, int fd, const char *name, struct diag *d)
{
	char buf[1 << 16];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return diag_errno(d, "read %s", name);
		if (archive_write_data(p->a, buf, (size_t)n) < 0)
			return pack_fail(p, name, d);
	}
	return 0;
}

int boxpack_add(struct boxpack *p, const struct boxpack_entry *in, struct diag *d)
{
	struct archive_entry *e = archive_entry_new();
	mode_t type = in->st->st_mode & S_IFMT;
	archive_entry_set_pathname(e, in->name);
	archive_entry_set_filetype(e, type);
	archive_entry_set_perm(e, in->st->st_mode & 07777);
	archive_entry_set_uid(e, in->uid);
	archive_entry_set_gid(e, in->gid);
	archive_entry_set_mtime(e, in->st->st_mtim.tv_sec, in->st->st_mtim.tv_nsec);
	bool data = type == S_IFREG && !in->hardlink;
	archive_entry_set_size(e, data ? (la_int64_t)in->st->st_size : 0);
	if (type == S_IFLNK)
		archive_entry_set_symlink(e, in->symlink);
	if (in->hardlink)
		archive_entry_set_hardlink(e, in->hardlink);
	int r = in->fd >= 0 && type != S_IFLNK ? add_xattrs(e, in->fd, in->name, in->ns_root, d) : 0;
	if (r == 0 && archive_write_header(p->a, e) != ARCHIVE_OK)
		r = pack_fail(p, in->name, d);
	archive_entry_free(e);
	if (r == 0 && data)
		r = copy_data(p, in->fd, in->name, d);
	return r;
}

int boxpack_add_file(struct boxpack *p, const char *name, const char *host_path, struct diag *d)
{
	_cleanup_close_ int fd = open(host_path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return diag_errno(d, "open %s", host_path);
	if (!S_ISREG(st.st_mode))
		return diag_fail(d, "%s is not a regular file", host_path);
	st.st_mode = S_IFREG | 0644;
	struct boxpack_entry e = {.name = name, .st = &st, .fd = fd};
	return boxpack_add(p, &e, d);
}

int boxpack_files(const char *out, const char *box_dir, const char *provider,
		  const char *const *names, const char *const *paths, size_t n, struct diag *d)
{
	static const char *const drop[] = {"virtual_size", NULL};
	struct boxpack *p;
	if (boxpack_open(out, &p, d) < 0)
		return -1;
	int r = boxpack_metadata(p, box_dir, provider, drop, d);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = boxpack_add_file(p, names[i], paths[i], d);
	if (r < 0) {
		boxpack_abort(p);
		return -1;
	}
	return boxpack_close(p, d);
}

char *boxpack_stage(const char *out, struct diag *d)
{
	char *stage = xasprintf("%s.d", out);
	struct diag ignored = {0};
	rm_rf(stage, &ignored);
	if (mkdir_p(stage, 0700, d) == 0)
		return stage;
	free(stage);
	return NULL;
}

void boxpack_unstage(char *stage)
{
	struct diag ignored = {0};
	if (stage)
		rm_rf(stage, &ignored);
	free(stage);
}

int boxpack_close(struct boxpack *p, struct diag *d)
{
	int r = archive_write_close(p->a) != ARCHIVE_OK ? pack_fail(p, "finish", d) : 0;
	if (r == 0 && fsync(p->fd) < 0)
		r = diag_errno(d, "write %s", p->path);
	boxpack_abort(p);
	return r;
}

void boxpack_abort(struct boxpack *p)
{
	archive_write_free(p->a);
	close(p->fd);
	free(p->path);
	free(p);
}

/* At most 1 MiB of metadata, as add.c would take. */
static int read_entry(struct archive *a, char **json, struct diag *d)
{
	struct buf b = {0};
	const void *blk;
	size_t n;
	la_int64_t off;
	int r;
	while ((r = archive_read_data_block(a, &blk, &n, &off)) == ARCHIVE_OK && b.len < (1 << 20))
		buf_add(&b, blk, n);
	if (r != ARCHIVE_EOF && r != ARCHIVE_OK) {
		buf_free(&b);
		return diag_fail(d, "read metadata.json: %s", archive_error_string(a));
	}
	buf_add(&b, "", 0);
	*json = b.s ? b.s : xstrdup("");
	return 0;
}

int boxpack_read_metadata(const char *path, char **json, struct diag *d)
{
	struct archive *a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	struct archive_entry *e;
	int r = archive_read_open_filename(a, path, 1 << 16) == ARCHIVE_OK ? 1 : -1;
	while (r == 1) {
		int h = archive_read_next_header(a, &e);
		if (h != ARCHIVE_OK && h != ARCHIVE_WARN)
			r = -1;
		else if (strcmp(archive_entry_pathname(e), "metadata.json") == 0 ||
			 strcmp(archive_entry_pathname(e), "./metadata.json") == 0)
			r = read_entry(a, json, d);
	}
	if (r < 0 && !d->msg[0]) {
		const char *s = archive_error_string(a);
		diag_fail(d, "%s: %s", path, s ? s : "no metadata.json in the box");
		diag_hint(d, "a .box is a tar archive with metadata.json at its top");
	}
	archive_read_free(a);
	return r;
}
