/* Ruby values as the interpreter computes them (nil, booleans, integers,
 * strings, symbols, arrays, hashes, ranges, Vagrant's configuration
 * objects, and "unknown" with the reason), the methods and operators of
 * plain values Vagrantfiles use (each, map, times, +, %, fetch, join, ...),
 * and the arena every import allocates from, with the YAML tree. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/vagrant/vf_priv.h"

/* ---- arena ---- */

void *ar_alloc(struct arena *a, size_t n)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 1024;
		a->v = xrealloc(a->v, a->cap * sizeof(*a->v));
	}
	return a->v[a->n++] = xcalloc(1, n ? n : 1);
}

/* With three more NULs: the tokenizer looks up to three bytes ahead. */
char *ar_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = ar_alloc(a, n + 4);
	memcpy(p, s, n);
	return p;
}

char *ar_strdup(struct arena *a, const char *s) { return s ? ar_strndup(a, s, strlen(s)) : NULL; }

char *ar_vprintf(struct arena *a, const char *fmt, va_list ap)
{
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	char *p = ar_alloc(a, n > 0 ? (size_t)n + 1 : 1);
	if (n > 0)
		vsnprintf(p, (size_t)n + 1, fmt, again);
	va_end(again);
	return p;
}

char *ar_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *p = ar_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

void ar_free(struct arena *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i]);
	free(a->v);
	*a = (struct arena){0};
}

void vec_push(struct arena *a, struct vec *v, void *p)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		void **nv = ar_alloc(a, cap * sizeof(*nv));
		if (v->n)
			memcpy(nv, v->v, v->n * sizeof(*nv));
		v->v = nv;
		v->cap = cap;
	}
	v->v[v->n++] = p;
}

/* ---- the YAML tree ---- */

static struct yv *y_new(struct arena *a, enum yk k)
{
	struct yv *v = ar_alloc(a, sizeof(*v));
	v->k = k;
	return v;
}

struct yv *y_str(struct arena *a, const char *s)
{
	struct yv *v = y_new(a, YV_STR);
	v->s = s;
	return v;
}

struct yv *y_plain(struct arena *a, const char *s)
{
	struct yv *v = y_new(a, YV_PLAIN);
	v->s = s;
	return v;
}

struct yv *y_int(struct arena *a, long long i)
{
	struct yv *v = y_new(a, YV_INT);
	v->i = i;
	return v;
}

struct yv *y_bool(struct arena *a, bool b)
{
	struct yv *v = y_new(a, YV_BOOL);
	v->b = b;
	return v;
}

struct yv *y_map(struct arena *a) { return y_new(a, YV_MAP); }
struct yv *y_seq(struct arena *a) { return y_new(a, YV_SEQ); }

static long y_index(const struct yv *m, const char *key)
{
	for (size_t i = 0; m && m->k == YV_MAP && i < m->keys.n; i++)
		if (strcmp(m->keys.v[i], key) == 0)
			return (long)i;
	return -1;
}

struct yv *y_get(const struct yv *m, const char *key)
{
	long i = y_index(m, key);
	return i < 0 ? NULL : m->vals.v[i];
}

void y_set(struct arena *a, struct yv *m, const char *key, struct yv *v)
{
	long i = y_index(m, key);
	if (i >= 0) {
		m->vals.v[i] = v;
		return;
	}
	vec_push(a, &m->keys, (void *)key);
	vec_push(a, &m->vals, v);
}

void y_del(struct yv *m, const char *key)
{
	long i = y_index(m, key);
	if (i < 0)
		return;
	for (size_t j = (size_t)i; j + 1 < m->keys.n; j++) {
		m->keys.v[j] = m->keys.v[j + 1];
		m->vals.v[j] = m->vals.v[j + 1];
	}
	m->keys.n--;
	m->vals.n--;
}

void y_push(struct arena *a, struct yv *seq, struct yv *v) { vec_push(a, &seq->vals, v); }

