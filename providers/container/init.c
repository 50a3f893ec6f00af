/* The built-in init: corral re-executed as PID 1 of the container. It
 * finishes the set-up that must happen inside the namespaces (network,
 * overlay root, /dev, /proc, /sys, /run, /tmp, pivot_root), then either
 * hands PID 1 to the box's systemd or stays as a small init:
 *   - starts the services the guest enabled in /etc/rc2.d (S* scripts, in
 *     order, `start`, each given a bounded time) and lists what it ran in
 *     /run/corral-init.status for `corral status -v`;
 *   - keeps port 22 served: starts sshd when nothing listens there, leaves
 *     it be when the guest runs its own (an rc2.d script, or a guest that
 *     restarted sshd itself), restarts a dying sshd with a growing delay
 *     (1 s doubling to 5 min) so a failing one cannot spin. The sshd is the
 *     box's /usr/sbin/sshd, or the host's (sshd=DIR, sshbundle.c), mounted
 *     read-only at CT_SSHD_DIR and run through its own loader;
 *   - with `command: image` (svc=...), runs the image's entrypoint + cmd
 *     with its Env, WorkingDir and User, output to the console log, and
 *     restarts it whenever it exits, with the same growing delay;
 *   - reaps zombies, keeps the console log (its stdout) under
 *     CT_CONSOLE_MAX by moving it to console.log.1, and on SIGTERM/SIGINT
 *     stops every process and exits.
 * Failures before the hand-off go back to the host over fd 3; afterwards
 * to the console log (stdout/stderr). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include "core/host/net.h"
#include "core/host/proc.h"
#include "core/base/util.h"
#include "providers/container/container.h"

#define CTL_FD 3
#define SSHD "/usr/sbin/sshd"
#define RC_DIR "/etc/rc2.d"
#define RC_TIMEOUT_MS 20000       /* one rc2.d script's start, before the next one runs */
#define RC_STATUS "/run/corral-init.status"
#define SSHD_BACKOFF_MAX 300      /* seconds between restarts of an sshd that keeps failing */
#define SSHD_STABLE 10            /* seconds an sshd must run to count as started */
#define SSHD_LISTEN_MS 3000       /* the host's sshd listening, before the rc scripts */
#define SVC_MAX_ARGS 256          /* the image's argv and Env entries, each */

struct init_cfg {
	const char *lower, *upper, *work, *root, *hostname, *init, *user, *idmap_arg, *id;
	const char *rootless, *userkey, *hostkey, *name; /* rootless=1: unshare.c's map */
	uint32_t idmap; /* the host id of guest id 0 */
	int userns;     /* the machine's user namespace, from iso_namespaces */
	const char *nets[CT_MAX_NETS];
	unsigned nnets;
	const char *bind_src[CT_MAX_BINDS], *bind_dst[CT_MAX_BINDS];
	unsigned nsrc, ndst;
	const char *sshd_dir, *svc_dir, *svc_user;
	const char *svc[SVC_MAX_ARGS + 1], *svc_env[SVC_MAX_ARGS + 1]; /* NULL-ended */
	unsigned nsvc, nsvc_env;
};

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	char msg[900];
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dprintf(CTL_FD, "%s%s%s\n", msg, e ? ": " : "", e ? strerror(e) : "");
	return -1;
}

