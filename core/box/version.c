#include "core/box/version.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"

/* One segment: a run of digits or of letters; "-" reads as a "pre" segment,
 * as RubyGems turns "1.0-beta" into "1.0.pre.beta". */
struct seg {
	bool num;
	const char *s;
	size_t len;
};

static bool next_seg(const char **p, struct seg *sg)
{
	while (**p == '.')
		(*p)++;
	if (!**p)
		return false;
	if (**p == '-') {
		(*p)++;
		*sg = (struct seg){false, "pre", 3};
		return true;
	}
	const char *s = *p;
	sg->num = isdigit((unsigned char)*s);
	while (**p && (sg->num ? isdigit((unsigned char)**p) : isalpha((unsigned char)**p)))
		(*p)++;
	sg->s = s;
	sg->len = (size_t)(*p - s);
	return true;
}

bool version_valid(const char *v)
{
	if (!v || !isdigit((unsigned char)v[0]))
		return false;
	char prev = 0;
	for (const char *p = v; *p; prev = *p++) {
		bool sep = *p == '.' || *p == '-';
		if (!isalnum((unsigned char)*p) && !sep)
			return false;
		if (sep && (prev == '.' || prev == '-'))
			return false;
		if (sep && !p[1])
			return false;
	}
	return true;
}

/* Numeric segments compare as numbers of any length. */
static int num_cmp(struct seg a, struct seg b)
{
	while (a.len > 1 && *a.s == '0')
		a.s++, a.len--;
	while (b.len > 1 && *b.s == '0')
		b.s++, b.len--;
	if (a.len != b.len)
		return a.len < b.len ? -1 : 1;
	return memcmp(a.s, b.s, a.len);
}

static int seg_cmp(struct seg a, struct seg b)
{
	if (a.num && b.num)
		return num_cmp(a, b);
	if (a.num != b.num)
		return a.num ? 1 : -1;
	size_t n = a.len < b.len ? a.len : b.len;
	int c = memcmp(a.s, b.s, n);
	return c ? c : (a.len > b.len) - (a.len < b.len);
}

int version_cmp(const char *a, const char *b)
{
	static const struct seg zero = {true, "0", 1};
	for (;;) {
		struct seg x, y;
		bool hx = next_seg(&a, &x), hy = next_seg(&b, &y);
		if (!hx && !hy)
			return 0;
		int c = seg_cmp(hx ? x : zero, hy ? y : zero);
		if (c)
			return c < 0 ? -1 : 1;
	}
}

/* The upper bound of "~> v": drop pre-release segments and the last
 * segment (when more than one remains), then add one to the last. */
static char *bump(const char *v)
{
	struct seg segs[64];
	size_t n = 0;
	struct seg sg;
	while (n < 64 && next_seg(&v, &sg) && sg.num)
		segs[n++] = sg;
	if (n > 1)
		n--;
	struct buf b = {0};
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%s%.*s", i ? "." : "", (int)segs[i].len, segs[i].s);
	for (size_t i = b.len; i-- > 0 && b.s[i] != '.';) {
		if (b.s[i] != '9') {
			b.s[i]++;
			return b.s;
		}
		b.s[i] = '0';
		if (i == 0 || b.s[i - 1] == '.') {
			struct buf c = {0};
			buf_printf(&c, "%.*s1%s", (int)i, b.s, b.s + i);
			buf_free(&b);
			return c.s;
		}
	}
	return b.s;
}

static const struct {
	const char *tok;
	enum vop op;
} ops[] = {
	{">=", VOP_GE}, {"<=", VOP_LE}, {"!=", VOP_NE}, {"=", VOP_EQ}, {">", VOP_GT}, {"<", VOP_LT},
};

static void add_clause(struct vconstraint *c, enum vop op, char *version)
{
	c->v = xrealloc(c->v, (c->n + 1) * sizeof(*c->v));
	c->v[c->n++] = (struct vclause){op, version};
}

static int bad_clause(struct vconstraint *c, const char *all, const char *clause, size_t len,
		      struct diag *d)
{
	vconstraint_free(c);
	diag_fail(d, "invalid version constraint \"%s\": \"%.*s\" is not OPERATOR VERSION", all,
		  (int)len, clause);
	return diag_hint(d, "use Vagrant's syntax, e.g. \">= 1.0, < 2.0\", \"~> 1.2\" or \"1.2.3\"; "
			    "operators: = != > < >= <= ~>");
}

/* One comma-separated clause, s[0..len), already trimmed. */
static void parse_clause(struct vconstraint *c, const char *s, size_t len, bool *ok)
{
	const char *p = s, *end = s + len;
	bool pessimistic = len >= 2 && strncmp(p, "~>", 2) == 0;
	enum vop op = VOP_EQ;
	if (pessimistic) {
		p += 2;
	} else {
		for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			size_t n = strlen(ops[i].tok);
			if ((size_t)(end - p) >= n && strncmp(p, ops[i].tok, n) == 0) {
				op = ops[i].op;
				p += n;
				break;
			}
		}
	}
	while (p < end && isspace((unsigned char)*p))
		p++;
	char *v = xstrndup(p, (size_t)(end - p));
	if (!(*ok = version_valid(v))) {
		free(v);
		return;
	}
	if (!pessimistic) {
		add_clause(c, op, v);
		return;
	}
	add_clause(c, VOP_LT, bump(v));
	add_clause(c, VOP_GE, v);
}

int vconstraint_parse(const char *s, struct vconstraint *out, struct diag *d)
{
	*out = (struct vconstraint){0};
	if (!s)
		return 0;
	const char *p = s;
	while (isspace((unsigned char)*p))
		p++;
	if (!*p)
		return 0;
	for (;;) {
		const char *start = p, *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		while (start < end && isspace((unsigned char)*start))
			start++;
		while (end > start && isspace((unsigned char)end[-1]))
			end--;
		bool ok = false;
		parse_clause(out, start, (size_t)(end - start), &ok);
		if (!ok)
			return bad_clause(out, s, start, (size_t)(end - start), d);
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

bool vconstraint_match(const struct vconstraint *c, const char *version)
{
	for (size_t i = 0; i < c->n; i++) {
		int r = version_cmp(version, c->v[i].version);
		bool ok = false;
		switch (c->v[i].op) {
		case VOP_EQ: ok = r == 0; break;
		case VOP_NE: ok = r != 0; break;
		case VOP_GT: ok = r > 0; break;
		case VOP_LT: ok = r < 0; break;
		case VOP_GE: ok = r >= 0; break;
		case VOP_LE: ok = r <= 0; break;
		}
		if (!ok)
			return false;
	}
	return true;
}

void vconstraint_free(struct vconstraint *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->v[i].version);
	free(c->v);
	*c = (struct vconstraint){0};
}

int version_satisfies(const char *constraint, const char *version, bool *ok, struct diag *d)
{
	struct vconstraint c;
	if (vconstraint_parse(constraint, &c, d) < 0)
		return -1;
	*ok = vconstraint_match(&c, version);
	vconstraint_free(&c);
	return 0;
}
