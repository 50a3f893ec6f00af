/* The parser: tokens into statements and expressions of the Ruby subset
 * Vagrantfiles use (calls with and without parentheses, do/end and { }
 * blocks, if/unless/case, modifiers, assignments, literals, operators by
 * Ruby's precedence). A statement it cannot read is kept whole as an
 * opaque node (skipped by its brackets and keywords), so an unknown
 * construct costs that statement only; the Vagrantfile is refused only
 * when its blocks and brackets do not balance. */
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/vagrant/vf_priv.h"

struct parser {
	struct arena *a;
	const struct tok *t;
	size_t n, i;
	struct diag *d;
	const char *err;   /* why the current statement does not parse */
	int err_line, err_col;
	bool fatal;
	bool no_do;  /* a `do` here belongs to an enclosing command call */
	bool cmd_ok; /* a call without parentheses may start here */
	struct vec locals;
};

static const struct tok *cur(const struct parser *P) { return &P->t[P->i]; }
static const struct tok *peek(const struct parser *P, size_t k)
{
	return P->i + k < P->n ? &P->t[P->i + k] : &P->t[P->n - 1];
}

static bool is_op(const struct tok *t, const char *op)
{
	return t->k == TK_OP && strcmp(t->s, op) == 0;
}

/* A keyword, unless it is a method name after `.`. */
static bool kw_at(const struct parser *P, size_t i, const char *kw)
{
	const struct tok *t = &P->t[i];
	if (t->k != TK_IDENT || strcmp(t->s, kw) != 0)
		return false;
	return i == 0 || !(is_op(&P->t[i - 1], ".") || is_op(&P->t[i - 1], "&."));
}

static bool is_kw(const struct parser *P, const char *kw) { return kw_at(P, P->i, kw); }

static void *fail(struct parser *P, const char *msg)
{
	if (!P->err) {
		P->err = msg;
		P->err_line = cur(P)->line;
		P->err_col = cur(P)->col;
	}
	return NULL;
}

static struct node *mk(struct parser *P, enum nk k, const struct tok *t)
{
	struct node *n = ar_alloc(P->a, sizeof(*n));
	n->k = k;
	n->line = n->last_line = t->line;
	n->col = t->col;
	return n;
}

static void add(struct parser *P, struct node *n, struct node *child)
{
	struct vec v = {(void **)n->v, n->n, n->n};
	vec_push(P->a, &v, child);
	n->v = (struct node **)v.v;
	n->n = v.n;
}

static void skip_nl(struct parser *P)
{
	while (cur(P)->k == TK_NL)
		P->i++;
}

static bool is_local(const struct parser *P, const char *name)
{
	for (size_t i = 0; i < P->locals.n; i++)
		if (strcmp(P->locals.v[i], name) == 0)
			return true;
	return false;
}

static void add_local(struct parser *P, const char *name)
{
	if (!is_local(P, name))
		vec_push(P->a, &P->locals, (void *)name);
}

static const char *const terminators[] = {"end", "else", "elsif", "when", "in", "rescue",
					  "ensure", "then", NULL};

static bool at_terminator(const struct parser *P)
{
	const struct tok *t = cur(P);
	if (t->k == TK_EOF || is_op(t, "}") || is_op(t, ")") || is_op(t, "]"))
		return true;
	for (const char *const *k = terminators; *k; k++)
		if (kw_at(P, P->i, *k))
			return true;
	return false;
}

static bool stmt_end(const struct parser *P)
{
	const struct tok *t = cur(P);
	return t->k == TK_NL || is_op(t, ";") || at_terminator(P);
}

/* ---- skipping what cannot be parsed ---- */

static const char *const value_kw[] = {"end", "self", "nil", "true", "false", NULL};

/* An `if`/`unless`/`while`/`until` at token i follows a value on its line:
 * a modifier, which opens no block. */
static bool is_modifier(const struct parser *P, size_t i)
{
	if (i == 0)
		return false;
	const struct tok *p = &P->t[i - 1];
	if (p->k == TK_NL || p->k == TK_LABEL)
		return false;
	if (p->k == TK_OP)
		return strchr(")]}", p->s[0]) && p->s[1] == '\0';
	if (p->k == TK_IDENT && !(i >= 2 && (is_op(&P->t[i - 2], ".") || is_op(&P->t[i - 2], "&.")))) {
		for (const char *const *k = value_kw; *k; k++)
			if (strcmp(p->s, *k) == 0)
				return true;
		static const char *const ops_kw[] = {"and", "or", "not", "then", "else", "do",
						     "begin", "return", "in", "when", NULL};
		for (const char *const *k = ops_kw; *k; k++)
			if (strcmp(p->s, *k) == 0)
				return false;
	}
	return true;
}

