/* What keeps root in a container off the host, run by the init (init.c):
 *  - a user namespace mapping guest ids 0..65535 to the machine's range,
 *    made first, with the network, UTS and IPC namespaces it owns (so the
 *    guest may bind port 22 and name itself, and nothing more);
 *  - idmapped mounts: the shared box tree and the synced folders are shown
 *    through the machine's mapping, the files on disk stay as they are;
 *  - runc's masked and read-only paths in /proc and /sys, a delegated
 *    cgroup, and a fresh mount namespace owned by the guest's user
 *    namespace, which locks every mount made here;
 *  - Docker's default capabilities, a fresh session keyring and a seccomp
 *    filter (libseccomp) with Docker's default denials.
 * No no_new_privs: the guest's sudo is set-uid, and what it can reach is
 * bounded by the namespace and the bounding set anyway.
 * The namespaces are made by a short-lived holder process, so that the init
 * itself can stay host root for the mounts and join the user namespace last. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <linux/keyctl.h>
#include <linux/openat2.h>
#include <seccomp.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/base/util.h"
#include "providers/container/container.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

/* A process that sits in new namespaces until its socket closes. It first
 * says its PID as the host's /proc knows it (the init's PID namespace is
 * not the one the host's /proc shows). */
static int holder_main(void *arg)
{
	const int *p = arg;
	char self[32] = {0}, c;
	close(p[0]);
	if (readlink("/proc/self", self, sizeof(self) - 1) < 0 || write(p[1], self, strlen(self)) < 0)
		_exit(1);
	while (read(p[1], &c, 1) < 0 && errno == EINTR)
		;
	_exit(0);
}

static int write_map(pid_t pid, const char *file, const char *map, struct diag *d)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/%d/%s", (int)pid, file);
	int fd = open(p, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return diag_errno(d, "open %s", p);
	ssize_t n = write(fd, map, strlen(map));
	int e = errno;
	close(fd);
	if (n != (ssize_t)strlen(map))
		return errno = e, diag_errno(d, "write %s", p);
	return 0;
}

/* New namespaces (flags, CLONE_NEWUSER among them) with the given maps;
 * fds[i] gets /proc/PID/ns/names[i] for each of the n names. */