static int parse_args(int argc, char **argv, struct init_cfg *c)
{
	static const struct {
		const char *key;
		size_t off;
	} keys[] = {
		{"lower", offsetof(struct init_cfg, lower)}, {"upper", offsetof(struct init_cfg, upper)},
		{"work", offsetof(struct init_cfg, work)},   {"root", offsetof(struct init_cfg, root)},
		{"hostname", offsetof(struct init_cfg, hostname)},
		{"init", offsetof(struct init_cfg, init)},
		{"user", offsetof(struct init_cfg, user)},
		{"idmap", offsetof(struct init_cfg, idmap_arg)},
		{"id", offsetof(struct init_cfg, id)},
		{"sshd", offsetof(struct init_cfg, sshd_dir)},
		{"svc_dir", offsetof(struct init_cfg, svc_dir)},
		{"svc_user", offsetof(struct init_cfg, svc_user)},
		{"rootless", offsetof(struct init_cfg, rootless)},
		{"userkey", offsetof(struct init_cfg, userkey)},
		{"hostkey", offsetof(struct init_cfg, hostkey)},
		{"name", offsetof(struct init_cfg, name)},
	};
	for (int i = 1; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq)
			return errno = 0, fail("bad init argument `%s`", argv[i]);
		*eq = '\0';
		bool known = false;
		for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
			if (strcmp(argv[i], keys[k].key) == 0) {
				*(const char **)((char *)c + keys[k].off) = eq + 1;
				known = true;
			}
		if (strcmp(argv[i], "net") == 0 && c->nnets < CT_MAX_NETS)
			c->nets[c->nnets++] = eq + 1, known = true;
		if (strcmp(argv[i], "bind_src") == 0 && c->nsrc < CT_MAX_BINDS)
			c->bind_src[c->nsrc++] = eq + 1, known = true;
		if (strcmp(argv[i], "bind_dst") == 0 && c->ndst < CT_MAX_BINDS)
			c->bind_dst[c->ndst++] = eq + 1, known = true;
		if (strcmp(argv[i], "svc") == 0 && c->nsvc < SVC_MAX_ARGS)
			c->svc[c->nsvc++] = eq + 1, known = true;
		if (strcmp(argv[i], "svc_env") == 0 && c->nsvc_env < SVC_MAX_ARGS)
			c->svc_env[c->nsvc_env++] = eq + 1, known = true;
		if (!known)
			return errno = 0, fail("unknown init argument `%s`", argv[i]);
	}
	if (!c->lower || !c->upper || !c->work || !c->root || !c->hostname || !c->init ||
	    !c->user || !c->idmap_arg || !c->id || c->nsrc != c->ndst)
		return errno = 0, fail("init arguments incomplete");
	char *end;
	unsigned long id = strtoul(c->idmap_arg, &end, 10);
	if (c->rootless && (!c->userkey || !c->hostkey || !c->name))
		return errno = 0, fail("init arguments incomplete");
	if (*end || (id == 0) != (c->rootless != NULL) || id > 0xffffffffUL - CT_IDMAP_SIZE)
		return errno = 0, fail("bad idmap `%s`", c->idmap_arg);
	c->idmap = (uint32_t)id;
	return 0;
}

/* net=eth0,10.213.0.5/24,10.213.0.1: configured with the host's `ip`,
 * still reachable before pivot_root. */
static int setup_network(const struct init_cfg *c)
{
	struct buf b = {0};
	buf_puts(&b, "link set lo up\n");
	for (unsigned i = c->rootless ? 1 : 0; i < c->nnets; i++) { /* rootless eth0: pasta's */
		char dev[16], addr[32], gw[16];
		if (sscanf(c->nets[i], "%15[^,],%31[^,],%15s", dev, addr, gw) != 3) {
			buf_free(&b);
			return errno = 0, fail("bad network `%s`", c->nets[i]);
		}
		buf_printf(&b, "addr add %s dev %s\nlink set %s up\n", addr, dev, dev);
		if (i == 0)
			buf_printf(&b, "route add default via %s dev %s\n", gw, dev);
	}
	struct diag d = {0};
	int r = b.len ? net_ip_batch(b.s, &d) : 0;
	buf_free(&b);
	return r < 0 ? (errno = 0, fail("network: %s", d.msg)) : 0;
}

static int mnt(const char *src, const char *root, const char *rel, const char *type,
	       unsigned long flags, const char *data)
{
	_cleanup_free_ char *target = path_join(root, rel);
	if (mkdir(target, 0755) < 0 && errno != EEXIST)
		return fail("mkdir %s", target);
	if (mount(src, target, type, flags, data) < 0)
		return fail("mount %s on %s", type ? type : src, target);
	return 0;
}

/* /dev: a tmpfs of guest root's with the allowed devices bound from the
 * host's (null, zero, full, random, urandom, tty), the guest's own pts
 * (and ptmx) and shm; the guest cannot make other nodes (no CAP_MKNOD
 * outside its user namespace). */