static const char *const openers[] = {"do", "def", "class", "module", "begin", "case", NULL};
static const char *const cond_openers[] = {"if", "unless", "while", "until", "for", NULL};

static bool opens_block(struct parser *P, size_t i, int *loop_line)
{
	const struct tok *t = &P->t[i];
	if (t->k != TK_IDENT || (i && (is_op(&P->t[i - 1], ".") || is_op(&P->t[i - 1], "&."))))
		return false;
	if (strcmp(t->s, "do") == 0 && *loop_line == t->line) {
		*loop_line = 0; /* while COND do: one block */
		return false;
	}
	if (str_in_list(t->s, openers))
		return true;
	if (str_in_list(t->s, cond_openers) && !is_modifier(P, i)) {
		if (strcmp(t->s, "if") && strcmp(t->s, "unless"))
			*loop_line = t->line;
		return true;
	}
	return false;
}

static int fatal_at(struct parser *P, const struct tok *t, const char *fmt, const char *what)
{
	diag_fail(P->d, fmt, what);
	P->d->line = t->line;
	P->d->col = t->col;
	P->fatal = true;
	return -1;
}

static const char *close_of(const char *open)
{
	return strcmp(open, "(") == 0 ? ")" : strcmp(open, "[") == 0 ? "]" : "}";
}

/* `x rescue y`, `if c then`: a keyword inside the statement, not one ending it. */
static bool modifier_kw(const struct parser *P)
{
	static const char *const mods[] = {"rescue", "then", "in", "ensure", NULL};
	const struct tok *prev = &P->t[P->i - 1];
	return cur(P)->k == TK_IDENT && str_in_list(cur(P)->s, mods) && prev->k != TK_NL &&
	       !is_op(prev, ";");
}

/* Skips one statement from P->i by its brackets and blocks. */
static int skip_balanced(struct parser *P)
{
	const struct tok *stack[256];
	size_t depth = 0, start = P->i;
	int loop_line = 0;
	for (;; P->i++) {
		const struct tok *t = cur(P);
		if (t->k == TK_EOF) {
			if (!depth)
				return 0;
			const struct tok *o = stack[depth - 1];
			if (o->k == TK_OP)
				return fatal_at(P, o, "`%s` is never closed", o->s);
			return fatal_at(P, o, "`%s` has no matching `end`", o->s);
		}
		if (!depth && (t->k == TK_NL || is_op(t, ";")))
			return 0;
		if (!depth && P->i > start && at_terminator(P) && !modifier_kw(P))
			return 0;
		if (t->k == TK_OP && (is_op(t, "(") || is_op(t, "[") || is_op(t, "{"))) {
			if (depth == 256)
				return fatal_at(P, t, "nesting too deep at `%s`", t->s);
			stack[depth++] = t;
		} else if (t->k == TK_OP && (is_op(t, ")") || is_op(t, "]") || is_op(t, "}"))) {
			if (!depth)
				return fatal_at(P, t, "`%s` closes nothing", t->s);
			if (stack[depth - 1]->k != TK_OP || strcmp(close_of(stack[depth - 1]->s), t->s))
				return fatal_at(P, t, "`%s` does not close what is open here", t->s);
			depth--;
		} else if (kw_at(P, P->i, "end")) {
			if (!depth || stack[depth - 1]->k == TK_OP)
				return fatal_at(P, t, "`%s` closes nothing", "end");
			depth--;
		} else if (opens_block(P, P->i, &loop_line)) {
			if (depth == 256)
				return fatal_at(P, t, "nesting too deep at `%s`", t->s);
			stack[depth++] = t;
		}
		if (t->k == TK_NL)
			loop_line = 0;
	}
}

static struct node *opaque(struct parser *P, size_t start)
{
	P->i = start;
	const struct tok *t = cur(P);
	if (skip_balanced(P) < 0)
		return NULL;
	struct node *n = mk(P, N_OPAQUE, t);
	n->s = P->err ? P->err : "not Ruby corral import reads";
	n->last_line = P->t[P->i > start ? P->i - 1 : start].line;
	if (P->i == start) /* a lone terminator where a statement belongs */
		P->i++;
	return n;
}

/* ---- expressions ---- */

static struct node *parse_stmt_expr(struct parser *P);
static struct node *parse_arg_expr(struct parser *P);
static struct node *parse_ternary(struct parser *P);
static struct node *parse_stmts(struct parser *P, const struct tok *at);
static struct node *parse_unary(struct parser *P);

struct saved {
	bool no_do, cmd_ok;
};

