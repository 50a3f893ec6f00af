/* corral rsync [NAME...]: copies the `rsync` synced folders of running
 * machines again, as `up` did (Vagrant's `vagrant rsync`). Without names,
 * every running machine; a named one that is not running is an error. */
#include <string.h>

#include "cmd/cmd.h"
#include "engine/guest.h"
#include "engine/lifecycle.h"
#include "core/base/log.h"
#include "core/ssh/ssh.h"

static bool named(struct ctx *c, const struct machine_cfg *mc)
{
	for (int i = 1; i < c->argc; i++)
		if (machine_named(mc, c->argv[i]))
			return true;
	return c->argc < 2;
}

/* 1: skipped (not running, and not named). */
static int sync_machine(struct ctx *c, struct machine *m, struct diag *d)
{
	enum mstate s;
	const struct provider *p = lifecycle_state(m, &s);
	if (!p || s != MS_RUNNING) {
		if (c->argc < 2)
			return 1;
		diag_fail(d, "%s is %s", m->cfg->name, mstate_name(s));
		return diag_hint(d, "start it with `corral up %s`", m->cfg->name);
	}
	struct endpoint ep;
	struct ssh_conn *conn = NULL;
	size_t n = 0;
	int rc = lifecycle_provider_endpoint(p, m, &ep, d);
	if (rc == 0)
		rc = lifecycle_connect(m, &ep, &conn, d);
	if (rc == 0)
		rc = guest_rsync(p, m, conn, &ep, &n, d);
	ssh_close(conn);
	if (rc == 0 && n == 0)
		log_machine(m->cfg->name, "no rsync folders");
	return rc;
}

int cmd_rsync(struct ctx *c)
{
	int rc = ctx_load_env(c);
	for (int i = 1; rc == EXIT_OK && i < c->argc; i++)
		if (c->argv[i][0] == '-')
			rc = usage_error(command_find("rsync"), "unknown option `%s`", c->argv[i]);
	if (rc == EXIT_OK)
		rc = check_machine_names(command_find("rsync"), c->env, c->argv + 1, (size_t)c->argc - 1);
	if (rc == EXIT_OK)
		rc = ctx_lock(c);
	if (rc != EXIT_OK)
		return rc;
	size_t done = 0;
	for (size_t i = 0; i < c->env->nmachines; i++) {
		const struct machine_cfg *mc = &c->env->machines[i];
		struct machine m = {0};
		struct diag d = {0};
		if (!named(c, mc))
			continue;
		int r = machine_open(&m, c->env, mc, &d);
		if (r == 0)
			r = sync_machine(c, &m, &d);
		done += r == 0;
		if (r < 0) {
			report(&d);
			rc = EXIT_FAIL;
		}
		machine_close(&m);
	}
	if (rc == EXIT_OK && done == 0) {
		struct diag d = {0};
		diag_fail(&d, "no running machine to rsync to");
		diag_hint(&d, "start them with `corral up`");
		report(&d);
		rc = EXIT_FAIL;
	}
	return rc;
}