static int make_ns(int flags, const char *uidmap, const char *gidmap, const char *const *names,
		   int *fds, size_t n, struct diag *d)
{
	static char stack[16384] __attribute__((aligned(16)));
	int p[2];
	char host[32] = {0};
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
		return diag_errno(d, "socketpair");
	pid_t child = clone(holder_main, stack + sizeof(stack), flags | SIGCHLD, p);
	close(p[1]);
	if (child < 0) {
		close(p[0]);
		return diag_errno(d, "clone into a new user namespace");
	}
	ssize_t got = read(p[0], host, sizeof(host) - 1);
	pid_t pid = got > 0 ? (pid_t)atoi(host) : -1;
	if (pid <= 0) {
		close(p[0]);
		waitpid(child, NULL, 0);
		return diag_fail(d, "the namespace holder did not start");
	}
	int r = write_map(pid, "uid_map", uidmap, d) < 0 || write_map(pid, "gid_map", gidmap, d) < 0
			? -1 : 0;
	for (size_t i = 0; i < n; i++)
		fds[i] = -1;
	for (size_t i = 0; r == 0 && i < n; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, names[i]);
		if ((fds[i] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			r = diag_errno(d, "open %s", path);
	}
	close(p[0]);
	while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
		;
	return r;
}

int iso_namespaces(uint32_t base, int *userns, struct diag *d)
{
	static const char *const names[] = {"user", "net", "uts", "ipc"};
	static const int types[] = {0, CLONE_NEWNET, CLONE_NEWUTS, CLONE_NEWIPC};
	char map[64];
	int fds[4];
	/* base 0: the init runs without root, in a namespace whose root and
	 * ids 1.. map to different host ranges; an extent may not span both */
	if (base)
		snprintf(map, sizeof(map), "0 %u %u\n", base, CT_IDMAP_SIZE);
	else
		snprintf(map, sizeof(map), "0 0 1\n1 1 %u\n", CT_IDMAP_SIZE - 1);
	if (make_ns(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC, map, map, names, fds,
		    4, d) < 0)
		return -1;
	int r = 0;
	for (size_t i = 1; i < 4; i++) {
		if (r == 0 && setns(fds[i], types[i]) < 0)
			r = diag_errno(d, "join the machine's %s namespace", names[i]);
		close(fds[i]);
	}
	*userns = fds[0];
	return r;
}

/* An idmapping (lines of "disk-id host-id count") that shows guest ids
 * 0..65535 at base, except that disk id owner and guest id `to` swap places
 * (so the host owner of a synced folder is the guest user) and that host
 * root (disk id 0), unless it owns the folder, is left unmapped: guest root
 * cannot make host root's files there, and sees host root's as nobody. */
static void swap_map(char *out, size_t n, uint32_t base, uint32_t owner, uint32_t to)
{
	size_t len = 0;
	uint32_t seg[4][3]; /* disk id, host id, count: the identity-offset parts */
	size_t nseg = 0;
	if (owner == to) {
		seg[nseg][0] = 0, seg[nseg][1] = base, seg[nseg++][2] = CT_IDMAP_SIZE;
	} else {
		uint32_t a = owner < to ? owner : to, b = owner < to ? to : owner;
		if (owner >= CT_IDMAP_SIZE)
			a = to, b = CT_IDMAP_SIZE;
		len += (size_t)snprintf(out + len, n - len, "%u %u 1\n", owner, base + to);
		if (owner < CT_IDMAP_SIZE)
			len += (size_t)snprintf(out + len, n - len, "%u %u 1\n", to, base + owner);
		seg[nseg][0] = 0, seg[nseg][1] = base, seg[nseg++][2] = a;
		seg[nseg][0] = a + 1, seg[nseg][1] = base + a + 1, seg[nseg++][2] = b - a - 1;
		if (b + 1 < CT_IDMAP_SIZE)
			seg[nseg][0] = b + 1, seg[nseg][1] = base + b + 1,
			seg[nseg++][2] = CT_IDMAP_SIZE - b - 1;
	}
	for (size_t i = 0; i < nseg; i++) {
		uint32_t in = seg[i][0], host = seg[i][1], count = seg[i][2];
		if (in == 0 && owner != 0 && count > 0) /* host root stays unmapped */
			in = 1, host++, count--;
		if (count > 0)
			len += (size_t)snprintf(out + len, n - len, "%u %u %u\n", in, host, count);
	}
}

/* The guest user's ids from the guest's /etc/passwd, read inside its root
 * (a symlink there cannot point at a host file); false when it has none. */
static bool guest_user(const char *root, const char *user, uint32_t *uid, uint32_t *gid)
{
	int dir = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct open_how how = {.flags = O_RDONLY | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT};
	int fd = dir < 0 ? -1 : (int)syscall(SYS_openat2, dir, "etc/passwd", &how, sizeof(how));
	if (dir >= 0)
		close(dir);
	if (fd < 0)
		return false;
	static char data[1 << 20];
	ssize_t n = read(fd, data, sizeof(data) - 1);
	close(fd);
	struct passwd_entry e;
	if (n <= 0 || (data[n] = '\0', passwd_lookup(data, user, &e) < 0) || e.uid >= CT_IDMAP_SIZE ||
	    e.gid >= CT_IDMAP_SIZE)
		return false;
	*uid = e.uid, *gid = e.gid;
	return true;
}

static int set_idmap(int tree, int userns, bool recursive)
{
	struct mount_attr a = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns};
	return mount_setattr(tree, "", AT_EMPTY_PATH | (recursive ? AT_RECURSIVE : 0), &a, sizeof(a));
}

