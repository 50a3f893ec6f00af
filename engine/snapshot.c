/* snapshot save|restore|delete|list, suspend and resume of one machine
 * (see snapshot.h): the provider's optional entry for each operation, in
 * one table, called on the machine opened from its directory. */
#include <stdbool.h>
#include <stddef.h>

#include "engine/snapshot.h"
#include "engine/lifecycle.h"
#include "providers/provider.h"
#include "core/base/log.h"

struct op_row {
	const char *verb; /* for the error's prefix */
	const char *done; /* the log line (a format taking the snapshot name); NULL: none */
	const char *what; /* for "does not support" */
};

static const struct op_row ops[] = {
	[SNAP_SAVE] = {"save", "snapshot %s saved", "snapshots"},
	[SNAP_RESTORE] = {"restore", "snapshot %s restored", "snapshots"},
	[SNAP_DELETE] = {"delete", "snapshot %s deleted", "snapshots"},
	[SNAP_LIST] = {"list", NULL, "snapshots"},
	[SNAP_SUSPEND] = {"suspend", "suspended", "suspend"},
	[SNAP_RESUME] = {"resume", "resumed", "resume"},
};

static bool supported(const struct provider *p, enum snap_op op)
{
	switch (op) {
	case SNAP_SAVE: return p->snapshot_save != NULL;
	case SNAP_RESTORE: return p->snapshot_restore != NULL;
	case SNAP_DELETE: return p->snapshot_delete != NULL;
	case SNAP_LIST: return p->snapshot_list != NULL;
	case SNAP_SUSPEND: return p->suspend != NULL;
	case SNAP_RESUME: return p->resume != NULL;
	}
	return false;
}

static int call(const struct provider *p, enum snap_op op, struct machine *m, const char *name,
		struct strv *list, struct diag *d)
{
	switch (op) {
	case SNAP_SAVE: return p->snapshot_save(m, name, d);
	case SNAP_RESTORE: return p->snapshot_restore(m, name, d);
	case SNAP_DELETE: return p->snapshot_delete(m, name, d);
	case SNAP_LIST: return p->snapshot_list(m, list, d);
	case SNAP_SUSPEND: return p->suspend(m, d);
	case SNAP_RESUME: return p->resume(m, d);
	}
	return diag_fail(d, "no such operation");
}

int snapshot_run(const struct env *e, const struct machine_cfg *mc, enum snap_op op,
		 const char *name, struct strv *list, struct diag *d)
{
	struct machine m;
	if (machine_open(&m, e, mc, d) < 0)
		return -1;
	enum mstate s;
	const struct provider *p = lifecycle_state(&m, &s);
	int rc;
	if (!p || s == MS_NOT_CREATED) {
		rc = diag_fail(d, "%s is not created", mc->name);
		diag_hint(d, "`corral up %s` first", mc->name);
	} else if (!supported(p, op)) {
		rc = diag_fail(d, "the %s provider does not support %s", p->name, ops[op].what);
	} else if ((rc = call(p, op, &m, name, list, d)) < 0) {
		diag_wrap(d, "%s: %s", mc->name, ops[op].verb);
	} else if (ops[op].done) {
		log_machine(mc->name, ops[op].done, name);
	}
	machine_close(&m);
	return rc;
}
