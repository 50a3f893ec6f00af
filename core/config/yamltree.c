/* YAML text -> struct ynode tree, from libyaml's event API. Not the document
 * API: its loader recurses once per nesting level (a stack overflow on
 * "[[[[..."), and it leaves aliases and merge keys to every reader. Here
 * nesting, node count and alias expansion are capped while parsing, so
 * hostile input costs bounded time and memory. */
#include "core/config/yamltree.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_ANCHORS 1000
#define YAML_TAG_PREFIX "tag:yaml.org,2002:"
#define STR_(x) #x
#define STR(x) STR_(x)

struct frame {
	struct ynode *node;
	struct ynode *key; /* mapping: the key whose value is being read */
	char *anchor;      /* registered when the node is complete: no cycles */
	size_t cap;
};

struct anchor {
	char *name;
	struct ynode *node;
};

struct builder {
	const char *file;
	struct diag_list *errs;
	struct ytree *t;
	struct frame st[YTREE_MAX_DEPTH];
	size_t depth;
	struct anchor anchors[MAX_ANCHORS];
	size_t nanchors, nodes;
	int docs;
};

static int fail_at(struct builder *b, yaml_mark_t m, const char *hint, const char *msg)
{
	ydiag(b->errs, b->file, (int)m.line + 1, (int)m.column + 1, hint, "%s", msg);
	return -1;
}

/* ---- text checks before libyaml sees the bytes ---- */

/* Length of the UTF-8 sequence at p (1..4), or 0 when it is not valid
 * (overlong forms, surrogates and code points past U+10FFFF included). */
static size_t utf8_len(const unsigned char *p, size_t left)
{
	static const struct {
		unsigned char lead_min, lead_max, n, next_min, next_max;
	} forms[] = {
		{0x00, 0x7f, 1, 0, 0},       {0xc2, 0xdf, 2, 0x80, 0xbf},
		{0xe0, 0xe0, 3, 0xa0, 0xbf}, {0xe1, 0xec, 3, 0x80, 0xbf},
		{0xed, 0xed, 3, 0x80, 0x9f}, {0xee, 0xef, 3, 0x80, 0xbf},
		{0xf0, 0xf0, 4, 0x90, 0xbf}, {0xf1, 0xf3, 4, 0x80, 0xbf},
		{0xf4, 0xf4, 4, 0x80, 0x8f},
	};
	for (size_t i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		if (p[0] < forms[i].lead_min || p[0] > forms[i].lead_max)
			continue;
		size_t n = forms[i].n;
		if (n > left)
			return 0;
		if (n > 1 && (p[1] < forms[i].next_min || p[1] > forms[i].next_max))
			return 0;
		for (size_t k = 2; k < n; k++)
			if (p[k] < 0x80 || p[k] > 0xbf)
				return 0;
		return n;
	}
	return 0;
}

static int check_text(struct builder *b, const char *data, size_t len)
{
	const unsigned char *p = (const unsigned char *)data;
	int line = 1, col = 1;
	for (size_t i = 0; i < len;) {
		size_t n = p[i] ? utf8_len(p + i, len - i) : 0;
		if (!n) {
			const char *what = p[i] ? "not UTF-8 text: byte 0x%02x"
						: "a binary file, not YAML text: NUL byte";
			char msg[128];
			snprintf(msg, sizeof(msg), what, p[i]);
			ydiag(b->errs, b->file, line, col, "an envfile is YAML text in UTF-8", "%s", msg);
			return -1;
		}
		if (p[i] == '\n') {
			line++;
			col = 0;
		}
		col++;
		i += n;
	}
	return 0;
}

/* ---- nodes ---- */

static struct ynode *new_node(struct builder *b, enum ytype type, yaml_mark_t m)
{
	if (++b->nodes > YTREE_MAX_NODES) {
		ydiag(b->errs, b->file, (int)m.line + 1, (int)m.column + 1,
		      "an envfile needs far fewer; is this the right file?",
		      "more than %d YAML nodes", YTREE_MAX_NODES);
		return NULL;
	}
	struct ynode *n = xcalloc(1, sizeof(*n));
	n->type = type;
	n->line = (int)m.line + 1;
	n->col = (int)m.column + 1;
	n->weight = 1;
	n->all = b->t->all;
	b->t->all = n;
	return n;
}

static void add_weight(size_t *w, size_t more)
{
	*w = *w + more > YTREE_MAX_NODES + 1 ? YTREE_MAX_NODES + 1 : *w + more;
}

/* Checked as each child is added, not only when a collection ends: memory
 * stays proportional to the cap even while aliases multiply it. */
