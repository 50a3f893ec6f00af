/* snapshot save|restore|delete [MACHINE] NAME, snapshot list [MACHINE]
 * (Vagrant's argument order; no MACHINE: every machine), suspend and
 * resume [MACHINE...]. Parses, runs each machine through engine/snapshot.c
 * and prints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "engine/snapshot.h"
#include "core/base/util.h"

/* The subcommands of `snapshot` and the commands, by operation. */
struct op_row {
	const char *verb;
	bool takes_name;
};

static const struct op_row ops[] = {
	[SNAP_SAVE] = {"save", true},     [SNAP_RESTORE] = {"restore", true},
	[SNAP_DELETE] = {"delete", true}, [SNAP_LIST] = {"list", false},
	[SNAP_SUSPEND] = {"suspend", false}, [SNAP_RESUME] = {"resume", false},
};

static int one(struct ctx *c, const struct machine_cfg *mc, enum snap_op op, const char *name,
	       struct diag *d)
{
	struct strv l = {0};
	int rc = snapshot_run(c->env, mc, op, name, &l, d);
	if (rc == 0 && op == SNAP_LIST) {
		printf("%s:%s\n", mc->name, l.n ? "" : " no snapshots");
		for (size_t i = 0; i < l.n; i++)
			printf("  %s\n", l.v[i]);
	}
	strv_free(&l);
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

int cmd_suspend(struct ctx *c) { return suspend_resume(c, SNAP_SUSPEND); }
int cmd_resume(struct ctx *c) { return suspend_resume(c, SNAP_RESUME); }