bool y_equal(const struct yv *x, const struct yv *y)
{
	if (!x || !y)
		return x == y;
	if (x->k != y->k || x->vals.n != y->vals.n || x->comments.n != y->comments.n)
		return false;
	switch (x->k) {
	case YV_STR: case YV_PLAIN: return strcmp(x->s, y->s) == 0;
	case YV_INT: return x->i == y->i;
	case YV_BOOL: return x->b == y->b;
	default: break;
	}
	for (size_t i = 0; i < x->comments.n; i++)
		if (strcmp(x->comments.v[i], y->comments.v[i]))
			return false;
	for (size_t i = 0; i < x->vals.n; i++)
		if ((x->k == YV_MAP && strcmp(x->keys.v[i], y->keys.v[i])) ||
		    !y_equal(x->vals.v[i], y->vals.v[i]))
			return false;
	return true;
}

struct yv *y_copy(struct arena *a, const struct yv *v)
{
	if (!v)
		return NULL;
	struct yv *c = ar_alloc(a, sizeof(*c));
	*c = *v;
	c->keys = (struct vec){0};
	c->vals = (struct vec){0};
	c->comments = (struct vec){0};
	for (size_t i = 0; i < v->vals.n; i++) {
		if (v->k == YV_MAP)
			vec_push(a, &c->keys, v->keys.v[i]);
		vec_push(a, &c->vals, y_copy(a, v->vals.v[i]));
	}
	for (size_t i = 0; i < v->comments.n; i++)
		vec_push(a, &c->comments, v->comments.v[i]);
	return c;
}

/* ---- values ---- */

static struct value *v_new(struct interp *I, enum vk k)
{
	struct value *v = ar_alloc(I->ar, sizeof(*v));
	v->k = k;
	return v;
}

struct value *v_nil(struct interp *I) { return v_new(I, V_NIL); }

struct value *v_bool(struct interp *I, bool b)
{
	struct value *v = v_new(I, V_BOOL);
	v->b = b;
	return v;
}

struct value *v_int(struct interp *I, long long i)
{
	struct value *v = v_new(I, V_INT);
	v->i = i;
	return v;
}

struct value *v_str(struct interp *I, const char *s)
{
	struct value *v = v_new(I, V_STR);
	v->s = s;
	return v;
}

struct value *v_sym(struct interp *I, const char *s)
{
	struct value *v = v_new(I, V_SYM);
	v->s = s;
	return v;
}

struct value *v_array(struct interp *I) { return v_new(I, V_ARRAY); }
struct value *v_hash(struct interp *I) { return v_new(I, V_HASH); }

struct value *v_unknown(struct interp *I, const char *fmt, ...)
{
	struct value *v = v_new(I, V_UNKNOWN);
	va_list ap;
	va_start(ap, fmt);
	v->s = ar_vprintf(I->ar, fmt, ap);
	va_end(ap);
	return v;
}

struct value *v_handle(struct interp *I, struct handle *h)
{
	struct value *v = v_new(I, V_HANDLE);
	v->h = h;
	return v;
}

const struct value *v_unknown_in(const struct value *v)
{
	if (!v)
		return NULL;
	if (v->k == V_UNKNOWN)
		return v;
	for (size_t i = 0; (v->k == V_ARRAY || v->k == V_HASH) && i < v->items.n; i++) {
		const struct value *u = v_unknown_in(v->items.v[i]);
		if (!u && v->k == V_HASH)
			u = v_unknown_in(v->keys.v[i]);
		if (u)
			return u;
	}
	return NULL;
}

bool v_is_unknown(const struct value *v) { return v_unknown_in(v) != NULL; }

bool vf_one_line(const char *s) { return !strpbrk(s, "\r\n"); }

const char *v_to_s(struct interp *I, const struct value *v)
{
	switch (v->k) {
	case V_STR: case V_SYM: return v->s;
	case V_INT: return ar_printf(I->ar, "%lld", v->i);
	case V_FLOAT: return ar_printf(I->ar, "%g", v->f);
	case V_NIL: return "";
	case V_BOOL: return v->b ? "true" : "false";
	default: return NULL;
	}
}

