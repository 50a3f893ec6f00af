#include "cmd/outcome.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"

void steps_split(const char *s, struct strv *out)
{
	_cleanup_free_ char *copy = xstrdup(s);
	char *save = NULL;
	for (char *w = strtok_r(copy, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		strv_push(out, w);
	}
}

static bool has_step(const struct step *v, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].name, name) == 0)
			return true;
	return false;
}

int steps_check(const struct env *e, const struct strv *only, const struct command *cmd)
{
	for (size_t i = 0; i < only->n; i++) {
		bool found = has_step(e->steps, e->nsteps, only->v[i]);
		for (size_t k = 0; k < e->nmachines; k++)
			found |= has_step(e->machines[k].steps, e->machines[k].nsteps, only->v[i]);
		if (!found)
			return usage_error(cmd, "no provision step named `%s` in %s", only->v[i],
					   e->path);
	}
	return EXIT_OK;
}

static const char *state_word(const struct lc_result *r, const char *done_word)
{
	static const char *const words[] = {[LC_FAILED] = "failed", [LC_SKIPPED] = "skipped"};
	return r->outcome == LC_DONE ? done_word : words[r->outcome];
}

static json_t *result_json(const struct lc_result *r, const char *done_word)
{
	json_t *o = json_pack("{s:s, s:s}", "machine", r->machine, "state", state_word(r, done_word));
	bool ran = r->outcome != LC_SKIPPED;
	json_object_set_new(o, "seconds", ran ? json_real((double)r->ms / 1000.0) : json_null());
	json_object_set_new(o, "boot_seconds",
			    ran ? json_real((double)r->boot_ms / 1000.0) : json_null());
	json_object_set_new(o, "provision_seconds",
			    ran ? json_real((double)r->provision_ms / 1000.0) : json_null());
	if (r->failed_step)
		json_object_set_new(o, "failed_step",
				    json_pack("{s:I, s:s}", "number", (json_int_t)r->failed_step->index,
					      "name", r->failed_step->name));
	if (r->blocked_by)
		json_object_set_new(o, "blocked_by", json_string(r->blocked_by));
	else if (r->outcome == LC_SKIPPED)
		json_object_set_new(o, "interrupted", json_true());
	return o;
}

json_t *outcome_json(const struct lc_result *res, size_t n, const char *done_word)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, result_json(&res[i], done_word));
	return a;
}

/* The last of the --json event lines. */
static void print_json(const struct lc_result *res, size_t n, const char *done_word)
{
	json_t *o = json_pack("{s:s, s:o}", "event", "summary", "machines",
			      outcome_json(res, n, done_word));
	char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
	puts(s);
	fflush(stdout);
	free(s);
	json_decref(o);
}

static void print_row(int w, int sw, const struct lc_result *r, const char *done_word)
{
	char boot[32] = "-", prov[32] = "-", why[160] = "";
	if (r->outcome != LC_SKIPPED) {
		snprintf(boot, sizeof(boot), "%.1fs", (double)r->boot_ms / 1000.0);
		snprintf(prov, sizeof(prov), "%.1fs", (double)r->provision_ms / 1000.0);
	}
	if (r->failed_step)
		snprintf(why, sizeof(why), "#%u %s", r->failed_step->index, r->failed_step->name);
	else if (r->blocked_by)
		snprintf(why, sizeof(why), "(depends on %s)", r->blocked_by);
	else if (r->outcome == LC_SKIPPED)
		snprintf(why, sizeof(why), "(interrupted)");
	printf("%-*s  %-*s  %-6s ", w, r->machine, sw, state_word(r, done_word), boot);
	if (why[0])
		printf("%-9s %s\n", prov, why);
	else
		printf("%s\n", prov);
}

void outcome_print(const struct lc_result *res, size_t n, const char *done_word, bool json)
{
	bool all_done = true;
	int w = (int)strlen("MACHINE"), sw = (int)strlen("skipped");
	for (size_t i = 0; i < n; i++) {
		all_done &= res[i].outcome == LC_DONE;
		if ((int)strlen(res[i].machine) > w)
			w = (int)strlen(res[i].machine);
	}
	if ((int)strlen(done_word) > sw)
		sw = (int)strlen(done_word);
	if (json) {
		print_json(res, n, done_word);
		return;
	}
	if (n < 2 && all_done)
		return;
	printf("%-*s  %-*s  %-6s %-9s %s\n", w, "MACHINE", sw, "STATE", "BOOT", "PROVISION",
	       "FAILED STEP");
	for (size_t i = 0; i < n; i++)
		print_row(w, sw, &res[i], done_word);
	fflush(stdout);
}
