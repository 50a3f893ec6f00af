/* providers/container/rootless.c: each missing piece of a rootless host
 * (subuid/subgid range, newuidmap/newgidmap, unprivileged user namespaces)
 * is its own diag code with a hint naming the fix; subuid(5) lines by
 * name or by uid, ranges too small skipped; `limits` defaults by mode. Files are made in a temporary
 * directory; the program lookup is a stub. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/config/envfile.h"
#include "providers/container/container.h"
#include "tests/unit/t.h"

static char dir[] = "/tmp/corral-test-rootless.XXXXXX";
static const char *missing_tool;

static bool have_stub(const char *prog) { return !missing_tool || strcmp(prog, missing_tool) != 0; }

static char *put(const char *name, const char *text)
{
	char *p = path_join(dir, name);
	struct diag d = {0};
	if (write_file_atomic(p, text, strlen(text), 0644, &d) < 0)
		printf("# %s\n", d.msg);
	return p;
}

static struct ct_rootless_host host(void)
{
	struct ct_rootless_host h = {
		.subid = {put("subuid", "other:100000:65536\nalice:165536:65536\n"),
			  put("subgid", "1000:165536:65536\n")},
		.userns_clone = put("clone", "1\n"),
		.max_userns = put("max", "15000\n"),
		.apparmor = NULL,
		.have = have_stub,
	};
	return h;
}

static void host_free(struct ct_rootless_host *h)
{
	free((char *)h->subid[0]);
	free((char *)h->subid[1]);
	free((char *)h->userns_clone);
	free((char *)h->max_userns);
	free((char *)h->apparmor);
}

static int check(struct ct_rootless_host *h, struct diag *d)
{
	struct ct_subid r[2] = {{0}};
	int rc = ct_rootless_check(h, "alice", 1000, r, d);
	if (rc == 0) {
		CHECK(r[0].start == 165536 && r[0].count == 65536);
		CHECK(r[1].start == 165536);
	}
	host_free(h);
	return rc;
}

static void test_all_there(void)
{
	struct ct_rootless_host h = host();
	struct diag d = {0};
	missing_tool = NULL;
	CHECK(check(&h, &d) == 0);
}

static void test_no_subid(void)
{
	struct ct_rootless_host h = host();
	free((char *)h.subid[1]);
	h.subid[1] = put("subgid", "alice:165536:1000\nbob:1:65536\n"); /* too small; not ours */
	struct diag d = {0};
	CHECK(check(&h, &d) < 0);
	CHECK(d.code == DIAG_NO_SUBID);
	CHECK(strstr(d.msg, "subgid") != NULL);
	CHECK(strstr(d.hint, "usermod --add-subuids 100000-165535 --add-subgids 100000-165535 alice"));
}

static void test_subid_file_absent(void)
{
	struct ct_rootless_host h = host();
	free((char *)h.subid[0]);
	h.subid[0] = path_join(dir, "nonexistent");
	struct diag d = {0};
	CHECK(check(&h, &d) < 0);
	CHECK(d.code == DIAG_NO_SUBID);
}

static void test_no_newuidmap(void)
{
	struct ct_rootless_host h = host();
	struct diag d = {0};
	missing_tool = "newgidmap";
	CHECK(check(&h, &d) < 0);
	missing_tool = NULL;
	CHECK(d.code == DIAG_NO_IDMAP_TOOL);
	CHECK(strstr(d.msg, "newgidmap") != NULL);
	CHECK(strstr(d.hint, "apt-get install uidmap") != NULL);
}

static void test_userns_off(void)
{
	static const struct {
		const char *file, *text, *knob;
	} cases[] = {
		{"clone", "0\n", "kernel.unprivileged_userns_clone=1"},
		{"max", "0\n", "user.max_user_namespaces="},
		{"apparmor", "1\n", "kernel.apparmor_restrict_unprivileged_userns=0"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct ct_rootless_host h = host();
		const char **slot = i == 0 ? &h.userns_clone : i == 1 ? &h.max_userns : &h.apparmor;
		free((char *)*slot);
		*slot = put(cases[i].file, cases[i].text);
		struct diag d = {0};
		missing_tool = "newuidmap"; /* the kernel is reported first */
		CHECK(check(&h, &d) < 0);
		missing_tool = NULL;
		CHECK(d.code == DIAG_USERNS_OFF);
		CHECK(strstr(d.hint, cases[i].knob) != NULL);
	}
}

/* `limits` unset: strict as root, best-effort without (few users have a
 * delegated cgroup); set, as it says. */
static void test_limits_default(void)
{
	struct machine_cfg c = {0};
	CHECK(ct_best_effort(&c) == (geteuid() != 0));
	c.container.limits = "strict";
	CHECK(!ct_best_effort(&c));
	c.container.limits = "best-effort";
	CHECK(ct_best_effort(&c));
}

static void test_subid_lines(void)
{
	struct ct_subid r;
	CHECK(ct_subid_find("# c\nx\nalice:1:2\nalice:200000:70000\n", "alice", 5, &r) == 0);
	CHECK(r.start == 200000 && r.count == 70000);
	CHECK(ct_subid_find("5:300000:65536", "alice", 5, &r) == 0 && r.start == 300000);
	CHECK(ct_subid_find("alice:4294967000:65536\n", "alice", 5, &r) < 0); /* past 2^32 */
	CHECK(ct_subid_find("", "alice", 5, &r) < 0);
	CHECK(ct_subid_find("alicex:1:65536\n", "alice", 5, &r) < 0);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(test_all_there);
	RUN(test_no_subid);
	RUN(test_subid_file_absent);
	RUN(test_no_newuidmap);
	RUN(test_userns_off);
	RUN(test_subid_lines);
	RUN(test_limits_default);
	int rc = T_END();
	char *files[] = {"subuid", "subgid", "clone", "max", "apparmor"};
	for (size_t i = 0; i < 5; i++) {
		char *p = path_join(dir, files[i]);
		unlink(p);
		free(p);
	}
	rmdir(dir);
	return rc;
}
