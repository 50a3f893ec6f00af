/* The host's OpenSSH server, packed to run inside any root tree: a
 * machine whose box has no /usr/sbin/sshd, and every OCI image (format
 * "oci": the image is never changed, so its own sshd, when it has one, is
 * not configured by corral), gets this directory mounted read-only at
 * CT_SSHD_DIR. It holds sshd, every shared object `ldd` lists for it
 * under lib/ (by file name), the dynamic loader as ld.so and a fixed
 * sshd_config; the init starts sshd through that loader with
 * --library-path, so nothing of the guest's C library is needed (a
 * busybox-only or musl tree works). Built once per host binary, in
 * $CORRAL_HOME/cache/sshd/<first 16 hex digits of sshd's sha256>, made in
 * a temporary directory and renamed into place so concurrent builders
 * never see half of one. Only host paths are read: ldd's, ours. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/digest.h"
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

static int fill(const char *dir, struct diag *d)
{
	const char *const argv[] = {"ldd", HOST_SSHD, NULL};
	struct proc_cmd c = {.argv = argv, .split = true};
	if (proc_cmd_run(&c, d) < 0 || proc_cmd_check(&c, d) < 0) {
		proc_cmd_free(&c);
		return diag_wrap(d, "list the libraries of %s", HOST_SSHD);
	}
	_cleanup_free_ char *lib = path_join(dir, "lib");
	int r = mkdir_p(lib, 0755, d);
	bool have_loader = false;
	char *save = NULL;
	for (char *l = strtok_r(c.out.s, "\n", &save); r == 0 && l; l = strtok_r(NULL, "\n", &save)) {
		bool loader = false;
		char *src = ldd_path(l, &loader);
		if (!src)
			continue;
		const char *base = strrchr(src, '/') + 1;
		_cleanup_free_ char *dst = loader ? path_join(dir, "ld.so") : path_join(lib, base);
		have_loader |= loader;
		r = copy_host_file(src, dst, 0755, d);
	}
	proc_cmd_free(&c);
	if (r == 0 && !have_loader)
		r = diag_fail(d, "ldd names no loader for %s (a static sshd is not supported)",
			      HOST_SSHD);
	_cleanup_free_ char *bin = path_join(dir, "sshd"), *conf = path_join(dir, "sshd_config");
	if (r == 0)
		r = copy_host_file(HOST_SSHD, bin, 0755, d);
	if (r == 0)
		r = write_file_atomic(conf, sshd_config, strlen(sshd_config), 0644, d);
	return r;
}

int ct_sshd_bundle(char **dir, struct diag *d)
{
	char hex[HASH_HEX_MAX];
	*dir = NULL;
	if (access(HOST_SSHD, X_OK) < 0) {
		diag_fail(d, "this box has no sshd and the host has none to lend it (%s)", HOST_SSHD);
		return diag_hint(d, "install openssh-server on the host (it need not run)");
	}
	if (hash_file(HOST_SSHD, "sha256", NULL, hex, d) < 0)
		return -1;
	_cleanup_free_ char *cache = path_join(corral_home(), "cache/sshd");
	_cleanup_free_ char *leaf = xasprintf("%.16s", hex);
	_cleanup_free_ char *final = path_join(cache, leaf);
	if (path_is_dir(final))
		return *dir = xstrdup(final), 0;
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.XXXXXX", final);
	struct diag ignored = {0};
	if (mkdir_p(cache, 0755, d) < 0)
		return -1;
	if (!mkdtemp(tmp))
		return diag_errno(d, "mkdtemp in %s", cache);
	if (chmod(tmp, 0755) < 0 || fill(tmp, d) < 0) {
		rm_rf(tmp, &ignored);
		return diag_wrap(d, "pack the host's sshd for the machine");
	}
	if (rename(tmp, final) < 0) { /* another corral made it first */
		rm_rf(tmp, &ignored);
		if (!path_is_dir(final))
			return diag_errno(d, "rename %s", tmp);
	}
	*dir = xstrdup(final);
	return 0;
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
