/* The host's OpenSSH server, packed to run inside any root tree: a
 * machine whose box has no /usr/sbin/sshd, and every OCI image (format
 * "oci": the image is never changed, so its own sshd, when it has one, is
 * not configured by corral), gets this directory mounted read-only at
 * CT_SSHD_DIR. It holds sshd, every shared object `ldd` lists for it
 * under lib/ (by file name), the dynamic loader as ld.so and a fixed
 * sshd_config; the init starts sshd through that loader with
 * --library-path, so nothing of the guest's C library is needed (a
 * busybox-only or musl tree works). Built once per set of host files (a
 * package upgrade of sshd or of a library makes a new one), in
 * $CORRAL_HOME/cache/sshd/<16 hex digits>, made in a temporary directory
 * and renamed into place so concurrent builders never see half of one.
 * Only host paths are read: ldd's, ours. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/host/proc.h"
#include "core/host/state.h"
#include "providers/container/container.h"

#define HOST_SSHD "/usr/sbin/sshd"
#define BIN_MAX (64u << 20)

/* Fixed at compile time in Debian's OpenSSH: the privilege separation
 * user `sshd` (added to the guest's passwd when missing, rootfs.c) and
 * /run/sshd (made by the init). No PAM stack of the guest's is used. */
static const char sshd_config[] =
	"# corral: the host's sshd in a machine (providers/container/sshbundle.c)\n"
	"HostKey /etc/ssh/ssh_host_ed25519_key\n"
	"AuthorizedKeysFile .ssh/authorized_keys\n"
	"UsePAM no\n"
	"UseDNS no\n"
	"PasswordAuthentication no\n"
	"KbdInteractiveAuthentication no\n"
	"PermitRootLogin prohibit-password\n"
	"PrintMotd no\n"
	"PrintLastLog no\n"
	"PidFile none\n"
	"Subsystem sftp internal-sftp\n";

/* Copies the host file src (symlinks resolved: ldd's names) to dst. */
static int copy_host_file(const char *src, const char *dst, mode_t mode, struct diag *d)
{
	char *data = NULL;
	size_t len = 0;
	if (read_file(src, BIN_MAX, &data, &len, d) < 0)
		return -1;
	int r = write_file_atomic(dst, data, len, mode, d);
	free(data);
	return r;
}

/* One line of ldd: "libX.so => /path (0x..)" gives /path; a line that
 * starts with a path and has no "=>" is the loader. NULL for others. */
static char *ldd_path(char *line, bool *loader)
{
	char *arrow = strstr(line, "=> ");
	char *p = arrow ? arrow + 3 : line + strspn(line, " \t");
	if (*p != '/')
		return NULL;
	p[strcspn(p, " \t")] = '\0';
	*loader = arrow == NULL;
	return p;
}

