#include "core/box/unpack.h"

#include <archive.h>
#include <archive_entry.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/box/fetch.h"
#include "core/base/bytering.h"
#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/base/util.h"

#define PLAIN_RING (8u << 20) /* decompressed tar bytes between the two stages */

/* FFLAGS is left out on purpose: an immutable flag from a box would make the
 * box impossible to remove. OWNER is added when running as root. */
static const int extract_flags =
	ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL |
	ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
	ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS;

struct unpack {
	unpack_read_fn read;
	void *ctx;
	const char *dest;
	struct ring *plain;
	struct archive *in, *out; /* the tar stage's reader and disk writer */
	json_t *files;            /* the manifest: path -> record */
	struct diag tar_d, raw_d;
	int tar_rc;
	bool raw_real_error; /* the decompressor failed on its own, not because the tar stage stopped */
};

static int entry_fail(struct diag *d, const char *name, const char *why)
{
	diag_fail(d, "box archive: entry `%s`: %s", name, why);
	return diag_hint(d, "the box is unsafe or damaged; it was not installed");
}

/* "./a//b/./c/" -> "a/b/c" ("" for the top directory itself); NULL and *why
 * for absolute paths and `..` components. */
static char *clean_path(const char *p, const char **why)
{
	if (p[0] == '/')
		return *why = "absolute path", NULL;
	struct buf b = {0};
	buf_add(&b, "", 0);
	_cleanup_free_ char *copy = xstrdup(p);
	for (char *save = NULL, *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (strcmp(t, ".") == 0)
			continue;
		if (strcmp(t, "..") == 0) {
			buf_free(&b);
			return *why = "path escapes the box (`..` component)", NULL;
		}
		if (b.len)
			buf_puts(&b, "/");
		buf_puts(&b, t);
	}
	return b.s;
}

/* Lexically, from the link's own directory, the target must stay inside. */
static bool link_stays_inside(const char *path, const char *target)
{
	if (target[0] == '/')
		return str_starts(path, "rootfs/");
	int depth = 0;
	for (const char *s = path; *s; s++)
		depth += *s == '/';
	_cleanup_free_ char *copy = xstrdup(target);
	for (char *save = NULL, *t = strtok_r(copy, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (strcmp(t, "..") == 0 && --depth < 0)
			return false;
		if (strcmp(t, "..") != 0 && strcmp(t, ".") != 0)
			depth++;
	}
	return true;
}

static const char *record_type(json_t *files, const char *path)
{
	return json_string_value(json_object_get(json_object_get(files, path), "type"));
}

/* No entry may go through a symlink or a file that an earlier entry made. */
static const char *blocking_parent(json_t *files, const char *path)
{
	static __thread char prefix[4096];
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(s - path), path);
		const char *type = record_type(files, prefix);
		if (type && strcmp(type, "dir") != 0)
			return prefix;
	}
	return NULL;
}

static const char *special_type(mode_t type)
{
	switch (type) {
	case AE_IFREG: case AE_IFDIR: case AE_IFLNK:
		return NULL;
	case AE_IFCHR: case AE_IFBLK:
		return "device node";
	case AE_IFIFO:
		return "FIFO";
	case AE_IFSOCK:
		return "socket";
	default:
		return "unknown file type";
	}
}

/* The checks before anything touches the disk; *path gets the clean name. */
static int check_entry(struct unpack *u, struct archive_entry *e, char **path, struct diag *d)
{
	const char *name = archive_entry_pathname(e), *why = NULL;
	if (!name)
		return entry_fail(d, "?", "no path name");
	if (!(*path = clean_path(name, &why)))
		return entry_fail(d, name, why);
	if (strcmp(*path, BOXFETCH_MANIFEST) == 0)
		return entry_fail(d, name, "the name is reserved for corral's manifest");
	const char *parent = blocking_parent(u->files, *path);
	if (parent) {
		char msg[4200];
		snprintf(msg, sizeof(msg), "it would be written through `%s`, which is not a directory", parent);
		return entry_fail(d, name, msg);
	}
	const char *had = record_type(u->files, *path);
	bool dir = archive_entry_filetype(e) == AE_IFDIR;
	if (had && !(dir && strcmp(had, "dir") == 0))
		return entry_fail(d, name, "duplicate entry (a later one would replace it)");
	const char *hard = archive_entry_hardlink(e);
	if (hard) {
		_cleanup_free_ char *target = clean_path(hard, &why);
		const char *ttype = target ? record_type(u->files, target) : NULL;
		if (!ttype || strcmp(ttype, "file") != 0)
			return entry_fail(d, name, "hard link to something that is not a regular file "
						   "extracted earlier from this box");
		archive_entry_set_hardlink(e, target);
		archive_entry_set_size(e, 0);
		return 0;
	}
	const char *special = special_type(archive_entry_filetype(e));
	if (special) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s; boxes may not contain special files "
			 "(a container's /dev is provided by the runtime)", special);
		return entry_fail(d, name, msg);
	}
	const char *target = archive_entry_symlink(e);
	if (archive_entry_filetype(e) == AE_IFLNK && (!target || !target[0]))
		return entry_fail(d, name, "symlink without a target");
	if (archive_entry_filetype(e) == AE_IFLNK && !link_stays_inside(*path, target))
		return entry_fail(d, name, "symlink target leaves the box");
	return 0;
}