static int too_heavy(struct builder *b, const struct ynode *n)
{
	if (n->weight <= YTREE_MAX_NODES)
		return 0;
	ydiag(b->errs, b->file, n->line, n->col, "use fewer nested aliases",
	      "aliases expand to more than %d nodes", YTREE_MAX_NODES);
	return -1;
}

static int key_cmp(const struct ynode *a, const struct ynode *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(a->str, b->str, n);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

static bool is_merge_key(const struct ynode *k)
{
	return !k->quoted && k->len == 2 && memcmp(k->str, "<<", 2) == 0;
}

/* "machines.web.ports[2]": where the frames below depth d stand. */
static void frames_path(const struct builder *b, size_t d, struct buf *out)
{
	for (size_t i = 0; i < d; i++) {
		const struct frame *f = &b->st[i];
		if (f->node->type == Y_SEQ)
			buf_printf(out, "[%zu]", f->node->nitems + 1);
		else if (f->key)
			buf_printf(out, "%s%s", out->len ? "." : "", f->key->str);
	}
}

/* ---- mappings: duplicate keys and `<<` merges ---- */

/* One candidate pair of a finished mapping. rank 0: written in the
 * mapping; rank k: from the k-th merged mapping (earlier ones win, as the
 * YAML merge spec says). order: where it lands in the result. */
struct cand {
	struct ypair p;
	size_t rank, order;
};

static int cand_by_key(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	int c = key_cmp(x->p.key, y->p.key);
	if (c)
		return c;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int cand_by_order(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	return x->order < y->order ? -1 : x->order > y->order;
}

static void add_cand(struct cand **v, size_t *n, size_t *cap, struct ypair p, size_t rank)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[*n] = (struct cand){p, rank, *n};
	(*n)++;
}

/* A `<<` value is a mapping or a list of mappings. */
static bool mergeable(struct builder *b, const struct ynode *v)
{
	bool ok = v->type == Y_MAP || v->type == Y_SEQ;
	for (size_t i = 0; ok && v->type == Y_SEQ && i < v->nitems; i++)
		ok = v->items[i]->type == Y_MAP;
	if (!ok)
		ydiag(b->errs, b->file, v->line, v->col, "write `<<: *anchor` or `<<: [*a, *b]`",
		      "`<<` merges a mapping or a list of mappings, not %s", ynode_what(v));
	return ok;
}

/* Every candidate pair of m into v; -1 past the node cap (merges multiply). */
static int gather(struct builder *b, struct ynode *m, struct cand **v, size_t *n, size_t *cap)
{
	size_t rank = 1;
	for (size_t i = 0; i < m->npairs && *n <= YTREE_MAX_NODES; i++) {
		struct ypair p = m->pairs[i];
		if (!is_merge_key(p.key)) {
			add_cand(v, n, cap, p, 0);
			continue;
		}
		if (!mergeable(b, p.val))
			continue;
		struct ynode *const *src = p.val->type == Y_MAP ? &p.val : p.val->items;
		size_t nsrc = p.val->type == Y_MAP ? 1 : p.val->nitems;
		for (size_t s = 0; s < nsrc && *n <= YTREE_MAX_NODES; s++, rank++)
			for (size_t k = 0; k < src[s]->npairs; k++)
				add_cand(v, n, cap, src[s]->pairs[k], rank);
	}
	if (*n <= YTREE_MAX_NODES)
		return 0;
	m->weight = YTREE_MAX_NODES + 1;
	return too_heavy(b, m);
}

static void report_dup(struct builder *b, const struct ypair *first, const struct ypair *again)
{
	struct buf path = {0};
	frames_path(b, b->depth, &path);
	ydiag(b->errs, b->file, again->key->line, again->key->col, "remove one of the two",
	      "%s%s%s: duplicate key (first at line %d, column %d)", path.s ? path.s : "",
	      path.len ? "." : "", again->key->str, first->key->line, first->key->col);
	buf_free(&path);
}

/* Sorting by key finds duplicates and the winner of each merged key in
 * O(n log n): a hostile file can hold 100000 keys. */
static int finish_map(struct builder *b, struct ynode *m)
{
	struct cand *v = NULL;
	size_t cap = 0, n = 0, out = 0;
	if (gather(b, m, &v, &n, &cap) < 0) {
		free(v);
		return -1;
	}
	if (n)
		qsort(v, n, sizeof(*v), cand_by_key);
	for (size_t i = 0; i < n; i++) {
		bool same = out && key_cmp(v[out - 1].p.key, v[i].p.key) == 0;
		if (same && v[i].rank == 0)
			report_dup(b, &v[out - 1].p, &v[i].p);
		if (!same)
			v[out++] = v[i];
	}
	if (out)
		qsort(v, out, sizeof(*v), cand_by_order);
	m->pairs = xrealloc(m->pairs, (out ? out : 1) * sizeof(*m->pairs));
	m->npairs = out;
	m->weight = 1;
	for (size_t i = 0; i < out; i++) {
		m->pairs[i] = v[i].p;
		add_weight(&m->weight, v[i].p.key->weight + v[i].p.val->weight);
	}
	free(v);
	return too_heavy(b, m);
}

/* ---- events ---- */

static int attach(struct builder *b, struct ynode *n, yaml_mark_t m)
{
	if (b->depth == 0) {
		b->t->root = n;
		return 0;
	}
	struct frame *f = &b->st[b->depth - 1];
	struct ynode *p = f->node;
	if (p->type == Y_MAP && !f->key) {
		if (n->type != Y_SCALAR)
			return fail_at(b, m, "write keys as plain words", "a key must be a string");
		f->key = n;
		return 0;
	}
	size_t have = p->type == Y_SEQ ? p->nitems : p->npairs;
	if (have == f->cap) {
		f->cap = f->cap ? f->cap * 2 : 8;
		if (p->type == Y_SEQ)
			p->items = xrealloc(p->items, f->cap * sizeof(*p->items));
		else
			p->pairs = xrealloc(p->pairs, f->cap * sizeof(*p->pairs));
	}
	if (p->type == Y_SEQ) {
		p->items[p->nitems++] = n;
	} else {
		p->pairs[p->npairs++] = (struct ypair){f->key, n};
		add_weight(&p->weight, f->key->weight);
		f->key = NULL;
	}
	add_weight(&p->weight, n->weight); /* finish_map recounts, merges included */
	return too_heavy(b, p);
}

static int check_tag(struct builder *b, const yaml_char_t *tag, yaml_mark_t m, bool *is_str)
{
	const char *t = (const char *)tag;
	if (!t || strcmp(t, "!") == 0)
		return 0;
	if (!str_starts(t, YAML_TAG_PREFIX)) {
		char msg[256];
		snprintf(msg, sizeof(msg), "unsupported YAML tag `%.200s`", t);
		return fail_at(b, m, "an envfile is plain YAML: remove the tag", msg);
	}
	*is_str = strcmp(t + strlen(YAML_TAG_PREFIX), "str") == 0;
	return 0;
}

static int register_anchor(struct builder *b, char *name, struct ynode *n, yaml_mark_t m)
{
	if (!name)
		return 0;
	if (b->nanchors == MAX_ANCHORS) {
		free(name);
		return fail_at(b, m, "reuse fewer anchors",
			       "too many anchors (the limit is " STR(MAX_ANCHORS) ")");
	}
	b->anchors[b->nanchors++] = (struct anchor){name, n};
	return 0;
}

static int on_scalar(struct builder *b, const yaml_event_t *ev)
{
	bool is_str = false;
	if (check_tag(b, ev->data.scalar.tag, ev->start_mark, &is_str) < 0)
		return -1;
	struct ynode *n = new_node(b, Y_SCALAR, ev->start_mark);
	if (!n)
		return -1;
	n->len = ev->data.scalar.length;
	n->str = xmalloc(n->len + 1);
	memcpy(n->str, ev->data.scalar.value, n->len);
	n->str[n->len] = '\0';
	n->quoted = is_str || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
	char *anchor = xstrdup((const char *)ev->data.scalar.anchor);
	if (register_anchor(b, anchor, n, ev->start_mark) < 0)
		return -1;
	return attach(b, n, ev->start_mark);
}

static int on_start(struct builder *b, const yaml_event_t *ev, enum ytype type)
{
	const yaml_char_t *tag = type == Y_MAP ? ev->data.mapping_start.tag
					       : ev->data.sequence_start.tag;
	const yaml_char_t *anchor = type == Y_MAP ? ev->data.mapping_start.anchor
						  : ev->data.sequence_start.anchor;
	bool is_str = false;
	if (check_tag(b, tag, ev->start_mark, &is_str) < 0)
		return -1;
	if (b->depth == YTREE_MAX_DEPTH)
		return fail_at(b, ev->start_mark, "an envfile needs a handful of levels",
			       "nested too deeply (the limit is " STR(YTREE_MAX_DEPTH) " levels)");
	struct ynode *n = new_node(b, type, ev->start_mark);
	if (!n)
		return -1;
	b->st[b->depth++] = (struct frame){n, NULL, xstrdup((const char *)anchor), 0};
	return 0;
}

static int on_end(struct builder *b, const yaml_event_t *ev)
{
	struct frame f = b->st[--b->depth];
	if (f.node->type == Y_MAP && finish_map(b, f.node) < 0) {
		free(f.anchor);
		return -1;
	}
	if (register_anchor(b, f.anchor, f.node, ev->start_mark) < 0)
		return -1;
	return attach(b, f.node, ev->start_mark);
}

static int on_alias(struct builder *b, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	for (size_t i = b->nanchors; i-- > 0;)
		if (strcmp(b->anchors[i].name, name) == 0)
			return attach(b, b->anchors[i].node, ev->start_mark);
	char msg[256];
	snprintf(msg, sizeof(msg), "unknown alias `*%.200s`", name);
	return fail_at(b, ev->start_mark, "define the anchor (`&name`) before its first use", msg);
}

static int on_event(struct builder *b, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		if (b->docs++ == 0)
			return 0;
		return fail_at(b, ev->start_mark, "put everything in one document (drop the `---`)",
			       "more than one YAML document");
	case YAML_SCALAR_EVENT:
		return on_scalar(b, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(b, ev, Y_SEQ);
	case YAML_MAPPING_START_EVENT:
		return on_start(b, ev, Y_MAP);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_end(b, ev);
	case YAML_ALIAS_EVENT:
		return on_alias(b, ev);
	default:
		return 0;
	}
}

static int syntax_error(struct builder *b, const yaml_parser_t *p)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "not valid YAML: %s%s%s", p->problem ? p->problem : "error",
		 p->context ? " " : "", p->context ? p->context : "");
	return fail_at(b, p->problem_mark, "check the indentation, colons and quotes here", msg);
}

