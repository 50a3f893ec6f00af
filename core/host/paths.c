/* The host-wide directories for root and for everyone else (paths.h). */
#include <stdlib.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/host/paths.h"

bool host_rootless(void) { return geteuid() != 0; }

/* An absolute path from the environment, else NULL. */
static const char *abs_env(const char *name)
{
	const char *v = getenv(name);
	return v && v[0] == '/' ? v : NULL;
}

/* $XDG_STATE_HOME/corral, default ~/.local/state/corral. */
static char *user_state_dir(void)
{
	const char *x = abs_env("XDG_STATE_HOME");
	if (x)
		return path_join(x, "corral");
	return xasprintf("%s/.local/state/corral", user_home());
}

char *host_lib_dir(void)
{
	const char *r = getenv("CORRAL_LIB_DIR");
	if (r && r[0])
		return xstrdup(r);
	return host_rootless() ? user_state_dir() : xstrdup("/var/lib/corral");
}

char *host_run_dir(void)
{
	const char *r = getenv("CORRAL_RUN_DIR");
	if (r && r[0])
		return xstrdup(r);
	if (!host_rootless())
		return xstrdup("/run/corral");
	const char *x = abs_env("XDG_RUNTIME_DIR");
	if (x)
		return path_join(x, "corral");
	_cleanup_free_ char *state = user_state_dir();
	return path_join(state, "run");
}