static void hash_zeros(struct hash *h, int64_t n)
{
	static const unsigned char zeros[65536];
	for (; n > 0; n -= (int64_t)sizeof(zeros))
		hash_update(h, zeros, n < (int64_t)sizeof(zeros) ? (size_t)n : sizeof(zeros));
}

/* Copies the entry's data to disk, hashing it on the way (holes as zeros). */
static int copy_data(struct unpack *u, struct archive_entry *e, char *hex, struct diag *d)
{
	struct hash *h = hash_new("sha256");
	int64_t at = 0;
	for (;;) {
		const void *buf;
		size_t n;
		la_int64_t off;
		int r = archive_read_data_block(u->in, &buf, &n, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN || archive_write_data_block(u->out, buf, n, off) < ARCHIVE_WARN) {
			hash_free(h);
			return entry_fail(d, archive_entry_pathname(e),
					  archive_error_string(r < ARCHIVE_WARN ? u->in : u->out));
		}
		hash_zeros(h, off - at);
		hash_update(h, buf, n);
		at = off + (int64_t)n;
	}
	hash_zeros(h, archive_entry_size(e) - at);
	hash_final(h, NULL, hex);
	return 0;
}

static json_t *new_record(struct archive_entry *e, const char *type)
{
	char mode[8];
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(archive_entry_perm(e) & 07777));
	return json_pack("{s:s, s:s, s:I, s:I}", "type", type, "mode", mode,
			 "uid", (json_int_t)archive_entry_uid(e), "gid", (json_int_t)archive_entry_gid(e));
}

static void record(struct unpack *u, const char *path, struct archive_entry *e, const char *hex)
{
	const char *hard = archive_entry_hardlink(e);
	json_t *rec;
	if (hard)
		rec = json_deep_copy(json_object_get(u->files, hard));
	else if (archive_entry_filetype(e) == AE_IFDIR)
		rec = new_record(e, "dir");
	else if (archive_entry_filetype(e) == AE_IFLNK)
		json_object_set_new(rec = new_record(e, "symlink"), "target",
				    json_string(archive_entry_symlink(e)));
	else {
		rec = new_record(e, "file");
		json_object_set_new(rec, "sha256", json_string(hex));
		json_object_set_new(rec, "size", json_integer(archive_entry_size(e)));
	}
	json_object_set_new(u->files, path, rec);
}

static int extract_entry(struct unpack *u, struct archive_entry *e, struct diag *d)
{
	_cleanup_free_ char *path = NULL;
	char hex[HASH_HEX_MAX] = "";
	if (check_entry(u, e, &path, d) < 0)
		return -1;
	if (!path[0])
		return 0; /* the top directory: dest_dir itself */
	archive_entry_set_pathname(e, path);
	if (archive_write_header(u->out, e) < ARCHIVE_WARN)
		return entry_fail(d, path, archive_error_string(u->out));
	bool data = archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e);
	if (data && copy_data(u, e, hex, d) < 0)
		return -1;
	int r = archive_write_finish_entry(u->out);
	if (r < ARCHIVE_WARN)
		return entry_fail(d, path, archive_error_string(u->out));
	if (r == ARCHIVE_WARN)
		log_warn("box archive: %s: %s", path, archive_error_string(u->out));
	record(u, path, e, hex);
	return 0;
}

static la_ssize_t plain_read(struct archive *a, void *ud, const void **buf)
{
	struct unpack *u = ud;
	ssize_t n = ring_read(u->plain, 0, buf);
	if (n < 0)
		archive_set_error(a, ECANCELED, "the input stopped");
	return n;
}

