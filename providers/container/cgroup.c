/* Limits for a machine's processes through cgroups: v2 when
 * /sys/fs/cgroup is the unified hierarchy, else the v1 cpu, memory, pids
 * and devices controllers.
 *
 * The limits sit on corral/<id>; the machine's processes go into its child
 * corral/<id>/guest, and the init then enters a cgroup namespace rooted
 * there. A guest that mounts a cgroup file system sees guest/ as its root,
 * never the limits above it, and whatever it writes there only limits it
 * further (every controller used here is hierarchical).
 *
 * A limit that cannot be applied fails `up`, naming the setting, unless
 * the envfile says `limits: best-effort` (then one warning per setting).
 * The device controller (v1) denies everything but null, zero, full,
 * random, urandom, tty, ptmx and the pts (and fuse when asked); on v2 that
 * would take a BPF program, and is left to /dev holding only those nodes
 * with CAP_MKNOD dropped.
 *
 * Without root all of this happens below the user's own cgroup in the v2
 * hierarchy (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host)
 * when it is delegated to the user: there the init gets corral/<id>/guest
 * too, which a systemd guest needs as its /sys/fs/cgroup. Limits take the
 * controllers that cgroup offers (none on a hybrid host's unified tree).
 *
 * The freezer (suspend, and snapshots of a running machine) is v2's
 * cgroup.freeze on corral/<id>: wherever the v2 hierarchy is mounted (on a
 * hybrid host the init made that group itself: isolate.c), or below the
 * user's delegated cgroup. The guest cannot thaw itself: the file is above
 * its cgroup namespace's root, and not delegated to it. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "core/base/log.h"
#include "core/base/util.h"
#include "core/host/paths.h"
#include "providers/container/container.h"

#define CG_ROOT "/sys/fs/cgroup"
#define CFS_PERIOD 100000ULL
#define GUEST "guest"

/* One value written into one file of one controller ("" on v2). */
struct knob {
	const char *setting, *ctl, *file;
	char value[64];
	bool optional; /* skipped when the kernel has no such file (swap accounting) */
};

/* Device numbers the guest may open (c MAJOR:MINOR), in devices.allow syntax. */
static const char *const dev_allowed[] = {
	"c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm", /* null zero full random urandom */
	"c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm",                        /* tty ptmx pts */
};
#define DEV_FUSE "c 10:229 rwm"

static bool is_cgroup2(const char *dir)
{
	struct statfs s;
	return statfs(dir, &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC;
}

/* Root works in the host's hierarchy (v2 or v1); without root only in a
 * delegated v2 cgroup. */
static bool is_v2(void)
{
	return host_rootless() || is_cgroup2(CG_ROOT);
}

/* Where the v2 hierarchy is mounted: /sys/fs/cgroup, or on a hybrid host
 * (v1 controllers) /sys/fs/cgroup/unified; NULL when nowhere. */
static const char *v2_mount(void)
{
	static const char *const at[] = {CG_ROOT, CG_ROOT "/unified"};
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++)
		if (is_cgroup2(at[i]))
			return at[i];
	return NULL;
}

static int write_str(const char *dir, const char *file, const char *value, struct diag *d)
{
	_cleanup_free_ char *p = path_join(dir, file);
	FILE *f = fopen(p, "w");
	if (!f)
		return diag_errno(d, "open %s", p);
	bool ok = fputs(value, f) >= 0;
	if (fclose(f) != 0 || !ok)
		return diag_errno(d, "write %s to %s", value, p);
	return 0;
}

static void add(struct knob *k, size_t *n, const char *setting, const char *ctl, const char *file,
		bool optional, const char *fmt, unsigned long long v)
{
	k[*n] = (struct knob){setting, ctl, file, "", optional};
	snprintf(k[*n].value, sizeof(k[*n].value), fmt, v, CFS_PERIOD);
	(*n)++;
}