static void builder_free(struct builder *b)
{
	for (size_t i = 0; i < b->depth; i++)
		free(b->st[i].anchor);
	for (size_t i = 0; i < b->nanchors; i++)
		free(b->anchors[i].name);
}

int ytree_parse(const char *file, const char *data, size_t len, struct ytree *t,
		struct diag_list *errs)
{
	struct builder *b = xcalloc(1, sizeof(*b));
	*b = (struct builder){.file = file, .errs = errs, .t = t};
	*t = (struct ytree){0};
	int rc = check_text(b, data, len);
	yaml_parser_t p;
	yaml_parser_initialize(&p);
	yaml_parser_set_encoding(&p, YAML_UTF8_ENCODING);
	yaml_parser_set_input_string(&p, (const unsigned char *)data, len);
	while (rc == 0) {
		yaml_event_t ev;
		if (!yaml_parser_parse(&p, &ev)) {
			rc = syntax_error(b, &p);
			break;
		}
		rc = on_event(b, &ev);
		bool end = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (end)
			break;
	}
	yaml_parser_delete(&p);
	builder_free(b);
	free(b);
	if (rc < 0)
		t->root = NULL;
	return rc;
}

void ytree_free(struct ytree *t)
{
	for (struct ynode *n = t->all, *next; n; n = next) {
		next = n->all;
		free(n->str);
		free(n->items);
		free(n->pairs);
		free(n);
	}
	*t = (struct ytree){0};
}

