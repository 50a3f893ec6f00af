/* Upload over SFTP: files, trees (modes and symlinks kept) and in-memory
 * data; missing parent directories are created; "~/" is the login's home. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libssh/sftp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/ssh/ssh_priv.h"
#include "core/base/util.h"

enum { CHUNK = 32768 };

static const char *const sftp_errors[] = {
	[SSH_FX_EOF] = "end of file",
	[SSH_FX_NO_SUCH_FILE] = "no such file or directory",
	[SSH_FX_PERMISSION_DENIED] = "permission denied",
	[SSH_FX_FAILURE] = "failed",
	[SSH_FX_BAD_MESSAGE] = "bad message",
	[SSH_FX_NO_CONNECTION] = "no connection",
	[SSH_FX_CONNECTION_LOST] = "connection lost",
	[SSH_FX_OP_UNSUPPORTED] = "operation unsupported",
	[SSH_FX_INVALID_HANDLE] = "invalid handle",
	[SSH_FX_NO_SUCH_PATH] = "no such path",
	[SSH_FX_FILE_ALREADY_EXISTS] = "file already exists",
	[SSH_FX_WRITE_PROTECT] = "write-protected file system",
	[SSH_FX_NO_MEDIA] = "no media",
};

static int sftp_err(struct diag *d, sftp_session sf, const char *what, const char *path)
{
	int e = sftp_get_error(sf);
	const char *why = e > 0 && (size_t)e < sizeof(sftp_errors) / sizeof(sftp_errors[0]) &&
				  sftp_errors[e] ? sftp_errors[e] : ssh_get_error(sf->session);
	return diag_fail(d, "%s %s in the guest: %s", what, path, why);
}

static sftp_session sftp_start(struct ssh_conn *c, struct diag *d)
{
	if (!c) {
		diag_fail(d, "no ssh connection to copy files over");
		return NULL;
	}
	sftp_session sf = sftp_new(c->s);
	if (sf && sftp_init(sf) == SSH_OK)
		return sf;
	ssh_fail(d, c->s, "starting SFTP");
	if (sf)
		sftp_free(sf);
	return NULL;
}

/* Absolute guest path; "~" and "~/x" resolved against the login's home. */
static char *remote_path(struct ssh_conn *c, sftp_session sf, const char *p, struct diag *d)
{
	if (p[0] == '/')
		return xstrdup(p);
	if (p[0] != '~' || (p[1] && p[1] != '/')) {
		diag_fail(d, "guest path `%s` must be absolute or start with ~/", p);
		return NULL;
	}
	if (!c->home) {
		char *home = sftp_canonicalize_path(sf, ".");
		if (!home) {
			sftp_err(d, sf, "finding the home directory of", c->ep.user);
			return NULL;
		}
		c->home = xstrdup(home);
		ssh_string_free_char(home);
	}
	return xasprintf("%s%s", strcmp(c->home, "/") ? c->home : "", p + 1);
}

static bool remote_is_dir(sftp_session sf, const char *path)
{
	sftp_attributes a = sftp_stat(sf, path);
	bool dir = a && a->type == SSH_FILEXFER_TYPE_DIRECTORY;
	sftp_attributes_free(a);
	return dir;
}

static int remote_mkdir(sftp_session sf, const char *path, unsigned mode, struct diag *d)
{
	if (sftp_mkdir(sf, path, mode) < 0 && !remote_is_dir(sf, path))
		return sftp_err(d, sf, "creating directory", path);
	return 0;
}

/* Every missing directory above `path`. */
static int remote_parents(sftp_session sf, const char *path, struct diag *d)
{
	_cleanup_free_ char *p = path_dirname(path);
	for (char *s = p + 1;; s++) {
		if (*s && *s != '/')
			continue;
		char save = *s;
		*s = '\0';
		if (!remote_is_dir(sf, p) && remote_mkdir(sf, p, 0755, d) < 0)
			return -1;
		if (!save)
			return 0;
		*s = save;
	}
}

static sftp_file remote_create(sftp_session sf, const char *path, unsigned mode, struct diag *d)
{
	sftp_file f = sftp_open(sf, path, O_WRONLY | O_CREAT | O_TRUNC, mode & 07777);
	if (!f)
		sftp_err(d, sf, "creating", path);
	return f;
}

static int remote_write(sftp_session sf, sftp_file f, const char *path, const char *data,
			size_t len, struct diag *d)
{
	for (size_t off = 0; off < len;) {
		size_t n = len - off < CHUNK ? len - off : CHUNK;
		ssize_t w = sftp_write(f, data + off, n);
		if (w <= 0)
			return sftp_err(d, sf, "writing", path);
		off += (size_t)w;
	}
	return 0;
}