bool v_eq(const struct value *x, const struct value *y)
{
	if (x->k == V_INT && y->k == V_FLOAT)
		return (double)x->i == y->f;
	if (x->k == V_FLOAT && y->k == V_INT)
		return x->f == (double)y->i;
	if (x->k != y->k)
		return false;
	switch (x->k) {
	case V_NIL: return true;
	case V_BOOL: return x->b == y->b;
	case V_INT: return x->i == y->i;
	case V_FLOAT: return x->f == y->f;
	case V_STR: case V_SYM: return strcmp(x->s, y->s) == 0;
	case V_RANGE: return x->i == y->i && x->hi == y->hi;
	case V_ARRAY: case V_HASH:
		if (x->items.n != y->items.n)
			return false;
		for (size_t i = 0; i < x->items.n; i++)
			if (!v_eq(x->items.v[i], y->items.v[i]) ||
			    (x->k == V_HASH && !v_eq(x->keys.v[i], y->keys.v[i])))
				return false;
		return true;
	default: return x == y;
	}
}

struct value *v_hash_get(const struct value *h, const struct value *key)
{
	for (size_t i = 0; h->k == V_HASH && i < h->keys.n; i++)
		if (v_eq(h->keys.v[i], key))
			return h->items.v[i];
	return NULL;
}

struct value *v_opt(const struct value *h, const char *key)
{
	for (size_t i = 0; h && h->k == V_HASH && i < h->keys.n; i++) {
		const struct value *k = h->keys.v[i];
		if ((k->k == V_SYM || k->k == V_STR) && strcmp(k->s, key) == 0)
			return h->items.v[i];
	}
	return NULL;
}

void v_hash_set(struct interp *I, struct value *h, struct value *key, struct value *val)
{
	for (size_t i = 0; i < h->keys.n; i++)
		if (v_eq(h->keys.v[i], key)) {
			h->items.v[i] = val;
			return;
		}
	vec_push(I->ar, &h->keys, key);
	vec_push(I->ar, &h->items, val);
}

const char *v_kind_name(const struct value *v)
{
	static const char *const names[] = {"nil", "a boolean", "an integer", "a float",
					    "a string", "a symbol", "an array", "a hash",
					    "a range", "a configuration object", "unknown"};
	return names[v->k];
}

/* ---- format ---- */

const char *v_format(struct interp *I, const char *fmt, struct value **args, size_t nargs)
{
	struct buf b = {0};
	size_t ai = 0;
	buf_puts(&b, "");
	for (const char *p = fmt; *p; p++) {
		if (*p != '%') {
			buf_add(&b, p, 1);
			continue;
		}
		if (p[1] == '%') {
			buf_add(&b, "%", 1);
			p++;
			continue;
		}
		char spec[16] = "%";
		size_t n = 1;
		for (p++; *p && strchr("-0 +", *p) && n < 6; p++)
			spec[n++] = *p;
		for (; isdigit((unsigned char)*p) && n < 10; p++)
			spec[n++] = *p;
		if (ai >= nargs || !*p || !strchr("dixXso", *p)) {
			buf_free(&b);
			return NULL;
		}
		const struct value *a = args[ai++];
		if (*p == 's') {
			const char *s = v_to_s(I, a);
			if (!s) {
				buf_free(&b);
				return NULL;
			}
			spec[n++] = 's';
			buf_printf(&b, spec, s);
		} else {
			if (a->k != V_INT) {
				buf_free(&b);
				return NULL;
			}
			spec[n++] = 'l';
			spec[n++] = 'l';
			spec[n++] = *p == 'i' ? 'd' : *p;
			buf_printf(&b, spec, a->i);
		}
	}
	const char *r = ar_strdup(I->ar, b.s);
	buf_free(&b);
	return r;
}

/* ---- operators ---- */

static struct value *arith(struct interp *I, const char *op, long long a, long long b)
{
	switch (op[0]) {
	case '+': return v_int(I, a + b);
	case '-': return v_int(I, a - b);
	case '*': return op[1] == '*' ? NULL : v_int(I, a * b);
	case '/': return b ? v_int(I, a / b - ((a % b != 0) && ((a < 0) != (b < 0)))) : NULL;
	case '%': return b ? v_int(I, ((a % b) + b) % b) : NULL;
	default: return NULL;
	}
}

