/* `corral package` for containers: the machine's file system as the guest
 * saw it — the box's rootfs/ (lower layer) merged with the machine's upper
 * layer the way overlayfs merges them — written as a container box.
 *
 * Merge rules: a name in the upper layer hides the lower one; a whiteout
 * (a character device 0/0) deletes it; an upper directory marked opaque
 * (trusted.overlay.opaque or user.overlay.opaque = "y") hides the lower
 * directory's whole contents. Owners in the upper layer are the guest's
 * ids moved into the machine's range (MK_IDMAP_BASE) and are moved back,
 * as are file capabilities the guest's root set (namespaced to that range).
 * What corral wrote for this machine does not go into the box: the SSH
 * host keys are left out, and the SSH users' authorized_keys, hostname,
 * hosts and resolv.conf are the box's own again (lower layer; none if it
 * had none). Device nodes, FIFOs and sockets are left out (the runtime
 * makes its own /dev), counted in the log. Hard links stay links (a file
 * the guest changed was copied up: a file of its own).
 *
 * Both layers are the guest's: every name is opened relative to its open
 * parent directory with O_NOFOLLOW, so no symlink a guest left is followed
 * on the host; symlinks go into the box as links. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/box/pack.h"
#include "core/host/mstate.h"
#include "providers/container/container.h"

/* Left out of the box, from either layer: this machine's host keys. */
static const char *const dropped_prefix[] = {"rootfs/etc/ssh/ssh_host_", NULL};
/* Taken from the box as it was (the upper layer's copy is corral's). */
static const char *const reset[] = {"rootfs/etc/hostname", "rootfs/etc/hosts",
				    "rootfs/etc/resolv.conf", NULL};

/* A regular file with other links, by the name it went into the box as. */
struct linked {
	dev_t dev;
	ino_t ino;
	char *name;
};

struct walk {
	struct boxpack *bp;
	uint32_t shift; /* the machine's id range base; 0: ids as they are */
	unsigned long skipped;
	struct linked *links; /* hard-linked files seen so far */
	size_t nlinks;
};

/* The box name of an earlier link to st's file, else NULL (and rel is
 * remembered for the next). */
static const char *link_of(struct walk *w, const struct stat *st, const char *rel)
{
	if (!S_ISREG(st->st_mode) || st->st_nlink < 2)
		return NULL;
	for (size_t i = 0; i < w->nlinks; i++)
		if (w->links[i].dev == st->st_dev && w->links[i].ino == st->st_ino)
			return w->links[i].name;
	w->links = xrealloc(w->links, (w->nlinks + 1) * sizeof(*w->links));
	w->links[w->nlinks++] = (struct linked){st->st_dev, st->st_ino, xstrdup(rel)};
	return NULL;
}

static bool dropped(const char *rel)
{
	for (size_t i = 0; dropped_prefix[i]; i++)
		if (str_starts(rel, dropped_prefix[i]))
			return true;
	return false;
}

static bool is_reset(const char *rel)
{
	return str_in_list(rel, reset) || str_ends(rel, "/.ssh/authorized_keys");
}

static bool whiteout(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && st->st_rdev == makedev(0, 0);
}

static bool opaque(int fd)
{
	static const char *const keys[] = {"trusted.overlay.opaque", "user.overlay.opaque"};
	for (size_t i = 0; i < 2; i++) {
		char v[2];
		if (fgetxattr(fd, keys[i], v, sizeof(v)) == 1 && v[0] == 'y')
			return true;
	}
	return false;
}

