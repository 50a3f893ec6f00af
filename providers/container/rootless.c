/* What an ordinary user's host must give the container provider before a
 * machine can boot without root, each missing piece its own diag code and
 * a hint naming the fix:
 *   DIAG_NO_SUBID        no range of at least CT_IDMAP_SIZE - 1 ids for the
 *                        user in /etc/subuid or /etc/subgid (by name or uid);
 *   DIAG_NO_IDMAP_TOOL   newuidmap or newgidmap missing (package uidmap);
 *   DIAG_USERNS_OFF      unprivileged user namespaces switched off:
 *                        kernel.unprivileged_userns_clone = 0 (Debian's
 *                        patch), user.max_user_namespaces = 0, or
 *                        kernel.apparmor_restrict_unprivileged_userns = 1.
 * The files and the program lookup come in a struct so that unit tests
 * give their own. Checked in this order: the kernel first, as nothing
 * else helps while it says no. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/host/proc.h"
#include "providers/container/container.h"

const struct ct_rootless_host ct_rootless_host_real = {
	.subid = {"/etc/subuid", "/etc/subgid"},
	.userns_clone = "/proc/sys/kernel/unprivileged_userns_clone",
	.max_userns = "/proc/sys/user/max_user_namespaces",
	.apparmor = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
	.have = proc_have,
};

/* A sysctl file's number; absent or unreadable: dflt (the knob is not there). */
static long sysctl_num(const char *path, long dflt)
{
	char *text = NULL;
	size_t len;
	struct diag ignored = {0};
	if (!path || !path_exists(path) || read_file(path, 64, &text, &len, &ignored) < 0)
		return dflt;
	long v = strtol(text, NULL, 10);
	free(text);
	return v;
}

static const struct {
	size_t off; /* which file of struct ct_rootless_host */
	long bad;   /* the value that switches unprivileged user namespaces off */
	const char *fix;
} userns_knobs[] = {
	{offsetof(struct ct_rootless_host, userns_clone), 0,
	 "sysctl -w kernel.unprivileged_userns_clone=1 (as root; and in /etc/sysctl.d/ to keep it)"},
	{offsetof(struct ct_rootless_host, max_userns), 0,
	 "sysctl -w user.max_user_namespaces=28633 (as root; and in /etc/sysctl.d/ to keep it)"},
	{offsetof(struct ct_rootless_host, apparmor), 1,
	 "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (as root), or an AppArmor "
	 "profile for corral that allows userns"},
};

static int check_userns(const struct ct_rootless_host *h, struct diag *d)
{
	for (size_t i = 0; i < sizeof(userns_knobs) / sizeof(userns_knobs[0]); i++) {
		const char *path = *(const char *const *)((const char *)h + userns_knobs[i].off);
		if (sysctl_num(path, -1) != userns_knobs[i].bad)
			continue;
		diag_code(d, DIAG_USERNS_OFF, "unprivileged user namespaces are disabled (%s is %ld)",
			  path, userns_knobs[i].bad);
		return diag_hint(d, "%s", userns_knobs[i].fix);
	}
	return 0;
}

static int check_tools(const struct ct_rootless_host *h, struct diag *d)
{
	static const char *const tools[] = {"newuidmap", "newgidmap"};
	for (size_t i = 0; i < 2; i++) {
		if (h->have(tools[i]))
			continue;
		diag_code(d, DIAG_NO_IDMAP_TOOL, "%s is not installed: the container provider "
			  "needs it to map user ids without root", tools[i]);
		return diag_hint(d, "apt-get install uidmap (as root)");
	}
	return 0;
}

bool ct_subid_line(const char *line, char name[64], uint64_t *start, uint64_t *count)
{
	unsigned long long s, c;
	if (sscanf(line, "%63[^:]:%llu:%llu", name, &s, &c) != 3)
		return false;
	*start = s, *count = c;
	return true;
}

int ct_subid_find(const char *text, const char *user, uid_t uid, struct ct_subid *out)
{
	char idstr[16], name[64];
	snprintf(idstr, sizeof(idstr), "%u", (unsigned)uid);
	for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		uint64_t start, count;
		if (!ct_subid_line(l, name, &start, &count) || count < CT_IDMAP_SIZE - 1 ||
		    start + count > 0xffffffffull)
			continue;
		if ((user && strcmp(name, user) == 0) || strcmp(name, idstr) == 0) {
			out->start = (uint32_t)start, out->count = (uint32_t)count;
			return 0;
		}
	}
	return -1;
}

static int check_subid(const struct ct_rootless_host *h, const char *user, uid_t uid,
		       struct ct_subid range[2], struct diag *d)
{
	for (int i = 0; i < 2; i++) {
		_cleanup_free_ char *text = NULL;
		size_t len;
		struct diag ignored = {0};
		if (!path_exists(h->subid[i]) ||
		    read_file(h->subid[i], 1 << 20, &text, &len, &ignored) < 0 ||
		    ct_subid_find(text, user, uid, &range[i]) < 0) {
			diag_code(d, DIAG_NO_SUBID, "%s has no range of %u ids for user %s", h->subid[i],
				  CT_IDMAP_SIZE, user ? user : "(unknown)");
			return diag_hint(d, "add one with `usermod --add-subuids 100000-165535 "
					    "--add-subgids 100000-165535 %s` (as root)",
					 user ? user : "USER");
		}
	}
	return 0;
}

int ct_rootless_check(const struct ct_rootless_host *h, const char *user, uid_t uid,
		      struct ct_subid range[2], struct diag *d)
{
	if (check_userns(h, d) < 0 || check_tools(h, d) < 0 ||
	    check_subid(h, user, uid, range, d) < 0)
		return -1;
	return 0;
}
