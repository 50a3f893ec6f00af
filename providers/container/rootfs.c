/* The machine's own files, written into its overlay upper layer before the
 * init mounts it: the box's lower layer stays untouched and shared. Owners
 * are the guest's ids moved into the machine's range (b->idmap). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ssh/ssh.h"
#include "core/base/util.h"
#include "providers/container/container.h"

struct owner {
	uid_t uid;
	gid_t gid;
	mode_t mode;
};

static const struct owner root_dir = {0, 0, 0755};

/* The user's uid, gid and home from the guest's /etc/passwd (the upper
 * layer's when the guest changed it). No NSS: it reads the file. */
static int passwd_find(const struct ct_boot *b, const char *user, struct owner *o,
		       char *home, size_t n, struct diag *d)
{
	_cleanup_free_ char *up = path_join(b->upper, "etc/passwd");
	_cleanup_free_ char *lp = path_join(b->lower, "etc/passwd");
	const char *path = path_exists(up) ? up : lp;
	char *data;
	size_t len;
	if (read_file(path, 4 << 20, &data, &len, d) < 0)
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
	return 0;
}

static int make_dir(const char *p, const struct owner *o, uint32_t shift, struct diag *d)
{
	if (mkdir(p, o->mode) < 0 && errno != EEXIST)
		return diag_errno(d, "mkdir %s", p);
	if (chown(p, o->uid + shift, o->gid + shift) < 0 || chmod(p, o->mode) < 0)
		return diag_errno(d, "set owner of %s", p);
	return 0;
}

/* Creates upper/rel and its parents as the lower layer has them (owner,
 * mode), so the merged view is unchanged; directories the box lacks get
 * `last` (the final one) or root 0755. */
static int mirror_dirs(const struct ct_boot *b, const char *rel, const struct owner *last,
		       struct diag *d)
{
	_cleanup_free_ char *copy = xstrdup(rel);
	for (char *p = copy;; p++) {
		bool end = *p == '\0';
		if (*p != '/' && !end)
			continue;
		*p = '\0';
		_cleanup_free_ char *up = path_join(b->upper, copy);
		_cleanup_free_ char *lp = path_join(b->lower, copy);
		struct stat st;
		struct owner o = end ? *last : root_dir;
		if (lstat(lp, &st) == 0 && S_ISDIR(st.st_mode))
			o = (struct owner){st.st_uid, st.st_gid, st.st_mode & 07777};
		if (!path_is_dir(up) && make_dir(up, &o, b->idmap, d) < 0)
			return -1;
		if (end)
			return 0;
		*p = '/';
	}
}

static int put_file(const struct ct_boot *b, const char *rel, const char *data,
		    const struct owner *o, struct diag *d)
{
	_cleanup_free_ char *dir = path_dirname(rel);
	_cleanup_free_ char *p = path_join(b->upper, rel);
	if (mirror_dirs(b, dir, &root_dir, d) < 0 ||
	    write_file_atomic(p, data, strlen(data), o->mode, d) < 0)
		return -1;
	if (chown(p, o->uid + b->idmap, o->gid + b->idmap) < 0)
		return diag_errno(d, "chown %s", p);
	return 0;
}

static int write_identity(const struct ct_boot *b, struct diag *d)
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
	if (read_file("/etc/resolv.conf", 1 << 16, &resolv, &len, &ignored) < 0)
		resolv = xstrdup("");
	int r = put_file(b, "etc/hostname", hostname, &f, d) < 0 ||
			put_file(b, "etc/hosts", hosts, &f, d) < 0 ||
			put_file(b, "etc/resolv.conf", resolv, &f, d) < 0
		? -1 : 0;
	free(resolv);
	return r;
}

static int authorize_key(const struct machine *m, const struct ct_boot *b, const char *pub,
			 struct diag *d)
{
	struct owner user = {0};
	char home[256];
	if (passwd_find(b, m->cfg->ssh.user, &user, home, sizeof(home), d) < 0)
		return -1;
	_cleanup_free_ char *sshdir = xasprintf("%s/.ssh", home + 1);
	_cleanup_free_ char *rel = path_join(sshdir, "authorized_keys");
	_cleanup_free_ char *up = path_join(b->upper, rel);
	struct owner home_o = {user.uid, user.gid, 0755};
	if (mirror_dirs(b, home + 1, &home_o, d) < 0 || mirror_dirs(b, sshdir, &user, d) < 0)
		return -1;
	_cleanup_free_ char *ssh_abs = path_join(b->upper, sshdir);
	if (chown(ssh_abs, user.uid + b->idmap, user.gid + b->idmap) < 0 || chmod(ssh_abs, 0700) < 0)
		return diag_errno(d, "set owner of %s", ssh_abs);
	char *old = NULL;
	size_t len = 0;
	struct diag ignored = {0};
	if (path_exists(up) && read_file(up, 1 << 20, &old, &len, &ignored) < 0)
		old = NULL;
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
	int r = put_file(b, rel, keys.s, &user, d);
	buf_free(&keys);
	return r;
}

int ct_rootfs_prepare(const struct machine *m, const struct ct_boot *b, const char *user_pub,
		      char **host_pub, struct diag *d)
{
	*host_pub = NULL;
	if (write_identity(b, d) < 0 || authorize_key(m, b, user_pub, d) < 0)
		return diag_wrap(d, "%s: write the machine's files", m->cfg->name);
	_cleanup_free_ char *key = path_join(b->upper, "etc/ssh/ssh_host_ed25519_key");
	if (path_exists(key))
		return 0;
	_cleanup_free_ char *pub = xasprintf("%s.pub", key);
	if (mirror_dirs(b, "etc/ssh", &root_dir, d) < 0 || ssh_host_key_generate(key, host_pub, d) < 0)
		return diag_wrap(d, "%s: SSH host key", m->cfg->name);
	if (lchown(key, b->idmap, b->idmap) < 0 || (path_exists(pub) && lchown(pub, b->idmap, b->idmap) < 0))
		return diag_errno(d, "%s: set owner of the SSH host key", m->cfg->name);
	return 0;
}
