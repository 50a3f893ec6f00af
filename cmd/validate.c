/* corral validate: load the envfile and say whether it is valid. Every
 * error is printed by ctx_load_env (file:line:col, message, hint); the
 * warnings (valid, but probably not meant) are printed here. */
#include <jansson.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "cmd/lockfile.h"

static int print_json(const struct env *e)
{
	json_t *names = json_array();
	for (size_t i = 0; i < e->nmachines; i++)
		json_array_append_new(names, json_string(e->machines[i].name));
	json_t *warnings = json_array();
	for (size_t i = 0; i < e->warnings.n; i++) {
		const struct diag *w = &e->warnings.v[i];
		json_array_append_new(warnings, json_pack("{s:s, s:i, s:i, s:s, s:s}", "file", w->file,
							  "line", w->line, "col", w->col, "message",
							  w->msg, "hint", w->hint));
	}
	struct strv stale = {0};
	lockfile_warn_stale(e, &stale);
	json_t *o = json_pack("{s:b, s:s, s:o, s:o}", "ok", 1, "file", e->path, "machines", names,
			      "warnings", warnings);
	if (stale.n) { /* "lock": why corral.lock is stale, only when it is */
		json_t *lock = json_array();
		for (size_t i = 0; i < stale.n; i++)
			json_array_append_new(lock, json_string(stale.v[i]));
		json_object_set_new(o, "lock", lock);
	}
	strv_free(&stale);
	json_dumpf(o, stdout, JSON_COMPACT);
	putchar('\n');
	json_decref(o);
	return EXIT_OK;
}

int cmd_validate(struct ctx *c)
{
	if (c->argc > 1)
		return usage_error(command_find("validate"), "unexpected argument `%s`", c->argv[1]);
	int rc = ctx_load_env(c);
	if (rc != EXIT_OK)
		return rc;
	const struct env *e = c->env;
	if (c->json)
		return print_json(e);
	for (size_t i = 0; i < e->warnings.n; i++)
		report_warning(&e->warnings.v[i]);
	struct strv stale = {0};
	lockfile_warn_stale(e, &stale);
	for (size_t i = 0; i < stale.n; i++) {
		struct diag d = {0};
		diag_fail(&d, "%s", stale.v[i]);
		report_warning(&d);
	}
	printf("%s: ok (%zu machine%s%s)\n", c->file ? c->file : e->path, e->nmachines,
	       e->nmachines == 1 ? "" : "s", e->warnings.n || stale.n ? ", with warnings" : "");
	strv_free(&stale);
	return EXIT_OK;
}
