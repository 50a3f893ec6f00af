/* engine/guest: the rsync argv (never a shell string; .corral kept out) and
 * which synced folder types each provider takes. */
#include <stdlib.h>
#include <string.h>

#include "engine/guest.h"
#include "t.h"

static size_t argc_of(char **v)
{
	size_t n = 0;
	while (v[n])
		n++;
	return n;
}

static void rsync_argv(void)
{
	struct strv a = guest_rsync_argv("/tmp/corral-rsync.x/ssh_config", "/p/my app", "/srv/a b",
					 "/p/my app/.corral");
	char **v = a.v;
	CHECK(argc_of(v) == 8);
	CHECK_STR(v[0], "rsync");
	CHECK_STR(v[1], "-az");
	CHECK_STR(v[2], "--delete");
	CHECK_STR(v[3], "-e");
	CHECK_STR(v[4], "ssh -F /tmp/corral-rsync.x/ssh_config");
	CHECK_STR(v[5], "--exclude=/.corral/");
	CHECK_STR(v[6], "/p/my app/");
	CHECK_STR(v[7], "corral-guest:/srv/a b");
	strv_free(&a);
}

static void rsync_argv_state_elsewhere(void)
{
	struct strv a = guest_rsync_argv("/c", "/p/app", "/srv", "/p/app-2/.corral");
	CHECK(argc_of(a.v) == 7); /* a sibling with the same prefix is not inside */
	CHECK_STR(a.v[5], "/p/app/");
	strv_free(&a);
	a = guest_rsync_argv("/c", "/p", "/srv", "/p/sub/.corral");
	CHECK_STR(a.v[5], "--exclude=/sub/.corral/");
	strv_free(&a);
}

static int check(const char *provider, enum sync_type t, const char *host, struct diag *d)
{
	struct synced_folder sf = {.host = (char *)host, .guest = "/srv/x", .type = t,
				   .pos = {.line = 7, .col = 9}};
	struct machine_cfg mc = {.name = "web", .synced = &sf, .nsynced = 1};
	struct env e = {.path = "/p/corral.yaml"};
	struct machine m = {.env = &e, .cfg = &mc};
	*d = (struct diag){0};
	return guest_check_folders(provider_find(provider), &m, d);
}

static void folder_types(void)
{
	struct diag d;
	static const struct {
		const char *provider;
		enum sync_type type;
		int want;
	} cases[] = {
		{"container", SYNC_AUTO, 0},  {"container", SYNC_BIND, 0},
		{"container", SYNC_9P, -1},   {"container", SYNC_RSYNC, -1},
		{"kvm", SYNC_AUTO, 0},        {"kvm", SYNC_9P, 0},
		{"kvm", SYNC_RSYNC, 0},       {"kvm", SYNC_BIND, -1},
		{"kvm", SYNC_VBOXSF, -1},     {"virtualbox", SYNC_AUTO, 0},
		{"virtualbox", SYNC_VBOXSF, 0}, {"virtualbox", SYNC_RSYNC, 0},
		{"virtualbox", SYNC_9P, -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = check(cases[i].provider, cases[i].type, "/", &d);
		if (rc != cases[i].want)
			printf("#   %s type %d: %d (%s)\n", cases[i].provider, cases[i].type, rc, d.msg);
		CHECK(rc == cases[i].want);
	}
	CHECK(check("kvm", SYNC_BIND, "/", &d) < 0);
	CHECK_STR(d.msg, "web: synced folder /srv/x: the kvm provider does not take type bind");
	CHECK_STR(d.hint, "use one of: auto, 9p, rsync");
	CHECK_STR(d.file, "/p/corral.yaml");
	CHECK(d.line == 7 && d.col == 9);
}

static void missing_host_dir(void)
{
	struct diag d;
	CHECK(check("kvm", SYNC_9P, "/nonexistent/corral-test", &d) < 0);
	CHECK(strstr(d.msg, "host directory /nonexistent/corral-test does not exist") != NULL);
}

int main(void)
{
	RUN(rsync_argv);
	RUN(rsync_argv_state_elsewhere);
	RUN(folder_types);
	RUN(missing_host_dir);
	return T_END();
}
