/* snapshot save|restore|delete [MACHINE] NAME, snapshot list [MACHINE]
 * (Vagrant's argument order; no MACHINE: every machine), suspend and
 * resume [MACHINE...]. Provider-neutral: each goes through the provider's
 * optional vtable entry, and a NULL entry is reported here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "engine/lifecycle.h"
#include "core/base/log.h"
#include "core/base/util.h"

enum snap_op { SNAP_SAVE, SNAP_RESTORE, SNAP_DELETE, SNAP_LIST, SUSPEND, RESUME };

struct op_row {
	const char *verb;   /* the subcommand, or the command */
	const char *done;   /* past tense for the log line */
	const char *what;   /* for "does not support" */
	bool takes_name;
};

static const struct op_row ops[] = {
	[SNAP_SAVE] = {"save", "snapshot %s saved", "snapshots", true},
	[SNAP_RESTORE] = {"restore", "snapshot %s restored", "snapshots", true},
	[SNAP_DELETE] = {"delete", "snapshot %s deleted", "snapshots", true},
	[SNAP_LIST] = {"list", NULL, "snapshots", false},
	[SUSPEND] = {"suspend", "suspended", "suspend", false},
	[RESUME] = {"resume", "resumed", "resume", false},
};

static int provider_call(const struct provider *p, enum snap_op op, struct machine *m,
			 const char *name, struct diag *d)
{
	struct strv l = {0};
	int rc;
	switch (op) {
	case SNAP_SAVE: return p->snapshot_save(m, name, d);
	case SNAP_RESTORE: return p->snapshot_restore(m, name, d);
	case SNAP_DELETE: return p->snapshot_delete(m, name, d);
	case SUSPEND: return p->suspend(m, d);
	case RESUME: return p->resume(m, d);
	case SNAP_LIST: break;
	}
	if ((rc = p->snapshot_list(m, &l, d)) == 0) {
		printf("%s:%s\n", m->cfg->name, l.n ? "" : " no snapshots");
		for (size_t i = 0; i < l.n; i++)
			printf("  %s\n", l.v[i]);
	}
	strv_free(&l);
	return rc;
}

static bool supported(const struct provider *p, enum snap_op op)
{
	void *fn[] = {[SNAP_SAVE] = (void *)p->snapshot_save, [SNAP_RESTORE] = (void *)p->snapshot_restore,
		      [SNAP_DELETE] = (void *)p->snapshot_delete, [SNAP_LIST] = (void *)p->snapshot_list,
		      [SUSPEND] = (void *)p->suspend, [RESUME] = (void *)p->resume};
	return fn[op] != NULL;
}

static int one(struct ctx *c, const struct machine_cfg *mc, enum snap_op op, const char *name,
	       struct diag *d)
{
	struct machine m;
	if (machine_open(&m, c->env, mc, d) < 0)
		return -1;
	enum mstate s;
	const struct provider *p = lifecycle_state(&m, &s);
	int rc;
	if (!p || s == MS_NOT_CREATED) {
		rc = diag_fail(d, "%s is not created", mc->name);
		diag_hint(d, "`corral up %s` first", mc->name);
	} else if (!supported(p, op)) {
		rc = diag_fail(d, "the %s provider does not support %s", p->name, ops[op].what);
	} else if ((rc = provider_call(p, op, &m, name, d)) < 0) {
		diag_wrap(d, "%s: %s", mc->name, ops[op].verb);
	} else if (ops[op].done) {
		log_machine(mc->name, ops[op].done, name);
	}
	machine_close(&m);
	return rc;
}

/* Runs op on the machines named in names[0..n) (none: every machine). */
static int run_op(struct ctx *c, enum snap_op op, char **names, int n, const char *snap)
{
	const struct command *cmd = command_find(c->argv[0]);
	for (int i = 0; i < n; i++)
		if (!env_machine(c->env, names[i]))
			return usage_error(cmd, "no machine `%s` in %s", names[i], c->env->path);
	if (op != SNAP_LIST && ctx_lock(c) != EXIT_OK)
		return EXIT_FAIL;
	int rc = EXIT_OK;
	for (size_t k = 0; k < c->env->nmachines; k++) {
		const struct machine_cfg *mc = &c->env->machines[k];
		bool take = n == 0;
		for (int i = 0; i < n && !take; i++)
			take = strcmp(names[i], mc->name) == 0;
		struct diag d = {0};
		if (take && one(c, mc, op, snap, &d) < 0) {
			report(&d);
			rc = EXIT_FAIL;
		}
	}
	return rc;
}

int cmd_snapshot(struct ctx *c)
{
	const struct command *cmd = command_find("snapshot");
	if (c->argc < 2)
		return usage_error(cmd, "say save, restore, delete or list");
	enum snap_op op = SNAP_SAVE;
	while (op <= SNAP_LIST && strcmp(ops[op].verb, c->argv[1]) != 0)
		op++;
	if (op > SNAP_LIST)
		return usage_error(cmd, "no snapshot subcommand `%s`", c->argv[1]);
	int nargs = c->argc - 2, max = ops[op].takes_name ? 2 : 1;
	if (nargs > max || (ops[op].takes_name && nargs < 1))
		return usage_error(cmd, ops[op].takes_name ? "snapshot %s [MACHINE] NAME"
				   : "snapshot %s [MACHINE]", ops[op].verb);
	const char *snap = ops[op].takes_name ? c->argv[c->argc - 1] : NULL;
	int rc = ctx_load_env(c);
	return rc ? rc : run_op(c, op, c->argv + 2, nargs - (snap != NULL), snap);
}

static int suspend_resume(struct ctx *c, enum snap_op op)
{
	const struct command *cmd = command_find(c->argv[0]);
	for (int i = 1; i < c->argc; i++)
		if (c->argv[i][0] == '-')
			return usage_error(cmd, "unknown option %s", c->argv[i]);
	int rc = ctx_load_env(c);
	return rc ? rc : run_op(c, op, c->argv + 1, c->argc - 1, NULL);
}

int cmd_suspend(struct ctx *c) { return suspend_resume(c, SUSPEND); }
int cmd_resume(struct ctx *c) { return suspend_resume(c, RESUME); }