/* The writes for l, in order; returns how many (k holds at least 16). */
static size_t knobs_for(const struct ct_limits *l, bool v2, struct knob *k)
{
	size_t n = 0;
	if (v2) {
		add(k, &n, "cpus", "", "cpu.max", false, "%llu %llu", l->cpus * CFS_PERIOD);
		add(k, &n, "memory", "", "memory.max", false, "%llu", l->memory);
		add(k, &n, "memory", "", "memory.swap.max", true, "0", 0);
		add(k, &n, "pids", "", "pids.max", false, "%llu", l->pids);
		return n;
	}
	add(k, &n, "cpus", "cpu", "cpu.cfs_period_us", false, "%llu", CFS_PERIOD);
	add(k, &n, "cpus", "cpu", "cpu.cfs_quota_us", false, "%llu", l->cpus * CFS_PERIOD);
	add(k, &n, "memory", "memory", "memory.limit_in_bytes", false, "%llu", l->memory);
	add(k, &n, "memory", "memory", "memory.memsw.limit_in_bytes", true, "%llu", l->memory);
	add(k, &n, "pids", "pids", "pids.max", false, "%llu", l->pids);
	add(k, &n, "devices", "devices", "devices.deny", false, "a", 0);
	for (size_t i = 0; i < sizeof(dev_allowed) / sizeof(dev_allowed[0]); i++)
		add(k, &n, "devices", "devices", "devices.allow", false, dev_allowed[i], 0);
	if (l->fuse)
		add(k, &n, "devices", "devices", "devices.allow", false, DEV_FUSE, 0);
	return n;
}

/* A setting that could not be applied: an error, or under best-effort a
 * warning (once per setting) and on. */
static int miss(const struct ct_limits *l, const char *setting, const char **warned,
		struct diag *d)
{
	if (l->best_effort && *warned && strcmp(*warned, setting) == 0) {
		*d = (struct diag){0};
		return 0;
	}
	*warned = setting;
	return ct_limit_missed(l->best_effort, NULL, setting,
			       "fix the host's cgroups, or set provider_options.container."
			       "limits: best-effort to run without it", d);
}

static char *ctl_dir(const char *root, const char *ctl, const char *id, const char *leaf)
{
	return xasprintf("%s%s%s/corral/%s%s%s", root, ctl[0] ? "/" : "", ctl, id,
			 leaf ? "/" : "", leaf ? leaf : "");
}

/* Without root: the cgroup (v2) this process is in when it is delegated
 * to the user (owned and writable by it: a systemd user session's
 * user@UID.service, a `systemd-run --user --scope`), else NULL. */
static char *delegated_root(void)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	struct diag ignored = {0};
	const char *mnt = v2_mount();
	if (!mnt || read_file("/proc/self/cgroup", 1 << 16, &text, &len, &ignored) < 0)
		return NULL;
	char *rel = strstr(text, "0::");
	if (!rel || (rel != text && rel[-1] != '\n'))
		return NULL;
	rel[strcspn(rel, "\n")] = '\0';
	char *dir = xasprintf("%s%s", mnt, rel + 3); /* rel: "/..." */
	struct stat st;
	if (stat(dir, &st) == 0 && st.st_uid == geteuid() && access(dir, W_OK) == 0)
		return dir;
	free(dir);
	return NULL;
}

/* Where corral/ goes: the hierarchy's root, or the user's delegated cgroup. */
static char *cg_root(void)
{
	return host_rootless() ? delegated_root() : xstrdup(CG_ROOT);
}

bool ct_cgroup_delegated(void)
{
	_cleanup_free_ char *root = cg_root();
	return root != NULL;
}

/* Whether dir's cgroup offers the controller ctl (cgroup.controllers). */
static bool offers(const char *dir, const char *ctl)
{
	_cleanup_free_ char *p = path_join(dir, "cgroup.controllers"), *text = NULL;
	size_t len;
	struct diag ignored = {0};
	if (read_file(p, 4096, &text, &len, &ignored) < 0)
		return false;
	char *save = NULL;
	for (char *w = strtok_r(text, " \n", &save); w; w = strtok_r(NULL, " \n", &save))
		if (strcmp(w, ctl) == 0)
			return true;
	return false;
}

/* On v2 the controllers must be enabled for corral/ and its children;
 * off[] (NULL-ended, 4 slots) gets the settings whose controller could not
 * be (already warned about under best-effort). */