static struct saved enter(struct parser *P, bool no_do, bool cmd_ok)
{
	struct saved s = {P->no_do, P->cmd_ok};
	P->no_do = no_do;
	P->cmd_ok = cmd_ok;
	return s;
}

static void leave(struct parser *P, struct saved s)
{
	P->no_do = s.no_do;
	P->cmd_ok = s.cmd_ok;
}

static struct node *str_node(struct parser *P, const struct tok *t, enum nk k)
{
	struct node *n = mk(P, k, t);
	for (size_t i = 0; i < t->nparts; i++) {
		const struct strpart *sp = &t->parts[i];
		struct node *part;
		if (sp->code) {
			part = vf_parse_code(P->a, sp->text, sp->line, sp->col);
			if (!part) {
				part = mk(P, N_OPAQUE, t);
				part->s = ar_printf(P->a, "#{%s}", sp->text);
			}
		} else {
			part = mk(P, N_STRLIT, t);
			part->s = sp->text;
		}
		add(P, n, part);
	}
	return n;
}

/* label: value, key => value, **h: pairs of one hash. */
static bool parse_pair(struct parser *P, struct node *hash)
{
	const struct tok *t = cur(P);
	struct node *k, *v;
	if (t->k == TK_LABEL) {
		k = mk(P, N_SYM, t);
		k->s = t->s;
		P->i++;
		skip_nl(P);
		v = parse_arg_expr(P);
	} else if (is_op(t, "**")) {
		P->i++;
		k = mk(P, N_DSPLAT, t);
		k->a = parse_arg_expr(P);
		v = mk(P, N_NIL, t);
		if (!k->a)
			return false;
	} else {
		k = parse_arg_expr(P);
		if (!k)
			return false;
		skip_nl(P);
		if (!is_op(cur(P), "=>"))
			return fail(P, "expected `=>` in a hash"), false;
		P->i++;
		skip_nl(P);
		v = parse_arg_expr(P);
	}
	if (!v)
		return false;
	add(P, hash, k);
	add(P, hash, v);
	return true;
}

/* Comma-separated items from the opening bracket at P->i up to `close`:
 * new lines anywhere, a trailing comma allowed. */
static bool parse_list(struct parser *P, const char *close, bool (*item)(struct parser *, void *),
		       void *ctx)
{
	struct saved s = enter(P, false, false);
	P->i++;
	for (skip_nl(P); !is_op(cur(P), close); skip_nl(P)) {
		if (!item(P, ctx))
			return leave(P, s), false;
		skip_nl(P);
		if (!is_op(cur(P), ","))
			break;
		P->i++;
	}
	skip_nl(P);
	leave(P, s);
	if (!is_op(cur(P), close))
		return fail(P, ar_printf(P->a, "expected `%s`", close)), false;
	P->i++;
	return true;
}

static bool pair_item(struct parser *P, void *hash) { return parse_pair(P, hash); }

static struct node *parse_hash(struct parser *P)
{
	struct node *h = mk(P, N_HASH, cur(P));
	return parse_list(P, "}", pair_item, h) ? h : NULL;
}

/* One argument: *splat, &block, label: v or k => v (into the trailing hash), or a value. */
static bool parse_arg(struct parser *P, struct node *call, struct node **hash)
{
	const struct tok *t = cur(P);
	bool pair = t->k == TK_LABEL || is_op(t, "**");
	if (!pair && (is_op(t, "*") || is_op(t, "&"))) {
		P->i++;
		struct node *n = mk(P, is_op(t, "*") ? N_SPLAT : N_BLOCKPASS, t);
		n->a = parse_arg_expr(P);
		if (!n->a)
			return false;
		add(P, call, n);
		return true;
	}
	if (!pair) {
		size_t save = P->i;
		struct node *v = parse_arg_expr(P);
		if (!v)
			return false;
		if (!is_op(cur(P), "=>")) {
			add(P, call, v);
			return true;
		}
		P->i = save;
	}
	if (!*hash) {
		*hash = mk(P, N_HASH, t);
		add(P, call, *hash);
	}
	return parse_pair(P, *hash);
}

struct args_ctx {
	struct node *call, *hash;
};

static bool arg_item(struct parser *P, void *ctx)
{
	struct args_ctx *c = ctx;
	return parse_arg(P, c->call, &c->hash);
}

/* Arguments up to `close` (")" or "]"). */
static bool parse_paren_args(struct parser *P, struct node *call, const char *close)
{
	struct args_ctx c = {call, NULL};
	return parse_list(P, close, arg_item, &c);
}

