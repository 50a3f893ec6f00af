/* `config.vm.provision`: Vagrant's shell, file, ansible and ansible_local
 * provisioners as corral's shell, file and ansible steps, from the call's
 * options and the settings its block makes. Other provisioners (puppet,
 * chef, salt, docker, ...) and options corral lacks become notes. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/config/yamltree.h"
#include "core/vagrant/vf_priv.h"

struct pstep {
	const char *kind; /* "shell", "file", "ansible" */
	bool local;       /* ansible_local */
	struct yv *map;
	const char *why;  /* set: the step cannot be imported */
};

typedef struct value *(*step_fn)(struct interp *I, struct pstep *st, const char *key,
				 struct value *v);

static struct value *bad(struct interp *I, const char *key, const struct value *v)
{
	return v_unknown(I, "`%s` as %s", key, v_kind_name(v));
}

static struct value *s_str(struct interp *I, struct pstep *st, const char *key, struct value *v)
{
	const char *s = v_str_of(I, v);
	if (!s || !*s || (strcmp(key, "inline") && !vf_one_line(s)))
		return bad(I, key, v);
	y_set(I->ar, st->map, key, y_str(I->ar, s));
	return v_nil(I);
}

static struct value *s_bool(struct interp *I, struct pstep *st, const char *key, struct value *v)
{
	if (v->k != V_BOOL)
		return bad(I, key, v);
	y_set(I->ar, st->map, strcmp(key, "sudo") == 0 ? "become" : key, y_bool(I->ar, v->b));
	return v_nil(I);
}

static struct value *s_run(struct interp *I, struct pstep *st, const char *key, struct value *v)
{
	const char *s = v_str_of(I, v);
	if (!s || (strcmp(s, "once") && strcmp(s, "always") && strcmp(s, "never")))
		return v_unknown(I, "run: %s (corral has once, always, never)", s ? s : "?");
	y_set(I->ar, st->map, key, y_str(I->ar, s));
	return v_nil(I);
}

static const struct {
	const char *key, *what;
} path_keys[] = {
	{"path", "the script"}, {"source", "the file"}, {"playbook", "the playbook"},
	{"inventory_path", "the inventory"},
};

static struct value *s_path(struct interp *I, struct pstep *st, const char *key, struct value *v)
{
	const char *s = v_str_of(I, v), *what = "the file";
	if (!s || !*s)
		return bad(I, key, v);
	if (str_starts(s, "http://") || str_starts(s, "https://")) {
		st->why = "a script from a URL: download it next to the Vagrantfile and name that file";
		return v_nil(I);
	}
	for (size_t i = 0; i < sizeof(path_keys) / sizeof(path_keys[0]); i++)
		if (strcmp(key, path_keys[i].key) == 0)
			what = path_keys[i].what;
	const char *p = dsl_path(I, v, what, true);
	if (!p) {
		st->why = ar_printf(I->ar, "%s `%s` does not exist", what, s);
		return v_nil(I); /* noted by dsl_path */
	}
	y_set(I->ar, st->map, strcmp(key, "inventory_path") == 0 ? "inventory" : key,
	      y_str(I->ar, p));
	return v_nil(I);
}

static bool shell_special(const char *s)
{
	return strpbrk(s, "$`;|&<>*?()[]{}~!#\\") != NULL;
}

/* "a 'b c' d" as a shell splits it, for strings without shell syntax. */
static struct yv *split_args(struct interp *I, const char *s)
{
	struct yv *l = y_seq(I->ar);
	l->flow = true;
	struct buf w = {0};
	bool in_word = false;
	char quote = 0;
	for (const char *p = s;; p++) {
		if (!*p || (!quote && isspace((unsigned char)*p))) {
			if (quote) {
				buf_free(&w);
				return NULL;
			}
			if (in_word)
				y_push(I->ar, l, y_str(I->ar, ar_strdup(I->ar, w.s ? w.s : "")));
			if (w.s)
				w.s[0] = '\0';
			w.len = 0;
			in_word = false;
			if (!*p)
				break;
		} else if (*p == quote) {
			quote = 0;
		} else if (!quote && (*p == '\'' || *p == '"')) {
			quote = *p;
			in_word = true;
			buf_puts(&w, "");
		} else {
			buf_add(&w, p, 1);
			in_word = true;
		}
	}
	buf_free(&w);
	return l;
}

