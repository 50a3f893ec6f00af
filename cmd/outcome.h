/* What up, reload and provision share: the --provision-with step list, and
 * the summary of what became of each machine (a table, or JSON with --json). */
#ifndef CORRAL_CMD_OUTCOME_H
#define CORRAL_CMD_OUTCOME_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "cmd/cmd.h"
#include "engine/lifecycle.h"

/* Appends the comma-separated words of s to out. */
void steps_split(const char *s, struct strv *out);
/* Every name in `only` names a step of the envfile (a machine's or a
 * top-level one); else a usage error for cmd. Returns EXIT_OK or EXIT_USAGE. */
int steps_check(const struct env *e, const struct strv *only, const struct command *cmd);

/* Each machine's result as a JSON array (for the summary and json reports). */
json_t *outcome_json(const struct lc_result *res, size_t n, const char *done_word);
/* The summary on stdout: always with json (one line, {"event": "summary",
 * "machines": [...]}, after the event lines), else when several machines
 * took part or any did not finish. done_word is a finished machine's STATE
 * ("running", "provisioned"). */
void outcome_print(const struct lc_result *res, size_t n, const char *done_word, bool json);

#endif