static int setup_dev(const char *root, uint32_t base)
{
	static const char *const nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
	static const char *const links[][2] = {
		{"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"}, {"/proc/self/fd/1", "stdout"},
		{"/proc/self/fd/2", "stderr"}, {"pts/ptmx", "ptmx"},
	};
	const unsigned long ns = MS_NOSUID | MS_NOEXEC;
	_cleanup_free_ char *dev_opt = xasprintf("mode=755,size=64k,uid=%u,gid=%u", base, base);
	_cleanup_free_ char *pts_opt = xasprintf("newinstance,ptmxmode=0666,mode=0620,gid=%u", base + 5);
	_cleanup_free_ char *shm_opt = xasprintf("mode=1777,uid=%u,gid=%u", base, base);
	if (mnt("tmpfs", root, "dev", "tmpfs", MS_NOSUID, dev_opt) < 0)
		return -1;
	_cleanup_free_ char *dev = path_join(root, "dev");
	for (size_t i = 0; i < sizeof(nodes) / sizeof(nodes[0]); i++) {
		_cleanup_free_ char *host = path_join("/dev", nodes[i]);
		_cleanup_free_ char *p = path_join(dev, nodes[i]);
		int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
		if (fd < 0)
			return fail("create %s", p);
		close(fd);
		if (mount(host, p, NULL, MS_BIND, NULL) < 0)
			return fail("bind %s", host);
	}
	_cleanup_free_ char *machine = path_dirname(root);
	_cleanup_free_ char *log = path_join(machine, "console.log");
	_cleanup_free_ char *console = path_join(dev, "console"); /* the console log */
	int fd = open(console, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 || close(fd) < 0 || mount(log, console, NULL, MS_BIND, NULL) < 0)
		return fail("bind the console log on %s", console);
	for (size_t i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		_cleanup_free_ char *p = path_join(dev, links[i][1]);
		if (symlink(links[i][0], p) < 0)
			return fail("symlink %s", p);
	}
	return mnt("devpts", dev, "pts", "devpts", ns, pts_opt) ||
		       mnt("tmpfs", dev, "shm", "tmpfs", ns | MS_NODEV, shm_opt)
		? -1 : 0;
}

/* Synced folders, in two halves: each host directory is cloned (a
 * detached, private bind mount) while the host's tree is still reachable;
 * after pivot_root the clones are attached at guest paths resolved inside
 * the guest, so no symlink in the guest can point a mount at the host.
 * The mount namespace is private: nothing of this shows on the host. */
