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
#include <sys/xattr.h>
#include <unistd.h>

#include "core/box/fetch.h"
#include "core/box/guard.h"
#include "core/box/image.h"
#include "core/base/bytering.h"
#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/base/util.h"

#define PLAIN_RING (8u << 20) /* decompressed tar bytes between the two stages */
#define BLOCK 4096u            /* what a file's data costs on disk is counted in these */
#define CAP_XATTR "security.capability"
#define DEV_DIR "rootfs/dev/"
#define SKIPPED 1 /* check_entry: the entry is left out, not refused */

/* FFLAGS is left out on purpose: an immutable flag from a box would make the
 * box impossible to remove. OWNER is added when running as root. */
static const int extract_flags =
	ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL |
	ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
	ARCHIVE_EXTRACT_SECURE_NOABSOLUTEPATHS | ARCHIVE_EXTRACT_SPARSE;

enum provider { PROVIDER_UNKNOWN, PROVIDER_CONTAINER, PROVIDER_OTHER };

/* A root-tree entry unpacked before metadata.json told whether the box is a
 * container: written without its privileges, which come back if it is. */
struct held {
	char *path;
	mode_t perm;
	int64_t uid, gid;
	void *cap; /* the security.capability value, or NULL */
	size_t cap_len;
	bool link; /* a hard link to another held entry: only its record follows */
};

struct unpack {
	unpack_read_fn read;
	void *ctx;
	const char *dest;
	struct unpack_opts o;
	struct ring *plain;
	struct archive *in, *out; /* the tar stage's reader and disk writer */
	json_t *files;            /* the manifest: path -> record */
	struct diag tar_d, raw_d;
	int tar_rc;
	bool raw_real_error; /* the decompressor failed on its own, not because the tar stage stopped */
	uint64_t plain_bytes; /* the decompressor's output so far */
	struct box_budget budget;
	uint64_t room_at_start, room_left, disk; /* free space, and what the data needs */
	enum provider provider;
	struct held *held;
	size_t n_held;
	json_t *held_at; /* path -> index in held */
	json_t *links;   /* a layer's hard links to lower layers: path -> target */
	struct unpack_stats stats;
	char *first_dev; /* the first special file skipped under rootfs/dev/ */
	unsigned char peek[IMAGE_SNIFF]; /* the stream's first bytes, read to tell what it is */
	size_t npeek, peek_given;
	const void *rest; /* the block the peek ended in, from there on: still the ring's */
	size_t nrest;
};

static int entry_fail(struct diag *d, const char *name, const char *why)
{
	diag_fail(d, "box archive: entry `%s`: %s", name, why);
	return diag_hint(d, "the box is unsafe or damaged; it was not installed");
}