/* A string or an array of them as a list; lines: entries may span lines. */
static struct yv *str_list(struct interp *I, const struct value *v, bool lines)
{
	struct yv *l = y_seq(I->ar);
	l->flow = true;
	if (v_str_of(I, v)) {
		if (!*v_str_of(I, v) || (!lines && !vf_one_line(v_str_of(I, v))))
			return NULL;
		y_push(I->ar, l, y_str(I->ar, v_str_of(I, v)));
		return l;
	}
	for (size_t i = 0; v->k == V_ARRAY && i < v->items.n; i++) {
		const char *s = v_str_of(I, v->items.v[i]);
		if (!s || !*s || (!lines && !vf_one_line(s)))
			return NULL;
		y_push(I->ar, l, y_str(I->ar, s));
	}
	return v->k == V_ARRAY ? l : NULL;
}

/* key: l, unless l is empty; l NULL: v was not a list of strings. */
static struct value *set_list(struct interp *I, struct pstep *st, const char *key,
			      const struct value *v, struct yv *l)
{
	if (!l)
		return bad(I, key, v);
	if (l->vals.n)
		y_set(I->ar, st->map, key, l);
	return v_nil(I);
}

static struct value *s_args(struct interp *I, struct pstep *st, const char *key, struct value *v)
{
	struct yv *l;
	if (v->k == V_STR) {
		if (shell_special(v->s))
			return v_unknown(I, "args with shell syntax (`%s`): give them as an array", v->s);
		l = split_args(I, v->s);
	} else {
		l = str_list(I, v, true);
	}
	return set_list(I, st, key, v, l);
}

static struct value *s_list(struct interp *I, struct pstep *st, const char *key, struct value *v)
{
	return set_list(I, st, key, v, str_list(I, v, strcmp(key, "raw_arguments") == 0));
}

static struct value *s_env(struct interp *I, struct pstep *st, const char *key, struct value *v)
{
	if (v->k != V_HASH)
		return bad(I, key, v);
	struct yv *m = y_map(I->ar);
	m->user = m->flow = true;
	for (size_t i = 0; i < v->keys.n; i++) {
		const char *k = v_str_of(I, v->keys.v[i]), *val = v_str_of(I, v->items.v[i]);
		if (!k || !valid_ident(k))
			return v_unknown(I, "`%s` is not an environment variable name", k ? k : "?");
		if (!val)
			return v_unknown(I, "env %s is %s", k, v_kind_name(v->items.v[i]));
		y_set(I->ar, m, k, y_str(I->ar, val));
	}
	if (m->keys.n)
		y_set(I->ar, st->map, key, m);
	return v_nil(I);
}

static struct value *s_limit(struct interp *I, struct pstep *st, const char *key, struct value *v)
{
	struct yv *l = str_list(I, v, false);
	if (!l || !l->vals.n)
		return bad(I, key, v);
	struct buf b = {0};
	for (size_t i = 0; i < l->vals.n; i++)
		buf_printf(&b, "%s%s", i ? "," : "", ((struct yv *)l->vals.v[i])->s);
	y_set(I->ar, st->map, key, y_str(I->ar, ar_strdup(I->ar, b.s)));
	buf_free(&b);
	return v_nil(I);
}

static struct value *s_verbose(struct interp *I, struct pstep *st, const char *key,
			       struct value *v)
{
	long long n = 0;
	if (v->k == V_BOOL)
		n = v->b;
	else if (v->k == V_INT)
		n = v->i;
	else if (v_str_of(I, v)) {
		const char *s = v_str_of(I, v);
		for (s += *s == '-'; *s == 'v'; s++)
			n++;
		if (*s)
			return bad(I, key, v);
	} else {
		return bad(I, key, v);
	}
	if (n > 0)
		y_set(I->ar, st->map, key, y_int(I->ar, n > 4 ? 4 : n));
	return v_nil(I);
}

