/* core/host/paths.c: root keeps the system directories, any other user
 * gets XDG ones; CORRAL_RUN_DIR / CORRAL_LIB_DIR win over both; XDG
 * variables that are not absolute are ignored. Runs as root or not: the
 * expected values follow host_rootless(). */
#include <stdlib.h>

#include "core/base/util.h"
#include "core/host/paths.h"
#include "tests/unit/t.h"

static void clear_env(void)
{
	unsetenv("CORRAL_RUN_DIR");
	unsetenv("CORRAL_LIB_DIR");
	unsetenv("XDG_STATE_HOME");
	unsetenv("XDG_RUNTIME_DIR");
	setenv("HOME", "/home/u", 1);
}

static void check_paths(const char *run, const char *lib)
{
	_cleanup_free_ char *r = host_run_dir(), *l = host_lib_dir();
	CHECK_STR(r, run);
	CHECK_STR(l, lib);
}

static void test_overrides(void)
{
	clear_env();
	setenv("CORRAL_RUN_DIR", "/x/run", 1);
	setenv("CORRAL_LIB_DIR", "/x/lib", 1);
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	check_paths("/x/run", "/x/lib");
}

static void test_defaults(void)
{
	clear_env();
	if (!host_rootless()) {
		setenv("XDG_RUNTIME_DIR", "/run/user/0", 1);
		check_paths("/run/corral", "/var/lib/corral");
		return;
	}
	check_paths("/home/u/.local/state/corral/run", "/home/u/.local/state/corral");
	setenv("XDG_RUNTIME_DIR", "/run/user/1000", 1);
	setenv("XDG_STATE_HOME", "/s", 1);
	check_paths("/run/user/1000/corral", "/s/corral");
	setenv("XDG_RUNTIME_DIR", "relative", 1);
	setenv("XDG_STATE_HOME", "", 1);
	check_paths("/home/u/.local/state/corral/run", "/home/u/.local/state/corral");
}

int main(void)
{
	RUN(test_overrides);
	RUN(test_defaults);
	return T_END();
}