static struct value *compare(struct interp *I, const char *op, int c)
{
	if (strcmp(op, "<") == 0) return v_bool(I, c < 0);
	if (strcmp(op, "<=") == 0) return v_bool(I, c <= 0);
	if (strcmp(op, ">") == 0) return v_bool(I, c > 0);
	if (strcmp(op, ">=") == 0) return v_bool(I, c >= 0);
	if (strcmp(op, "<=>") == 0) return v_int(I, c < 0 ? -1 : c > 0);
	return NULL;
}

static struct value *concat(struct interp *I, const struct value *l, const struct value *r)
{
	struct value *a = v_array(I);
	for (size_t i = 0; i < l->items.n; i++)
		vec_push(I->ar, &a->items, l->items.v[i]);
	for (size_t i = 0; i < r->items.n; i++)
		vec_push(I->ar, &a->items, r->items.v[i]);
	return a;
}

struct value *v_binop(struct interp *I, const char *op, struct value *l, struct value *r)
{
	if (l->k == V_UNKNOWN)
		return l;
	if (r->k == V_UNKNOWN)
		return r;
	if (strcmp(op, "==") == 0 || strcmp(op, "===") == 0)
		return v_bool(I, v_eq(l, r));
	if (strcmp(op, "!=") == 0)
		return v_bool(I, !v_eq(l, r));
	struct value *v = NULL;
	if (l->k == V_INT && r->k == V_INT) {
		int c = l->i < r->i ? -1 : l->i > r->i;
		v = arith(I, op, l->i, r->i);
		if (!v)
			v = compare(I, op, c);
	} else if (l->k == V_STR && r->k == V_STR) {
		if (strcmp(op, "+") == 0)
			v = v_str(I, ar_printf(I->ar, "%s%s", l->s, r->s));
		else
			v = compare(I, op, strcmp(l->s, r->s));
	} else if (l->k == V_STR && r->k == V_INT && strcmp(op, "*") == 0 && r->i >= 0 && r->i < 1000) {
		struct buf b = {0};
		buf_puts(&b, "");
		for (long long i = 0; i < r->i; i++)
			buf_puts(&b, l->s);
		v = v_str(I, ar_strdup(I->ar, b.s));
		buf_free(&b);
	} else if (l->k == V_STR && strcmp(op, "%") == 0) {
		struct value **args = r->k == V_ARRAY ? (struct value **)r->items.v : &r;
		const char *s = v_format(I, l->s, args, r->k == V_ARRAY ? r->items.n : 1);
		v = s ? v_str(I, s) : NULL;
	} else if (l->k == V_ARRAY && r->k == V_ARRAY && strcmp(op, "+") == 0) {
		v = concat(I, l, r);
	} else if (l->k == V_ARRAY && strcmp(op, "<<") == 0) {
		vec_push(I->ar, &l->items, r);
		v = l;
	}
	return v ? v : v_unknown(I, "`%s` between %s and %s", op, v_kind_name(l), v_kind_name(r));
}

/* ---- methods of plain values ---- */

/* The elements `each` walks: an array's items, a hash's [k, v] pairs, a range's integers. */
static struct value *elements(struct interp *I, struct value *recv)
{
	if (recv->k == V_ARRAY)
		return recv;
	struct value *a = v_array(I);
	if (recv->k == V_HASH) {
		for (size_t i = 0; i < recv->keys.n; i++) {
			struct value *pair = v_array(I);
			vec_push(I->ar, &pair->items, recv->keys.v[i]);
			vec_push(I->ar, &pair->items, recv->items.v[i]);
			vec_push(I->ar, &a->items, pair);
		}
		return a;
	}
	if (recv->k == V_RANGE && recv->hi - recv->i < 1000)
		for (long long i = recv->i; i <= recv->hi; i++)
			vec_push(I->ar, &a->items, v_int(I, i));
	return recv->k == V_RANGE && recv->hi - recv->i >= 1000 ? NULL : a;
}

enum iter { IT_EACH, IT_MAP, IT_SELECT, IT_REJECT, IT_WITH_INDEX, IT_MAP_WITH_INDEX };

