/* cpus and memory through cgroups: v2 when /sys/fs/cgroup is the unified
 * hierarchy, else the v1 cpu and memory controllers. Each machine gets
 * corral/<id> in each; removed again when it stops. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>

#include "core/base/log.h"
#include "core/base/util.h"
#include "providers/container/container.h"

#define CG_ROOT "/sys/fs/cgroup"
#define CFS_PERIOD 100000ULL

struct limit {
	const char *file;
	char value[64];
};

static bool is_v2(void)
{
	struct statfs s;
	return statfs(CG_ROOT, &s) == 0 && s.f_type == CGROUP2_SUPER_MAGIC;
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

/* Creates dir, writes the limits, moves pid in. */
static int place(const char *dir, const struct limit *l, size_t n, pid_t pid, struct diag *d)
{
	char pidstr[32];
	snprintf(pidstr, sizeof(pidstr), "%d", (int)pid);
	if (mkdir_p(dir, 0755, d) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (l[i].value[0] && write_str(dir, l[i].file, l[i].value, d) < 0)
			return -1;
	return write_str(dir, "cgroup.procs", pidstr, d);
}

static int apply_v2(const char *id, pid_t pid, unsigned cpus, uint64_t memory, struct diag *d)
{
	_cleanup_free_ char *parent = path_join(CG_ROOT, "corral");
	_cleanup_free_ char *dir = path_join(parent, id);
	if (mkdir_p(parent, 0755, d) < 0 ||
	    write_str(CG_ROOT, "cgroup.subtree_control", "+cpu +memory", d) < 0 ||
	    write_str(parent, "cgroup.subtree_control", "+cpu +memory", d) < 0)
		return -1;
	struct limit l[2] = {{"cpu.max", ""}, {"memory.max", ""}};
	if (cpus)
		snprintf(l[0].value, sizeof(l[0].value), "%llu %llu", cpus * CFS_PERIOD, CFS_PERIOD);
	if (memory)
		snprintf(l[1].value, sizeof(l[1].value), "%llu", (unsigned long long)memory);
	return place(dir, l, 2, pid, d);
}

static int apply_v1(const char *id, pid_t pid, unsigned cpus, uint64_t memory, struct diag *d)
{
	_cleanup_free_ char *cpu = xasprintf(CG_ROOT "/cpu/corral/%s", id);
	_cleanup_free_ char *mem = xasprintf(CG_ROOT "/memory/corral/%s", id);
	struct limit lc[2] = {{"cpu.cfs_period_us", ""}, {"cpu.cfs_quota_us", ""}};
	struct limit lm[1] = {{"memory.limit_in_bytes", ""}};
	if (cpus) {
		snprintf(lc[0].value, sizeof(lc[0].value), "%llu", CFS_PERIOD);
		snprintf(lc[1].value, sizeof(lc[1].value), "%llu", cpus * CFS_PERIOD);
	}
	if (memory)
		snprintf(lm[0].value, sizeof(lm[0].value), "%llu", (unsigned long long)memory);
	return place(cpu, lc, 2, pid, d) < 0 || place(mem, lm, 1, pid, d) < 0 ? -1 : 0;
}

void ct_cgroup_apply(const char *id, pid_t pid, unsigned cpus, uint64_t memory)
{
	struct diag d = {0};
	int r = is_v2() ? apply_v2(id, pid, cpus, memory, &d) : apply_v1(id, pid, cpus, memory, &d);
	if (r < 0)
		log_warn("cpu and memory limits not applied (cgroups: %s)", d.msg);
}

/* A cgroup whose last process just died may stay busy for a moment. */
static void remove_dir(const char *dir)
{
	for (int i = 0; i < 50 && rmdir(dir) < 0 && errno == EBUSY; i++)
		sleep_ms(10);
}

void ct_cgroup_remove(const char *id)
{
	static const char *const v1[] = {"cpu", "memory"};
	if (is_v2()) {
		_cleanup_free_ char *dir = xasprintf(CG_ROOT "/corral/%s", id);
		remove_dir(dir);
		return;
	}
	for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
		_cleanup_free_ char *dir = xasprintf(CG_ROOT "/%s/corral/%s", v1[i], id);
		remove_dir(dir);
	}
}
