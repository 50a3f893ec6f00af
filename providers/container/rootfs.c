/* The machine's own files, written into its overlay upper layer before the
 * init mounts it: the box's lower layer stays untouched and shared. Owners
 * in the upper layer are the guest's ids moved into the machine's range
 * (ct_boot.idmap), as the guest's user namespace maps them.
 *
 * Both layers are the guest's: root in it (or its SSH user) may have put a
 * symlink anywhere in them, e.g. ~/.ssh -> /root/.ssh, and this code runs
 * as root on the host. So no path inside a layer is ever handed to the
 * host's resolver: each layer is opened once as a directory, and every
 * name under it is opened with openat2(RESOLVE_IN_ROOT |
 * RESOLVE_NO_SYMLINKS), created with *at() calls relative to a directory
 * opened that way, and owners and modes are set on the open descriptor. A
 * symlink where corral writes is an error naming it; nothing is written
 * through it. The guest's /etc/passwd is parsed as untrusted text
 * (passwd.c), and its SSH user may be uid 0 only when the envfile asks for
 * root by name (`ssh: { user: root }`). A guest without the SSH user (or,
 * for the host's sshd, without its privilege separation user `sshd`) gets
 * it added to passwd, group and shadow in the upper layer. */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "core/ssh/ssh.h"
#include "core/base/util.h"
#include "providers/container/container.h"

#define HOST_KEY "etc/ssh/ssh_host_ed25519_key"

struct owner {
	uid_t uid;
	gid_t gid;
	mode_t mode;
};

/* The two layers, each an open directory; names under them are relative.
 * shift: the machine's id range (ct_boot.idmap): the upper layer holds the
 * guest's ids moved into it, the box's lower layer its ids as they are. */
struct layers {
	int upper, lower;
	uint32_t shift;
};

static const struct owner root_dir = {0, 0, 0755};

static int put_str(const struct layers *l, const char *rel, const char *s, const struct owner *o,
		   struct diag *d);

/* Host keys of the types corral does not make: a box that ships them would
 * give every machine made from it the same ones, so they are hidden. */
static const char *const foreign_keys[] = {
	"ssh_host_rsa_key", "ssh_host_rsa_key.pub", "ssh_host_ecdsa_key",
	"ssh_host_ecdsa_key.pub", "ssh_host_dsa_key", "ssh_host_dsa_key.pub",
};

