/* The interpreter: runs the parsed Vagrantfile over known values. Local
 * variables, constants and $globals live in frames (one per block);
 * conditions, loops and string interpolation are computed when their
 * values are known. What cannot be computed is an "unknown" value with a
 * reason; a statement that ends unknown becomes a note ("not imported")
 * at its line, once. Calls on Vagrant's configuration objects go to dsl.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/vagrant/vf_priv.h"

#define MAX_DEPTH 64
#define NOTE_WIDTH 100

/* ---- notes ---- */

const char *note_clean(struct interp *I, const char *s)
{
	char *c = ar_strdup(I->ar, s);
	for (char *p = c; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = *p == '\t' ? ' ' : '?';
	return c;
}

static void note_v(struct interp *I, struct scope *sc, int line, bool imported, const char *fmt,
		   va_list ap)
{
	struct note *n = ar_alloc(I->ar, sizeof(*n));
	n->line = line;
	n->imported = imported;
	n->text = note_clean(I, ar_vprintf(I->ar, fmt, ap));
	for (size_t i = 0; i < sc->notes.n; i++) {
		const struct note *o = sc->notes.v[i];
		if (o->line == n->line && o->imported == imported && strcmp(o->text, n->text) == 0)
			return;
	}
	vec_push(I->ar, &sc->notes, n);
}

void note_at(struct interp *I, struct scope *sc, int line, bool imported, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	note_v(I, sc, line, imported, fmt, ap);
	va_end(ap);
}

void note_add(struct interp *I, bool imported, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	note_v(I, I->cur ? I->cur : I->global, I->stmt ? I->stmt->line : 0, imported, fmt, ap);
	va_end(ap);
}

/* A string cut to at most max bytes without splitting a UTF-8 character. */
static const char *cut(struct interp *I, const char *s, size_t len, size_t max)
{
	if (len <= max)
		return ar_strndup(I->ar, s, len);
	size_t n = max - 1;
	while (n && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return ar_printf(I->ar, "%.*s…", (int)n, s);
}

const char *node_text(struct interp *I, const struct node *n)
{
	if (!n || n->line < 1 || (size_t)n->line > I->nlines)
		return "";
	const char *l = I->lines[n->line - 1];
	while (*l == ' ' || *l == '\t')
		l++;
	size_t len = strcspn(l, "\r\n");
	while (len && (l[len - 1] == ' ' || l[len - 1] == '\t'))
		len--;
	const char *t = cut(I, l, len, NOTE_WIDTH);
	if (n->last_line > n->line)
		return ar_printf(I->ar, "%s … (%d lines)", t, n->last_line - n->line + 1);
	return t;
}

void note_stmt(struct interp *I, const char *why)
{
	note_add(I, false, "%s — %s", node_text(I, I->stmt), why);
}

/* ---- variables ---- */

static struct value **slot(struct frame *f, const char *name, bool walk)
{
	for (; f; f = walk ? f->up : NULL)
		for (size_t i = 0; i < f->names.n; i++)
			if (strcmp(f->names.v[i], name) == 0)
				return (struct value **)&f->vals.v[i];
	return NULL;
}

static void define(struct interp *I, struct frame *f, const char *name, struct value *v)
{
	struct value **s = slot(f, name, false);
	if (s) {
		*s = v;
		return;
	}
	vec_push(I->ar, &f->names, (void *)name);
	vec_push(I->ar, &f->vals, v);
}

static void assign_var(struct interp *I, const char *name, struct value *v)
{
	struct value **s = slot(I->fr, name, true);
	if (s)
		*s = v;
	else
		define(I, I->fr, name, v);
}

static struct value *lookup(struct interp *I, const char *name)
{
	struct value **s = slot(I->fr, name, true);
	return s ? *s : NULL;
}

/* ---- blocks ---- */

static void bind(struct interp *I, const struct param *p, struct value *v)
{
	if (p->name) {
		define(I, I->fr, p->name, v);
		return;
	}
	for (size_t i = 0; i < p->nsub; i++) {
		struct value *e = v->k == V_ARRAY && i < v->items.n ? v->items.v[i]
				  : v->k == V_UNKNOWN ? v
				  : i == 0 && v->k != V_ARRAY ? v : v_nil(I);
		define(I, I->fr, p->sub[i], e);
	}
}

struct value *run_block(struct interp *I, const struct blk *blk, struct value **args, size_t n)
{
	if (I->depth >= MAX_DEPTH)
		return v_unknown(I, "blocks nested too deep");
	struct frame f = {.up = I->fr};
	I->fr = &f;
	I->depth++;
	/* |a, b| over one array argument takes its elements, as in Ruby */
	if (blk->np > 1 && n == 1 && args[0]->k == V_ARRAY) {
		struct value *arr = args[0];
		for (size_t i = 0; i < blk->np; i++)
			bind(I, &blk->p[i], i < arr->items.n ? arr->items.v[i] : v_nil(I));
	} else {
		for (size_t i = 0; i < blk->np; i++)
			bind(I, &blk->p[i], i < n ? args[i] : v_nil(I));
	}
	struct value *r = eval(I, blk->body);
	I->depth--;
	I->fr = f.up;
	return r;
}

/* ---- statements ---- */

/* Runs one statement; an unknown result is noted at it, unless a
 * statement inside it noted that value already (v->b: noted, at line v->hi). */
static struct value *exec_stmt(struct interp *I, const struct node *n)
{
	const struct node *saved = I->stmt;
	I->stmt = n;
	struct value *v = eval(I, n);
	if (v->k == V_UNKNOWN && (!v->b || v->hi < n->line || v->hi > n->last_line)) {
		note_stmt(I, v->s);
		v->b = true;
		v->hi = n->line;
	}
	I->stmt = saved;
	return v;
}

static struct value *exec_body(struct interp *I, const struct node *seq)
{
	struct value *last = v_nil(I);
	for (size_t i = 0; i < seq->n; i++)
		last = exec_stmt(I, seq->v[i]);
	return last;
}

void exec_seq(struct interp *I, const struct node *seq) { exec_body(I, seq); }

/* ---- expressions ---- */

static struct value *eval_str(struct interp *I, const struct node *n)
{
	struct buf b = {0};
	buf_puts(&b, "");
	for (size_t i = 0; i < n->n; i++) {
		const struct node *p = n->v[i];
		if (p->k == N_STRLIT) {
			buf_puts(&b, p->s);
			continue;
		}
		struct value *v = eval(I, p);
		const char *s = v->k == V_UNKNOWN ? NULL : v_to_s(I, v);
		if (!s) {
			buf_free(&b);
			return v->k == V_UNKNOWN ? v : v_unknown(I, "%s in a string", v_kind_name(v));
		}
		buf_puts(&b, s);
	}
	const char *s = ar_strdup(I->ar, b.s);
	buf_free(&b);
	return n->k == N_DSYM ? v_sym(I, s) : v_str(I, s);
}

/* Evaluates call arguments; splats expand. Returns the first unknown, else NULL. */
static struct value *eval_args(struct interp *I, const struct node *n, struct vec *out)
{
	struct value *unknown = NULL;
	for (size_t i = 0; i < n->n; i++) {
		const struct node *a = n->v[i];
		if (a->k == N_BLOCKPASS) {
			if (!unknown)
				unknown = v_unknown(I, "a block passed with &");
			continue;
		}
		struct value *v = eval(I, a->k == N_SPLAT ? a->a : a);
		if (v_is_unknown(v) && !unknown)
			unknown = (struct value *)v_unknown_in(v);
		if (a->k == N_SPLAT && v->k == V_ARRAY) {
			for (size_t j = 0; j < v->items.n; j++)
				vec_push(I->ar, out, v->items.v[j]);
		} else {
			vec_push(I->ar, out, v);
		}
	}
	return unknown;
}

static struct value *eval_hash(struct interp *I, const struct node *n)
{
	struct value *h = v_hash(I);
	for (size_t i = 0; i + 1 < n->n; i += 2) {
		if (n->v[i]->k == N_DSPLAT) {
			struct value *o = eval(I, n->v[i]->a);
			if (o->k != V_HASH)
				return o->k == V_UNKNOWN ? o : v_unknown(I, "** of %s", v_kind_name(o));
			for (size_t j = 0; j < o->keys.n; j++)
				v_hash_set(I, h, o->keys.v[j], o->items.v[j]);
			continue;
		}
		v_hash_set(I, h, eval(I, n->v[i]), eval(I, n->v[i + 1]));
	}
	return h;
}

static const char *const stdlib[] = {"yaml", "json", "fileutils", "ipaddr", "securerandom",
				     "rbconfig", "etc", "open3", "pathname", "set", "erb",
				     "socket", "net/http", "uri", "digest", NULL};

/* Kernel methods: calls without a receiver that are not local variables. */
static struct value *kernel(struct interp *I, const char *m, struct value **args, size_t n,
			    const struct blk *blk)
{
	if (strcmp(m, "require") == 0 && n == 1 && args[0]->k == V_STR &&
	    str_in_list(args[0]->s, stdlib))
		return v_nil(I); /* the library's use is what matters, and is noted */
	if ((strcmp(m, "format") == 0 || strcmp(m, "sprintf") == 0) && n >= 1 && args[0]->k == V_STR) {
		const char *s = v_format(I, args[0]->s, args + 1, n - 1);
		return s ? v_str(I, s) : v_unknown(I, "a format corral import does not compute");
	}
	if (strcmp(m, "Integer") == 0 && n == 1 && (args[0]->k == V_INT || args[0]->k == V_STR)) {
		char *e;
		long long i = args[0]->k == V_INT ? args[0]->i : strtoll(args[0]->s, &e, 0);
		return args[0]->k == V_INT || (*args[0]->s && !*e) ? v_int(I, i)
								   : v_unknown(I, "Integer() of a non-number");
	}
	if (strcmp(m, "String") == 0 && n == 1 && v_to_s(I, args[0]))
		return v_str(I, v_to_s(I, args[0]));
	static const struct {
		const char *name, *why;
	} known[] = {
		{"puts", "prints while Vagrant reads the file"},
		{"print", "prints while Vagrant reads the file"},
		{"p", "prints while Vagrant reads the file"},
		{"warn", "prints while Vagrant reads the file"},
		{"require", "loads Ruby code"},
		{"require_relative", "loads Ruby code"},
		{"load", "loads Ruby code"},
		{"raise", "stops Vagrant with an error"},
		{"abort", "stops Vagrant"},
		{"exit", "stops Vagrant"},
		{"fail", "stops Vagrant with an error"},
		{"system", "runs a command on the host"},
		{"exec", "runs a command on the host"},
		{"lambda", "a lambda, which corral import does not run"},
		{"proc", "a proc, which corral import does not run"},
		{"loop", "a loop, which corral import does not run"},
	};
	(void)blk;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(m, known[i].name) == 0)
			return v_unknown(I, "%s", known[i].why);
	return v_unknown(I, "`%s`, a method corral import does not know", m);
}

static struct value *eval_call(struct interp *I, const struct node *n)
{
	struct value *recv = NULL;
	if (n->a) {
		recv = eval(I, n->a);
		if (recv->k == V_UNKNOWN)
			return recv;
	}
	struct vec args = {0};
	struct value *unknown = eval_args(I, n, &args);
	struct value **av = (struct value **)args.v;
	if (recv && recv->k == V_HANDLE) {
		if (unknown)
			return v_unknown(I, "uses %s", unknown->s);
		return dsl_call(I, recv->h, n->s, av, args.n, n->blk);
	}
	if (unknown)
		return unknown;
	struct value *v = recv ? v_call(I, recv, n->s, av, args.n, n->blk)
			       : kernel(I, n->s, av, args.n, n->blk);
	if (!v)
		v = v_unknown(I, "`.%s` on %s", n->s, v_kind_name(recv));
	return v;
}

/* The receiver and arguments of recv[args]; the first unknown of them, else NULL. */
static struct value *index_parts(struct interp *I, const struct node *n, struct value **recv,
				 struct vec *args)
{
	*recv = eval(I, n->a);
	if ((*recv)->k == V_UNKNOWN)
		return *recv;
	return eval_args(I, n, args);
}

static struct value *eval_index(struct interp *I, const struct node *n)
{
	struct value *recv;
	struct vec args = {0};
	struct value *unknown = index_parts(I, n, &recv, &args);
	if (unknown)
		return unknown;
	if (recv->k == V_HANDLE)
		return dsl_index(I, recv->h, (struct value **)args.v, args.n);
	struct value *v = v_call(I, recv, "[]", (struct value **)args.v, args.n, NULL);
	return v ? v : v_unknown(I, "[] on %s", v_kind_name(recv));
}

static struct value *eval_var(struct interp *I, const struct node *n)
{
	struct value *v = lookup(I, n->s);
	if (v)
		return v;
	if (n->k == N_GVAR || n->k == N_IVAR)
		return v_nil(I);
	if (n->k == N_CONST) {
		v = dsl_const(I, n->s);
		return v ? v : v_unknown(I, "the constant `%s`, which the Vagrantfile does not set", n->s);
	}
	return kernel(I, n->s, NULL, 0, NULL);
}

static struct value *set_index(struct interp *I, const struct node *target, struct value *val)
{
	struct value *recv;
	struct vec args = {0};
	struct value *unknown = index_parts(I, target, &recv, &args);
	if (unknown)
		return unknown;
	vec_push(I->ar, &args, val);
	if (recv->k == V_HANDLE)
		return dsl_call(I, recv->h, "[]=", (struct value **)args.v, args.n, NULL);
	if (recv->k == V_HASH && args.n == 2) {
		v_hash_set(I, recv, args.v[0], val);
		return val;
	}
	if (recv->k == V_ARRAY && args.n == 2 && ((struct value *)args.v[0])->k == V_INT) {
		long long i = ((struct value *)args.v[0])->i;
		while (i >= 0 && (size_t)i >= recv->items.n && i < 1000)
			vec_push(I->ar, &recv->items, v_nil(I));
		if (i >= 0 && (size_t)i < recv->items.n) {
			recv->items.v[i] = val;
			return val;
		}
	}
	return v_unknown(I, "[]= on %s", v_kind_name(recv));
}

static struct value *assign(struct interp *I, const struct node *target, struct value *val)
{
	switch (target->k) {
	case N_VAR:
		assign_var(I, target->s, val);
		return val;
	case N_CONST: case N_GVAR: case N_IVAR:
		define(I, I->top, target->s, val);
		return val;
	case N_INDEX:
		return set_index(I, target, val);
	case N_CALL: {
		struct value *recv = eval(I, target->a);
		if (recv->k == V_UNKNOWN)
			return recv;
		if (recv->k != V_HANDLE)
			return v_unknown(I, "setting `%s` on %s", target->s, v_kind_name(recv));
		if (v_is_unknown(val))
			return v_unknown(I, "uses %s", v_unknown_in(val)->s);
		return dsl_call(I, recv->h, ar_printf(I->ar, "%s=", target->s), &val, 1, NULL);
	}
	default:
		return v_unknown(I, "an assignment corral import does not read");
	}
}

static struct value *eval_opassign(struct interp *I, const struct node *n)
{
	if (n->a->k == N_CALL || n->a->k == N_INDEX)
		return v_unknown(I, "`%s=` on a setting", n->s);
	struct value *curv = lookup(I, n->a->s);
	if (!curv)
		curv = v_nil(I);
	if (strcmp(n->s, "||") == 0)
		return curv->k == V_UNKNOWN || v_truthy(curv) ? curv : assign(I, n->a, eval(I, n->b));
	if (strcmp(n->s, "&&") == 0)
		return curv->k == V_UNKNOWN || !v_truthy(curv) ? curv : assign(I, n->a, eval(I, n->b));
	return assign(I, n->a, v_binop(I, n->s, curv, eval(I, n->b)));
}

static struct value *eval_if(struct interp *I, const struct node *n)
{
	struct value *c = eval(I, n->a);
	if (c->k == V_UNKNOWN)
		return v_unknown(I, "a condition on %s", c->s);
	const struct node *branch = v_truthy(c) ? n->b : n->c;
	if (!branch)
		return v_nil(I);
	return branch->k == N_SEQ ? exec_body(I, branch) : eval(I, branch);
}

static struct value *eval_case(struct interp *I, const struct node *n)
{
	struct value *subj = n->a ? eval(I, n->a) : NULL;
	if (subj && subj->k == V_UNKNOWN)
		return v_unknown(I, "a `case` on %s", subj->s);
	for (size_t i = 0; i < n->n; i++) {
		const struct node *w = n->v[i];
		for (size_t j = 0; j < w->n; j++) {
			struct value *v = eval(I, w->v[j]);
			bool hit;
			if (v->k == V_UNKNOWN)
				return v_unknown(I, "a `when` on %s", v->s);
			if (!subj)
				hit = v_truthy(v);
			else if (v->k == V_RANGE && subj->k == V_INT)
				hit = subj->i >= v->i && subj->i <= v->hi;
			else
				hit = v_eq(v, subj);
			if (hit)
				return exec_body(I, w->b);
		}
	}
	return n->c ? exec_body(I, n->c) : v_nil(I);
}

static struct value *eval_logic(struct interp *I, const struct node *n)
{
	struct value *l = eval(I, n->a);
	if (l->k == V_UNKNOWN)
		return l;
	bool t = v_truthy(l);
	if ((n->k == N_AND && !t) || (n->k == N_OR && t))
		return l;
	return eval(I, n->b);
}

static struct value *eval_array(struct interp *I, const struct node *n)
{
	struct value *a = v_array(I);
	for (size_t i = 0; i < n->n; i++) {
		const struct node *e = n->v[i];
		struct value *v = eval(I, e->k == N_SPLAT ? e->a : e);
		if (e->k == N_SPLAT && v->k == V_RANGE)
			v = v_call(I, v, "to_a", NULL, 0, NULL);
		if (e->k == N_SPLAT && v->k == V_ARRAY)
			for (size_t j = 0; j < v->items.n; j++)
				vec_push(I->ar, &a->items, v->items.v[j]);
		else
			vec_push(I->ar, &a->items, v);
	}
	return a;
}

static struct value *eval_literal(struct interp *I, const struct node *n)
{
	switch (n->k) {
	case N_NIL: return v_nil(I);
	case N_TRUE: return v_bool(I, true);
	case N_FALSE: return v_bool(I, false);
	case N_INT: return v_int(I, n->i);
	case N_FLOAT: {
		struct value *v = v_int(I, 0);
		v->k = V_FLOAT;
		v->f = n->f;
		return v;
	}
	case N_STRLIT: return v_str(I, n->s);
	case N_SYM: return v_sym(I, n->s);
	case N_SELF: return v_unknown(I, "`self`");
	case N_XSTR: return v_unknown(I, "a host command in backticks");
	case N_REGEX: return v_unknown(I, "a regular expression");
	case N_OPAQUE: return v_unknown(I, "%s", n->s);
	default: return v_unknown(I, "an expression corral import does not compute");
	}
}

struct value *eval(struct interp *I, const struct node *n)
{
	if (!I->budget)
		return v_unknown(I, "more computing than corral import does");
	I->budget--;
	switch (n->k) {
	case N_STR: case N_DSYM: return eval_str(I, n);
	case N_ARRAY: return eval_array(I, n);
	case N_HASH: return eval_hash(I, n);
	case N_RANGE: return v_range(I, eval(I, n->a), eval(I, n->b), n->excl);
	case N_VAR: case N_CONST: case N_GVAR: case N_IVAR:
		if (n->k == N_CONST && n->a) {
			struct value *r = eval(I, n->a);
			if (r->k == V_HANDLE)
				return dsl_call(I, r->h, ar_printf(I->ar, "::%s", n->s), NULL, 0, NULL);
			return r->k == V_UNKNOWN ? r : v_unknown(I, "`::%s`", n->s);
		}
		return eval_var(I, n);
	case N_CALL: return eval_call(I, n);
	case N_INDEX: return eval_index(I, n);
	case N_ASSIGN: return assign(I, n->a, eval(I, n->b));
	case N_OPASSIGN: return eval_opassign(I, n);
	case N_BINOP: return v_binop(I, n->s, eval(I, n->a), eval(I, n->b));
	case N_AND: case N_OR: return eval_logic(I, n);
	case N_NOT: {
		struct value *v = eval(I, n->a);
		return v->k == V_UNKNOWN ? v : v_bool(I, !v_truthy(v));
	}
	case N_NEG: {
		struct value *v = eval(I, n->a);
		return v->k == V_INT ? v_int(I, -v->i)
		       : v->k == V_UNKNOWN ? v : v_unknown(I, "- of %s", v_kind_name(v));
	}
	case N_IF: return eval_if(I, n);
	case N_CASE: return eval_case(I, n);
	case N_SEQ: return exec_body(I, n);
	default: return eval_literal(I, n);
	}
}