static uint64_t compressed_size(const struct unpack *u)
{
	return u->o.compressed ? atomic_load(u->o.compressed) : 0;
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

static int special_fail(struct diag *d, const char *name, const char *special)
{
	char msg[256];
	snprintf(msg, sizeof(msg), "%s; boxes may not contain special files (only a container "
		 "box's rootfs/dev/ may, and they are skipped: the runtime provides /dev)", special);
	return entry_fail(d, name, msg);
}

/* Special files under a container root tree's /dev are left out: the
 * runtime mounts its own /dev over them. Whether the box is a container may
 * not be known yet; finish_tree refuses them if it is not. */
static int special_entry(struct unpack *u, const char *path, const char *name, const char *special,
			 struct diag *d)
{
	if (!str_starts(path, DEV_DIR) || u->provider == PROVIDER_OTHER)
		return special_fail(d, name, special);
	if (!u->first_dev)
		u->first_dev = xstrdup(name);
	u->stats.dev_skipped++;
	return SKIPPED;
}

/* A layer's path, placed under rootfs/ (frees p). */
static char *in_tree(char *p)
{
	const char *why = NULL;
	_cleanup_free_ char *clean = clean_path(p, &why);
	char *r = clean && clean[0] ? xasprintf("rootfs/%s", clean) : xstrdup("rootfs");
	free(p);
	return r;
}

static int check_hardlink(struct unpack *u, struct archive_entry *e, const char *name,
			  const char *hard, struct diag *d)
{
	const char *why = NULL;
	_cleanup_free_ char *target = clean_path(hard, &why);
	if (target && u->o.layer)
		target = in_tree(target);
	const char *ttype = target ? record_type(u->files, target) : NULL;
	if (!ttype && target && u->o.layer) {
		_cleanup_free_ char *path = in_tree(xstrdup(name));
		json_object_set_new(u->links, path, json_string(target));
		return SKIPPED;
	}
	if (!ttype || strcmp(ttype, "file") != 0)
		return entry_fail(d, name, "hard link to something that is not a regular file "
					   "extracted earlier from this box");
	archive_entry_set_hardlink(e, target);
	archive_entry_set_size(e, 0);
	return 0;
}

/* The checks before anything touches the disk; *path gets the clean name.
 * Returns SKIPPED for an entry that is left out. */
static int check_entry(struct unpack *u, struct archive_entry *e, char **path, struct diag *d)
{
	const char *name = archive_entry_pathname(e), *why = NULL;
	if (!name)
		return entry_fail(d, "?", "no path name");
	if (!(*path = clean_path(name, &why)))
		return entry_fail(d, name, why);
	if (u->o.layer)
		*path = in_tree(*path);
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
	if (hard)
		return check_hardlink(u, e, name, hard, d);
	const char *special = special_type(archive_entry_filetype(e));
	if (special)
		return special_entry(u, *path, name, special, d);
	const char *target = archive_entry_symlink(e);
	if (archive_entry_filetype(e) == AE_IFLNK && (!target || !target[0]))
		return entry_fail(d, name, "symlink without a target");
	if (archive_entry_filetype(e) == AE_IFLNK && !link_stays_inside(*path, target))
		return entry_fail(d, name, "symlink target leaves the box");
	return 0;
}

/* Whether a failed or warning result of the disk writer means the entry
 * did not land whole: any hard failure, or a full file system. */
static bool write_failed(struct unpack *u, int r)
{
	return r < ARCHIVE_WARN || (r == ARCHIVE_WARN && room_errno(archive_errno(u->out)));
}

static int write_fail(struct unpack *u, const char *path, struct diag *d)
{
	if (room_errno(archive_errno(u->out)))
		return room_full(".", u->disk, u->room_at_start, d);
	return entry_fail(d, path, archive_error_string(u->out));
}

/* The bytes of data an entry puts on disk: a sparse entry's data only. */
static uint64_t data_bytes(struct archive_entry *e)
{
	if (archive_entry_sparse_reset(e) == 0)
		return (uint64_t)archive_entry_size(e);
	uint64_t sum = 0;
	la_int64_t off, len;
	while (archive_entry_sparse_next(e, &off, &len) == ARCHIVE_OK)
		sum += (uint64_t)len;
	return sum;
}

/* Before a file is written, the file system must have room for it: from
 * what was free at the start less what the box has written, asking again
 * when that runs out. */
static int reserve(struct unpack *u, struct archive_entry *e, struct diag *d)
{
	uint64_t cost = (data_bytes(e) + BLOCK - 1) / BLOCK * BLOCK;
	u->disk += cost;
	if (cost > u->room_left)
		u->room_left = room_free(".");
	if (cost > u->room_left)
		return room_full(".", u->disk, u->room_at_start, d);
	u->room_left -= cost;
	return 0;
}

/* Copies the entry's data to disk, hashing it on the way (holes as zeros
 * from memory, never read or written; the limits bound how much of them a
 * box may declare).
 * A short write, however libarchive grades it, fails the entry. */
static int copy_data(struct unpack *u, struct archive_entry *e, const char *path, char *hex,
		     struct diag *d)
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
		int w = r < ARCHIVE_WARN ? ARCHIVE_OK : (int)archive_write_data_block(u->out, buf, n, off);
		if (r < ARCHIVE_WARN || w != ARCHIVE_OK) {
			hash_free(h);
			return r < ARCHIVE_WARN ? entry_fail(d, path, archive_error_string(u->in))
						: write_fail(u, path, d);
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

struct xattr {
	char *name;
	void *val;
	size_t len;
};

/* Takes the file capability out of the entry's xattrs; *cap gets a copy. */
static bool drop_cap(struct archive_entry *e, void **cap, size_t *cap_len)
{
	const char *name;
	const void *val;
	size_t len, kept = 0;
	int n = archive_entry_xattr_reset(e);
	bool found = false;
	struct xattr *keep = xcalloc((size_t)n + 1, sizeof(*keep));
	while (archive_entry_xattr_next(e, &name, &val, &len) == ARCHIVE_OK) {
		bool is_cap = strcmp(name, CAP_XATTR) == 0;
		void *copy = xmalloc(len + 1);
		memcpy(copy, val, len);
		if (is_cap && !found && cap)
			*cap = copy, *cap_len = len;
		else if (is_cap)
			free(copy);
		else
			keep[kept++] = (struct xattr){xstrdup(name), copy, len};
		found |= is_cap;
	}
	if (found) {
		archive_entry_xattr_clear(e);
		for (size_t i = 0; i < kept; i++)
			archive_entry_xattr_add_entry(e, keep[i].name, keep[i].val, keep[i].len);
	}
	for (size_t i = 0; i < kept; i++) {
		free(keep[i].name);
		free(keep[i].val);
	}
	free(keep);
	return found;
}

/* Clears setuid, setgid and the file capability; whether there were any. */
static bool strip(struct archive_entry *e, struct held *h)
{
	mode_t perm = archive_entry_perm(e);
	archive_entry_set_perm(e, perm & ~(mode_t)06000);
	return drop_cap(e, h ? &h->cap : NULL, h ? &h->cap_len : NULL) || (perm & 06000);
}

static struct held *held_find(struct unpack *u, const char *path)
{
	json_t *at = json_object_get(u->held_at, path);
	return at ? &u->held[json_integer_value(at)] : NULL;
}

static void held_add(struct unpack *u, const struct held *h)
{
	if (u->n_held % 64 == 0)
		u->held = xrealloc(u->held, (u->n_held + 64) * sizeof(*u->held));
	json_object_set_new(u->held_at, h->path, json_integer((json_int_t)u->n_held));
	u->held[u->n_held++] = *h;
}

/* A hard link shares its target's inode, and so its fate. */
static void hold_link(struct unpack *u, const char *path, const char *target)
{
	struct held *t = held_find(u, target);
	if (!t)
		return;
	struct held h = *t;
	h.path = xstrdup(path);
	h.link = true;
	h.cap = t->cap ? xmalloc(t->cap_len) : NULL;
	if (h.cap)
		memcpy(h.cap, t->cap, t->cap_len);
	held_add(u, &h);
}

/* Decides what of the entry's owner, setuid/setgid bits and file
 * capability reaches the disk (see unpack.h). */
static void privileges(struct unpack *u, const char *path, struct archive_entry *e)
{
	if (archive_entry_hardlink(e))
		return hold_link(u, path, archive_entry_hardlink(e));
	bool tree = str_starts(path, "rootfs/");
	if (tree && u->provider == PROVIDER_CONTAINER) {
		if (!u->o.private_store && strip(e, NULL))
			u->stats.stripped++;
		return;
	}
	struct held h = {.perm = archive_entry_perm(e), .uid = archive_entry_uid(e),
			 .gid = archive_entry_gid(e)};
	bool had = strip(e, tree && u->provider == PROVIDER_UNKNOWN ? &h : NULL);
	archive_entry_set_uid(e, geteuid());
	archive_entry_set_gid(e, getegid());
	if (!tree || u->provider != PROVIDER_UNKNOWN)
		return;
	if (had || h.uid != (int64_t)geteuid() || h.gid != (int64_t)getegid()) {
		h.path = xstrdup(path);
		held_add(u, &h);
	} else {
		free(h.cap);
	}
}

/* metadata.json, just written: which kind of box this is. */
static void learn_provider(struct unpack *u, struct archive_entry *e)
{
	char *text = NULL;
	size_t len = 0;
	struct diag ignored;
	u->provider = PROVIDER_OTHER;
	if (archive_entry_filetype(e) != AE_IFREG ||
	    read_file_flags("metadata.json", O_NOFOLLOW, 1 << 20, &text, &len, &ignored) < 0)
		return;
	json_t *m = json_loadb(text, len, 0, NULL);
	const char *prov = json_string_value(json_object_get(m, "provider"));
	if (prov && strcmp(prov, "container") == 0)
		u->provider = PROVIDER_CONTAINER;
	json_decref(m);
	free(text);
}

static int extract_entry(struct unpack *u, struct archive_entry *e, struct diag *d)
{
	_cleanup_free_ char *path = NULL;
	char hex[HASH_HEX_MAX] = "";
	int c = check_entry(u, e, &path, d);
	if (c < 0 || c == SKIPPED)
		return c < 0 ? -1 : 0;
	if (!path[0])
		return 0; /* the top directory: dest_dir itself */
	bool data = archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e);
	if (data && reserve(u, e, d) < 0)
		return -1;
	archive_entry_set_pathname(e, path);
	privileges(u, path, e);
	if (write_failed(u, archive_write_header(u->out, e)))
		return write_fail(u, path, d);
	if (data && copy_data(u, e, path, hex, d) < 0)
		return -1;
	int r = archive_write_finish_entry(u->out);
	if (write_failed(u, r))
		return write_fail(u, path, d);
	if (r == ARCHIVE_WARN)
		log_warn("box archive: %s: %s", path, archive_error_string(u->out));
	record(u, path, e, hex);
	if (strcmp(path, "metadata.json") == 0)
		learn_provider(u, e);
	return 0;
}

/* Gives a held entry back what it was held without, and its record too. */
static int restore_held(struct unpack *u, const struct held *h, struct diag *d)
{
	json_t *rec = json_object_get(u->files, h->path);
	const char *type = json_string_value(json_object_get(rec, "type"));
	bool link = type && strcmp(type, "symlink") == 0;
	bool privileged = (h->perm & 06000) || h->cap;
	mode_t perm = u->o.private_store ? h->perm : h->perm & ~(mode_t)06000;
	if (!h->link && geteuid() == 0 && lchown(h->path, (uid_t)h->uid, (gid_t)h->gid) < 0)
		return diag_errno(d, "unpack: chown %s", h->path);
	if (!h->link && !link && chmod(h->path, perm) < 0)
		return diag_errno(d, "unpack: chmod %s", h->path);
	if (!h->link && u->o.private_store && h->cap && geteuid() == 0 && /* else not allowed */
	    lsetxattr(h->path, CAP_XATTR, h->cap, h->cap_len, 0) < 0)
		return diag_errno(d, "unpack: restore the file capability of %s", h->path);
	if (!h->link && privileged && !u->o.private_store)
		u->stats.stripped++;
	char mode[8];
	snprintf(mode, sizeof(mode), "%04o", (unsigned)(perm & 07777));
	json_object_set_new(rec, "mode", json_string(mode));
	json_object_set_new(rec, "uid", json_integer(h->uid));
	json_object_set_new(rec, "gid", json_integer(h->gid));
	return 0;
}

/* After the last entry: a container's held entries get their privileges
 * back, and special files skipped under rootfs/dev/ are refused after all
 * if the box is not a container. */
static int finish_tree(struct unpack *u, struct diag *d)
{
	bool container = u->provider == PROVIDER_CONTAINER;
	u->stats.container = container;
	if (u->first_dev && !container)
		return special_fail(d, u->first_dev, "device node or other special file");
	for (size_t i = 0; container && i < u->n_held; i++)
		if (restore_held(u, &u->held[i], d) < 0)
			return -1;
	if (u->stats.dev_skipped)
		log_info("box archive: skipped %llu special file%s under %s (device nodes and the "
			 "like: the container runtime provides /dev)",
			 (unsigned long long)u->stats.dev_skipped, u->stats.dev_skipped == 1 ? "" : "s",
			 DEV_DIR);
	return 0;
}

/* The tar stream after the peeked bytes. */
static ssize_t next_plain(struct unpack *u, const void **buf)
{
	if (u->nrest) {
		*buf = u->rest;
		ssize_t n = (ssize_t)u->nrest;
		u->nrest = 0;
		return n;
	}
	return ring_read(u->plain, 0, buf);
}

static la_ssize_t plain_read(struct archive *a, void *ud, const void **buf)
{
	struct unpack *u = ud;
	if (u->peek_given < u->npeek) {
		*buf = u->peek + u->peek_given;
		ssize_t n = (ssize_t)(u->npeek - u->peek_given);
		u->peek_given = u->npeek;
		return n;
	}
	ssize_t n = next_plain(u, buf);
	if (n < 0)
		archive_set_error(a, ECANCELED, "the input stopped");
	return n;
}

/* Counts the entry against the limits before anything of it is written. */
static int budget(struct unpack *u, struct archive_entry *e, struct diag *d)
{
	bool data = archive_entry_filetype(e) == AE_IFREG && !archive_entry_hardlink(e);
	const char *name = archive_entry_pathname(e);
	return budget_entry(&u->budget, name ? name : "?",
			    data ? (uint64_t)archive_entry_size(e) : 0, compressed_size(u), d);
}

/* The stream's first IMAGE_SNIFF bytes (fewer if it is shorter), which
 * plain_read hands on first. */
static int fill_peek(struct unpack *u, struct diag *d)
{
	while (u->npeek < sizeof(u->peek)) {
		const void *buf;
		ssize_t n = ring_read(u->plain, 0, &buf);
		if (n < 0)
			return diag_fail(d, "the input stopped");
		if (n == 0)
			break;
		size_t take = sizeof(u->peek) - u->npeek < (size_t)n ? sizeof(u->peek) - u->npeek
								    : (size_t)n;
		memcpy(u->peek + u->npeek, buf, take);
		u->npeek += take;
		u->rest = (const char *)buf + take;
		u->nrest = (size_t)n - take;
	}
	return 0;
}

static ssize_t image_read(void *ctx, const void **buf)
{
	return next_plain(ctx, buf);
}

static void record_image_file(struct unpack *u, const char *path, const char *hex,
			      uint64_t size)
{
	json_t *rec = json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}", "type", "file", "mode", "0644",
				"uid", (json_int_t)geteuid(), "gid", (json_int_t)getegid(),
				"sha256", hex, "size", (json_int_t)size);
	json_object_set_new(u->files, path, rec);
}