/* The shared objects ldd lists for the host's sshd, and its loader. */
static int ldd_list(struct strv *libs, char **loader, struct diag *d)
{
	const char *const argv[] = {"ldd", HOST_SSHD, NULL};
	struct proc_cmd c = {.argv = argv, .split = true};
	*loader = NULL;
	if (proc_cmd_run(&c, d) < 0 || proc_cmd_check(&c, d) < 0) {
		proc_cmd_free(&c);
		return diag_wrap(d, "list the libraries of %s", HOST_SSHD);
	}
	char *save = NULL;
	for (char *l = strtok_r(c.out.s, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		bool is_loader = false;
		char *src = ldd_path(l, &is_loader);
		if (src && is_loader && !*loader)
			*loader = xstrdup(src);
		else if (src && !is_loader)
			strv_push(libs, src);
	}
	proc_cmd_free(&c);
	if (!*loader)
		return diag_fail(d, "ldd names no loader for %s (a static sshd is not supported)",
				 HOST_SSHD);
	return 0;
}

/* What the pack is made of, as the host has it now: each file's identity
 * (device, inode, size, change time: a package upgrade replaces the file)
 * and our sshd_config; an upgraded library makes a new pack. */
static void pack_key(const struct strv *libs, const char *loader, char *hex)
{
	struct hash *h = hash_new("sha256");
	hash_update(h, sshd_config, strlen(sshd_config));
	const char *fixed[] = {HOST_SSHD, loader};
	for (size_t i = 0; i < 2 + libs->n; i++) {
		const char *p = i < 2 ? fixed[i] : libs->v[i - 2];
		struct stat st = {0};
		stat(p, &st);
		char line[4200];
		int n = snprintf(line, sizeof(line), "%s %llu %llu %lld %lld.%09ld\n", p,
				 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
				 (long long)st.st_size, (long long)st.st_ctim.tv_sec,
				 st.st_ctim.tv_nsec);
		hash_update(h, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
	}
	hash_final(h, NULL, hex);
}

static int fill(const char *dir, const struct strv *libs, const char *loader, struct diag *d)
{
	_cleanup_free_ char *lib = path_join(dir, "lib"), *ld = path_join(dir, "ld.so");
	_cleanup_free_ char *bin = path_join(dir, "sshd"), *conf = path_join(dir, "sshd_config");
	int r = mkdir_p(lib, 0755, d);
	for (size_t i = 0; r == 0 && i < libs->n; i++) {
		_cleanup_free_ char *dst = path_join(lib, strrchr(libs->v[i], '/') + 1);
		r = copy_host_file(libs->v[i], dst, 0755, d);
	}
	if (r == 0)
		r = copy_host_file(loader, ld, 0755, d);
	if (r == 0)
		r = copy_host_file(HOST_SSHD, bin, 0755, d);
	if (r == 0)
		r = write_file_atomic(conf, sshd_config, strlen(sshd_config), 0644, d);
	return r;
}

/* Made in a temporary directory, renamed into place: a concurrent maker
 * of the same pack wins or loses whole. */
static int make_pack(const char *cache, const char *final, const struct strv *libs,
		     const char *loader, struct diag *d)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.XXXXXX", final);
	struct diag ignored = {0};
	if (mkdir_p(cache, 0755, d) < 0)
		return -1;
	if (!mkdtemp(tmp))
		return diag_errno(d, "mkdtemp in %s", cache);
	if (chmod(tmp, 0755) < 0 || fill(tmp, libs, loader, d) < 0) {
		rm_rf(tmp, &ignored);
		return diag_wrap(d, "pack the host's sshd for the machine");
	}
	if (rename(tmp, final) < 0) { /* another corral made it first */
		rm_rf(tmp, &ignored);
		if (!path_is_dir(final))
			return diag_errno(d, "rename %s", tmp);
	}
	return 0;
}

int ct_sshd_bundle(char **dir, struct diag *d)
{
	char hex[HASH_HEX_MAX];
	*dir = NULL;
	if (access(HOST_SSHD, X_OK) < 0) {
		diag_fail(d, "this box has no sshd and the host has none to lend it (%s)", HOST_SSHD);
		return diag_hint(d, "install openssh-server on the host (it need not run)");
	}
	struct strv libs = {0};
	_cleanup_free_ char *loader = NULL;
	if (ldd_list(&libs, &loader, d) < 0) {
		strv_free(&libs);
		return -1;
	}
	pack_key(&libs, loader, hex);
	_cleanup_free_ char *cache = path_join(corral_home(), "cache/sshd");
	_cleanup_free_ char *leaf = xasprintf("%.16s", hex);
	_cleanup_free_ char *final = path_join(cache, leaf);
	int r = path_is_dir(final) ? 0 : make_pack(cache, final, &libs, loader, d);
	strv_free(&libs);
	if (r == 0)
		*dir = xstrdup(final);
	return r;
}

bool ct_box_is_oci(const char *box_dir)
{
	_cleanup_free_ char *meta = box_dir ? path_join(box_dir, "metadata.json") : NULL;
	json_t *o;
	struct diag d = {0};
	bool oci = false;
	if (meta && state_load(meta, &o, &d) == 0) {
		oci = strcmp(state_str(o, "format", ""), "oci") == 0;
		json_decref(o);
	}
	return oci;
}

bool ct_needs_host_sshd(const char *box_dir, const char *lower)
{
	_cleanup_close_ int root = open(lower, O_PATH | O_DIRECTORY | O_CLOEXEC);
	return ct_box_is_oci(box_dir) || root < 0 || !ct_tree_has(root, "usr/sbin/sshd");
}