static struct value *iterate(struct interp *I, struct value *recv, const struct blk *blk,
			     enum iter how, long long base)
{
	struct value *els = elements(I, recv);
	if (!els)
		return v_unknown(I, "a loop of more than 1000 rounds");
	struct value *out = v_array(I);
	for (size_t i = 0; i < els->items.n; i++) {
		struct value *args[2] = {els->items.v[i], v_int(I, (long long)i + base)};
		bool idx = how == IT_WITH_INDEX || how == IT_MAP_WITH_INDEX;
		struct value *r = run_block(I, blk, args, idx ? 2 : 1);
		if (r->k == V_UNKNOWN && how != IT_EACH && how != IT_WITH_INDEX)
			return r;
		if (how == IT_MAP || how == IT_MAP_WITH_INDEX)
			vec_push(I->ar, &out->items, r);
		else if ((how == IT_SELECT && v_truthy(r)) || (how == IT_REJECT && !v_truthy(r)))
			vec_push(I->ar, &out->items, els->items.v[i]);
	}
	return how == IT_EACH || how == IT_WITH_INDEX ? recv : out;
}

static struct value *range(struct interp *I, long long lo, long long hi)
{
	struct value *v = v_new(I, V_RANGE);
	v->i = lo;
	v->hi = hi;
	return v;
}

static struct value *str_method(struct interp *I, struct value *r, const char *m,
				struct value **args, size_t n)
{
	if (strcmp(m, "to_s") == 0 || strcmp(m, "to_str") == 0 || strcmp(m, "freeze") == 0 ||
	    strcmp(m, "dup") == 0)
		return r->k == V_SYM ? v_str(I, r->s) : r;
	if (strcmp(m, "to_sym") == 0)
		return v_sym(I, r->s);
	if (strcmp(m, "to_i") == 0)
		return v_int(I, strtoll(r->s, NULL, 10));
	if (strcmp(m, "empty?") == 0)
		return v_bool(I, !*r->s);
	if (strcmp(m, "length") == 0 || strcmp(m, "size") == 0)
		return v_int(I, (long long)strlen(r->s));
	if (strcmp(m, "upcase") == 0 || strcmp(m, "downcase") == 0) {
		char *s = ar_strdup(I->ar, r->s);
		for (char *p = s; *p; p++)
			*p = (char)(m[0] == 'u' ? toupper((unsigned char)*p) : tolower((unsigned char)*p));
		return r->k == V_SYM ? v_sym(I, s) : v_str(I, s);
	}
	if (strcmp(m, "strip") == 0 || strcmp(m, "chomp") == 0) {
		const char *s = r->s, *e = s + strlen(s);
		while (m[0] == 's' && *s && isspace((unsigned char)*s))
			s++;
		while (e > s && (m[0] == 's' ? isspace((unsigned char)e[-1]) : e[-1] == '\n'))
			e--;
		return v_str(I, ar_strndup(I->ar, s, (size_t)(e - s)));
	}
	if (strcmp(m, "start_with?") == 0 && n == 1 && args[0]->k == V_STR)
		return v_bool(I, str_starts(r->s, args[0]->s));
	if (strcmp(m, "end_with?") == 0 && n == 1 && args[0]->k == V_STR)
		return v_bool(I, str_ends(r->s, args[0]->s));
	if (strcmp(m, "include?") == 0 && n == 1 && args[0]->k == V_STR)
		return v_bool(I, strstr(r->s, args[0]->s) != NULL);
	return NULL;
}

static struct value *int_method(struct interp *I, struct value *r, const char *m,
				struct value **args, size_t n, const struct blk *blk)
{
	if (strcmp(m, "to_s") == 0)
		return v_str(I, v_to_s(I, r));
	if (strcmp(m, "to_i") == 0 || strcmp(m, "to_int") == 0)
		return r;
	if (strcmp(m, "times") == 0 && blk)
		return iterate(I, range(I, 0, r->i - 1), blk, IT_EACH, 0);
	if (strcmp(m, "upto") == 0 && blk && n == 1 && args[0]->k == V_INT)
		return iterate(I, range(I, r->i, args[0]->i), blk, IT_EACH, 0);
	if (strcmp(m, "even?") == 0 || strcmp(m, "odd?") == 0)
		return v_bool(I, (r->i % 2 == 0) == (m[0] == 'e'));
	if (strcmp(m, "zero?") == 0)
		return v_bool(I, r->i == 0);
	return NULL;
}

