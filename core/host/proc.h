/* Processes corral starts and finds again from another corral process
 * later: an identity that survives pid reuse (pid + start time), stopping
 * with a deadline, and running helper programs by argv (never a shell). */
#ifndef CORRAL_PROC_H
#define CORRAL_PROC_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/base/diag.h"

/* Start time (clock ticks since boot, /proc/PID/stat field 22); 0 when the
 * process is gone or a zombie. */
unsigned long long proc_start_time(pid_t pid);
/* The very process recorded as (pid, start) is still running. */
bool proc_alive(pid_t pid, unsigned long long start);
/* Sends sig to (pid, start) and waits up to timeout_ms for it to exit.
 * 0: gone (or was already), 1: still running at the deadline. */
int proc_stop(pid_t pid, unsigned long long start, int sig, uint64_t timeout_ms);

/* Runs argv[0] (searched in PATH) with `input` (may be NULL) on its stdin
 * and waits. A non-zero exit is an error carrying the program's stderr. */
int proc_run(const char *const argv[], const char *input, struct diag *d);
/* PATH lookup: true when the program exists and is executable. */
bool proc_have(const char *prog);

#endif