static const char *const not_args[] = {"if", "unless", "while", "until", "and", "or", "then",
				       "do", "end", "rescue", "ensure", "else", "elsif", "when",
				       "in", NULL};

/* After a method name and a space: does an argument start here? */
static bool command_arg_start(const struct parser *P)
{
	const struct tok *t = cur(P), *nx = peek(P, 1);
	if (!t->sp)
		return false;
	switch (t->k) {
	case TK_INT: case TK_FLOAT: case TK_STR: case TK_XSTR: case TK_SYM: case TK_DSYM:
	case TK_WORDS: case TK_SYMWORDS: case TK_CONST: case TK_GVAR: case TK_IVAR:
	case TK_LABEL: case TK_REGEX:
		return true;
	case TK_IDENT:
		return !str_in_list(t->s, not_args);
	case TK_OP:
		if (is_op(t, "[") || is_op(t, "(") || is_op(t, "->"))
			return true;
		if (is_op(t, "!") || is_op(t, "-") || is_op(t, "*") || is_op(t, "&") ||
		    is_op(t, "::") || is_op(t, "**"))
			return !nx->sp && nx->k != TK_NL;
		return false;
	default:
		return false;
	}
}

static bool parse_command_args(struct parser *P, struct node *call)
{
	struct saved s = enter(P, true, false);
	struct node *hash = NULL;
	for (;;) {
		if (!parse_arg(P, call, &hash))
			return leave(P, s), false;
		if (!is_op(cur(P), ","))
			break;
		P->i++;
		skip_nl(P);
	}
	leave(P, s);
	return true;
}

static bool parse_params(struct parser *P, struct blk *b)
{
	struct vec ps = {0};
	if (is_op(cur(P), "||")) {
		P->i++;
		return true;
	}
	if (!is_op(cur(P), "|"))
		return true;
	for (P->i++; !is_op(cur(P), "|");) {
		struct param *p = ar_alloc(P->a, sizeof(*p));
		const struct tok *t = cur(P);
		if (is_op(t, "*") || is_op(t, "&"))
			t = &P->t[++P->i];
		if (t->k == TK_IDENT) {
			p->name = t->s;
			add_local(P, t->s);
			P->i++;
		} else if (is_op(t, "(")) {
			struct vec sub = {0};
			for (P->i++; cur(P)->k == TK_IDENT; ) {
				vec_push(P->a, &sub, (void *)cur(P)->s);
				add_local(P, cur(P)->s);
				P->i++;
				if (!is_op(cur(P), ","))
					break;
				P->i++;
			}
			if (!is_op(cur(P), ")"))
				return fail(P, "a block parameter corral import does not read"), false;
			P->i++;
			p->sub = (const char **)sub.v;
			p->nsub = sub.n;
		} else {
			return fail(P, "a block parameter corral import does not read"), false;
		}
		vec_push(P->a, &ps, p);
		if (is_op(cur(P), ","))
			P->i++;
		else if (!is_op(cur(P), "|"))
			return fail(P, "a block parameter corral import does not read"), false;
	}
	P->i++;
	b->np = ps.n;
	b->p = ar_alloc(P->a, (ps.n ? ps.n : 1) * sizeof(*b->p));
	for (size_t i = 0; i < ps.n; i++)
		b->p[i] = *(struct param *)ps.v[i];
	return true;
}

static struct blk *parse_block(struct parser *P)
{
	const struct tok *open = cur(P);
	bool brace = is_op(open, "{");
	struct blk *b = ar_alloc(P->a, sizeof(*b));
	struct saved s = enter(P, false, true);
	P->i++;
	if (!parse_params(P, b))
		return leave(P, s), NULL;
	b->body = parse_stmts(P, open);
	leave(P, s);
	if (!b->body)
		return NULL;
	if (brace ? !is_op(cur(P), "}") : !is_kw(P, "end"))
		return fail(P, brace ? "expected `}` closing a block" : "expected `end` closing a block");
	P->i++;
	return b;
}

/* After a method name: (args), command args, and a block. */
static struct node *call_rest(struct parser *P, struct node *call)
{
	const struct tok *t = cur(P);
	if (is_op(t, "(") && !t->sp) {
		if (!parse_paren_args(P, call, ")"))
			return NULL;
		call->parens = true;
	} else if (P->cmd_ok && command_arg_start(P)) {
		if (!parse_command_args(P, call))
			return NULL;
	}
	t = cur(P);
	if ((is_op(t, "{") && (call->parens || !call->n)) || (is_kw(P, "do") && !P->no_do)) {
		call->blk = parse_block(P);
		if (!call->blk)
			return NULL;
	}
	return call;
}

