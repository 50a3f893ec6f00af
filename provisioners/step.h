/* What the provisioners share: the output prefix of a step, how a failed
 * command is reported, and the tail of output kept for that report. */
#ifndef CORRAL_PROV_STEP_H
#define CORRAL_PROV_STEP_H
#include <stdbool.h>

#include "core/base/util.h"
#include "provisioners/provisioner.h"

/* Lines of output kept for the error report of a failing step. */
#define STEP_TAIL_LINES 20

/* "MACHINE" for an unnamed step, "MACHINE:NAME" for a named one. Caller frees. */
char *step_prefix(const char *machine, const struct step *s);

/* "exit code N; last lines:\n    ..." in d, keeping the end of the tail
 * when it does not fit, with the thread's log secrets (a sensitive step's
 * values) masked. */
int step_exit_fail(struct diag *d, int status, const struct buf *tail);

/* A fresh guest path for the step's upload: /tmp/corral-KIND-<id8>-<random>SUFFIX.
 * Caller frees. */
char *step_guest_tmp(const struct step *s, const char *kind, const char *suffix);

/* Appends line to tail, dropping the oldest once it holds max lines. */
void step_tail_push(struct buf *tail, const char *line, unsigned max);

#endif
