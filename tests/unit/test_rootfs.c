/* What rootfs.c writes into a container's upper layer from the host: the
 * machine's files with the box's owners, a complete host key set (the box's
 * other key types hidden by whiteouts), and nothing through a symlink the
 * guest planted (~/.ssh, /etc/ssh, /etc/hosts) nor for a uid-0 SSH user. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/base/util.h"
#include "providers/container/container.h"
#include "tests/unit/t.h"

#define PUB "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake corral"

static char dir[] = "/tmp/corral-rootfs.XXXXXX";
static const char *sshd_dir; /* ct_boot.sshd_dir: the machine runs the host's sshd */

static void put(const char *rel, const char *text)
{
	_cleanup_free_ char *p = path_join(dir, rel);
	_cleanup_free_ char *parent = path_dirname(p);
	struct diag d = {0};
	CHECK(mkdir_p(parent, 0755, &d) == 0);
	CHECK(write_file_atomic(p, text, strlen(text), 0644, &d) == 0);
}

static int prepare(const char *user, struct diag *d)
{
	struct machine_cfg cfg = {.name = "web", .ssh = {.user = (char *)user}};
	_cleanup_free_ char *mdir = path_join(dir, "m");
	struct machine m = {.cfg = &cfg, .dir = mdir};
	_cleanup_free_ char *lower = path_join(dir, "lower"), *upper = path_join(dir, "upper");
	struct ct_boot b = {.lower = lower, .upper = upper, .hostname = "web", .nnets = 1, .user = user,
			    .sshd_dir = sshd_dir};
	snprintf(b.nets[0].ip, sizeof(b.nets[0].ip), "10.213.0.9");
	char *host_pub = NULL;
	mkdir_p(mdir, 0700, d);
	mkdir_p(upper, 0755, d);
	int r = ct_rootfs_prepare(&m, &b, PUB, &host_pub, d);
	free(host_pub);
	return r;
}

static bool untouched(const char *victim)
{
	struct stat st;
	_cleanup_free_ char *f = path_join(victim, "file");
	char *text = NULL;
	struct diag d = {0};
	bool same = stat(victim, &st) == 0 && st.st_uid == 0 && (st.st_mode & 07777) == 0755 &&
		    read_file(f, 100, &text, NULL, &d) == 0 && strcmp(text, "precious\n") == 0;
	_cleanup_free_ char *ak = path_join(victim, "authorized_keys");
	free(text);
	return same && !path_exists(ak);
}

static void test_writes_and_keys(void)
{
	struct diag d = {0};
	CHECK(prepare("vagrant", &d) == 0);
	_cleanup_free_ char *ak = path_join(dir, "upper/home/vagrant/.ssh/authorized_keys");
	_cleanup_free_ char *pub = path_join(dir, "upper/etc/ssh/ssh_host_ed25519_key.pub");
	_cleanup_free_ char *rsa = path_join(dir, "upper/etc/ssh/ssh_host_rsa_key");
	struct stat st;
	CHECK(stat(ak, &st) == 0 && st.st_uid == 1000 && (st.st_mode & 0777) == 0600);
	CHECK(stat(pub, &st) == 0 && S_ISREG(st.st_mode));
	CHECK(lstat(rsa, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0));
	_cleanup_free_ char *etc = path_join(dir, "upper/etc");
	CHECK(stat(etc, &st) == 0 && (st.st_mode & 07777) == 0755);
}

/* rel (a directory corral writes into) replaced by a link to victim:
 * prepare refuses, naming want, and victim is untouched. */
static void dir_link_refused(const char *rel, const char *victim, const char *want)
{
	struct diag d = {0};
	_cleanup_free_ char *path = path_join(dir, rel);
	CHECK(rm_rf(path, &d) == 0);
	CHECK(symlink(victim, path) == 0);
	CHECK(prepare("vagrant", &d) < 0);
	CHECK(strstr(d.msg, want) != NULL);
	CHECK(untouched(victim));
	unlink(path);
}