/* Ruby data as YAML for extra_vars: strings, numbers, booleans, lists, maps. */
static struct yv *data(struct interp *I, const struct value *v, int depth)
{
	if (depth > 16)
		return NULL;
	switch (v->k) {
	case V_STR: case V_SYM: return y_str(I->ar, v->s);
	case V_INT: return y_int(I->ar, v->i);
	case V_BOOL: return y_bool(I->ar, v->b);
	case V_ARRAY: {
		struct yv *l = y_seq(I->ar);
		for (size_t i = 0; i < v->items.n; i++) {
			struct yv *e = data(I, v->items.v[i], depth + 1);
			if (!e)
				return NULL;
			y_push(I->ar, l, e);
		}
		return l;
	}
	case V_HASH: {
		struct yv *m = y_map(I->ar);
		m->user = true;
		for (size_t i = 0; i < v->keys.n; i++) {
			const char *k = v_str_of(I, v->keys.v[i]);
			struct yv *e = data(I, v->items.v[i], depth + 1);
			if (!k || !e)
				return NULL;
			y_set(I->ar, m, k, e);
		}
		return m;
	}
	default: return NULL;
	}
}

static struct value *s_extra_vars(struct interp *I, struct pstep *st, const char *key,
				  struct value *v)
{
	if (v->k != V_HASH)
		return v_unknown(I, "extra_vars from a file: corral takes them as a mapping");
	struct yv *m = data(I, v, 0);
	if (!m)
		return v_unknown(I, "extra_vars with values corral import does not write (nil?)");
	if (m->keys.n)
		y_set(I->ar, st->map, key, m);
	return v_nil(I);
}

/* groups: { "web" => ["web1"], "all:vars" => { "k" => "v" }, "g:children" => ["web"] } */
static struct value *s_groups(struct interp *I, struct pstep *st, const char *key,
			      struct value *v)
{
	if (v->k != V_HASH)
		return bad(I, key, v);
	struct yv *m = y_map(I->ar);
	m->user = true;
	for (size_t i = 0; i < v->keys.n; i++) {
		const char *g = v_str_of(I, v->keys.v[i]);
		const struct value *val = v->items.v[i];
		const char *colon = g ? strchr(g, ':') : NULL;
		_cleanup_free_ char *base = g ? xstrndup(g, colon ? (size_t)(colon - g) : strlen(g)) : NULL;
		if (!g || !valid_ident(base) || (colon && strcmp(colon, ":vars") && strcmp(colon, ":children"))) {
			note_add(I, false, "%s — the group `%s`: corral's group names are letters, "
					   "digits and _", node_text(I, I->stmt), g ? g : "?");
			continue;
		}
		struct yv *e = colon && strcmp(colon, ":vars") == 0 ? data(I, val, 1) : str_list(I, val, false);
		if (!e) {
			note_add(I, false, "%s — the group `%s` as %s", node_text(I, I->stmt), g,
				 v_kind_name(val));
			continue;
		}
		for (size_t j = 0; e && e->k == YV_MAP && j < e->vals.n; j++)
			if (((struct yv *)e->vals.v[j])->k == YV_MAP ||
			    ((struct yv *)e->vals.v[j])->k == YV_SEQ || !valid_ident(e->keys.v[j]))
				e = NULL;
		if (!e) {
			note_add(I, false, "%s — `%s`: group variables are plain values with names of "
					   "letters, digits and _", node_text(I, I->stmt), g);
			continue;
		}
		y_set(I->ar, m, g, e);
	}
	if (m->keys.n)
		y_set(I->ar, st->map, key, m);
	return v_nil(I);
}

#define K_SHELL 1
#define K_FILE 2
#define K_ANSIBLE 4
#define K_ALL 7

static const struct {
	const char *key;
	unsigned kinds;
	step_fn fn;
} step_keys[] = {
	{"name", K_ALL, s_str}, {"run", K_ALL, s_run},
	{"inline", K_SHELL, s_str}, {"path", K_SHELL, s_path}, {"args", K_SHELL, s_args},
	{"env", K_SHELL, s_env}, {"privileged", K_SHELL, s_bool}, {"binary", K_SHELL, s_bool},
	{"sensitive", K_SHELL, s_bool},
	{"source", K_FILE, s_path}, {"destination", K_FILE, s_str},
	{"playbook", K_ANSIBLE, s_path}, {"inventory_path", K_ANSIBLE, s_path},
	{"groups", K_ANSIBLE, s_groups}, {"extra_vars", K_ANSIBLE, s_extra_vars},
	{"limit", K_ANSIBLE, s_limit}, {"become", K_ANSIBLE, s_bool}, {"sudo", K_ANSIBLE, s_bool},
	{"tags", K_ANSIBLE, s_list}, {"skip_tags", K_ANSIBLE, s_list},
	{"raw_arguments", K_ANSIBLE, s_list}, {"verbose", K_ANSIBLE, s_verbose},
};

