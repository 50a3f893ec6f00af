/* corral.lock from the command line: `corral lock [--update] [NAME...]`,
 * what `up` and `up --locked` do with it, and the stale-lock warning of
 * `corral validate`. The work is in core/box/boxlock and engine/lifecycle. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/lockfile.h"
#include "core/base/log.h"
#include "core/base/util.h"
#include "engine/lifecycle.h"

int lockfile_open(struct ctx *c, bool locked, struct boxlock *l)
{
	_cleanup_free_ char *path = boxlock_path(c->env);
	struct diag d = {0};
	bool exists;
	if (boxlock_load(path, l, &exists, &d) < 0)
		return report_exit(&d);
	if (!locked)
		return EXIT_OK;
	struct strv why = {0};
	if (!exists) {
		diag_fail(&d, "--locked: there is no %s", path);
		diag_hint(&d, "run `corral lock` (or `corral up`) and commit corral.lock");
	} else if (boxlock_stale(l, c->env, &why)) {
		_cleanup_free_ char *all = strv_join(&why, "\n  ");
		diag_fail(&d, "--locked: %s no longer matches %s:\n  %s", path, c->env->path, all);
		diag_hint(&d, "run `corral lock` to pin the changed machines, and commit corral.lock");
	}
	strv_free(&why);
	if (d.msg[0]) {
		boxlock_free(l);
		return report_exit(&d);
	}
	return EXIT_OK;
}

int lockfile_write(struct ctx *c, struct boxlock *l)
{
	_cleanup_free_ char *path = boxlock_path(c->env);
	struct diag d = {0};
	boxlock_retain(l, c->env);
	if (boxlock_save(path, l, &d) < 0)
		return report_exit(&d);
	return EXIT_OK;
}

void lockfile_warn_stale(const struct env *e, struct strv *out)
{
	_cleanup_free_ char *path = boxlock_path(e);
	struct boxlock l;
	struct diag d = {0};
	bool exists;
	if (boxlock_load(path, &l, &exists, &d) < 0) {
		strv_push(out, d.msg);
		return;
	}
	struct strv why = {0};
	if (exists && boxlock_stale(&l, e, &why)) {
		_cleanup_free_ char *all = strv_join(&why, "; ");
		strv_pushf(out, "%s is stale: %s (run `corral lock`)", path, all);
	}
	strv_free(&why);
	boxlock_free(&l);
}

static int parse(struct ctx *c, bool *update)
{
	static const struct option opts[] = {{"update", no_argument, NULL, 'u'}, {0}};
	const struct command *cmd = command_find("lock");
	int o;
	while ((o = getopt_long(c->argc, c->argv, "", opts, NULL)) != -1) {
		if (o != 'u')
			return usage_error(cmd, "unknown option");
		*update = true;
	}
	if (optind < c->argc && !*update)
		return usage_error(cmd, "machine names go with --update");
	return EXIT_OK;
}

/* The machines named (all without names). */
static size_t select_all(struct ctx *c, const struct machine_cfg **sel)
{
	size_t n = 0;
	for (size_t k = 0; k < c->env->nmachines; k++) {
		bool take = optind >= c->argc;
		for (int i = optind; i < c->argc && !take; i++)
			take = machine_named(&c->env->machines[k], c->argv[i]);
		if (take)
			sel[n++] = &c->env->machines[k];
	}
	return n;
}

int cmd_lock(struct ctx *c)
{
	bool update = false;
	int rc = parse(c, &update);
	if (rc || (rc = ctx_load_env(c)) ||
	    (rc = check_machine_names(command_find("lock"), c->env, c->argv + optind,
				      (size_t)(c->argc - optind))) ||
	    (rc = ctx_lock(c)))
		return rc;
	struct boxlock l;
	if ((rc = lockfile_open(c, false, &l)))
		return rc;
	_cleanup_free_ const struct machine_cfg **sel =
		xcalloc(c->env->nmachines + 1, sizeof(*sel));
	size_t n = select_all(c, sel);
	struct diag_list errs = {0};
	lifecycle_lock(c->env, sel, n, update, &l, &errs);
	for (size_t i = 0; i < errs.n; i++)
		report(&errs.v[i]);
	rc = errs.n ? EXIT_FAIL : EXIT_OK;
	diag_list_free(&errs);
	if (lockfile_write(c, &l) != EXIT_OK)
		rc = EXIT_FAIL;
	for (size_t i = 0; rc == EXIT_OK && i < n; i++) {
		const struct boxlock_entry *e = boxlock_find(&l, sel[i]->name);
		if (e)
			log_info("%s: %s %s (%s, %s) %s", e->machine, e->box, e->version, e->provider,
				 e->arch ? e->arch : "?", e->digest ? e->digest : "(no digest)");
	}
	boxlock_free(&l);
	return rc;
}