/* Closes f; then sets the exact mode, which the guest's umask may have cut. */
static int remote_finish(sftp_session sf, sftp_file f, const char *path, unsigned mode,
			 int rc, struct diag *d)
{
	if (sftp_close(f) != SSH_NO_ERROR && rc == 0)
		rc = sftp_err(d, sf, "closing", path);
	if (rc == 0 && sftp_chmod(sf, path, mode & 07777) < 0)
		rc = sftp_err(d, sf, "setting the mode of", path);
	return rc;
}

static int put_file(sftp_session sf, const char *local, const char *remote, unsigned mode,
		    struct diag *d)
{
	_cleanup_close_ int fd = open(local, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return diag_errno(d, "%s", local);
	sftp_file f = remote_create(sf, remote, mode, d);
	if (!f)
		return -1;
	char data[CHUNK];
	ssize_t n;
	int rc = 0;
	while (rc == 0 && (n = read(fd, data, sizeof(data))) != 0) {
		if (n < 0 && errno != EINTR)
			rc = diag_errno(d, "%s", local);
		else if (n > 0)
			rc = remote_write(sf, f, remote, data, (size_t)n, d);
	}
	return remote_finish(sf, f, remote, mode, rc, d);
}

static int put_symlink(sftp_session sf, const char *local, const char *remote, struct diag *d)
{
	char target[4096];
	ssize_t n = readlink(local, target, sizeof(target) - 1);
	if (n < 0)
		return diag_errno(d, "%s", local);
	target[n] = '\0';
	sftp_unlink(sf, remote);
	if (sftp_symlink(sf, target, remote) < 0)
		return sftp_err(d, sf, "creating symlink", remote);
	return 0;
}

static int put_tree(sftp_session sf, const char *local, const char *remote, struct diag *d);

/* Filled while still writable (0700), given its own mode at the end. */
static int put_dir(sftp_session sf, const char *local, const char *remote, unsigned mode,
		   struct diag *d)
{
	if (remote_mkdir(sf, remote, 0700, d) < 0)
		return -1;
	if (sftp_chmod(sf, remote, 0700) < 0)
		return sftp_err(d, sf, "setting the mode of", remote);
	DIR *dir = opendir(local);
	if (!dir)
		return diag_errno(d, "%s", local);
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(dir))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		_cleanup_free_ char *l = path_join(local, e->d_name);
		_cleanup_free_ char *r = path_join(remote, e->d_name);
		rc = put_tree(sf, l, r, d);
	}
	closedir(dir);
	if (rc == 0 && sftp_chmod(sf, remote, mode & 07777) < 0)
		rc = sftp_err(d, sf, "setting the mode of", remote);
	return rc;
}

static int put_tree(sftp_session sf, const char *local, const char *remote, struct diag *d)
{
	struct stat st;
	if (lstat(local, &st) < 0)
		return diag_errno(d, "%s", local);
	if (S_ISREG(st.st_mode))
		return put_file(sf, local, remote, st.st_mode, d);
	if (S_ISDIR(st.st_mode))
		return put_dir(sf, local, remote, st.st_mode, d);
	if (S_ISLNK(st.st_mode))
		return put_symlink(sf, local, remote, d);
	return diag_fail(d, "%s: only files, directories and symlinks can be uploaded", local);
}

int ssh_upload(struct ssh_conn *c, const char *local, const char *remote, struct diag *d)
{
	sftp_session sf = sftp_start(c, d);
	if (!sf)
		return -1;
	_cleanup_free_ char *r = remote_path(c, sf, remote, d);
	int rc = r && remote_parents(sf, r, d) == 0 ? put_tree(sf, local, r, d) : -1;
	sftp_free(sf);
	return rc < 0 ? diag_wrap(d, "upload %s", local) : 0;
}

int ssh_upload_data(struct ssh_conn *c, const void *data, size_t len, const char *remote,
		    unsigned mode, struct diag *d)
{
	sftp_session sf = sftp_start(c, d);
	if (!sf)
		return -1;
	_cleanup_free_ char *r = remote_path(c, sf, remote, d);
	int rc = -1;
	sftp_file f = r && remote_parents(sf, r, d) == 0 ? remote_create(sf, r, mode, d) : NULL;
	if (f)
		rc = remote_finish(sf, f, r, mode, remote_write(sf, f, r, data, len, d), d);
	sftp_free(sf);
	return rc < 0 ? diag_wrap(d, "upload to %s", remote) : 0;
}