static void test_symlinks_refused(void)
{
	struct diag d = {0};
	_cleanup_free_ char *victim = path_join(dir, "victim");
	dir_link_refused("upper/home/vagrant/.ssh", victim, "symbolic link");
	dir_link_refused("upper/etc/ssh", victim, "/etc/ssh in the guest");

	_cleanup_free_ char *hosts = path_join(dir, "upper/etc/hosts");
	_cleanup_free_ char *vf = path_join(victim, "file");
	unlink(hosts);
	CHECK(symlink(vf, hosts) == 0);
	memset(&d, 0, sizeof(d));
	CHECK(prepare("vagrant", &d) == 0);
	CHECK(untouched(victim));
	struct stat st;
	CHECK(lstat(hosts, &st) == 0 && S_ISREG(st.st_mode));
}

static void test_uid0_user(void)
{
	struct diag d = {0};
	put("upper/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nvagrant:x:0:0::/home/vagrant:/bin/sh\n");
	CHECK(prepare("vagrant", &d) < 0);
	CHECK(strstr(d.msg, "uid 0") != NULL);
	memset(&d, 0, sizeof(d));
	CHECK(prepare("root", &d) == 0);
}

static bool has_line(const char *rel, const char *line)
{
	_cleanup_free_ char *p = path_join(dir, rel);
	char *text = NULL;
	struct diag d = {0};
	bool found = read_file(p, 1 << 20, &text, NULL, &d) == 0 && strstr(text, line) != NULL;
	free(text);
	return found;
}

/* A user the guest lacks (and sshd's privsep user, for the host's sshd)
 * is added to passwd, group and shadow (kept 0640) in the upper layer;
 * no shell in the guest: refused, saying so. */
static void test_added_user(void)
{
	struct diag d = {0};
	put("upper/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nn:x:1000:65534::/:/bin/false\n");
	put("upper/etc/shadow", "root:*:1:0:99999:7:::\n");
	_cleanup_free_ char *shadow = path_join(dir, "upper/etc/shadow");
	CHECK(chmod(shadow, 0640) == 0);
	put("lower/bin/sh", "");
	sshd_dir = "/nonexistent";
	CHECK(prepare("app", &d) == 0);
	CHECK(has_line("upper/etc/passwd", "\napp:x:1001:1001:app (corral):/home/app:/bin/sh\n"));
	CHECK(has_line("upper/etc/passwd", "\nsshd:x:100:100:sshd (corral):/run/sshd:"));
	CHECK(has_line("upper/etc/group", "app:x:1001:\n"));
	CHECK(has_line("upper/etc/shadow", "\napp:*:"));
	struct stat st;
	_cleanup_free_ char *ak = path_join(dir, "upper/home/app/.ssh/authorized_keys");
	CHECK(stat(ak, &st) == 0 && st.st_uid == 1001 && st.st_gid == 1001);
	CHECK(stat(shadow, &st) == 0 && (st.st_mode & 0777) == 0640);
	CHECK(prepare("app", &d) == 0); /* added once */
	_cleanup_free_ char *pw = path_join(dir, "upper/etc/passwd");
	char *text = NULL;
	CHECK(read_file(pw, 1 << 20, &text, NULL, &d) == 0);
	const char *first = text ? strstr(text, "\napp:") : NULL;
	CHECK(first && !strstr(first + 1, "\napp:"));
	free(text);
	_cleanup_free_ char *sh = path_join(dir, "lower/bin/sh");
	unlink(sh);
	memset(&d, 0, sizeof(d));
	CHECK(prepare("other", &d) < 0 && strstr(d.msg, "no /bin/sh") != NULL);
	sshd_dir = NULL;
}

int main(void)
{
	if (geteuid() != 0) {
		printf("ok - test_rootfs: skipped (needs root to set owners)\n");
		return 0;
	}
	if (!mkdtemp(dir))
		return 1;
	put("lower/etc/passwd", "root:x:0:0:root:/root:/bin/sh\nvagrant:x:1000:1000::/home/vagrant:/bin/sh\n");
	put("lower/etc/ssh/ssh_host_rsa_key", "box's key\n");
	put("lower/root/.keep", "");
	put("victim/file", "precious\n");
	_cleanup_free_ char *home = path_join(dir, "lower/home/vagrant");
	struct diag d = {0};
	mkdir_p(home, 0755, &d);
	if (chown(home, 1000, 1000) < 0)
		return 1;
	RUN(test_writes_and_keys);
	RUN(test_symlinks_refused);
	RUN(test_uid0_user);
	RUN(test_added_user);
	rm_rf(dir, &d);
	return T_END();
}