bool ynode_null(const struct ynode *n)
{
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	if (!n || n->type != Y_SCALAR || n->quoted)
		return !n;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(n->str, nulls[i]) == 0)
			return true;
	return false;
}

const char *ynode_what(const struct ynode *n)
{
	if (ynode_null(n))
		return "nothing";
	return n->type == Y_MAP ? "a mapping" : n->type == Y_SEQ ? "a list" : "a string";
}

const struct ynode *ynode_get(const struct ynode *map, const char *key)
{
	for (size_t i = 0; map && map->type == Y_MAP && i < map->npairs; i++)
		if (strcmp(map->pairs[i].key->str, key) == 0)
			return map->pairs[i].val;
	return NULL;
}

void ydiag(struct diag_list *errs, const char *file, int line, int col, const char *hint,
	   const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ydiagv(errs, file, line, col, hint, fmt, ap);
	va_end(ap);
}

bool ydiag_full(const struct diag_list *errs)
{
	return errs->n >= ENVFILE_MAX_ERRORS;
}

void ydiagv(struct diag_list *errs, const char *file, int line, int col, const char *hint,
	    const char *fmt, va_list ap)
{
	struct diag d = {0};
	if (ydiag_full(errs))
		return;
	vsnprintf(d.msg, sizeof(d.msg), fmt, ap);
	diag_at(&d, file, line, col);
	if (hint)
		diag_hint(&d, "%s", hint);
	for (size_t i = 0; i < errs->n; i++) {
		const struct diag *o = &errs->v[i];
		if (o->line == line && o->col == col && strcmp(o->msg, d.msg) == 0 &&
		    strcmp(o->file, d.file) == 0)
			return;
	}
	diag_list_add(errs, &d);
}