static int extract_all(struct unpack *u, struct diag *d)
{
	struct archive_entry *e;
	if (unshare(CLONE_FS) < 0 || chdir(u->dest) < 0)
		return diag_errno(d, "unpack: enter %s", u->dest);
	archive_read_support_format_tar(u->in);
	archive_write_disk_set_options(u->out, extract_flags |
					       (geteuid() == 0 ? ARCHIVE_EXTRACT_OWNER : 0));
	if (archive_read_open(u->in, u, NULL, plain_read, NULL) != ARCHIVE_OK)
		return diag_fail(d, "box archive: %s", archive_error_string(u->in));
	for (;;) {
		int r = archive_read_next_header(u->in, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN)
			return diag_fail(d, "box archive is damaged or truncated: %s",
					 archive_error_string(u->in));
		if (extract_entry(u, e, d) < 0)
			return -1;
	}
	/* Directory modes and times are applied here, after their contents. */
	if (archive_write_close(u->out) != ARCHIVE_OK)
		return diag_fail(d, "unpack: %s", archive_error_string(u->out));
	return 0;
}

static void *tar_stage(void *arg)
{
	struct unpack *u = arg;
	u->in = archive_read_new();
	u->out = archive_write_disk_new();
	u->tar_rc = extract_all(u, &u->tar_d);
	archive_read_free(u->in);
	archive_write_free(u->out);
	/* Stopping early stops the decompressor; finishing lets it run to the
	 * end of the stream, where it checks the compressed format's trailer. */
	if (u->tar_rc < 0)
		ring_abort(u->plain);
	else
		ring_detach(u->plain, 0);
	return NULL;
}

static la_ssize_t raw_read(struct archive *a, void *ud, const void **buf)
{
	struct unpack *u = ud;
	ssize_t n = u->read(u->ctx, buf);
	if (n < 0)
		archive_set_error(a, ECANCELED, "the input stopped");
	return n;
}

/* Stage one: whatever the compression, out come the tar bytes. */
static int decompress(struct unpack *u, struct diag *d)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	int rc = 0;
	if (archive_read_open(a, u, NULL, raw_read, NULL) != ARCHIVE_OK ||
	    archive_read_next_header(a, &e) != ARCHIVE_OK) {
		rc = diag_fail(d, "box archive: %s", archive_error_string(a) ? archive_error_string(a) : "empty");
		u->raw_real_error = archive_errno(a) != ECANCELED;
	}
	for (; rc == 0;) {
		const void *buf;
		size_t n;
		la_int64_t off;
		int r = archive_read_data_block(a, &buf, &n, &off);
		if (r == ARCHIVE_EOF)
			break;
		if (r < ARCHIVE_WARN) {
			rc = diag_fail(d, "box archive is damaged or truncated: %s", archive_error_string(a));
			u->raw_real_error = archive_errno(a) != ECANCELED;
		} else if (ring_write(u->plain, buf, n) < 0) {
			rc = diag_fail(d, "unpack stopped");
		}
	}
	archive_read_free(a);
	if (rc < 0)
		ring_abort(u->plain);
	else
		ring_close(u->plain);
	return rc;
}

static int write_manifest(struct unpack *u, struct diag *d)
{
	json_t *doc = json_pack("{s:i, s:O}", "version", 1, "files", u->files);
	_cleanup_free_ char *text = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(1));
	_cleanup_free_ char *path = path_join(u->dest, BOXFETCH_MANIFEST);
	json_decref(doc);
	return write_file_atomic(path, text, strlen(text), 0644, d);
}

int unpack_stream(unpack_read_fn read, void *ctx, const char *dest_dir, struct diag *d)
{
	struct unpack u = {.read = read, .ctx = ctx, .dest = dest_dir};
	u.plain = ring_new(PLAIN_RING, 1);
	u.files = json_object();
	pthread_t tid;
	if (pthread_create(&tid, NULL, tar_stage, &u) != 0)
		abort(); /* only when out of memory or threads */
	int raw_rc = decompress(&u, &u.raw_d);
	pthread_join(tid, NULL);
	int rc = 0;
	if (raw_rc < 0 && u.raw_real_error)
		rc = -1, *d = u.raw_d;
	else if (u.tar_rc < 0)
		rc = -1, *d = u.tar_d;
	else if (raw_rc < 0)
		rc = -1, *d = u.raw_d;
	if (rc == 0)
		rc = write_manifest(&u, d);
	json_decref(u.files);
	ring_free(u.plain);
	return rc;
}

struct file_src {
	int fd;
	char buf[1 << 16];
};

static ssize_t file_read(void *ctx, const void **buf)
{
	struct file_src *f = ctx;
	ssize_t n;
	do
		n = read(f->fd, f->buf, sizeof(f->buf));
	while (n < 0 && errno == EINTR);
	*buf = f->buf;
	return n;
}