/* rel under the layer dirfd, never leaving it and following no symlink. */
static int layer_open(int dirfd, const char *rel, int flags, mode_t mode)
{
	struct open_how how = {
		.flags = (unsigned long long)(flags | O_CLOEXEC | O_NOFOLLOW),
		.mode = flags & O_CREAT ? mode : 0,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
}

static int open_failed(const char *rel, struct diag *d)
{
	if (errno == ELOOP || errno == EXDEV) {
		diag_fail(d, "/%s in the guest is or passes through a symbolic link; corral does "
			     "not follow links in a guest's tree from the host", rel);
		return diag_hint(d, "replace the link by a real directory or file in the guest");
	}
	return diag_errno(d, "open /%s in the guest", rel);
}

/* A whiteout (the guest deleted the box's file) reads as missing. */
int ct_tree_read(int dirfd, const char *rel, size_t max, char **data, struct diag *d)
{
	_cleanup_close_ int fd = layer_open(dirfd, rel, O_RDONLY | O_NONBLOCK, 0);
	struct stat st;
	if (fd < 0 && (errno == ENOENT || errno == ENXIO || errno == ENODEV))
		return errno = ENOENT, -1;
	if (fd < 0)
		return open_failed(rel, d);
	if (fstat(fd, &st) < 0)
		return diag_errno(d, "stat /%s in the guest", rel);
	if (!S_ISREG(st.st_mode))
		return errno = ENOENT, -1;
	_cleanup_free_ char *name = xasprintf("/%s in the guest", rel);
	return read_fd(fd, name, max, data, NULL, d);
}

const char *ct_box_init(const char *lower)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
	_cleanup_close_ int root = open(lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int init = (int)syscall(SYS_openat2, root, "sbin/init", &how, sizeof(how));
	_cleanup_close_ int sd = (int)syscall(SYS_openat2, root, "lib/systemd/systemd", &how,
					      sizeof(how));
	struct stat a, b;
	bool same = init >= 0 && sd >= 0 && fstat(init, &a) == 0 && fstat(sd, &b) == 0 &&
		    a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	return same ? "systemd" : "builtin";
}

static bool is_whiteout(int dirfd, const char *name)
{
	struct stat st;
	return fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISCHR(st.st_mode) &&
	       st.st_rdev == makedev(0, 0);
}

bool ct_tree_has(int dirfd, const char *rel)
{
	struct open_how how = {.flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

/* The guest's text file rel: the upper layer's, else the box's; *data is
 * "" and *exists false when neither has it. */
static int layered_read(const struct layers *l, const char *rel, char **data, bool *exists,
			struct diag *d)
{
	int r = ct_tree_read(l->upper, rel, 4 << 20, data, d);
	if (r < 0 && errno == ENOENT && !d->msg[0])
		r = ct_tree_read(l->lower, rel, 4 << 20, data, d);
	*exists = r == 0;
	if (r < 0 && errno == ENOENT && !d->msg[0])
		return *data = xstrdup(""), 0;
	return r < 0 ? diag_wrap(d, "read /%s in the guest", rel) : 0;
}

/* The guest's owner and mode of rel (upper layer first), else *o as is. */
static void file_owner(const struct layers *l, const char *rel, struct owner *o)
{
	struct stat st;
	uint32_t shift = l->shift;
	int fd = layer_open(l->upper, rel, O_PATH, 0);
	if (fd < 0)
		fd = layer_open(l->lower, rel, O_PATH, 0), shift = 0;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid >= shift &&
	    st.st_gid >= shift)
		*o = (struct owner){st.st_uid - shift, st.st_gid - shift, st.st_mode & 0777};
	if (fd >= 0)
		close(fd);
}

/* Appends line to the guest's file rel (kept owner and mode; made with o
 * when missing), in the upper layer. */
static int append_line(const struct layers *l, const char *rel, const char *line, bool always,
		       struct owner o, struct diag *d)
{
	_cleanup_free_ char *old = NULL;
	bool exists;
	if (layered_read(l, rel, &old, &exists, d) < 0)
		return -1;
	if (!exists && !always)
		return 0;
	file_owner(l, rel, &o);
	size_t n = strlen(old);
	_cleanup_free_ char *text = xasprintf("%s%s%s\n", old, n && old[n - 1] != '\n' ? "\n" : "",
					      line);
	return put_str(l, rel, text, &o, d);
}

/* The login shell for a user corral adds: the guest's sh, else bash;
 * NULL when it has neither. */
static const char *login_shell(const struct layers *l)
{
	static const char *const shells[] = {"/bin/sh", "/bin/bash", "/usr/bin/sh", "/usr/bin/bash"};
	for (size_t i = 0; i < sizeof(shells) / sizeof(shells[0]); i++)
		if (ct_tree_has(l->upper, shells[i] + 1) || ct_tree_has(l->lower, shells[i] + 1))
			return shells[i];
	return NULL;
}

/* A user corral adds when the guest's /etc/passwd lacks it. */
struct new_user {
	const char *name, *home, *shell;
	unsigned from, to; /* its id: the first free one in [from, to), uid = gid */
};

/* Adds u to the guest's passwd, group and (when it has one) shadow in the
 * upper layer, unless passwd has it already; "*" in shadow: no password
 * matches, yet the account is not locked (sshd refuses locked ones). */
static int ensure_user(const struct layers *l, const struct new_user *u, struct diag *d)
{
	_cleanup_free_ char *passwd = NULL, *group = NULL;
	bool have_pw, have_gr;
	if (layered_read(l, "etc/passwd", &passwd, &have_pw, d) < 0 ||
	    layered_read(l, "etc/group", &group, &have_gr, d) < 0)
		return -1;
	_cleanup_free_ char *copy = xstrdup(passwd);
	struct passwd_entry e;
	if (passwd_lookup(copy, u->name, &e) == 0)
		return 0;
	if (!u->shell) {
		diag_fail(d, "the guest has no /bin/sh (nor bash) to give its new user `%s`: SSH "
			     "logins and shell steps need one", u->name);
		return diag_hint(d, "use an image with a shell (a static busybox is enough)");
	}
	unsigned id = strcmp(u->name, "root") == 0 ? 0 : passwd_free_id(passwd, group, u->from, u->to);
	if (id == 0 && strcmp(u->name, "root") != 0)
		return diag_fail(d, "no free user id for `%s` in the guest's /etc/passwd", u->name);
	const struct owner pub = {0, 0, 0644}, secret = {0, 0, 0600};
	_cleanup_free_ char *pw = xasprintf("%s:x:%u:%u:%s (corral):%s:%s", u->name, id, id,
					    u->name, u->home, u->shell);
	_cleanup_free_ char *gr = xasprintf("%s:x:%u:", u->name, id);
	_cleanup_free_ char *sh = xasprintf("%s:*:19000:0:99999:7:::", u->name);
	return append_line(l, "etc/passwd", pw, true, pub, d) < 0 ||
			       append_line(l, "etc/group", gr, true, pub, d) < 0 ||
			       append_line(l, "etc/shadow", sh, false, secret, d) < 0
		       ? -1 : 0;
}

/* The users sshd needs that the guest may lack: the SSH user (a home in
 * /home, root's in /root) and, for the host's sshd (b->sshd_dir), its
 * privilege separation user `sshd`. */
static int ensure_users(const struct layers *l, const struct ct_boot *b, const char *user,
			struct diag *d)
{
	_cleanup_free_ char *home = strcmp(user, "root") == 0 ? xstrdup("/root")
							       : xasprintf("/home/%s", user);
	const struct new_user login = {user, home, login_shell(l), 1000, 60000};
	const struct new_user privsep = {"sshd", "/run/sshd", "/usr/sbin/nologin", 100, 1000};
	if (ensure_user(l, &login, d) < 0 || (b->sshd_dir && ensure_user(l, &privsep, d) < 0))
		return diag_wrap(d, "add a user to the guest's /etc/passwd");
	return 0;
}

/* The user's uid, gid and home from the guest's /etc/passwd (the upper
 * layer's when the guest changed it). No NSS: it reads the file. */
static int passwd_find(const struct layers *l, const char *user, struct owner *o, char *home,
		       size_t n, struct diag *d)
{
	char *data = NULL;
	bool exists;
	if (layered_read(l, "etc/passwd", &data, &exists, d) < 0)
		return diag_wrap(d, "find SSH user `%s`", user);
	struct passwd_entry e;
	int found = passwd_lookup(data, user, &e) == 0 && e.home[0] == '/' && strlen(e.home) < n;
	if (found) {
		*o = (struct owner){e.uid, e.gid, 0700};
		snprintf(home, n, "%s", e.home);
	}
	free(data);
	if (!found) {
		diag_fail(d, "the box has no user `%s` with a home directory in /etc/passwd", user);
		return diag_hint(d, "set `ssh: { user: ... }` to a user the box has");
	}
	if (o->uid == 0 && strcmp(user, "root") != 0) {
		diag_fail(d, "the guest's /etc/passwd gives SSH user `%s` uid 0", user);
		return diag_hint(d, "log in as root only by asking for it: `ssh: { user: root }`");
	}
	return 0;
}

/* The directory name in parent, created with o when missing (a whiteout,
 * the guest's deletion of a box directory, is replaced by an opaque one);
 * returns it open, or -1. fix: set o even when it existed. */
static int sub_dir(int parent, const char *name, const char *rel, const struct owner *o,
		   uint32_t shift, bool fix, struct diag *d)
{
	bool made = false, whiteout = is_whiteout(parent, name);
	struct stat st;
	if (whiteout && unlinkat(parent, name, 0) < 0)
		return diag_errno(d, "remove the whiteout /%s", rel);
	if (mkdirat(parent, name, o->mode) == 0)
		made = true;
	else if (errno != EEXIST)
		return diag_errno(d, "mkdir /%s in the guest", rel);
	int fd = layer_open(parent, name, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0 && fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
		errno = ELOOP;
	if (fd < 0)
		return open_failed(rel, d);
	if (whiteout) /* the guest deleted the box's directory: its old entries stay hidden */
		fsetxattr(fd, "trusted.overlay.opaque", "y", 1, 0);
	if ((made || fix) &&
	    (fchown(fd, o->uid + shift, o->gid + shift) < 0 || fchmod(fd, o->mode) < 0)) {
		diag_errno(d, "set owner of /%s in the guest", rel);
		close(fd);
		return -1;
	}
	return fd;
}

/* Opens upper/rel, creating it and its parents as the lower layer has them
 * (owner, mode) so the merged view is unchanged; directories the box lacks
 * get `last` (the final one) or root 0755. fix_last: give the final one
 * `last` even when it exists. "" is the layer itself. */
static int mirror_dirs(const struct layers *l, const char *rel, const struct owner *last,
		       bool fix_last, struct diag *d)
{
	int fd = layer_open(l->upper, ".", O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		return diag_errno(d, "open the upper layer");
	_cleanup_free_ char *copy = xstrdup(rel);
	char *name = copy;
	for (char *p = copy; *name; p++) {
		bool end = *p == '\0';
		if (*p != '/' && !end)
			continue;
		*p = '\0';
		struct owner o = end ? *last : root_dir;
		struct stat st;
		_cleanup_close_ int lfd = layer_open(l->lower, copy, O_PATH, 0);
		if (lfd >= 0 && fstat(lfd, &st) == 0 && S_ISDIR(st.st_mode))
			o = (struct owner){st.st_uid, st.st_gid, st.st_mode & 07777};
		int sub = sub_dir(fd, name, copy, end ? last : &o, l->shift, end && fix_last, d);
		close(fd);
		if (sub < 0)
			return -1;
		fd = sub;
		if (end)
			break;
		*p = '/';
		name = p + 1;
	}
	return fd;
}

/* Writes rel in the upper layer: a fresh temp name in its directory, owner
 * and mode on the descriptor, then renamed over whatever rel was (a link
 * there is replaced, not followed). */
static int put_file(const struct layers *l, const char *rel, const char *data, size_t len,
		    const struct owner *o, struct diag *d)
{
	_cleanup_free_ char *dir = path_dirname(rel);
	const char *base = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
	_cleanup_close_ int dfd = mirror_dirs(l, strcmp(dir, ".") ? dir : "", &root_dir, false, d);
	if (dfd < 0)
		return -1;
	char tmp[64];
	snprintf(tmp, sizeof(tmp), ".corral.%d.tmp", (int)getpid());
	unlinkat(dfd, tmp, 0);
	_cleanup_close_ int fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
					0600);
	if (fd < 0)
		return diag_errno(d, "create /%s in the guest", rel);
	if (write_all(fd, data, len) < 0 || fchown(fd, o->uid + l->shift, o->gid + l->shift) < 0 ||
	    fchmod(fd, o->mode) < 0 || renameat(dfd, tmp, dfd, base) < 0) {
		diag_errno(d, "write /%s in the guest", rel);
		unlinkat(dfd, tmp, 0);
		return -1;
	}
	return 0;
}

static int put_str(const struct layers *l, const char *rel, const char *s, const struct owner *o,
		   struct diag *d)
{
	return put_file(l, rel, s, strlen(s), o, d);
}

static int write_identity(const struct layers *l, const struct ct_boot *b, struct diag *d)
{
	const struct owner f = {0, 0, 0644};
	_cleanup_free_ char *hostname = xasprintf("%s\n", b->hostname);
	_cleanup_free_ char *hosts = xasprintf("127.0.0.1\tlocalhost\n"
					       "::1\t\tlocalhost ip6-localhost ip6-loopback\n"
					       "%s\t%s\n",
					       b->nets[0].ip, b->hostname);
	char *resolv = NULL;
	size_t len;
	struct diag ignored = {0};
	if (b->rootless) /* pasta forwards what is sent there to the host's resolver */
		resolv = xstrdup("nameserver " CT_PASTA_DNS "\n");
	else if (read_file("/etc/resolv.conf", 1 << 16, &resolv, &len, &ignored) < 0)
		resolv = xstrdup("");
	int r = put_str(l, "etc/hostname", hostname, &f, d) < 0 ||
			put_str(l, "etc/hosts", hosts, &f, d) < 0 ||
			put_str(l, "etc/resolv.conf", resolv, &f, d) < 0
		? -1 : 0;
	free(resolv);
	return r;
}

static int authorize_key(const char *login, const struct layers *l, const char *pub,
			 struct diag *d)
{
	struct owner user = {0};
	char home[256];
	if (passwd_find(l, login, &user, home, sizeof(home), d) < 0)
		return -1;
	_cleanup_free_ char *sshdir = xasprintf("%s/.ssh", home + 1);
	_cleanup_free_ char *rel = path_join(sshdir, "authorized_keys");
	struct owner home_o = {user.uid, user.gid, 0755};
	int fd = mirror_dirs(l, home + 1, &home_o, false, d);
	if (fd < 0)
		return -1;
	close(fd);
	if ((fd = mirror_dirs(l, sshdir, &user, true, d)) < 0)
		return -1;
	close(fd);
	char *old = NULL;
	struct diag rd = {0};
	if (ct_tree_read(l->upper, rel, 1 << 20, &old, &rd) < 0 && errno == ENOENT && !rd.msg[0])
		ct_tree_read(l->lower, rel, 1 << 20, &old, &rd);
	if (rd.msg[0]) {
		*d = rd;
		return -1;
	}
	struct buf keys = {0};
	if (old)
		buf_puts(&keys, old);
	if (!old || !strstr(old, pub)) {
		if (keys.len && keys.s[keys.len - 1] != '\n')
			buf_puts(&keys, "\n");
		buf_printf(&keys, "%s\n", pub);
	}
	free(old);
	user.mode = 0600;
	int r = put_str(l, rel, keys.s, &user, d);
	buf_free(&keys);
	return r;
}

/* The machine's host key lives in its directory (made once, *host_pub set
 * then) and is written with its matching .pub on every up, over whatever
 * the box or the guest left; the key types corral does not make are hidden
 * by whiteouts when the box has them and the guest made none of its own. */
static int host_keys(const char *priv, const char *name, const struct layers *l,
		     struct diag *d)
{
	_cleanup_free_ char *text = NULL, *pub = NULL;
	if (read_file_flags(priv, O_NOFOLLOW, 1 << 16, &text, NULL, d) < 0 ||
	    ssh_public_line(priv, &pub, d) < 0)
		return -1;
	char *sp = strchr(pub, ' ') ? strchr(strchr(pub, ' ') + 1, ' ') : NULL;
	if (sp) /* the guest's own comment, not corral's */
		*sp = '\0';
	_cleanup_free_ char *line = xasprintf("%s root@%s\n", pub, name);
	const struct owner secret = {0, 0, 0600}, open_o = {0, 0, 0644};
	int r = put_str(l, HOST_KEY, text, &secret, d) < 0 ||
			put_str(l, HOST_KEY ".pub", line, &open_o, d) < 0
		? -1 : 0;
	explicit_bzero(text, strlen(text));
	_cleanup_close_ int dfd = r < 0 ? -1 : mirror_dirs(l, "etc/ssh", &root_dir, false, d);
	if (dfd < 0)
		return -1;
	for (size_t i = 0; i < sizeof(foreign_keys) / sizeof(foreign_keys[0]); i++) {
		_cleanup_free_ char *rel = path_join("etc/ssh", foreign_keys[i]);
		struct stat st;
		_cleanup_close_ int lfd = layer_open(l->lower, rel, O_PATH, 0);
		bool in_box = lfd >= 0 && fstat(lfd, &st) == 0;
		if (in_box && fstatat(dfd, foreign_keys[i], &st, AT_SYMLINK_NOFOLLOW) < 0 &&
		    mknodat(dfd, foreign_keys[i], S_IFCHR, makedev(0, 0)) < 0)
			return diag_errno(d, "hide the box's /%s", rel);
	}
	return 0;
}

int ct_rootfs_write(const struct ct_boot *b, const char *user_pub, const char *host_key,
		    const char *name, struct diag *d)
{
	struct layers l = {
		open(b->upper, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
		open(b->lower, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC),
		b->idmap,
	};
	int r = -1;
	if (l.upper < 0 || l.lower < 0)
		diag_errno(d, "open %s", l.upper < 0 ? b->upper : b->lower);
	else if (write_identity(&l, b, d) < 0 || ensure_users(&l, b, b->user, d) < 0 ||
		 authorize_key(b->user, &l, user_pub, d) < 0)
		diag_wrap(d, "%s: write the machine's files", name);
	else if (host_keys(host_key, name, &l, d) < 0)
		diag_wrap(d, "%s: SSH host key", name);
	else
		r = 0;
	if (l.upper >= 0)
		close(l.upper);
	if (l.lower >= 0)
		close(l.lower);
	return r;
}

int ct_host_key(const struct machine *m, char **host_key, char **host_pub, struct diag *d)
{
	*host_pub = NULL;
	*host_key = path_join(m->dir, "ssh_host_ed25519_key");
	if (!path_exists(*host_key) && ssh_host_key_generate(*host_key, host_pub, d) < 0)
		return -1;
	return 0;
}

int ct_rootfs_prepare(const struct machine *m, const struct ct_boot *b, const char *user_pub,
		      char **host_pub, struct diag *d)
{
	_cleanup_free_ char *key = NULL;
	if (ct_host_key(m, &key, host_pub, d) < 0)
		return diag_wrap(d, "%s: SSH host key", m->cfg->name);
	return ct_rootfs_write(b, user_pub, key, m->cfg->name, d);
}