/* A cloud image's box: its metadata.json, written and recorded. */
static int image_box_meta(struct unpack *u, enum image_kind k, struct diag *d)
{
	_cleanup_free_ char *meta = image_metadata(k, u->o.source);
	char hex[HASH_HEX_MAX];
	hash_str(meta, NULL, hex);
	if (write_file_atomic("metadata.json", meta, strlen(meta), 0644, d) < 0)
		return -1;
	record_image_file(u, "metadata.json", hex, strlen(meta));
	u->provider = PROVIDER_OTHER;
	return 0;
}

/* A disk image, not an archive: box.img is the stream itself. */
static int image_stage(struct unpack *u, enum image_kind k, struct diag *d)
{
	struct image_out out;
	if (image_write("box.img", u->peek, u->npeek, image_read, u, &out, d) < 0 ||
	    image_check("box.img", k, d) < 0)
		return -1;
	record_image_file(u, "box.img", out.sha256, out.size);
	return image_box_meta(u, k, d);
}

/* Debian's form, a tar holding disk.raw and nothing that says what it is:
 * the disk becomes box.img beside a generated metadata.json. */
static int adopt_disk_raw(struct unpack *u, struct diag *d)
{
	json_t *rec = json_object_get(u->files, "disk.raw");
	const char *type = json_string_value(json_object_get(rec, "type"));
	if (json_object_get(u->files, "metadata.json") || !type || strcmp(type, "file") != 0)
		return 0;
	unsigned char head[IMAGE_SNIFF];
	int fd = open("disk.raw", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : pread(fd, head, sizeof(head), 0);
	if (fd >= 0)
		close(fd);
	enum image_kind k = n > 0 ? image_sniff(head, (size_t)n) : IMAGE_NONE;
	if (k == IMAGE_NONE)
		return 0; /* then the missing metadata.json is the error */
	if (image_check("disk.raw", k, d) < 0)
		return -1;
	if (rename("disk.raw", "box.img") < 0)
		return diag_errno(d, "unpack: rename disk.raw");
	json_object_set(u->files, "box.img", rec);
	json_object_del(u->files, "disk.raw");
	return image_box_meta(u, k, d);
}

static int extract_all(struct unpack *u, struct diag *d)
{
	struct archive_entry *e;
	if (unshare(CLONE_FS) < 0 || chdir(u->dest) < 0)
		return diag_errno(d, "unpack: enter %s", u->dest);
	u->room_at_start = u->room_left = room_free(".");
	if (fill_peek(u, d) < 0)
		return -1;
	enum image_kind k = image_sniff(u->peek, u->npeek);
	if (k != IMAGE_NONE)
		return image_stage(u, k, d);
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
		if (budget(u, e, d) < 0 || extract_entry(u, e, d) < 0)
			return -1;
	}
	/* Directory modes and times are applied here, after their contents. */
	if (archive_write_close(u->out) != ARCHIVE_OK)
		return diag_fail(d, "unpack: %s", archive_error_string(u->out));
	return finish_tree(u, d) < 0 ? -1 : adopt_disk_raw(u, d);
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

/* One block of tar bytes: within the limits, then to the tar stage. */
static int pass_on(struct unpack *u, const void *buf, size_t n, struct diag *d)
{
	u->plain_bytes += n;
	if (budget_stream(&u->budget, u->plain_bytes, compressed_size(u), d) < 0) {
		u->raw_real_error = true;
		return -1;
	}
	if (ring_write(u->plain, buf, n) < 0)
		return diag_fail(d, "unpack stopped");
	return 0;
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
		} else {
			rc = pass_on(u, buf, n, d);
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
	if (u->o.layer)
		json_object_set(doc, "links", u->links);
	_cleanup_free_ char *text = json_dumps(doc, JSON_SORT_KEYS | JSON_INDENT(1));
	_cleanup_free_ char *path = path_join(u->dest, BOXFETCH_MANIFEST);
	json_decref(doc);
	return write_file_atomic(path, text, strlen(text), 0644, d);
}

static void unpack_free(struct unpack *u)
{
	for (size_t i = 0; i < u->n_held; i++) {
		free(u->held[i].path);
		free(u->held[i].cap);
	}
	free(u->held);
	json_decref(u->held_at);
	json_decref(u->links);
	free(u->first_dev);
	json_decref(u->files);
	ring_free(u->plain);
}

int unpack_stream(unpack_read_fn read, void *ctx, const char *dest_dir,
		  const struct unpack_opts *o, struct unpack_stats *st, struct diag *d)
{
	struct unpack u = {.read = read, .ctx = ctx, .dest = dest_dir};
	if (o)
		u.o = *o;
	if (box_limits_get(&u.budget.lim, d) < 0)
		return -1;
	u.plain = ring_new(PLAIN_RING, 1);
	u.files = json_object();
	u.held_at = json_object();
	u.links = json_object();
	if (u.o.layer)
		u.provider = PROVIDER_CONTAINER;
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
	if (st)
		*st = u.stats;
	unpack_free(&u);
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

int unpack_file(const char *archive, const char *dest_dir, const struct unpack_opts *o,
		struct unpack_stats *st, struct diag *d)
{
	struct file_src *f = xmalloc(sizeof(*f));
	struct stat sb;
	f->fd = open(archive, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0 || fstat(f->fd, &sb) < 0) {
		int rc = diag_errno(d, "open %s", archive);
		if (f->fd >= 0)
			close(f->fd);
		free(f);
		return rc;
	}
	_Atomic uint64_t size = (uint64_t)sb.st_size;
	struct unpack_opts fo = o ? *o : (struct unpack_opts){0};
	fo.compressed = &size;
	int rc = unpack_stream(file_read, f, dest_dir, &fo, st, d);
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

json_t *boxfetch_manifest_files(const char *dir, json_t **doc, char why[160])
{
	_cleanup_free_ char *path = path_join(dir, BOXFETCH_MANIFEST);
	json_error_t err;
	*doc = json_load_file(path, 0, &err);
	json_t *files = json_object_get(*doc, "files");
	if (json_is_object(files))
		return files;
	snprintf(why, 160, "%s", *doc ? "no \"files\" object" : err.text);
	return NULL;
}

int unpack_verify(const char *dir, struct diag_list *problems, struct diag *d)
{
	_cleanup_free_ char *path = path_join(dir, BOXFETCH_MANIFEST);
	char why[160];
	json_t *doc;
	json_t *files = boxfetch_manifest_files(dir, &doc, why);
	if (!files) {
		json_decref(doc);
		diag_fail(d, "%s: no usable manifest (%s)", path, why);
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