int unpack_file(const char *archive, const char *dest_dir, struct diag *d)
{
	struct file_src *f = xmalloc(sizeof(*f));
	f->fd = open(archive, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0) {
		free(f);
		return diag_errno(d, "open %s", archive);
	}
	int rc = unpack_stream(file_read, f, dest_dir, d);
	close(f->fd);
	free(f);
	return rc;
}

struct verify {
	const char *dir;
	json_t *files;
	struct diag_list *problems;
};

static __thread struct verify *walking; /* nftw passes no context */

static void problem(struct verify *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(struct verify *v, const char *fmt, ...)
{
	struct diag p = {0};
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p.msg, sizeof(p.msg), fmt, ap);
	va_end(ap);
	diag_list_add(v->problems, &p);
}

static const struct {
	const char *name;
	mode_t fmt;
} verify_types[] = {{"file", S_IFREG}, {"dir", S_IFDIR}, {"symlink", S_IFLNK}};

static void verify_content(struct verify *v, const char *path, const char *full, json_t *rec)
{
	const char *want = json_string_value(json_object_get(rec, "sha256"));
	const char *target = json_string_value(json_object_get(rec, "target"));
	if (want) {
		char hex[HASH_HEX_MAX];
		struct diag d;
		if (hash_file(full, "sha256", NULL, hex, &d) < 0)
			problem(v, "%s: %s", path, d.msg);
		else if (!hash_hex_equal(hex, want))
			problem(v, "%s: content changed (sha256 %s, expected %s)", path, hex, want);
	}
	if (target) {
		char buf[4096];
		ssize_t n = readlink(full, buf, sizeof(buf) - 1);
		buf[n < 0 ? 0 : n] = '\0';
		if (strcmp(buf, target) != 0)
			problem(v, "%s: symlink points to `%s`, expected `%s`", path, buf, target);
	}
}

static void verify_one(struct verify *v, const char *path, json_t *rec)
{
	const char *type = json_string_value(json_object_get(rec, "type"));
	const char *mode = json_string_value(json_object_get(rec, "mode"));
	const char *why = NULL;
	_cleanup_free_ char *clean = clean_path(path, &why);
	_cleanup_free_ char *full = path_join(v->dir, path);
	struct stat st;
	mode_t fmt = 0;
	for (size_t i = 0; type && i < sizeof(verify_types) / sizeof(verify_types[0]); i++)
		if (strcmp(verify_types[i].name, type) == 0)
			fmt = verify_types[i].fmt;
	if (!clean || strcmp(clean, path) != 0 || !fmt || !mode)
		return problem(v, "%s: bad manifest record", path);
	if (lstat(full, &st) < 0)
		return problem(v, "%s: missing", path);
	if ((st.st_mode & S_IFMT) != fmt)
		return problem(v, "%s: is no longer a %s", path, type);
	if (fmt != S_IFLNK && (unsigned)(st.st_mode & 07777) != (unsigned)strtoul(mode, NULL, 8))
		problem(v, "%s: mode %04o, expected %s", path, (unsigned)(st.st_mode & 07777), mode);
	verify_content(v, path, full, rec);
}

static int find_extra(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)flag;
	struct verify *v = walking;
	const char *rel = p + strlen(v->dir);
	while (*rel == '/')
		rel++;
	/* top-level ".corral-*" files are corral's own records (manifest, box record) */
	bool own = ftw->level == 1 && str_starts(rel, ".corral-");
	if (ftw->level > 0 && !S_ISDIR(st->st_mode) && !own && !json_object_get(v->files, rel))
		problem(v, "%s: not part of the box", rel);
	return 0;
}

int unpack_verify(const char *dir, struct diag_list *problems, struct diag *d)
{
	_cleanup_free_ char *path = path_join(dir, BOXFETCH_MANIFEST);
	json_error_t err;
	json_t *doc = json_load_file(path, 0, &err);
	json_t *files = json_object_get(doc, "files");
	if (!json_is_object(files)) {
		json_decref(doc);
		diag_fail(d, "%s: no usable manifest (%s)", path, doc ? "no \"files\" object" : err.text);
		return diag_hint(d, "the box was not installed by this version of corral; add it again");
	}
	struct verify v = {.dir = dir, .files = files, .problems = problems};
	const char *key;
	json_t *rec;
	json_object_foreach(files, key, rec)
		verify_one(&v, key, rec);
	walking = &v;
	int rc = nftw(dir, find_extra, 32, FTW_PHYS | FTW_MOUNT);
	walking = NULL;
	json_decref(doc);
	return rc < 0 ? diag_errno(d, "read %s", dir) : 0;
}