/* The names in dir (fd stays open), sorted, into *out (duplicates kept). */
static int list_dir(int fd, struct strv *out, struct diag *d)
{
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	DIR *dir = dup >= 0 ? fdopendir(dup) : NULL;
	if (!dir) {
		if (dup >= 0)
			close(dup);
		return diag_errno(d, "read a directory of the machine");
	}
	struct dirent *de;
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
			strv_push(out, de->d_name);
	closedir(dir);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static uint32_t unshift(uint32_t id, uint32_t base)
{
	return base && id >= base && id - base < CT_IDMAP_SIZE ? id - base : id;
}

static int walk_dir(struct walk *w, int upper, int lower, const char *rel, struct diag *d);

/* One name, from the layer `src` (upper when from_upper). */
static int emit(struct walk *w, int src, bool from_upper, int lower, const char *name,
		const char *rel, const struct stat *st, struct diag *d)
{
	mode_t t = st->st_mode & S_IFMT;
	if (t != S_IFREG && t != S_IFDIR && t != S_IFLNK) {
		w->skipped++;
		return 0;
	}
	char target[4096] = "";
	_cleanup_close_ int fd = -1;
	if (t == S_IFLNK) {
		ssize_t n = readlinkat(src, name, target, sizeof(target) - 1);
		if (n < 0)
			return diag_errno(d, "read link /%s", rel + 7);
		target[n] = '\0';
	} else {
		fd = openat(src, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK |
				       (t == S_IFDIR ? O_DIRECTORY : 0));
		if (fd < 0)
			return diag_errno(d, "open /%s", rel + 7);
	}
	uint32_t base = from_upper ? w->shift : 0;
	struct boxpack_entry e = {.name = rel, .st = st, .fd = fd, .symlink = target,
				  .uid = unshift(st->st_uid, base), .gid = unshift(st->st_gid, base),
				  .ns_root = base, .hardlink = link_of(w, st, rel)};
	if (boxpack_add(w->bp, &e, d) < 0)
		return -1;
	if (t != S_IFDIR)
		return 0;
	/* The lower directory shows through unless this one hides it. */
	struct stat ls;
	_cleanup_close_ int lo = -1;
	if (lower >= 0 && !(from_upper && opaque(fd)) &&
	    fstatat(lower, name, &ls, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(ls.st_mode))
		lo = from_upper ? openat(lower, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
				: dup(fd);
	return walk_dir(w, from_upper ? fd : -1, lo, rel, d);
}

/* One name of the merged directory. */
static int merge_one(struct walk *w, int upper, int lower, const char *name, const char *rel,
		     struct diag *d)
{
	struct stat us, ls;
	bool in_upper = upper >= 0 && fstatat(upper, name, &us, AT_SYMLINK_NOFOLLOW) == 0;
	bool in_lower = lower >= 0 && fstatat(lower, name, &ls, AT_SYMLINK_NOFOLLOW) == 0;
	if (dropped(rel) || (in_upper && whiteout(&us)))
		return 0;
	if (in_upper && !(is_reset(rel) && !S_ISDIR(us.st_mode)))
		return emit(w, upper, true, lower, name, rel, &us, d);
	if (in_lower)
		return emit(w, lower, false, lower, name, rel, &ls, d);
	return 0;
}

static int walk_dir(struct walk *w, int upper, int lower, const char *rel, struct diag *d)
{
	struct strv names = {0};
	int r = 0;
	if (upper >= 0)
		r = list_dir(upper, &names, d);
	if (r == 0 && lower >= 0)
		r = list_dir(lower, &names, d);
	if (names.n)
		qsort(names.v, names.n, sizeof(names.v[0]), cmp_str);
	for (size_t i = 0; r == 0 && i < names.n; i++) {
		if (i && strcmp(names.v[i], names.v[i - 1]) == 0)
			continue;
		_cleanup_free_ char *child = xasprintf("%s/%s", rel, names.v[i]);
		r = merge_one(w, upper, lower, names.v[i], child, d);
	}
	strv_free(&names);
	return r;
}

static int pack_tree(struct walk *w, const char *upper_dir, const char *lower_dir, struct diag *d)
{
	_cleanup_close_ int lower = open(lower_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int upper = upper_dir ? open(upper_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
							     O_CLOEXEC) : -1;
	struct stat st;
	if (lower < 0 || fstat(lower, &st) < 0)
		return diag_errno(d, "open the box's tree %s", lower_dir);
	if (upper_dir && upper < 0 && errno != ENOENT)
		return diag_errno(d, "open the machine's layer %s", upper_dir);
	struct boxpack_entry e = {.name = "rootfs", .st = &st, .fd = lower, .uid = st.st_uid,
				  .gid = st.st_gid};
	if (boxpack_add(w->bp, &e, d) < 0)
		return -1;
	return walk_dir(w, upper, lower, "rootfs", d);
}

int ct_package(struct machine *m, const char *out, struct diag *d)
{
	const char *lower = machine_str(m, MK_LOWER);
	if (!lower)
		return diag_fail(d, "%s: its state names no box tree", m->cfg->name);
	_cleanup_free_ char *upper = NULL, *work = NULL;
	if (ct_disk_open(m, false, &upper, &work, d) < 0)
		return -1;
	long long base = machine_int(m, MK_IDMAP_BASE);
	struct walk w = {.shift = base > 0 ? (uint32_t)base : 0};
	int r = boxpack_open(out, &w.bp, d);
	if (r == 0) {
		static const char *const drop[] = {"virtual_size", NULL};
		r = boxpack_metadata(w.bp, m->box_dir, "container", drop, d);
		if (r == 0)
			r = pack_tree(&w, upper, lower, d);
		if (r == 0)
			r = boxpack_close(w.bp, d);
		else
			boxpack_abort(w.bp);
	}
	ct_disk_close(m);
	for (size_t i = 0; i < w.nlinks; i++)
		free(w.links[i].name);
	free(w.links);
	if (r == 0 && w.skipped)
		log_info("%s: %lu device nodes, FIFOs or sockets left out of the box", m->cfg->name,
			 w.skipped);
	return r;
}
