/* Without root, the files of a machine are owned by the user's mapped ids
 * (guest root is the user's own uid, guest ids 1..65535 the user's subuid
 * range): the user cannot make, change or remove them from the host. So
 * what touches them runs as `corral __ctns OP ARGS...` in a user namespace
 * of the same map (what `podman unshare` is): the map is written by the
 * parent with newuidmap/newgidmap (ct_userns_map) before the child goes on.
 *   rm PATH          removes a tree (a machine's upper layer, a box's copy)
 *   copy FROM TO     cp -a (the `provisioned` checkpoint and reset)
 *   mapbox BOX TO    the box's rootfs/ copied to TO/rootfs with the owners
 *                    its manifest records, and its metadata.json
 * ct_box_mapped keeps one such copy per box (by the digest of its manifest)
 * under $CORRAL_HOME/boxes-mapped/: made once, in a temporary directory
 * renamed into place, so a copy cut short by kill -9 is never used (what
 * it left is removed at the next try). */
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <jansson.h>

#include "core/base/digest.h"
#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/box/fetch.h"
#include "core/host/lock.h"
#include "core/host/proc.h"
#include "providers/container/container.h"

#define NS_FD 3
#define NS_WAIT_MS 600000 /* a big box's copy */

int ct_rootless_ranges(struct ct_subid range[2], struct diag *d)
{
	struct passwd *pw = getpwuid(geteuid());
	return ct_rootless_check(&ct_rootless_host_real, pw ? pw->pw_name : NULL, geteuid(), range,
				 d);
}

/* "0 OWN 1 1 START 65535": guest root is the user, the rest its range. */
int ct_userns_map(pid_t pid, struct diag *d)
{
	struct ct_subid range[2];
	if (ct_rootless_ranges(range, d) < 0)
		return -1;
	static const char *const tools[] = {"newuidmap", "newgidmap"};
	unsigned own[2] = {(unsigned)geteuid(), (unsigned)getegid()};
	for (int i = 0; i < 2; i++) {
		char p[16], o[16], s[16], n[16];
		snprintf(p, sizeof(p), "%d", (int)pid);
		snprintf(o, sizeof(o), "%u", own[i]);
		snprintf(s, sizeof(s), "%u", range[i].start);
		snprintf(n, sizeof(n), "%u", CT_IDMAP_SIZE - 1);
		const char *argv[] = {tools[i], p, "0", o, "1", "1", s, n, NULL};
		if (proc_run(argv, NULL, d) < 0)
			return diag_wrap(d, "map the machine's user ids");
	}
	return 0;
}

/* Spawned with CLONE_NEWUSER (and more): its map written, then "m" on
 * ctl, whose other end is the child's NS_FD. */
int ct_userns_release(pid_t pid, int ctl, struct diag *d)
{
	if (ct_userns_map(pid, d) < 0)
		return -1;
	if (send(ctl, "m", 1, MSG_NOSIGNAL) != 1) /* a child already gone: no SIGPIPE */
		return diag_errno(d, "start the user namespace's process");
	return 0;
}

int ct_unshare_run(const char *const *args, struct diag *d)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return diag_errno(d, "socketpair");
	struct strv argv = {0};
	strv_push(&argv, "corral");
	strv_push(&argv, "__ctns");
	for (size_t i = 0; args[i]; i++)
		strv_push(&argv, args[i]);
	int fds[] = {PROC_NULL, PROC_NULL, PROC_NULL, sv[1]};
	struct proc_spawn s = {.argv = (const char *const *)argv.v, .exe = "/proc/self/exe",
			       .fds = fds, .nfds = 4, .namespaces = CLONE_NEWUSER | CLONE_NEWNS};
	pid_t pid;
	int r = proc_spawn(&s, &pid, d);
	strv_free(&argv);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return -1;
	}
	int mapped = ct_userns_release(pid, sv[0], d);
	if (mapped < 0)
		kill(pid, SIGKILL);
	char msg[1024];
	ssize_t n = 0, got;
	while ((got = read(sv[0], msg + n, sizeof(msg) - 1 - (size_t)n)) > 0 ||
	       (got < 0 && errno == EINTR))
		n += got > 0 ? got : 0;
	close(sv[0]);
	msg[n] = '\0';
	int sig, st = proc_wait(pid, &sig);
	if (mapped < 0)
		return -1;
	if (st == 0)
		return 0;
	msg[strcspn(msg, "\n")] = '\0';
	return diag_fail(d, "%s %s: %s", args[0], args[1] ? args[1] : "",
			 n ? msg : "failed in the user namespace");
}