static unsigned kind_bit(const struct pstep *st)
{
	return st->kind[0] == 's' ? K_SHELL : st->kind[0] == 'f' ? K_FILE : K_ANSIBLE;
}

struct value *dsl_step_set(struct interp *I, struct pstep *st, const char *attr, struct value *v)
{
	if (v_is_unknown(v))
		return v_unknown(I, "uses %s", v_unknown_in(v)->s);
	if (v->k == V_NIL)
		return v_nil(I);
	for (size_t i = 0; i < sizeof(step_keys) / sizeof(step_keys[0]); i++)
		if (strcmp(attr, step_keys[i].key) == 0 && (step_keys[i].kinds & kind_bit(st)))
			return step_keys[i].fn(I, st, attr, v);
	return v_unknown(I, "corral's %s step has no `%s`", st->kind, attr);
}

static const struct {
	const char *vagrant, *corral;
} kinds[] = {{"shell", "shell"}, {"file", "file"}, {"ansible", "ansible"},
	     {"ansible_local", "ansible"}};

/* What makes a step whole; NULL when it is. */
static const char *incomplete(const struct pstep *st)
{
	const struct yv *m = st->map;
	if (strcmp(st->kind, "shell") == 0 && !y_get(m, "inline") == !y_get(m, "path"))
		return "a shell step needs one of `inline` and `path`";
	if (strcmp(st->kind, "file") == 0 && (!y_get(m, "source") || !y_get(m, "destination")))
		return "a file step needs `source` and `destination`";
	if (strcmp(st->kind, "file") == 0 && !valid_dest(y_get(m, "destination")->s))
		return "the destination must be absolute or start with ~";
	if (strcmp(st->kind, "ansible") == 0 && !y_get(m, "playbook"))
		return "an ansible step needs `playbook`";
	return NULL;
}

static struct value *apply_opts(struct interp *I, struct pstep *st, const struct value *opts)
{
	for (size_t i = 0; opts && i < opts->keys.n; i++) {
		const char *k = v_str_of(I, opts->keys.v[i]);
		if (!k || strcmp(k, "type") == 0 || strcmp(k, "preserve_order") == 0)
			continue;
		struct value *r = dsl_step_set(I, st, k, opts->items.v[i]);
		if (r->k == V_UNKNOWN)
			note_add(I, false, "%s — %s", node_text(I, I->stmt), r->s);
	}
	return NULL;
}

struct value *dsl_provision(struct interp *I, struct scope *sc, struct value **a, size_t n,
			    const struct blk *blk)
{
	const struct value *opts = n && a[n - 1]->k == V_HASH ? a[n - 1] : NULL;
	const char *first = n ? v_str_of(I, a[0]) : NULL, *type = first, *name = NULL;
	if (v_opt(opts, "type")) {
		name = first;
		type = v_str_of(I, v_opt(opts, "type"));
	}
	struct pstep *st = ar_alloc(I->ar, sizeof(*st));
	for (size_t i = 0; type && i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strcmp(type, kinds[i].vagrant) == 0)
			st->kind = kinds[i].corral, st->local = i == 3;
	if (!st->kind)
		return v_unknown(I, "corral has no %s provisioner", type ? type : "such");
	st->map = y_map(I->ar);
	struct value *r = name ? dsl_step_set(I, st, "name", a[0]) : NULL;
	if (r && r->k == V_UNKNOWN)
		note_add(I, false, "%s — the step's name: %s", node_text(I, I->stmt), r->s);
	apply_opts(I, st, opts);
	dsl_run_settings(I, blk, H_STEP, sc, st);
	const char *why = st->why ? st->why : incomplete(st);
	if (why)
		return v_unknown(I, "%s", why);
	if (st->local)
		note_add(I, true, "ansible_local runs Ansible inside the guest; corral runs "
				  "ansible-playbook on the host against it");
	struct yv *step = y_map(I->ar);
	y_set(I->ar, step, st->kind, st->map);
	y_set(I->ar, step, "_line", y_int(I->ar, I->stmt ? I->stmt->line : 0));
	struct yv *l = y_get(sc->cfg, "provision");
	if (!l) {
		l = y_seq(I->ar);
		y_set(I->ar, sc->cfg, "provision", l);
	}
	y_push(I->ar, l, step);
	return v_nil(I);
}
