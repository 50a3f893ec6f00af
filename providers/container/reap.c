/* A container machine found without its state.json (damaged, or moved
 * aside as a hint once said): what it left is found from records that do
 * not live in that file. Its processes are those whose output is its
 * console.log (the init, and the port forwarder) or that sit in its cgroup
 * (named by machine_id, a hash of the machine's directory); its links are
 * named by the same id; its address leases and id range are filed under
 * its directory.
 * Each is stopped or removed, and anything still there is an error. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/host/net.h"
#include "providers/container/container.h"

enum { REAP_WAIT_MS = 5000, MAX_PIDS = 4096 };

/* Whether pid's stdout is this console or its cgroup is the machine's. */
static bool belongs(pid_t pid, const char *console, const char *cg)
{
	char link[64], target[4096];
	snprintf(link, sizeof(link), "/proc/%d/fd/1", (int)pid);
	ssize_t n = readlink(link, target, sizeof(target) - 1);
	if (n > 0) {
		target[n] = '\0';
		if (strcmp(target, console) == 0)
			return true;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	char *text = NULL;
	struct diag ignored = {0};
	bool in = false;
	if (read_file(path, 1 << 16, &text, NULL, &ignored) == 0)
		for (const char *p = strstr(text, cg); p && !in; p = strstr(p + 1, cg))
			in = p[strlen(cg)] == '/' || p[strlen(cg)] == '\n';
	free(text);
	return in;
}

/* The pids that belong to the machine, at most max. */
static size_t find_pids(const char *console, const char *cg, pid_t *out, size_t max)
{
	DIR *dh = opendir("/proc");
	struct dirent *e;
	size_t n = 0;
	while (dh && (e = readdir(dh)) && n < max) {
		pid_t pid = (pid_t)atoi(e->d_name);
		if (pid > 1 && pid != getpid() && belongs(pid, console, cg))
			out[n++] = pid;
	}
	if (dh)
		closedir(dh);
	return n;
}

/* SIGKILL to them until none is left (bounded): how many there were;
 * *left is one still there after the last scan, or 0. */
static size_t kill_all(const char *console, const char *cg, pid_t *left)
{
	static pid_t pids[MAX_PIDS];
	size_t n = find_pids(console, cg, pids, MAX_PIDS), first = n;
	for (uint64_t t0 = now_ms(); n && now_ms() - t0 < REAP_WAIT_MS; sleep_ms(20)) {
		for (size_t i = 0; i < n; i++)
			kill(pids[i], SIGKILL);
		n = find_pids(console, cg, pids, MAX_PIDS);
	}
	*left = n ? pids[0] : 0;
	return first;
}

int ct_reap(struct machine *m, bool *found, struct diag *d)
{
	const char *id = machine_id(m);
	_cleanup_free_ char *console = machine_path(m, "console.log");
	_cleanup_free_ char *cg = xasprintf("/corral/%s", id);
	pid_t left;
	*found = kill_all(console, cg, &left) > 0;
	if (left)
		return diag_fail(d, "process %d of the machine still runs after SIGKILL", (int)left);
	ct_release_host(m, CT_MAX_NETS);
	if (net_release_everywhere(m->dir, d) < 0)
		return -1;
	ct_idmap_release(m);
	return 0;
}