static struct value *fetch(struct interp *I, struct value *r, struct value **args, size_t n)
{
	struct value *v = NULL;
	if (r->k == V_HASH)
		v = v_hash_get(r, args[0]);
	else if (args[0]->k == V_INT && r->k == V_ARRAY) {
		long long i = args[0]->i < 0 ? (long long)r->items.n + args[0]->i : args[0]->i;
		v = i >= 0 && (size_t)i < r->items.n ? r->items.v[i] : NULL;
	}
	return v ? v : n > 1 ? args[1] : v_unknown(I, "fetch of a missing key");
}

static struct value *index_of(struct interp *I, struct value *r, struct value *k)
{
	if (r->k == V_HASH) {
		struct value *v = v_hash_get(r, k);
		return v ? v : v_nil(I);
	}
	if (r->k == V_ARRAY && k->k == V_INT) {
		long long i = k->i < 0 ? (long long)r->items.n + k->i : k->i;
		return i >= 0 && (size_t)i < r->items.n ? r->items.v[i] : v_nil(I);
	}
	return NULL;
}

static struct value *join(struct interp *I, struct value *r, struct value **args, size_t n)
{
	struct buf b = {0};
	buf_puts(&b, "");
	for (size_t i = 0; i < r->items.n; i++) {
		const char *s = v_to_s(I, r->items.v[i]);
		if (!s) {
			buf_free(&b);
			return NULL;
		}
		buf_printf(&b, "%s%s", i && n ? args[0]->s : "", s);
	}
	struct value *v = v_str(I, ar_strdup(I->ar, b.s));
	buf_free(&b);
	return v;
}

static struct value *merge(struct interp *I, struct value *r, struct value *o)
{
	struct value *h = v_hash(I);
	for (size_t i = 0; i < r->keys.n; i++)
		v_hash_set(I, h, r->keys.v[i], r->items.v[i]);
	for (size_t i = 0; i < o->keys.n; i++)
		v_hash_set(I, h, o->keys.v[i], o->items.v[i]);
	return h;
}

static struct value *keys_or_values(struct interp *I, struct value *r, bool keys)
{
	struct value *a = v_array(I);
	for (size_t i = 0; i < r->keys.n; i++)
		vec_push(I->ar, &a->items, keys ? r->keys.v[i] : r->items.v[i]);
	return a;
}

static const struct {
	const char *name;
	enum iter how;
} iters[] = {
	{"each", IT_EACH}, {"each_pair", IT_EACH}, {"map", IT_MAP}, {"collect", IT_MAP},
	{"select", IT_SELECT}, {"filter", IT_SELECT}, {"reject", IT_REJECT},
	{"each_with_index", IT_WITH_INDEX}, {"each_with_index_map", IT_MAP_WITH_INDEX},
};