int ct_unshare_rm(const char *path, struct diag *d)
{
	if (!path_exists(path))
		return 0;
	const char *args[] = {"rm", path, NULL};
	return ct_unshare_run(args, d);
}

/* ---- in the user namespace ---- */

/* rel under the copy, no symlink followed on the way nor at its end (the
 * tree is the box's: a link in it must not point a chown at the user's
 * own files); owner, then the mode (chown drops set-id bits), through the
 * O_PATH descriptor. A name the copy lacks is passed over. */
static int set_owner(int root, const char *rel, uid_t u, gid_t g, const char *mode,
		     struct diag *d)
{
	struct open_how how = {.flags = O_PATH | O_NOFOLLOW | O_CLOEXEC,
			       .resolve = RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS};
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, root, rel, &how, sizeof(how));
	if (fd < 0)
		return errno == ENOENT ? 0 : diag_errno(d, "open %s", rel);
	char self[32];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (fchownat(fd, "", u, g, AT_EMPTY_PATH) < 0)
		return diag_errno(d, "set owner of %s", rel);
	if (mode && chmod(self, (mode_t)strtoul(mode, NULL, 8)) < 0)
		return diag_errno(d, "set mode of %s", rel);
	return 0;
}

/* The manifest's owners on the copy (ids past the map are left the
 * user's); chown drops set-id bits, so the recorded mode comes back. */
static int apply_owners(const char *box, const char *to, struct diag *d)
{
	char why[160];
	json_t *doc;
	json_t *files = boxfetch_manifest_files(box, &doc, why);
	if (!files) {
		json_decref(doc);
		return diag_fail(d, "%s/%s: no usable manifest", box, BOXFETCH_MANIFEST);
	}
	_cleanup_close_ int root = open(to, O_PATH | O_DIRECTORY | O_CLOEXEC);
	const char *key;
	json_t *rec;
	int r = root < 0 ? diag_errno(d, "open %s", to) : 0;
	json_object_foreach(files, key, rec) {
		if (r < 0 || !str_starts(key, "rootfs/"))
			continue;
		json_int_t uid = json_integer_value(json_object_get(rec, "uid"));
		json_int_t gid = json_integer_value(json_object_get(rec, "gid"));
		const char *mode = json_string_value(json_object_get(rec, "mode"));
		const char *type = json_string_value(json_object_get(rec, "type"));
		uid_t u = uid >= 0 && uid < CT_IDMAP_SIZE ? (uid_t)uid : 0;
		gid_t g = gid >= 0 && gid < CT_IDMAP_SIZE ? (gid_t)gid : 0;
		bool link = !type || strcmp(type, "symlink") == 0;
		r = set_owner(root, key, u, g, link ? NULL : mode, d);
	}
	json_decref(doc);
	return r;
}

static int op_mapbox(const char *box, const char *to, struct diag *d)
{
	_cleanup_free_ char *src = path_join(box, "rootfs"), *meta = path_join(box, "metadata.json");
	_cleanup_free_ char *meta_to = path_join(to, "metadata.json");
	if (mkdir_p(to, 0700, d) < 0 || ct_cp_a(src, to, d) < 0 || ct_cp_a(meta, meta_to, d) < 0)
		return -1;
	return apply_owners(box, to, d);
}

static int ns_op(int argc, char **argv, struct diag *d)
{
	if (argc == 3 && strcmp(argv[1], "rm") == 0)
		return rm_rf(argv[2], d);
	if (argc == 4 && strcmp(argv[1], "copy") == 0)
		return ct_copy_fresh(argv[2], argv[3], d);
	if (argc == 4 && strcmp(argv[1], "mapbox") == 0)
		return op_mapbox(argv[2], argv[3], d);
	return diag_fail(d, "__ctns: unknown operation");
}

