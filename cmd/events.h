/* --json event lines and --report files: cmd/'s sink for core/base/event.h.
 * With --json every event is one JSON object on its own line on stdout as
 * it happens (docs/events.md); --report junit:FILE / json:FILE (repeatable)
 * collects each finished boot, step, probe, trigger, reset, halt and
 * destroy as a test case and writes the files when the command ends. The
 * recorder is this file's state: one command runs per process. */
#ifndef CORRAL_CMD_EVENTS_H
#define CORRAL_CMD_EVENTS_H
#include <stdbool.h>

#include "cmd/cmd.h"
#include "engine/lifecycle.h"

/* Called once by main: with json, events go to stdout as lines. */
void events_setup(bool json);
/* One --report argument, "junit:FILE" or "json:FILE"; else a usage error
 * of cmd (returns EXIT_USAGE). */
int events_report_arg(const struct command *cmd, const char *arg);
/* Writes every requested report for command `name` (skipped machines of
 * res become skipped cases); prints a diag for each that cannot be written.
 * Returns EXIT_OK or EXIT_FAIL. */
int events_write_reports(const char *name, const struct lc_result *res, size_t n,
			 const char *done_word);

#endif
