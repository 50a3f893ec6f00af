/* $CORRAL_HOME/index.json: every machine corral has created, across all
 * envfiles — for global-status and for refusing to remove a box in use.
 * Format: {"machines": [{"envfile": ABS, "name": N, "dir": ABS,
 *                        "provider": P, "box_dir": ABS}, ...]} */
#ifndef CORRAL_INDEX_H
#define CORRAL_INDEX_H
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"
#include "core/host/machine.h"

struct index_entry {
	char *envfile, *name, *dir, *provider, *box_dir;
};

/* Adds or updates the machine's entry (keyed by its dir). Serialized by a
 * lock beside the index, so parallel `up`s of many envfiles don't race. */
int index_record(const struct machine *m, const char *provider, struct diag *d);
int index_forget(const char *machine_dir, struct diag *d);
int index_load(struct index_entry **v, size_t *n, struct diag *d);
void index_free(struct index_entry *v, size_t n);
/* True when a machine whose state directory still exists uses box_dir;
 * who gets "ENVFILE:MACHINE". */
bool index_box_in_use(const char *box_dir, char *who, size_t who_len);

#endif