int iso_idmap_lower(const char *lower, const char *stage, int userns, struct diag *d)
{
	if (mkdir(stage, 0700) < 0 && errno != EEXIST)
		return diag_errno(d, "mkdir %s", stage);
	int fd = open_tree(AT_FDCWD, lower, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		return diag_errno(d, "clone %s", lower);
	int r = 0;
	if (set_idmap(fd, userns, false) < 0)
		r = diag_errno(d, "idmap the box's tree %s", lower);
	else if (move_mount(fd, "", AT_FDCWD, stage, MOVE_MOUNT_F_EMPTY_PATH) < 0)
		r = diag_errno(d, "mount the box's tree on %s", stage);
	close(fd);
	return r;
}

int iso_idmap_bind(int tree, const char *src, const char *root, const char *user, uint32_t base,
		   struct diag *d)
{
	struct stat st;
	uint32_t uid = 0, gid = 0;
	if (stat(src, &st) < 0)
		return diag_errno(d, "stat %s", src);
	if (!guest_user(root, user, &uid, &gid))
		uid = st.st_uid < CT_IDMAP_SIZE ? st.st_uid : 0,
		gid = st.st_gid < CT_IDMAP_SIZE ? st.st_gid : 0;
	static char umap[256], gmap[256];
	swap_map(umap, sizeof(umap), base, st.st_uid, uid);
	swap_map(gmap, sizeof(gmap), base, st.st_gid, gid);
	static const char *const names[] = {"user"};
	int ns;
	if (make_ns(CLONE_NEWUSER, umap, gmap, names, &ns, 1, d) < 0)
		return -1;
	int r = set_idmap(tree, ns, true);
	close(ns);
	if (r < 0) /* a file system without idmapped mounts: ids shown unmapped (nobody) */
		fprintf(stderr, "corral-init: synced folder %s: no idmapped mount (%s); its files "
				"show as nobody\n", src, strerror(errno));
	return 0;
}

static int mask(const char *p)
{
	struct stat st;
	if (lstat(p, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	if (S_ISDIR(st.st_mode))
		return mount("tmpfs", p, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			     "size=0,mode=555");
	return mount("/dev/null", p, NULL, MS_BIND, NULL);
}

static int read_only(const char *p)
{
	if (!path_exists(p))
		return 0;
	if (mount(p, p, NULL, MS_BIND | MS_REC, NULL) < 0)
		return -1;
	return mount(NULL, p, NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV |
					   MS_NOEXEC, NULL);
}

/* runc's defaults: host-wide state masked, the kernel's knobs read-only. */
int iso_protect(const char *root, struct diag *d)
{
	static const char *const masked[] = {
		"proc/acpi", "proc/asound", "proc/kcore", "proc/keys", "proc/latency_stats",
		"proc/timer_list", "proc/timer_stats", "proc/sched_debug", "proc/scsi",
		"sys/firmware", "sys/devices/virtual/powercap",
	};
	static const char *const ro[] = {"proc/bus", "proc/fs", "proc/irq", "proc/sys",
					 "proc/sysrq-trigger"};
	for (size_t i = 0; i < sizeof(masked) / sizeof(masked[0]); i++) {
		_cleanup_free_ char *p = path_join(root, masked[i]);
		if (mask(p) < 0)
			return diag_errno(d, "mask %s", p);
	}
	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
		_cleanup_free_ char *p = path_join(root, ro[i]);
		if (read_only(p) < 0)
			return diag_errno(d, "make %s read-only", p);
	}
	return 0;
}

static const char *rm_top;

static int rmdir_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st, (void)f;
	if (flag == FTW_DP && strcmp(p, rm_top) != 0)
		rmdir(p);
	return 0;
}

/* Removes the (empty) cgroups below dir, deepest first. */
static void rmdir_below(const char *dir)
{
	rm_top = dir;
	nftw(dir, rmdir_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* On a cgroup v1 host the init has no cgroup v2 group of its own (cgroup.c
 * makes v1 ones): it makes corral/<id> in the v2 hierarchy, mounted for a
 * moment on root, and moves in, so that its cgroup namespace's v2 root is
 * the machine's and not the host's. */
int iso_cgroup_own(const char *root, const char *id, struct diag *d)
{
	struct statfs s;
	if (statfs("/sys/fs/cgroup", &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC)
		return 0; /* cgroup.c placed us */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return diag_errno(d, "make mounts private");
	if (mount("cgroup2", root, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return 0; /* no cgroup v2 at all: the guest gets none */
	_cleanup_free_ char *parent = path_join(root, "corral");
	_cleanup_free_ char *dir = path_join(parent, id);
	_cleanup_free_ char *procs = path_join(dir, "cgroup.procs");
	int r = 0, fd = -1;
	if (path_is_dir(dir))
		rmdir_below(dir); /* what the last boot's guest made (its ids may differ) */
	if ((mkdir(parent, 0755) < 0 && errno != EEXIST) || (mkdir(dir, 0755) < 0 && errno != EEXIST))
		r = diag_errno(d, "mkdir %s", dir);
	else if ((fd = open(procs, O_WRONLY | O_CLOEXEC)) < 0 || write(fd, "0", 1) != 1)
		r = diag_errno(d, "move into %s", dir); /* "0": the writer itself */
	if (fd >= 0)
		close(fd);
	umount2(root, MNT_DETACH);
	return r;
}

/* The machine's own cgroup (the init's cgroup namespace's v2 root) at
 * /sys/fs/cgroup, delegated to guest root as systemd-nspawn does: the
 * directory and the files that create and fill children, not the limits. */
int iso_cgroup(const char *root, uint32_t base, struct diag *d)
{
	static const char *const files[] = {"", "cgroup.procs", "cgroup.threads",
					    "cgroup.subtree_control"};
	_cleanup_free_ char *cg = path_join(root, "sys/fs/cgroup");
	if (mount("cgroup2", cg, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		return errno == ENODEV ? 0 : diag_errno(d, "mount cgroup2 on %s", cg);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		_cleanup_free_ char *p = path_join(cg, files[i]);
		if (lchown(p, base, base) < 0 && errno != ENOENT)
			return diag_errno(d, "delegate %s", p);
	}
	return 0;
}

/* Docker's default set; systemd as the init also keeps what it needs to
 * set up its services (namespaces, mounts and links of the guest's own). */
static const int keep_caps[] = {
	CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_FSETID, CAP_FOWNER, CAP_MKNOD, CAP_NET_RAW,
	CAP_SETGID, CAP_SETUID, CAP_SETFCAP, CAP_SETPCAP, CAP_NET_BIND_SERVICE, CAP_SYS_CHROOT,
	CAP_KILL, CAP_AUDIT_WRITE,
};
static const int systemd_caps[] = {CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_RESOURCE,
				   CAP_IPC_OWNER, CAP_LEASE, CAP_LINUX_IMMUTABLE};

static bool kept(int cap, bool systemd)
{
	for (size_t i = 0; i < sizeof(keep_caps) / sizeof(keep_caps[0]); i++)
		if (keep_caps[i] == cap)
			return true;
	for (size_t i = 0; systemd && i < sizeof(systemd_caps) / sizeof(systemd_caps[0]); i++)
		if (systemd_caps[i] == cap)
			return true;
	return false;
}

static int drop_caps(bool systemd, struct diag *d)
{
	struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3};
	struct __user_cap_data_struct data[2] = {0};
	for (int cap = 0; cap <= 63; cap++) {
		if (kept(cap, systemd)) {
			data[cap / 32].effective |= 1u << (cap % 32);
			data[cap / 32].permitted |= 1u << (cap % 32);
		} else if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
			return diag_errno(d, "drop capability %d", cap);
		}
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 ||
	    syscall(SYS_capset, &h, data) < 0)
		return diag_errno(d, "set the init's capabilities");
	return 0;
}

/* Docker's default profile's denials that hold whatever the capabilities
 * (the user namespace and the bounding set cover the rest), for the native
 * architecture and its 32-bit ones. */
static int load_seccomp(struct diag *d)
{
	static const char *const deny[] = {
		"acct", "add_key", "bpf", "clock_adjtime", "clock_settime", "create_module",
		"delete_module", "finit_module", "get_kernel_syms", "init_module", "ioperm", "iopl",
		"kexec_file_load", "kexec_load", "keyctl", "lookup_dcookie",
		"nfsservctl", "open_by_handle_at", "perf_event_open", "query_module", "quotactl",
		"request_key", "settimeofday", "stime", "swapoff", "swapon", "sysfs", "_sysctl",
		"uselib", "userfaultfd", "ustat", "vm86", "vm86old", "io_uring_setup",
		"io_uring_enter", "io_uring_register",
	};
	static const uint32_t arches[] = {SCMP_ARCH_X86, SCMP_ARCH_X32};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return diag_fail(d, "seccomp_init failed");
	seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0); /* libseccomp sets it by default: sudo */
	for (size_t i = 0; i < sizeof(arches) / sizeof(arches[0]); i++)
		if (seccomp_arch_exist(ctx, arches[i]) == -EEXIST)
			seccomp_arch_add(ctx, arches[i]); /* fails on a host that can't run it: fine */
	int r = 0;
	for (size_t i = 0; r == 0 && i < sizeof(deny) / sizeof(deny[0]); i++) {
		int nr = seccomp_syscall_resolve_name(deny[i]);
		if (nr != __NR_SCMP_ERROR && seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) < 0)
			r = diag_fail(d, "seccomp rule for %s", deny[i]);
	}
	if (r == 0 && (r = seccomp_load(ctx)) < 0)
		r = (errno = -r, diag_errno(d, "load the seccomp filter"));
	seccomp_release(ctx);
	return r;
}

int iso_enter(int userns, bool systemd, struct diag *d)
{
	if (setns(userns, CLONE_NEWUSER) < 0)
		return diag_errno(d, "join the machine's user namespace");
	close(userns);
	if (setgroups(0, NULL) < 0 || setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		return diag_errno(d, "become root of the user namespace");
	/* A mount namespace of the guest's: every mount above is locked in place. */
	if (unshare(CLONE_NEWNS) < 0)
		return diag_errno(d, "own mount namespace");
	if (syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 && errno != ENOSYS)
		return diag_errno(d, "new session keyring");
	return load_seccomp(d) < 0 || drop_caps(systemd, d) < 0 ? -1 : 0;
}
