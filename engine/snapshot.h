/* The single-machine operations on a created machine's saved state:
 * snapshot save, restore, delete and list, suspend and resume. Each goes
 * through the optional vtable entry of the provider that created the
 * machine; a machine not created or a provider without the entry is
 * refused here, so cmd/ never reaches a provider itself. */
#ifndef CORRAL_SNAPSHOT_H
#define CORRAL_SNAPSHOT_H

#include "core/base/diag.h"
#include "core/base/strv.h"
#include "core/config/envfile.h"

enum snap_op { SNAP_SAVE, SNAP_RESTORE, SNAP_DELETE, SNAP_LIST, SNAP_SUSPEND, SNAP_RESUME };

/* Runs op on machine mc of e: save/restore/delete the snapshot `name`,
 * list the snapshots into *list (SNAP_LIST only; the caller frees it),
 * suspend or resume. Logs one line per change. Returns 0, or -1 with d
 * (prefixed with the machine's name and the operation when the provider
 * failed). */
int snapshot_run(const struct env *e, const struct machine_cfg *mc, enum snap_op op,
		 const char *name, struct strv *list, struct diag *d);

#endif