static struct node *parse_array(struct parser *P)
{
	struct node *n = mk(P, N_ARRAY, cur(P));
	if (!parse_paren_args(P, n, "]"))
		return NULL;
	return n;
}

static struct node *parse_paren(struct parser *P)
{
	const struct tok *open = cur(P);
	struct saved s = enter(P, false, true);
	P->i++;
	skip_nl(P);
	struct node *body = parse_stmts(P, open);
	leave(P, s);
	if (!body)
		return NULL;
	if (!is_op(cur(P), ")"))
		return fail(P, "expected `)`");
	P->i++;
	if (body->n == 0)
		return mk(P, N_NIL, open);
	return body->n == 1 ? body->v[0] : body;
}

static struct node *parse_if(struct parser *P, bool is_elsif)
{
	const struct tok *t = cur(P);
	bool unless = is_kw(P, "unless");
	P->i++;
	struct saved s = enter(P, true, false);
	struct node *cond = parse_stmt_expr(P);
	leave(P, s);
	if (!cond)
		return NULL;
	struct node *n = mk(P, N_IF, t);
	if (unless) {
		n->a = mk(P, N_NOT, t);
		n->a->a = cond;
	} else {
		n->a = cond;
	}
	if (is_kw(P, "then"))
		P->i++;
	if (!(n->b = parse_stmts(P, t)))
		return NULL;
	if (is_kw(P, "elsif")) {
		struct node *e = mk(P, N_SEQ, cur(P));
		struct node *inner = parse_if(P, true);
		if (!inner)
			return NULL;
		add(P, e, inner);
		n->c = e;
		return n;
	}
	if (is_kw(P, "else")) {
		P->i++;
		if (!(n->c = parse_stmts(P, t)))
			return NULL;
	}
	if (!is_kw(P, "end"))
		return fail(P, "expected `end` closing `if`");
	if (!is_elsif || true)
		P->i++;
	return n;
}

static struct node *parse_case(struct parser *P)
{
	const struct tok *t = cur(P);
	struct node *n = mk(P, N_CASE, t);
	P->i++;
	if (cur(P)->k != TK_NL && !(n->a = parse_stmt_expr(P)))
		return NULL;
	skip_nl(P);
	while (is_kw(P, "when")) {
		struct node *w = mk(P, N_WHEN, cur(P));
		P->i++;
		for (;;) {
			struct node *hash = NULL;
			if (!parse_arg(P, w, &hash))
				return NULL;
			if (!is_op(cur(P), ","))
				break;
			P->i++;
			skip_nl(P);
		}
		if (is_kw(P, "then"))
			P->i++;
		if (!(w->b = parse_stmts(P, t)))
			return NULL;
		add(P, n, w);
	}
	if (is_kw(P, "else")) {
		P->i++;
		if (!(n->c = parse_stmts(P, t)))
			return NULL;
	}
	if (!is_kw(P, "end"))
		return fail(P, "`case` that corral import does not read");
	P->i++;
	return n;
}

static const char *const opaque_kw[] = {"while", "until", "for", "def", "class", "module",
					"begin", "return", "break", "next", "redo", "retry",
					"yield", "super", "alias", "undef", "defined?", NULL};

static struct node *parse_ident(struct parser *P)
{
	const struct tok *t = cur(P);
	static const struct {
		const char *kw;
		enum nk k;
	} lits[] = {{"nil", N_NIL}, {"true", N_TRUE}, {"false", N_FALSE}, {"self", N_SELF}};
	for (size_t i = 0; i < sizeof(lits) / sizeof(lits[0]); i++)
		if (strcmp(t->s, lits[i].kw) == 0) {
			P->i++;
			return mk(P, lits[i].k, t);
		}
	if (strcmp(t->s, "if") == 0 || strcmp(t->s, "unless") == 0)
		return parse_if(P, false);
	if (strcmp(t->s, "case") == 0)
		return parse_case(P);
	if (strcmp(t->s, "not") == 0) {
		P->i++;
		struct node *n = mk(P, N_NOT, t);
		return (n->a = parse_unary(P)) ? n : NULL;
	}
	if (str_in_list(t->s, opaque_kw))
		return fail(P, ar_printf(P->a, "Ruby `%s` that corral import does not run", t->s));
	if (str_in_list(t->s, not_args))
		return fail(P, ar_printf(P->a, "unexpected `%s`", t->s));
	P->i++;
	if (is_local(P, t->s) && !(is_op(cur(P), "(") && !cur(P)->sp)) {
		struct node *v = mk(P, N_VAR, t);
		v->s = t->s;
		return v;
	}
	struct node *call = mk(P, N_CALL, t);
	call->s = t->s;
	if (!call_rest(P, call))
		return NULL;
	if (!call->parens && !call->n && !call->blk)
		call->k = N_VAR; /* a local variable or a call without arguments */
	return call;
}

