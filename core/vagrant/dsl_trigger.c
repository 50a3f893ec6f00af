/* `config.trigger.before|after ACTIONS do |t| ... end`: Vagrant's triggers
 * as corral's `triggers:` entries of the machine (or of `defaults`, for
 * the global config). `t.run = {inline: ...}` or `{path: ...}` becomes
 * `run`, `t.run_remote = {inline: ...}` `run_remote`, `t.name`, and
 * `t.on_error`; what corral's triggers lack (a run_remote script path,
 * ruby blocks, only_on, command/hook triggers, :all) makes the whole
 * trigger a note. info/warn messages are left out with a note. */
#include <string.h>

#include "core/base/util.h"
#include "core/vagrant/vf_priv.h"

struct ptrig {
	struct yv *map;
	const char *why; /* set: it cannot be imported */
	bool before;
};

static const char *const actions[] = {"up", "halt", "reload", "destroy", "provision", NULL};

/* An action symbol into seq; why set for one corral does not have. */
static void add_action(struct interp *I, struct ptrig *t, struct yv *seq, const struct value *v)
{
	const char *s = v_str_of(I, v);
	if (!s)
		t->why = "trigger actions that are not symbols";
	else if (!str_in_list(s, actions))
		t->why = ar_printf(I->ar, "corral has no `%s` triggers (it has up, halt, reload, "
				   "destroy and provision)", s);
	else
		y_push(I->ar, seq, y_str(I->ar, s));
}

static void set_actions(struct interp *I, struct ptrig *t, const char *when, struct value **a,
			size_t n)
{
	struct yv *seq = y_seq(I->ar);
	for (size_t i = 0; i < n; i++) {
		if (a[i]->k == V_HASH) {
			const char *type = v_str_of(I, v_opt(a[i], "type"));
			if (type && strcmp(type, "action") != 0)
				t->why = ar_printf(I->ar, "corral has no %s triggers", type);
			continue;
		}
		for (size_t k = 0; a[i]->k == V_ARRAY && k < a[i]->items.n; k++)
			add_action(I, t, seq, a[i]->items.v[k]);
		if (a[i]->k != V_ARRAY)
			add_action(I, t, seq, a[i]);
	}
	if (!seq->vals.n && !t->why)
		t->why = "a trigger without actions";
	y_set(I->ar, t->map, when, seq->vals.n == 1 ? seq->vals.v[0] : seq);
}

/* run = {inline: "..."} or {path: "..."}; run_remote = {inline: "..."}. */
static struct value *set_run(struct interp *I, struct ptrig *t, const char *key, struct value *v)
{
	const char *in = v->k == V_HASH ? v_str_of(I, v_opt(v, "inline")) : NULL;
	const char *path = v->k == V_HASH ? v_str_of(I, v_opt(v, "path")) : NULL;
	bool remote = strcmp(key, "run_remote") == 0;
	if (in) {
		y_set(I->ar, t->map, key, y_str(I->ar, in));
	} else if (path && !remote && vf_one_line(path)) {
		struct yv *argv = y_seq(I->ar);
		/* Vagrant's path is the Vagrantfile directory's, never looked up in PATH */
		bool bare = !strchr(path, '/');
		y_push(I->ar, argv, y_str(I->ar, bare ? ar_printf(I->ar, "./%s", path) : path));
		y_set(I->ar, t->map, key, argv);
	} else {
		t->why = remote ? "run_remote with a script path: corral's run_remote takes a "
				  "command line (copy the script with a file step and run it)"
				: "a run without `inline` or `path`";
	}
	return v_nil(I);
}

static struct value *set_on_error(struct interp *I, struct ptrig *t, struct value *v)
{
	const char *s = v_str_of(I, v);
	if (!s || (strcmp(s, "halt") && strcmp(s, "continue")))
		t->why = "on_error other than :halt or :continue";
	else
		y_set(I->ar, t->map, "on_error", y_str(I->ar, s));
	return v_nil(I);
}

struct value *dsl_trigger_set(struct interp *I, struct ptrig *t, const char *attr,
			      struct value *v)
{
	if (v_is_unknown(v))
		t->why = ar_printf(I->ar, "uses %s", v_unknown_in(v)->s);
	else if (strcmp(attr, "run") == 0 || strcmp(attr, "run_remote") == 0)
		return set_run(I, t, attr, v);
	else if (strcmp(attr, "on_error") == 0)
		return set_on_error(I, t, v);
	else if (strcmp(attr, "name") == 0 && v_str_of(I, v) && vf_one_line(v_str_of(I, v)))
		y_set(I->ar, t->map, "name", y_str(I->ar, v_str_of(I, v)));
	else if (strcmp(attr, "info") == 0 || strcmp(attr, "warn") == 0)
		note_add(I, false, "%s — the trigger's %s message: corral shows its name and output",
			 node_text(I, I->stmt), attr);
	else
		t->why = ar_printf(I->ar, "corral's triggers have no `%s`", attr);
	return v_nil(I);
}

/* What makes the trigger one corral can run; NULL when it is. */
static const char *incomplete(const struct ptrig *t)
{
	const struct yv *m = t->map;
	if (!y_get(m, "run") == !y_get(m, "run_remote"))
		return "a trigger needs one of `run` and `run_remote`";
	const struct yv *acts = y_get(m, t->before ? "before" : "after");
	bool early = false;
	for (size_t i = 0; i < (acts->k == YV_SEQ ? acts->vals.n : 1); i++) {
		const char *a = acts->k == YV_SEQ ? ((const struct yv *)acts->vals.v[i])->s : acts->s;
		early |= t->before ? strcmp(a, "up") == 0 : str_in_list(a, (const char *const[]){
								       "halt", "destroy", NULL});
	}
	if (y_get(m, "run_remote") && early)
		return "run_remote needs a running machine: not before up or after halt/destroy";
	return NULL;
}

struct value *dsl_trigger(struct interp *I, struct scope *sc, const char *when,
			  struct value **a, size_t n, const struct blk *blk)
{
	if (strcmp(when, "before") != 0 && strcmp(when, "after") != 0)
		return v_unknown(I, "`config.trigger.%s`", when);
	struct ptrig *t = ar_alloc(I->ar, sizeof(*t));
	t->map = y_map(I->ar);
	t->before = when[0] == 'b';
	set_actions(I, t, when, a, n);
	dsl_run_settings(I, blk, H_TRIGGER, sc, t);
	const char *why = t->why ? t->why : incomplete(t);
	if (why)
		return v_unknown(I, "%s", why);
	struct yv *l = y_get(sc->cfg, "triggers");
	if (!l) {
		l = y_seq(I->ar);
		y_set(I->ar, sc->cfg, "triggers", l);
	}
	y_push(I->ar, l, t->map);
	return v_nil(I);
}