static int clone_binds(const struct init_cfg *c, int *fds)
{
	for (unsigned i = 0; i < c->nsrc; i++) {
		struct diag d = {0};
		fds[i] = open_tree(AT_FDCWD, c->bind_src[i],
				   OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
		if (fds[i] < 0)
			return fail("synced folder %s", c->bind_src[i]);
		if (iso_idmap_bind(fds[i], c->bind_src[i], c->root, c->user, c->idmap, &d) < 0)
			return errno = 0, fail("synced folder %s: %s", c->bind_src[i], d.msg);
	}
	return 0;
}

static int attach_binds(const struct init_cfg *c, const int *fds)
{
	for (unsigned i = 0; i < c->nsrc; i++) {
		struct diag d = {0};
		bool made = !path_exists(c->bind_dst[i]);
		if (mkdir_p(c->bind_dst[i], 0755, &d) < 0)
			return errno = 0, fail("synced folder %s: %s", c->bind_dst[i], d.msg);
		if (made && lchown(c->bind_dst[i], c->idmap, c->idmap) < 0) /* guest root's */
			return fail("set owner of %s", c->bind_dst[i]);
		if (move_mount(fds[i], "", AT_FDCWD, c->bind_dst[i], MOVE_MOUNT_F_EMPTY_PATH) < 0)
			return fail("mount synced folder %s on %s", c->bind_src[i], c->bind_dst[i]);
		close(fds[i]);
	}
	return 0;
}

/* The host's sshd directory, cloned before pivot_root as a detached
 * mount, read-only, no devices, no set-uid (-1 and no error without one). */
static int clone_sshd(const struct init_cfg *c, int *fd)
{
	struct mount_attr a = {.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID};
	*fd = -1;
	if (!c->sshd_dir)
		return 0;
	*fd = open_tree(AT_FDCWD, c->sshd_dir, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (*fd < 0 || mount_setattr(*fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
		return fail("the host's sshd %s", c->sshd_dir);
	return 0;
}

/* After pivot_root: at CT_SSHD_DIR, resolved inside the guest. The mount
 * is locked by iso_enter: guest root can neither remount it writable nor
 * take it away. */
static int attach_sshd(const struct init_cfg *c, int fd)
{
	struct diag d = {0};
	if (fd < 0)
		return 0;
	bool made = !path_exists("/.corral");
	if (mkdir_p(CT_SSHD_DIR, 0755, &d) < 0)
		return errno = 0, fail("%s: %s", CT_SSHD_DIR, d.msg);
	if (made && lchown("/.corral", c->idmap, c->idmap) < 0)
		return fail("set owner of /.corral");
	if (move_mount(fd, "", AT_FDCWD, CT_SSHD_DIR, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return fail("mount the host's sshd on %s", CT_SSHD_DIR);
	close(fd);
	return 0;
}

/* The overlay root: the box's tree, idmapped into the machine's ids and
 * mounted at <machine>/lower (the init's mount namespace only), under the
 * machine's upper layer, whose files are stored with the machine's ids. */
static int mount_overlay(const struct init_cfg *c)
{
	struct diag d = {0};
	_cleanup_free_ char *machine = path_dirname(c->root);
	_cleanup_free_ char *stage = c->rootless ? xstrdup(c->lower) : path_join(machine, "lower");
	if (!c->rootless && iso_idmap_lower(c->lower, stage, c->userns, &d) < 0)
		return errno = 0, fail("%s", d.msg);
	/* without root: the box's copy in the user's ids, overlay's own
	 * attributes in user.* (trusted.* needs host root) */
	_cleanup_free_ char *ovl = xasprintf("lowerdir=%s,upperdir=%s,workdir=%s%s", stage,
					     c->upper, c->work, c->rootless ? ",userxattr" : "");
	if (mount("overlay", c->root, "overlay", 0, ovl) < 0)
		return fail("mount the overlay root on %s", c->root);
	return 0;
}

/* The API file systems, owned by guest root where they take an owner,
 * with /proc and /sys masked and the machine's cgroup delegated. */
static int mount_api(const struct init_cfg *c)
{
	const unsigned long nsd = MS_NOSUID | MS_NODEV, all = nsd | MS_NOEXEC;
	struct diag d = {0};
	_cleanup_free_ char *run = xasprintf("mode=755,uid=%u,gid=%u", c->idmap, c->idmap);
	_cleanup_free_ char *tmp = xasprintf("mode=1777,uid=%u,gid=%u", c->idmap, c->idmap);
	if (setup_dev(c->root, c->idmap) < 0 || mnt("proc", c->root, "proc", "proc", all, NULL) < 0 ||
	    mnt("sysfs", c->root, "sys", "sysfs", all | MS_RDONLY, NULL) < 0 ||
	    mnt("tmpfs", c->root, "run", "tmpfs", nsd, run) < 0 ||
	    mnt("tmpfs", c->root, "tmp", "tmpfs", nsd, tmp) < 0)
		return -1;
	if (iso_protect(c->root, &d) < 0)
		return errno = 0, fail("%s", d.msg);
	if (iso_cgroup(c->root, c->idmap, &d) == 0)
		return 0;
	if (!c->rootless) /* without root the user may have no delegated cgroup */
		return errno = 0, fail("%s", d.msg);
	fprintf(stderr, "corral-init: %s: the guest's cgroup is not its own\n", d.msg);
	return 0;
}

static int setup_root(const struct init_cfg *c)
{
	int binds[CT_MAX_BINDS], sshd = -1;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return fail("make mounts private");
	if (mount_overlay(c) < 0 || mount_api(c) < 0)
		return -1;
	if (sethostname(c->hostname, strlen(c->hostname)) < 0)
		return fail("set hostname");
	if (clone_binds(c, binds) < 0 || clone_sshd(c, &sshd) < 0)
		return -1;
	/* pivot_root(".", ".") stacks the old root under the new one; detaching it leaves only the guest. */
	if (chdir(c->root) < 0 || syscall(SYS_pivot_root, ".", ".") < 0 ||
	    umount2(".", MNT_DETACH) < 0 || chdir("/") < 0)
		return fail("pivot_root into %s", c->root);
	return attach_binds(c, binds) < 0 || attach_sshd(c, sshd) < 0 ? -1 : 0;
}

/* The console log's other half: console.log is moved into console.log.1
 * (copied, as the guest's processes hold console.log open) once it passes
 * CONSOLE_MAX. Both are opened before pivot_root, by the name of our
 * stdout; -1 when they cannot be (then the log is not capped). */
struct console {
	int cur, old; /* console.log for reading, console.log.1 */
};

static struct console console_open(void)
{
	struct console c = {-1, -1};
	char path[4096];
	ssize_t n = readlink("/proc/self/fd/1", path, sizeof(path) - 3);
	if (n <= 0 || path[0] != '/')
		return c;
	path[n] = '\0';
	c.cur = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	strcat(path, ".1");
	c.old = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	return c;
}

static void console_cap(const struct console *c)
{
	struct stat st;
	if (c->cur < 0 || c->old < 0 || fstat(1, &st) < 0 || !S_ISREG(st.st_mode) ||
	    st.st_size < CT_CONSOLE_MAX || ftruncate(c->old, 0) < 0)
		return;
	char chunk[65536];
	off_t off = 0;
	ssize_t n;
	while ((n = pread(c->cur, chunk, sizeof(chunk), off)) > 0 &&
	       pwrite(c->old, chunk, (size_t)n, off) == n)
		off += n;
	if (ftruncate(1, 0) == 0)
		fprintf(stderr, "corral-init: console log continued from console.log.1\n");
}

/* Something in the container listens on TCP port 22 (IPv4 or IPv6). */
static bool port22_served(void)
{
	static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
	bool found = false;
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]) && !found; i++) {
		FILE *f = fopen(tables[i], "re");
		char line[512], local[64];
		unsigned state;
		while (f && !found && fgets(line, sizeof(line), f))
			found = sscanf(line, " %*[0-9]: %63s %*s %x", local, &state) == 2 &&
				state == 0x0A && str_ends(local, ":0016");
		if (f)
			fclose(f);
	}
	return found;
}

/* A process the init keeps running (sshd, the image's): running (pid >
 * 0), or when to try again. */
struct svc {
	const char *name;
	pid_t pid;
	time_t started, next;
	unsigned fails; /* deaths in a row within SSHD_STABLE of their start */
	bool guests;    /* sshd: noted that the guest serves port 22 itself */
};

/* The box's sshd, or the host's through its own loader and libraries. */
static const char *const box_sshd[] = {SSHD, "-D", "-e", NULL};
static const char *const host_sshd[] = {
	CT_SSHD_DIR "/ld.so", "--library-path", CT_SSHD_DIR "/lib", CT_SSHD_DIR "/sshd",
	"-D", "-e", "-r", "-f", CT_SSHD_DIR "/sshd_config", NULL,
};
static const char *const *sshd_argv = box_sshd;

/* The host's sshd with the image's Env (svc_env) set in every session it
 * starts (SetEnv, as "K=V" words; an entry holding a quote or a backslash
 * cannot be written so and is left out): shells, sftp and Ansible's
 * modules see what the image's processes see. Lives as long as the init. */
static const char *const *host_sshd_argv(const struct init_cfg *c)
{
	static const char *argv[sizeof(host_sshd) / sizeof(host_sshd[0]) + 2];
	static struct buf set;
	size_t n = 0;
	for (; host_sshd[n]; n++)
		argv[n] = host_sshd[n];
	buf_puts(&set, "SetEnv");
	for (unsigned i = 0; i < c->nsvc_env; i++)
		if (!strpbrk(c->svc_env[i], "\"\\\n") && strchr(c->svc_env[i], '='))
			buf_printf(&set, " \"%s\"", c->svc_env[i]);
	if (strcmp(set.s, "SetEnv") != 0) {
		argv[n++] = "-o";
		argv[n++] = set.s;
	}
	argv[n] = NULL;
	return argv;
}

/* Without root (run again once the host wrote our map: ct_userns_enter),
 * the machine's files are written from here, where the guest's ids are
 * ours (rootfs.c, as root mode writes them from the host). */
static int rootless_files(const struct init_cfg *c)
{
	char ip[32] = "";
	if (c->nnets && sscanf(c->nets[0], "%*[^,],%31[^/]", ip) != 1)
		return errno = 0, fail("bad network `%s`", c->nets[0]);
	struct ct_boot b = {.lower = c->lower, .upper = c->upper, .hostname = c->hostname,
			    .user = c->user, .sshd_dir = c->sshd_dir, .rootless = true};
	snprintf(b.nets[0].ip, sizeof(b.nets[0].ip), "%s", ip);
	struct diag d = {0};
	if (ct_rootfs_write(&b, c->userkey, c->hostkey, c->name, &d) < 0)
		return errno = 0, fail("%s", d.msg);
	return 0;
}

/* Without root, a private network is a tap device (eth1...) in our
 * network namespace, its fd handed to the host's relay (relay.c). */
static int make_taps(const struct init_cfg *c, int *taps, size_t *n)
{
	for (unsigned i = 1; c->rootless && i < c->nnets; i++) {
		struct ifreq ifr = {.ifr_flags = IFF_TAP | IFF_NO_PI};
		if (sscanf(c->nets[i], "%15[^,]", ifr.ifr_name) != 1)
			return errno = 0, fail("bad network `%s`", c->nets[i]);
		int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
		if (fd >= 0)
			taps[(*n)++] = fd; /* the caller closes it */
		if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0)
			return fail("tap device %s", ifr.ifr_name);
	}
	return 0;
}

/* "R" on fd 3, with the taps' fds. */
static int say_ready(const int *fds, size_t n)
{
	char r = 'R', cbuf[CMSG_SPACE(sizeof(int) * CT_MAX_NETS)] = {0};
	struct iovec io = {.iov_base = &r, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &io, .msg_iovlen = 1};
	if (n) {
		mh.msg_control = cbuf, mh.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET, cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	}
	ssize_t w = sendmsg(CTL_FD, &mh, MSG_NOSIGNAL);
	for (size_t i = 0; i < n; i++)
		close(fds[i]);
	return w == 1 ? 0 : -1;
}

/* Before the host wires the machine: its namespaces, then "R" on fd 3. */
static int enter_namespaces(struct init_cfg *c)
{
	struct diag d = {0};
	int taps[CT_MAX_NETS];
	size_t ntaps = 0;
	if (c->rootless && rootless_files(c) < 0)
		return -1;
	if (iso_namespaces(c->idmap, &c->userns, &d) < 0)
		return errno = 0, fail("%s", d.msg);
	if (make_taps(c, taps, &ntaps) < 0) {
		for (size_t i = 0; i < ntaps; i++)
			close(taps[i]);
		return -1;
	}
	return say_ready(taps, ntaps);
}

/* Without root the host placed us (cgroup.c), in the user's delegated
 * cgroup when there is one: no cgroup file system is ours to mount here. */
static int own_cgroup(const struct init_cfg *c)
{
	struct diag d = {0};
	if (c->rootless || iso_cgroup_own(c->root, c->id, &d) == 0)
		return 0;
	return errno = 0, fail("cgroup: %s", d.msg);
}

/* The last step as host root: from here on the init is the guest's root. */
static int isolate(const struct init_cfg *c)
{
	struct diag d = {0};
	if (iso_enter(c->userns, strcmp(c->init, "systemd") == 0, &d) < 0)
		return errno = 0, fail("%s", d.msg);
	return 0;
}

/* sshd in the foreground, logging to our stderr (the console log), with
 * no signal blocked; reaped by serve. -1 when it could not start. */
static pid_t start_sshd(struct diag *d)
{
	struct proc_spawn s = {.argv = sshd_argv};
	pid_t pid;
	return proc_spawn(&s, &pid, d) < 0 ? -1 : pid;
}

/* The next try after a death (or a failed start) within SSHD_STABLE of its start. */
static void svc_backoff(struct svc *s, time_t now)
{
	s->fails = now - s->started >= SSHD_STABLE ? 0 : s->fails + 1;
	unsigned delay = s->fails ? 1u << (s->fails < 9 ? s->fails - 1 : 9) : 0;
	if (delay > SSHD_BACKOFF_MAX)
		delay = SSHD_BACKOFF_MAX;
	s->next = now + delay;
	if (delay > 1)
		fprintf(stderr, "corral-init: %s failed %u times in a row; next try in %us\n",
			s->name, s->fails, delay);
}

static void svc_died(struct svc *s, int st, time_t now)
{
	fprintf(stderr, "corral-init: %s exited (status %d)\n", s->name,
		WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	s->pid = -1;
	svc_backoff(s, now);
}

/* Port 22 served: by the guest's own sshd, or ours (started when nothing
 * listens and its delay is over). -1 only when ours could not start. */
static int sshd_keep(struct svc *s, struct diag *d)
{
	time_t now = time(NULL);
	if (s->pid > 0)
		return 0;
	if (port22_served()) {
		if (!s->guests)
			fprintf(stderr, "corral-init: port 22 is served by the guest's own sshd; "
					"not starting another\n");
		s->guests = true;
		return 0;
	}
	s->guests = false;
	if (now < s->next)
		return 0;
	s->started = now;
	if ((s->pid = start_sshd(d)) > 0)
		return 0;
	s->fails++;
	s->next = now + SSHD_BACKOFF_MAX;
	return -1;
}

/* The gid of group name in the guest's /etc/group; -1 when it has none. */
static long group_gid(const char *name)
{
	_cleanup_free_ char *data = NULL;
	struct diag d = {0};
	long gid = -1;
	if (read_file("/etc/group", 4 << 20, &data, NULL, &d) < 0)
		return -1;
	char *save = NULL;
	for (char *l = strtok_r(data, "\n", &save); l && gid < 0; l = strtok_r(NULL, "\n", &save)) {
		char *f1 = strchr(l, ':'), *f2 = f1 ? strchr(f1 + 1, ':') : NULL;
		if (f2 && (size_t)(f1 - l) == strlen(name) && strncmp(l, name, f1 - l) == 0)
			gid = strtol(f2 + 1, NULL, 10);
	}
	return gid;
}

/* An id in decimal, or -1. */
static long numeric_id(const char *s)
{
	char *end;
	long v = s[0] ? strtol(s, &end, 10) : -1;
	return s[0] && !*end && v >= 0 && v < (long)CT_IDMAP_SIZE ? v : -1;
}

/* The image's User as OCI defines it: "", "user", "uid", "user:group",
 * "uid:gid" (names from the guest's /etc/passwd and /etc/group; a user
 * without a group gets its passwd group, a bare uid group 0). */
static int image_ids(const char *spec, uid_t *uid, gid_t *gid, struct diag *d)
{
	*uid = 0, *gid = 0;
	if (!spec || !spec[0])
		return 0;
	_cleanup_free_ char *user = xstrdup(spec), *pw = NULL;
	char *group = strchr(user, ':');
	if (group)
		*group++ = '\0';
	long u = numeric_id(user), g = group ? numeric_id(group) : 0;
	struct passwd_entry e;
	if (u < 0 && read_file("/etc/passwd", 4 << 20, &pw, NULL, d) == 0 &&
	    passwd_lookup(pw, user, &e) == 0)
		u = e.uid, g = group ? g : (long)e.gid;
	if (g < 0 && group)
		g = group_gid(group);
	if (u < 0 || g < 0)
		return diag_fail(d, "the image's user `%s` is not in the guest's /etc/passwd or "
				    "/etc/group", spec);
	*uid = (uid_t)u, *gid = (gid_t)g;
	return 0;
}

/* The image's entrypoint + cmd as the image says to run it; its output is
 * ours (the console log). */
static pid_t start_image(const struct init_cfg *c, struct diag *d)
{
	static const char *const path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	const char *env[SVC_MAX_ARGS + 2];
	size_t n = 0;
	bool has_path = false;
	for (unsigned i = 0; i < c->nsvc_env; i++) {
		has_path |= str_starts(c->svc_env[i], "PATH=");
		env[n++] = c->svc_env[i];
	}
	if (!has_path)
		env[n++] = path;
	env[n] = NULL;
	struct proc_spawn s = {.argv = c->svc, .envp = env, .set_ids = true,
			       .cwd = c->svc_dir && c->svc_dir[0] ? c->svc_dir : "/"};
	pid_t pid;
	if (image_ids(c->svc_user, &s.uid, &s.gid, d) < 0 || proc_spawn(&s, &pid, d) < 0)
		return diag_wrap(d, "the image's command"), -1;
	return pid;
}

/* The image's process: started when it is not running and its delay is over. */
static int image_keep(struct svc *s, const struct init_cfg *c, struct diag *d)
{
	time_t now = time(NULL);
	if (!c->nsvc || s->pid > 0 || now < s->next)
		return 0;
	s->started = now;
	if ((s->pid = start_image(c, d)) > 0)
		return 0;
	svc_backoff(s, now);
	return -1;
}

/* Reaps every exited child. */
static void reap(struct svc *sshd, struct svc *image)
{
	pid_t p;
	int st;
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == sshd->pid)
			svc_died(sshd, st, time(NULL));
		if (p == image->pid)
			svc_died(image, st, time(NULL));
	}
}

static int rc_start_script(const struct dirent *e)
{
	return e->d_name[0] == 'S';
}

/* One script's `start`: "started", "failed (status N)", or "still
 * starting" when it outran RC_TIMEOUT_MS (then it goes on running). */
static void rc_run(const char *name, FILE *status)
{
	_cleanup_free_ char *path = path_join(RC_DIR, name);
	const char *const argv[] = {path, "start", NULL};
	struct proc_spawn s = {.argv = argv};
	struct diag d = {0};
	pid_t pid;
	int st = 0;
	if (access(path, X_OK) < 0)
		return;
	if (proc_spawn(&s, &pid, &d) < 0) {
		fprintf(stderr, "corral-init: %s\n", d.msg);
		fprintf(status, "%s failed (could not start)\n", name);
		return;
	}
	unsigned waited = 0;
	pid_t r;
	while ((r = waitpid(pid, &st, WNOHANG)) == 0 && waited < RC_TIMEOUT_MS)
		sleep_ms(20), waited += 20;
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	if (r != pid)
		fprintf(status, "%s still starting\n", name);
	else if (code)
		fprintf(status, "%s failed (status %d)\n", name, code);
	else
		fprintf(status, "%s started\n", name);
	fprintf(stderr, "corral-init: %s start: %s\n", path,
		r != pid ? "still running" : code ? "failed" : "done");
}

/* The services the guest enabled for runlevel 2, as sysvinit would start
 * them; what ran is listed in RC_STATUS, one "NAME RESULT" a line. */
static void rc_start(void)
{
	struct dirent **list = NULL;
	int n = scandir(RC_DIR, &list, rc_start_script, alphasort);
	FILE *status = fopen(RC_STATUS, "we");
	for (int i = 0; i < n; i++) {
		if (status)
			rc_run(list[i]->d_name, status);
		free(list[i]);
	}
	free(list);
	if (status)
		fclose(status);
}

static int serve(const sigset_t *set, const struct console *con, const struct init_cfg *c)
{
	struct diag d = {0};
	struct svc sshd = {.name = "sshd", .pid = -1}, image = {.name = "the image's command", .pid = -1};
	/* The host's sshd (an image's own sshd is not corral's to configure)
	 * holds port 22 before the guest's services start. */
	if (c->sshd_dir && sshd_keep(&sshd, &d) < 0)
		return errno = 0, fail("%s", d.msg);
	for (unsigned w = 0; c->sshd_dir && w < SSHD_LISTEN_MS && !port22_served(); w += 20)
		sleep_ms(20);
	rc_start();
	if (sshd_keep(&sshd, &d) < 0 || image_keep(&image, c, &d) < 0)
		return errno = 0, fail("%s", d.msg);
	/* Without root SSH comes through pasta, which takes the host's side of
	 * a connection before the guest's: one made before sshd listens is
	 * reset after the handshake began, and the host backs off. So "OK"
	 * waits for the listener (root mode's connections are refused at once). */
	for (unsigned w = 0; c->rootless && w < SSHD_LISTEN_MS && !port22_served(); w += 5)
		sleep_ms(5);
	dprintf(CTL_FD, "OK\n");
	close(CTL_FD);
	bool stopping = false;
	for (;;) {
		siginfo_t si;
		struct timespec tick = {1, 0};
		int sig = sigtimedwait(set, &si, &tick);
		if (sig == SIGTERM || sig == SIGINT) {
			stopping = true;
			kill(-1, SIGTERM); /* from PID 1 of the namespace: every other process in it */
		}
		reap(&sshd, &image);
		if (stopping && waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
			return 0;
		if (!stopping && (sshd_keep(&sshd, &d) < 0 || image_keep(&image, c, &d) < 0))
			fprintf(stderr, "corral-init: %s\n", d.msg);
		d = (struct diag){0};
		console_cap(con);
	}
}

int ct_init_main(int argc, char **argv)
{
	struct init_cfg c = {0};
	sigset_t set;
	sigemptyset(&set);
	int sigs[] = {SIGCHLD, SIGTERM, SIGINT, SIGHUP};
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaddset(&set, sigs[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	char go;
	for (int i = 1; i < argc; i++) /* without root: once mapped, as its root */
		if (strcmp(argv[i], "rootless=1") == 0 && ct_userns_enter(CTL_FD, argc, argv) < 0)
			return 1;
	fcntl(CTL_FD, F_SETFD, FD_CLOEXEC); /* sshd and `ip` must not hold the host's EOF back */
	if (parse_args(argc, argv, &c) < 0 || enter_namespaces(&c) < 0)
		return 1;
	if (read(CTL_FD, &go, 1) != 1)
		return 1; /* the host gave up on us */
	if (own_cgroup(&c) < 0)
		return 1;
	if (unshare(CLONE_NEWCGROUP) < 0)
		return fail("cgroup namespace"), 1;
	struct console con = console_open(); /* by its host path: before pivot_root */
	if (setup_network(&c) < 0 || setup_root(&c) < 0 || isolate(&c) < 0)
		return 1;
	if (strcmp(c.init, "systemd") == 0) {
		static char *const envp[] = {"container=corral", NULL};
		const char *sd = access("/lib/systemd/systemd", X_OK) == 0 ? "/lib/systemd/systemd" : "/sbin/init";
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		dprintf(CTL_FD, "OK\n");
		execle(sd, sd, (char *)NULL, envp);
		fprintf(stderr, "corral-init: exec %s: %s\n", sd, strerror(errno));
		return 1;
	}
	if (mkdir("/run/sshd", 0755) < 0 && errno != EEXIST)
		return fail("mkdir /run/sshd"), 1;
	if (c.sshd_dir)
		sshd_argv = host_sshd_argv(&c);
	c.svc[c.nsvc] = NULL;
	return serve(&set, &con, &c) < 0 ? 1 : 0;
}