static struct node *parse_primary(struct parser *P)
{
	const struct tok *t = cur(P);
	struct node *n;
	switch (t->k) {
	case TK_INT: n = mk(P, N_INT, t); n->i = t->i; P->i++; return n;
	case TK_FLOAT: n = mk(P, N_FLOAT, t); n->f = t->f; P->i++; return n;
	case TK_STR: P->i++; return str_node(P, t, N_STR);
	case TK_XSTR: P->i++; return str_node(P, t, N_XSTR);
	case TK_REGEX: P->i++; return str_node(P, t, N_REGEX);
	case TK_DSYM: P->i++; return str_node(P, t, N_DSYM);
	case TK_SYM: n = mk(P, N_SYM, t); n->s = t->s; P->i++; return n;
	case TK_GVAR: n = mk(P, N_GVAR, t); n->s = t->s; P->i++; return n;
	case TK_IVAR: n = mk(P, N_IVAR, t); n->s = t->s; P->i++; return n;
	case TK_WORDS:
	case TK_SYMWORDS:
		n = mk(P, N_ARRAY, t);
		for (size_t i = 0; i < t->nwords; i++) {
			struct node *w = mk(P, t->k == TK_WORDS ? N_STR : N_SYM, t);
			if (t->k == TK_WORDS) {
				struct node *lit = mk(P, N_STRLIT, t);
				lit->s = t->words[i];
				add(P, w, lit);
			} else {
				w->s = t->words[i];
			}
			add(P, n, w);
		}
		P->i++;
		return n;
	case TK_CONST:
		n = mk(P, N_CONST, t);
		n->s = t->s;
		P->i++;
		if (is_op(cur(P), "(") && !cur(P)->sp) {
			n->k = N_CALL;
			return call_rest(P, n);
		}
		return n;
	case TK_IDENT: return parse_ident(P);
	case TK_OP:
		if (is_op(t, "("))
			return parse_paren(P);
		if (is_op(t, "["))
			return parse_array(P);
		if (is_op(t, "{"))
			return parse_hash(P);
		if (is_op(t, "::") && peek(P, 1)->k == TK_CONST) {
			P->i++;
			return parse_primary(P);
		}
		if (is_op(t, "->"))
			return fail(P, "a lambda, which corral import does not run");
		return fail(P, ar_printf(P->a, "unexpected `%s`", t->s));
	case TK_LABEL: return fail(P, "unexpected `key:`");
	default: return fail(P, "unexpected end of line");
	}
}

static struct node *parse_postfix(struct parser *P)
{
	struct node *n = parse_primary(P);
	while (n) {
		const struct tok *t = cur(P);
		if (is_op(t, ".") || is_op(t, "&.")) {
			P->i++;
			skip_nl(P);
			const struct tok *name = cur(P);
			if (name->k != TK_IDENT && name->k != TK_CONST)
				return fail(P, "expected a method name after `.`");
			P->i++;
			struct node *call = mk(P, N_CALL, name);
			call->s = name->s;
			call->a = n;
			call->line = n->line;
			n = call_rest(P, call);
		} else if (is_op(t, "::") && (peek(P, 1)->k == TK_CONST || peek(P, 1)->k == TK_IDENT)) {
			P->i++;
			struct node *c = mk(P, peek(P, 0)->k == TK_CONST ? N_CONST : N_CALL, cur(P));
			c->s = cur(P)->s;
			c->a = n;
			P->i++;
			n = c->k == N_CALL ? call_rest(P, c) : c;
		} else if (is_op(t, "[") && !t->sp) {
			struct node *ix = mk(P, N_INDEX, t);
			ix->a = n;
			ix->line = n->line;
			if (!parse_paren_args(P, ix, "]"))
				return NULL;
			n = ix;
		} else {
			break;
		}
	}
	return n;
}

static struct node *parse_pow(struct parser *P)
{
	struct node *l = parse_postfix(P);
	if (l && is_op(cur(P), "**")) {
		struct node *n = mk(P, N_BINOP, cur(P));
		P->i++;
		skip_nl(P);
		n->s = "**";
		n->a = l;
		n->b = parse_unary(P);
		n->line = l->line;
		return n->b ? n : NULL;
	}
	return l;
}

