/* Triggers (`triggers:` of a machine or of the envfile): commands run on
 * the host (argv, or /bin/sh -c for an inline string; working directory
 * the envfile's; CORRAL_MACHINE, CORRAL_ACTION, CORRAL_WHEN,
 * CORRAL_TRIGGER, CORRAL_ENVFILE in their environment) or in the guest
 * over SSH (run_remote), before or after an action. Output is streamed
 * with the prefix "MACHINE:trigger NAME"; each run is an EV_TRIGGER event. */
#ifndef CORRAL_TRIGGERS_H
#define CORRAL_TRIGGERS_H
#include <stdbool.h>

#include "core/base/diag.h"
#include "core/config/envfile.h"

struct ssh_conn;

enum trig_when { TRIG_BEFORE, TRIG_AFTER };

/* Whether any trigger of mc (NULL: the envfile's) fires at when/action and
 * runs in the guest (the caller connects for it). */
bool triggers_remote(const struct env *e, const struct machine_cfg *mc, enum trig_when when,
		     const char *action);
/* Runs, in envfile order, the triggers of mc (NULL: the envfile-level
 * ones) that fire at when/action. A guest trigger without a connection
 * (the machine is not running) is skipped with a log line. The first that
 * fails ends the run with -1 and d naming it, its exit status and last
 * lines — unless it has `on_error: continue`, which makes it a warning. */
int triggers_fire(const struct env *e, const struct machine_cfg *mc, enum trig_when when,
		  const char *action, struct ssh_conn *conn, struct diag *d);

#endif