/* Capabilities in a new user namespace are lost at the exec that follows
 * the clone when our uid had no map yet (no root's then): once the map is
 * there, we run ourselves again, as the namespace's root (MAPPED_ENV
 * says so to the second run, which drops it). */
#define MAPPED_ENV "CORRAL_USERNS_MAPPED"
int ct_userns_enter(int fd, int argc, char **argv)
{
	char go;
	if (getenv(MAPPED_ENV)) {
		unsetenv(MAPPED_ENV);
		return 0;
	}
	if (read(fd, &go, 1) != 1 || go != 'm' || setenv(MAPPED_ENV, "1", 1) < 0)
		return -1;
	char **again = xcalloc((size_t)argc + 2, sizeof(char *));
	again[0] = "corral";
	for (int i = 0; i < argc; i++)
		again[i + 1] = argv[i];
	int fl = fcntl(fd, F_GETFD);
	if (fl >= 0)
		fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
	execv("/proc/self/exe", again);
	dprintf(fd, "run again in the user namespace: %s\n", strerror(errno));
	free(again);
	return -1;
}

/* Run by hand (`corral __ctns rm DIR`: docs/providers.md): fd 3 is not
 * our parent's socket; the operation is run the usual way instead. */
static bool spawned(void)
{
	struct stat st;
	return getenv(MAPPED_ENV) || (fstat(NS_FD, &st) == 0 && S_ISSOCK(st.st_mode));
}

int ct_ns_main(int argc, char **argv)
{
	struct diag d = {0};
	if (!spawned()) {
		if (argc < 2 || ct_unshare_run((const char *const *)argv + 1, &d) == 0)
			return argc < 2 ? 2 : 0;
		fprintf(stderr, "corral: error: %s\n", d.msg);
		return 1;
	}
	if (ct_userns_enter(NS_FD, argc, argv) < 0)
		return 1;
	fcntl(NS_FD, F_SETFD, FD_CLOEXEC);
	if (ns_op(argc, argv, &d) == 0)
		return 0;
	dprintf(NS_FD, "%s\n", d.msg);
	return 1;
}

/* ---- one mapped copy per box ---- */

static int mapped_dir(const char *box, char **out, struct diag *d)
{
	_cleanup_free_ char *mpath = path_join(box, BOXFETCH_MANIFEST);
	char hex[HASH_HEX_MAX];
	if (hash_file(mpath, "sha256", NULL, hex, d) < 0)
		return diag_wrap(d, "the box's manifest");
	*out = xasprintf("%s/boxes-mapped/%.32s", corral_home(), hex);
	return 0;
}

int ct_box_mapped(const char *box, char **lower, struct diag *d)
{
	_cleanup_free_ char *dir = NULL;
	if (mapped_dir(box, &dir, d) < 0)
		return -1;
	*lower = path_join(dir, "rootfs");
	if (path_is_dir(*lower))
		return 0;
	_cleanup_free_ char *parent = path_dirname(dir), *lp = xasprintf("%s.lock", dir);
	_cleanup_free_ char *tmp = xasprintf("%s.tmp", dir);
	struct lock l;
	if (mkdir_p(parent, 0700, d) < 0 || lock_acquire(lp, NS_WAIT_MS, &l, d) < 0)
		return diag_wrap(d, "the box's copy for this user");
	int r = 0;
	if (!path_is_dir(*lower)) { /* not made meanwhile by another corral */
		const char *args[] = {"mapbox", box, tmp, NULL};
		r = ct_unshare_rm(tmp, d) < 0 || ct_unshare_run(args, d) < 0 ? -1 : 0;
		if (r == 0 && rename(tmp, dir) < 0)
			r = diag_errno(d, "rename %s", tmp);
	}
	lock_release(&l);
	return r < 0 ? diag_wrap(d, "copy the box into the user's ids") : 0;
}