static struct node *parse_unary(struct parser *P)
{
	const struct tok *t = cur(P);
	if (is_op(t, "!") || is_op(t, "-") || is_op(t, "+") || is_op(t, "~")) {
		P->i++;
		struct saved s = enter(P, P->no_do, false);
		struct node *x = parse_unary(P);
		leave(P, s);
		if (!x)
			return NULL;
		if (is_op(t, "+"))
			return x;
		if (is_op(t, "~"))
			return fail(P, "`~`, which corral import does not compute");
		if (is_op(t, "-") && (x->k == N_INT || x->k == N_FLOAT)) {
			x->i = -x->i;
			x->f = -x->f;
			return x;
		}
		struct node *n = mk(P, is_op(t, "!") ? N_NOT : N_NEG, t);
		n->a = x;
		return n;
	}
	return parse_pow(P);
}

static const struct {
	const char *op;
	int prec;
} binops[] = {
	{"||", 1}, {"&&", 2}, {"<=>", 4}, {"==", 4}, {"===", 4}, {"!=", 4}, {"=~", 4}, {"!~", 4},
	{"<", 5}, {"<=", 5}, {">", 5}, {">=", 5}, {"|", 6}, {"^", 6}, {"&", 7}, {"<<", 8},
	{">>", 8}, {"+", 9}, {"-", 9}, {"*", 10}, {"/", 10}, {"%", 10},
};

static int prec_of(const struct tok *t)
{
	if (t->k != TK_OP)
		return -1;
	for (size_t i = 0; i < sizeof(binops) / sizeof(binops[0]); i++)
		if (strcmp(binops[i].op, t->s) == 0)
			return binops[i].prec;
	return -1;
}

static struct node *parse_bin(struct parser *P, int min)
{
	struct node *l = parse_unary(P);
	for (;;) {
		if (!l)
			return NULL;
		const struct tok *t = cur(P);
		int prec = prec_of(t);
		if (prec < min)
			return l;
		P->i++;
		skip_nl(P);
		struct saved s = enter(P, P->no_do, false);
		struct node *r = parse_bin(P, prec + 1);
		leave(P, s);
		if (!r)
			return NULL;
		struct node *n = mk(P, strcmp(t->s, "&&") == 0 ? N_AND : strcmp(t->s, "||") == 0 ? N_OR
											: N_BINOP,
				    t);
		n->s = t->s;
		n->a = l;
		n->b = r;
		n->line = l->line;
		l = n;
	}
}

static struct node *parse_range(struct parser *P)
{
	struct node *l = parse_bin(P, 1);
	const struct tok *t = cur(P);
	if (l && (is_op(t, "..") || is_op(t, "..."))) {
		P->i++;
		struct node *n = mk(P, N_RANGE, t);
		n->excl = is_op(t, "...");
		n->a = l;
		n->line = l->line;
		n->b = parse_bin(P, 1);
		return n->b ? n : NULL;
	}
	return l;
}

static struct node *parse_ternary(struct parser *P)
{
	struct node *c = parse_range(P);
	if (!c || !is_op(cur(P), "?"))
		return c;
	struct node *n = mk(P, N_IF, cur(P));
	P->i++;
	skip_nl(P);
	n->a = c;
	n->line = c->line;
	if (!(n->b = parse_ternary(P)))
		return NULL;
	skip_nl(P);
	if (cur(P)->k == TK_LABEL || !is_op(cur(P), ":"))
		return fail(P, "expected `:` in `a ? b : c`");
	P->i++;
	skip_nl(P);
	return (n->c = parse_ternary(P)) ? n : NULL;
}

static bool assignable(const struct node *n)
{
	switch (n->k) {
	case N_VAR: case N_CONST: case N_GVAR: case N_IVAR: case N_INDEX: return !n->a || n->k != N_CONST;
	case N_CALL: return n->a && !n->n && !n->parens && !n->blk;
	default: return false;
	}
}

static const char *const assign_ops[] = {"=", "+=", "-=", "*=", "/=", "%=", "||=", "&&=",
					 "<<=", "|=", "**=", NULL};

static struct node *parse_assign(struct parser *P)
{
	struct node *l = parse_ternary(P);
	const struct tok *t = cur(P);
	if (!l || t->k != TK_OP || !str_in_list(t->s, assign_ops))
		return l;
	if (!assignable(l))
		return fail(P, "an assignment corral import does not read");
	P->i++;
	skip_nl(P);
	struct saved s = enter(P, P->no_do, true);
	struct node *r = parse_assign(P);
	if (r && is_op(cur(P), ",") && strcmp(t->s, "=") == 0 && P->no_do == false) {
		struct node *arr = mk(P, N_ARRAY, cur(P));
		add(P, arr, r);
		while (r && is_op(cur(P), ",")) {
			P->i++;
			skip_nl(P);
			if ((r = parse_ternary(P)))
				add(P, arr, r);
		}
		r = r ? arr : NULL;
	}
	leave(P, s);
	if (!r)
		return NULL;
	if (l->k == N_VAR)
		add_local(P, l->s);
	struct node *n = mk(P, strcmp(t->s, "=") == 0 ? N_ASSIGN : N_OPASSIGN, t);
	n->s = ar_strndup(P->a, t->s, strlen(t->s) - 1);
	n->a = l;
	n->b = r;
	n->line = l->line;
	return n;
}