static struct value *coll_method(struct interp *I, struct value *r, const char *m,
				 struct value **args, size_t n, const struct blk *blk)
{
	for (size_t i = 0; blk && i < sizeof(iters) / sizeof(iters[0]); i++)
		if (strcmp(m, iters[i].name) == 0)
			return iterate(I, r, blk, iters[i].how, 0);
	if (strcmp(m, "each_with_index") == 0 || strcmp(m, "map") == 0)
		return NULL;
	struct value *els = r->k == V_HASH ? NULL : elements(I, r);
	if (!els && r->k != V_HASH)
		return v_unknown(I, "a range of more than 1000 values");
	if (strcmp(m, "to_a") == 0 || strcmp(m, "entries") == 0)
		return r->k == V_HASH ? elements(I, r) : els;
	if (strcmp(m, "size") == 0 || strcmp(m, "length") == 0 || strcmp(m, "count") == 0)
		return v_int(I, (long long)(r->k == V_HASH ? r->keys.n : els->items.n));
	if (strcmp(m, "empty?") == 0 || strcmp(m, "any?") == 0)
		return v_bool(I, (r->k == V_HASH ? r->keys.n : els->items.n) == 0 && m[0] == 'e');
	if (strcmp(m, "first") == 0 && !n && els)
		return els->items.n ? els->items.v[0] : v_nil(I);
	if (strcmp(m, "last") == 0 && !n && els)
		return els->items.n ? els->items.v[els->items.n - 1] : v_nil(I);
	if ((strcmp(m, "[]") == 0 || strcmp(m, "dig") == 0) && n >= 1) {
		struct value *v = index_of(I, r, args[0]);
		for (size_t i = 1; v && i < n; i++)
			v = (v->k == V_HASH || v->k == V_ARRAY) ? index_of(I, v, args[i]) : NULL;
		return v;
	}
	if (strcmp(m, "fetch") == 0 && n >= 1)
		return fetch(I, r, args, n);
	if (r->k == V_HASH && (strcmp(m, "key?") == 0 || strcmp(m, "has_key?") == 0 ||
			       strcmp(m, "include?") == 0 || strcmp(m, "member?") == 0) && n == 1)
		return v_bool(I, v_hash_get(r, args[0]) != NULL);
	if (els && strcmp(m, "include?") == 0 && n == 1) {
		for (size_t i = 0; i < els->items.n; i++)
			if (v_eq(els->items.v[i], args[0]))
				return v_bool(I, true);
		return v_bool(I, false);
	}
	if (r->k == V_HASH && (strcmp(m, "keys") == 0 || strcmp(m, "values") == 0))
		return keys_or_values(I, r, m[0] == 'k');
	if (r->k == V_HASH && strcmp(m, "merge") == 0 && n == 1 && args[0]->k == V_HASH)
		return merge(I, r, args[0]);
	if (els && strcmp(m, "join") == 0 && (!n || args[0]->k == V_STR))
		return join(I, els, args, n);
	if (r->k == V_ARRAY && (strcmp(m, "push") == 0 || strcmp(m, "append") == 0)) {
		for (size_t i = 0; i < n; i++)
			vec_push(I->ar, &r->items, args[i]);
		return r;
	}
	if (strcmp(m, "to_h") == 0 && r->k == V_HASH)
		return r;
	return NULL;
}

static const char *const pure[] = {"freeze", "dup", "clone", "itself", NULL};

struct value *v_call(struct interp *I, struct value *r, const char *m, struct value **args,
		     size_t n, const struct blk *blk)
{
	for (size_t i = 0; i < n; i++)
		if (args[i]->k == V_UNKNOWN)
			return args[i];
	if (strcmp(m, "nil?") == 0)
		return v_bool(I, r->k == V_NIL);
	if (strcmp(m, "is_a?") == 0 || strcmp(m, "kind_of?") == 0)
		return NULL;
	switch (r->k) {
	case V_STR: case V_SYM: return str_method(I, r, m, args, n);
	case V_INT: return int_method(I, r, m, args, n, blk);
	case V_ARRAY: case V_HASH: case V_RANGE:
		for (const char *const *p = pure; *p; p++)
			if (strcmp(m, *p) == 0)
				return r;
		return coll_method(I, r, m, args, n, blk);
	case V_NIL:
		if (strcmp(m, "to_s") == 0)
			return v_str(I, "");
		if (strcmp(m, "to_a") == 0)
			return v_array(I);
		if (strcmp(m, "to_i") == 0)
			return v_int(I, 0);
		return NULL;
	default: return NULL;
	}
}

struct value *v_range(struct interp *I, struct value *lo, struct value *hi, bool excl)
{
	if (lo->k != V_INT || hi->k != V_INT)
		return v_unknown(I, "a range of %s and %s", v_kind_name(lo), v_kind_name(hi));
	return range(I, lo->i, hi->i - excl);
}

bool v_truthy(const struct value *v) { return !(v->k == V_NIL || (v->k == V_BOOL && !v->b)); }

const char *v_str_of(struct interp *I, const struct value *v)
{
	if (!v || (v->k != V_STR && v->k != V_SYM && v->k != V_INT))
		return NULL;
	return v_to_s(I, v);
}