static int enable_v2(const char *root, const struct ct_limits *l, const char **off,
		     struct diag *d)
{
	static const char *const ctl[][3] = {{"cpus", "cpu", "+cpu"},
					     {"memory", "memory", "+memory"},
					     {"pids", "pids", "+pids"}};
	const char *warned = NULL;
	size_t n = 0;
	_cleanup_free_ char *parent = path_join(root, "corral");
	off[0] = NULL;
	if (mkdir_p(parent, 0755, d) < 0 && miss(l, "cpus", &warned, d) < 0)
		return -1;
	for (size_t i = 0; i < sizeof(ctl) / sizeof(ctl[0]); i++) {
		if (!offers(root, ctl[i][1]))
			diag_fail(d, "cgroup %s offers no `%s` controller", root, ctl[i][1]);
		else if (write_str(root, "cgroup.subtree_control", ctl[i][2], d) == 0 &&
			 write_str(parent, "cgroup.subtree_control", ctl[i][2], d) == 0)
			continue;
		if (miss(l, ctl[i][0], &warned, d) < 0)
			return -1;
		off[n++] = ctl[i][0], off[n] = NULL;
	}
	return 0;
}

/* Writes the knobs of one controller (k[0..n) share k->ctl) into its
 * corral/<id>, then moves pid into corral/<id>/guest. */
static int apply_ctl(const char *root, const char *id, pid_t pid, const struct knob *k, size_t n,
		     const struct ct_limits *l, const char *const *off, struct diag *d)
{
	const char *warned = NULL;
	_cleanup_free_ char *dir = ctl_dir(root, k->ctl, id, NULL);
	_cleanup_free_ char *guest = ctl_dir(root, k->ctl, id, GUEST);
	if (mkdir_p(dir, 0755, d) < 0)
		return miss(l, k->setting, &warned, d);
	for (size_t i = 0; i < n; i++) {
		_cleanup_free_ char *p = path_join(dir, k[i].file);
		if ((k[i].optional && !path_exists(p)) || str_in_list(k[i].setting, off))
			continue;
		if (write_str(dir, k[i].file, k[i].value, d) < 0 &&
		    miss(l, k[i].setting, &warned, d) < 0)
			return -1;
	}
	char pidstr[32];
	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	if ((mkdir_p(guest, 0755, d) < 0 || write_str(guest, "cgroup.procs", pidstr, d) < 0) &&
	    miss(l, k->setting, &warned, d) < 0)
		return -1;
	return 0;
}

/* Unset: strict as root; without root best-effort, as an ordinary user
 * seldom has a delegated cgroup (`limits: strict` asks for the error). */
bool ct_best_effort(const struct machine_cfg *c)
{
	if (!c->container.limits)
		return host_rootless();
	return strcmp(c->container.limits, "best-effort") == 0;
}

int ct_limit_missed(bool best_effort, const char *name, const char *setting, const char *hint,
		    struct diag *d)
{
	const char *sep = name ? ": " : "";
	name = name ? name : "";
	if (!best_effort) {
		diag_wrap(d, "%s%sthe `%s` limit could not be applied", name, sep, setting);
		return diag_hint(d, "%s", hint);
	}
	log_warn("%s%sthe `%s` limit is not applied (limits: best-effort): %s", name, sep, setting,
		 d->msg);
	*d = (struct diag){0};
	return 0;
}

/* Without root and no delegated cgroup: no limit at all. */
static int undelegated(const struct ct_limits *l, struct diag *d)
{
	if (l->best_effort) {
		log_warn("cpus, memory and pids limits are not applied: corral runs without root "
			 "and its cgroup is not delegated to the user");
		return 0;
	}
	diag_fail(d, "the `cpus`, `memory` and `pids` limits cannot be applied: corral runs "
		     "without root and its cgroup is not delegated to the user");
	return diag_hint(d, "run it in a systemd user session's delegated cgroup (systemd-run "
			    "--user --scope corral up), or set provider_options.container.limits: "
			    "best-effort");
}

int ct_cgroup_apply(const char *id, pid_t pid, const struct ct_limits *l, struct diag *d)
{
	struct knob k[24];
	bool v2 = is_v2();
	size_t n = knobs_for(l, v2, k);
	_cleanup_free_ char *root = cg_root();
	const char *off[4] = {NULL};
	if (!root)
		return undelegated(l, d);
	if (v2 && enable_v2(root, l, off, d) < 0)
		return -1;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && strcmp(k[j].ctl, k[i].ctl) == 0)
			j++;
		if (apply_ctl(root, id, pid, k + i, j - i, l, off, d) < 0)
			return -1;
		i = j;
	}
	return 0;
}

#define FREEZE_WAIT_MS 10000