static struct node *parse_arg_expr(struct parser *P) { return parse_assign(P); }

static struct node *parse_not_expr(struct parser *P)
{
	if (is_kw(P, "not")) {
		struct node *n = mk(P, N_NOT, cur(P));
		P->i++;
		return (n->a = parse_not_expr(P)) ? n : NULL;
	}
	return parse_assign(P);
}

static struct node *parse_stmt_expr(struct parser *P)
{
	struct node *l = parse_not_expr(P);
	while (l && (is_kw(P, "and") || is_kw(P, "or"))) {
		struct node *n = mk(P, is_kw(P, "and") ? N_AND : N_OR, cur(P));
		P->i++;
		skip_nl(P);
		n->a = l;
		n->line = l->line;
		if (!(n->b = parse_not_expr(P)))
			return NULL;
		l = n;
	}
	return l;
}

/* One statement with its modifiers (`x if c`, `x unless c`). */
static struct node *parse_stmt1(struct parser *P)
{
	struct saved s = enter(P, false, true);
	struct node *n = parse_stmt_expr(P);
	while (n && (is_kw(P, "if") || is_kw(P, "unless"))) {
		bool unless = is_kw(P, "unless");
		struct node *m = mk(P, N_IF, cur(P));
		P->i++;
		P->cmd_ok = false;
		struct node *c = parse_stmt_expr(P);
		if (!c)
			return leave(P, s), NULL;
		if (unless) {
			m->a = mk(P, N_NOT, cur(P));
			m->a->a = c;
		} else {
			m->a = c;
		}
		m->b = n;
		m->line = n->line;
		n = m;
	}
	if (n && (is_kw(P, "while") || is_kw(P, "until") || is_kw(P, "rescue")))
		n = fail(P, ar_printf(P->a, "a `%s` modifier, which corral import does not run",
				      cur(P)->s));
	leave(P, s);
	if (n && !stmt_end(P))
		return fail(P, cur(P)->k == TK_NL ? "unexpected end of line"
						  : ar_printf(P->a, "unexpected `%s`",
							      cur(P)->s ? cur(P)->s : "value"));
	return n;
}

static struct node *parse_stmt(struct parser *P)
{
	size_t start = P->i;
	const char *outer = P->err;
	P->err = NULL;
	struct node *n = parse_stmt1(P);
	if (!n && !P->fatal)
		n = opaque(P, start);
	else if (n)
		n->last_line = P->t[P->i > 0 ? P->i - 1 : 0].line;
	P->err = outer;
	return n;
}

/* Statements up to a terminator (end, else, }, ...) or the end. `at` opened them. */
static struct node *parse_stmts(struct parser *P, const struct tok *at)
{
	struct node *seq = mk(P, N_SEQ, at);
	for (;;) {
		while (cur(P)->k == TK_NL || is_op(cur(P), ";"))
			P->i++;
		if (at_terminator(P))
			break;
		struct node *n = parse_stmt(P);
		if (!n)
			return NULL;
		add(P, seq, n);
	}
	seq->last_line = cur(P)->line;
	return seq;
}

struct node *vf_parse(struct arena *a, const struct tok *t, size_t n, struct diag *d)
{
	struct parser P = {.a = a, .t = t, .n = n, .d = d};
	struct node *seq = parse_stmts(&P, t);
	while (seq && cur(&P)->k != TK_EOF) {
		/* a stray `end` or `}` at the top: the blocks do not balance */
		fatal_at(&P, cur(&P), "`%s` closes nothing", cur(&P)->s);
		return NULL;
	}
	return seq;
}

struct node *vf_parse_code(struct arena *a, const char *src, int line, int col)
{
	struct tok *t;
	size_t n;
	struct diag d;
	if (vf_lex(a, src, strlen(src), line, col, &t, &n, &d) < 0)
		return NULL;
	struct parser P = {.a = a, .t = t, .n = n, .d = &d};
	struct node *seq = parse_stmts(&P, t);
	if (!seq || cur(&P)->k != TK_EOF || seq->n != 1 || seq->v[0]->k == N_OPAQUE)
		return NULL;
	return seq->v[0];
}
