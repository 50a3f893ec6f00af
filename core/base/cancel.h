/* A request to stop, process-wide: cmd/ sets it when the user presses
 * Ctrl-C during up or reload (from the signal handler), and whatever waits
 * long checks it and gives up with an "interrupted" diag: the engine's
 * scheduler (no machine starts any more) and its steps, the wait for SSH,
 * provisioning between steps. Nothing is killed and nothing is undone
 * here: a machine stays as far as it got, and the next `up` carries on. */
#ifndef CORRAL_CANCEL_H
#define CORRAL_CANCEL_H
#include <stdbool.h>

#include "core/base/diag.h"

void cancel_request(void); /* async-signal-safe */
bool cancel_requested(void);
void cancel_reset(void); /* tests: the next run starts afresh */
/* 0, or -1 with "WHAT: interrupted" in d once a stop was requested. */
int cancel_check(const char *what, struct diag *d);

#endif