/* Without root: the cgroup the up recorded, when it is still a v2 cgroup
 * of the user's (a `destroy` or `snapshot` from another cgroup than the
 * `up`'s); else
 * this process's. As root: always the hierarchy's root. */
static char *machine_root(const char *where)
{
	struct stat st;
	if (host_rootless() && where && where[0] == '/' && is_cgroup2(where) &&
	    stat(where, &st) == 0 && st.st_uid == geteuid())
		return xstrdup(where);
	return cg_root();
}

/* The machine's v2 group when it has one with a freezer; else NULL. */
static char *freezer_dir(const char *id, const char *where)
{
	const char *mnt = v2_mount();
	_cleanup_free_ char *root = host_rootless() ? machine_root(where) : xstrdup(mnt);
	if (!root)
		return NULL;
	char *dir = xasprintf("%s/corral/%s", root, id);
	_cleanup_free_ char *f = path_join(dir, "cgroup.freeze");
	if (path_exists(f))
		return dir;
	free(dir);
	return NULL;
}

/* cgroup.events says "frozen 1" (or 0) once every process has stopped. */
static bool events_say(const char *dir, bool frozen)
{
	_cleanup_free_ char *p = path_join(dir, "cgroup.events"), *text = NULL;
	size_t len;
	struct diag ignored = {0};
	if (read_file(p, 4096, &text, &len, &ignored) < 0)
		return false;
	const char *want = frozen ? "frozen 1" : "frozen 0";
	const char *at = strstr(text, want);
	return at && (at == text || at[-1] == '\n');
}

int ct_cgroup_freeze(const char *id, const char *where, bool on, struct diag *d)
{
	_cleanup_free_ char *dir = freezer_dir(id, where);
	if (!dir) {
		diag_fail(d, "the machine has no cgroup (v2) with a freezer%s",
			  host_rootless() ? ": corral runs without root and its cgroup is not "
					    "delegated to the user" : "");
		return diag_hint(d, host_rootless() ? "run corral in a delegated cgroup "
			"(`systemd-run --user --scope corral ...`), or halt the machine first"
			: "mount the cgroup v2 hierarchy (unified or hybrid), or halt the machine first");
	}
	if (write_str(dir, "cgroup.freeze", on ? "1" : "0", d) < 0)
		return -1;
	for (uint64_t t0 = now_ms(); !events_say(dir, on); sleep_ms(10))
		if (now_ms() - t0 > FREEZE_WAIT_MS)
			return diag_fail(d, "%s: its processes did not %s within %d s", dir,
					 on ? "freeze" : "thaw", FREEZE_WAIT_MS / 1000);
	return 0;
}

enum { CG_DEPTH_MAX = 32 };

/* A cgroup and every cgroup the guest made below it (systemd makes a
 * tree), deepest first: a v1 cgroup with children cannot be removed, nor
 * its device rules set again on the next boot. A cgroup whose last process
 * just died may stay busy for a moment. cgroupfs holds no links. */
static void remove_dir(const char *dir, int depth)
{
	DIR *dh = depth < CG_DEPTH_MAX ? opendir(dir) : NULL;
	struct dirent *e;
	while (dh && (e = readdir(dh))) {
		if (e->d_type != DT_DIR || !strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		_cleanup_free_ char *sub = path_join(dir, e->d_name);
		remove_dir(sub, depth + 1);
	}
	if (dh)
		closedir(dh);
	for (int i = 0; i < 50 && rmdir(dir) < 0 && errno == EBUSY; i++)
		sleep_ms(10);
}

char *ct_cgroup_where(void) { return cg_root(); }

void ct_cgroup_remove(const char *id, const char *where)
{
	/* "unified": the v2 group the init makes for itself on a v1 host
	 * (isolate.c), where a hybrid host mounts the v2 hierarchy */
	static const char *const v1[] = {"cpu", "memory", "pids", "devices", "unified"};
	bool v2 = is_v2();
	_cleanup_free_ char *root = machine_root(where);
	for (size_t i = 0; root && i < (v2 ? 1 : sizeof(v1) / sizeof(v1[0])); i++) {
		const char *ctl = v2 ? "" : v1[i];
		_cleanup_free_ char *guest = ctl_dir(root, ctl, id, GUEST);
		_cleanup_free_ char *dir = ctl_dir(root, ctl, id, NULL);
		remove_dir(guest, 0);
		remove_dir(dir, 0);
	}
}
