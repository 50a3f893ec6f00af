/* The envfile's key table, in the manner of systemd-nspawn's gperf file:
 * every mapping level is a table of key -> value type -> offsetof() into
 * its struct. Decoding, "did you mean", required keys, freeing and
 * envfile_keys() all walk these tables; no other code knows a key name. */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config/yamltree.h"

#define NONE ((size_t)-1)
#define DECODE_BUDGET 250000 /* values per load (defaults x machines x aliases): < 1 s */
#define MAX_GROUP_KEYS 256     /* in one ansible step's `groups` */

struct key;

/* A value type: how to read one from a node into obj (the struct the key's
 * table describes) and how to free what it stored. */
struct ktype {
	const char *expect; /* "a size like 512M", for type mismatches */
	void (*parse)(struct dec *d, const struct ynode *n, void *obj, const struct key *k);
	void (*free)(void *obj, const struct key *k);
	/* The value in a step's canonical config (step ids); NULL: never in a step. */
	json_t *(*json)(const void *obj, const struct key *k, const char *dir);
};

struct keytab {
	const struct key *keys;
	size_t n;
	size_t size;              /* list elements: struct size */
	size_t pos_off, name_off; /* list elements: their srcpos and name, or NONE */
	void (*init)(void *obj);  /* built-in defaults, before any key is read */
	void (*check)(struct dec *d, const struct ynode *n, void *obj); /* rules across keys */
};

enum {
	K_REQUIRED = 1 << 0,
	K_MULTILINE = 1 << 1,    /* scripts: newlines allowed */
	K_EXISTS = 1 << 2,       /* a host path that must exist */
	K_FILE = 1 << 3,         /* ... and must not be a directory */
	K_MACHINE_ONLY = 1 << 4, /* not in `defaults` */
	K_ANSIBLE_ONLY = 1 << 5, /* top-level provision */
	K_NO_ID = 1 << 6,        /* display only: changing it doesn't make a new step */
};

struct key {
	const char *name;
	const struct ktype *type;
	size_t off, noff;          /* the field; for lists also its count */
	const struct keytab *sub;  /* mappings and lists of mappings */
	const char *const *choices; /* enums, NULL-terminated */
	uint64_t min, max;          /* numbers and sizes */
	bool (*valid)(const char *s);
	const char *bad;  /* what an invalid value is: "is not a hostname" */
	const char *hint; /* what a valid one looks like */
	unsigned flags;
};

#define FIELD(obj, k, T) ((T *)((char *)(obj) + (k)->off))
#define CFIELD(obj, k, T) ((const T *)((const char *)(obj) + (k)->off))
#define COUNT(obj, k) ((size_t *)((char *)(obj) + (k)->noff))
#define NKEYS(a) (sizeof(a) / sizeof((a)[0]))

/* ---- diagnostics and the key path ---- */

/* The key path goes in as an argument, never into the format: keys are
 * the user's text and may hold '%'. */
void dec_err(struct dec *d, const struct ynode *at, const char *hint, const char *fmt, ...)
{
	char msg[sizeof(((struct diag *)0)->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ydiag(d->errs, d->file, at ? at->line : 0, at ? at->col : 0, hint, "%s%s%s",
	      d->path.len ? d->path.s : "", d->path.len ? ": " : "", msg);
}

size_t dec_push(struct dec *d, const char *fmt, ...)
{
	size_t mark = d->path.len;
	char s[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(s, sizeof(s), fmt, ap);
	va_end(ap);
	buf_add(&d->path, s, n < 0 ? 0 : (size_t)n < sizeof(s) ? (size_t)n : sizeof(s) - 1);
	return mark;
}

void dec_pop(struct dec *d, size_t mark)
{
	d->path.len = mark;
	if (d->path.s)
		d->path.s[mark] = '\0';
}

/* Runs once a value: no formatting, and keys of any length. */
static size_t push_key(struct dec *d, const char *key)
{
	size_t mark = d->path.len;
	if (mark)
		buf_add(&d->path, ".", 1);
	buf_puts(&d->path, key);
	return mark;
}

/* One unit of work; false once the budget is spent (reported once). */
static bool spend(struct dec *d, const struct ynode *n)
{
	if (d->budget == 0)
		return false;
	if (--d->budget == 0)
		dec_err(d, n, "use fewer aliases and machines",
			"the envfile expands to more than %d values", DECODE_BUDGET);
	return d->budget > 0;
}

/* ---- scalars ---- */

/* The scalar's text with ${VAR} expanded; NULL after reporting why not. */
static char *scalar(struct dec *d, const struct ynode *n, const char *expect, unsigned flags)
{
	struct diag why = {0};
	if (n->type != Y_SCALAR || ynode_null(n)) {
		dec_err(d, n, ynode_null(n) ? "give a value or remove the key" : "write one value here",
			"expected %s, got %s", expect, ynode_what(n));
		return NULL;
	}
	if (memchr(n->str, '\0', n->len)) {
		dec_err(d, n, "remove the \\0 escape", "contains a NUL byte");
		return NULL;
	}
	char *s = expand_vars(n->str, &why);
	if (!s)
		dec_err(d, n, why.hint, "%s", why.msg);
	else if (!(flags & K_MULTILINE) && strpbrk(s, "\r\n")) {
		dec_err(d, n, "write it on one line", "must be a single line");
		free(s);
		s = NULL;
	}
	return s;
}

static void replace_str(char **field, char *v)
{
	free(*field);
	*field = v;
}

/* A non-empty string passing the key's check, or NULL (reported). */
static char *checked_str(struct dec *d, const struct ynode *n, const struct key *k)
{
	char *s = scalar(d, n, k->type->expect, k->flags);
	if (s && !*s)
		dec_err(d, n, "give a value or remove the key", "is empty");
	else if (s && k->valid && !k->valid(s))
		dec_err(d, n, k->hint, "\"%s\" %s", s, k->bad);
	else
		return s;
	free(s);
	return NULL;
}

static void p_str(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	char *s = checked_str(d, n, k);
	if (s)
		replace_str(FIELD(obj, k, char *), s);
}

static void f_str(void *obj, const struct key *k)
{
	free(*FIELD(obj, k, char *));
}

/* Host paths: "~/x" from $HOME, relative ones from the envfile's directory. */
static char *resolve(struct dec *d, const struct ynode *n, const char *s)
{
	if (s[0] != '~')
		return path_abs(d->dir, s);
	const char *home = getenv("HOME");
	if ((s[1] && s[1] != '/') || !home || !*home) {
		dec_err(d, n, "write the path out, or relative to the envfile",
			"can't expand `~` (only ~/... with $HOME set)");
		return NULL;
	}
	return path_abs(home, s[1] ? s + 2 : ".");
}

/* `box:` is a name, or an image's URL or path; a relative path starts at
 * the envfile's directory, like every other host path in it. */
static void p_box(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	char *s = checked_str(d, n, k);
	if (s && (strncmp(s, "./", 2) == 0 || strncmp(s, "../", 3) == 0)) {
		char *abs = path_abs(d->dir, s);
		free(s);
		s = abs;
	}
	if (s)
		replace_str(FIELD(obj, k, char *), s);
}

static void p_path(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	_cleanup_free_ char *s = checked_str(d, n, k);
	char *abs = s ? resolve(d, n, s) : NULL;
	if (!abs)
		return;
	bool look = (k->flags & (K_EXISTS | K_FILE)) && !(d->flags & ENVFILE_NO_FS);
	if (look && !path_exists(abs)) {
		_cleanup_free_ char *hint = xasprintf(
			"looked for %s (relative paths start at the envfile's directory)", abs);
		dec_err(d, n, hint, "%s does not exist", s);
	} else if (look && (k->flags & K_FILE) && path_is_dir(abs)) {
		dec_err(d, n, "name a file in it", "%s is a directory, not a file", s);
	}
	replace_str(FIELD(obj, k, char *), abs);
}

/* cloud_init.user_data: inline when it starts with `#` (#cloud-config, #!),
 * else a file, resolved like any host path. */
static void p_user_data(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	char *s = scalar(d, n, k->type->expect, K_MULTILINE);
	if (s && s[0] == '#')
		replace_str(FIELD(obj, k, char *), s);
	else if (s)
		p_path(d, n, obj, k);
	if (s && s[0] != '#')
		free(s);
}

/* A YAML boolean word: 1 or 0, or -1 (reported) for anything else. */
static int bool_word(struct dec *d, const struct ynode *n, const struct key *k)
{
	static const char *const words[] = {"false", "no", "off", "true", "yes", "on"};
	_cleanup_free_ char *s = scalar(d, n, k->type->expect, 0);
	for (size_t i = 0; s && i < NKEYS(words); i++)
		if (strcasecmp(s, words[i]) == 0)
			return i >= 3;
	if (s)
		dec_err(d, n, "write true or false", "\"%s\" is not true or false", s);
	return -1;
}

static void p_bool(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	int v = bool_word(d, n, k);
	if (v >= 0)
		*FIELD(obj, k, bool) = v;
}

/* A bool whose absence means something: an enum opt_bool, OPT_UNSET until set. */
static void p_opt_bool(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	int v = bool_word(d, n, k);
	if (v >= 0)
		*FIELD(obj, k, enum opt_bool) = v ? OPT_TRUE : OPT_FALSE;
}

static void p_uint(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	_cleanup_free_ char *s = scalar(d, n, k->type->expect, 0);
	char *end;
	if (!s)
		return;
	unsigned long long v = strtoull(s, &end, 10);
	if (s[0] >= '0' && s[0] <= '9' && !*end && v >= k->min && v <= k->max)
		*FIELD(obj, k, unsigned) = (unsigned)v;
	else if (k->bad)
		dec_err(d, n, k->hint, "\"%s\" %s", s, k->bad);
	else
		dec_err(d, n, k->hint, "\"%s\" is not a number from %llu to %llu", s,
			(unsigned long long)k->min, (unsigned long long)k->max);
}

/* 536870912 -> "512M": the largest unit that divides exactly. */
static void human_size(uint64_t v, char out[32])
{
	static const char *const units[] = {"", "K", "M", "G", "T"};
	size_t u = 0;
	while (u < 4 && v && v % 1024 == 0) {
		v /= 1024;
		u++;
	}
	snprintf(out, 32, "%llu%s", (unsigned long long)v, units[u]);
}

static void p_size(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	_cleanup_free_ char *s = scalar(d, n, k->type->expect, 0);
	uint64_t v;
	char lim[32];
	if (!s)
		return;
	bool bare = strspn(s, "0123456789") == strlen(s);
	if (parse_size(s, &v) < 0) {
		dec_err(d, n, "use a size like 512M or 2G", "\"%s\" is not a size", s);
	} else if (v < k->min) {
		human_size(k->min, lim);
		dec_err(d, n, bare ? "a size without a unit is in bytes: write 512M or 2G" : NULL,
			"%s is less than the minimum, %s", s, lim);
	} else if (v > k->max) {
		human_size(k->max, lim);
		dec_err(d, n, "use a smaller size", "%s is more than the maximum, %s", s, lim);
	} else {
		*FIELD(obj, k, uint64_t) = v;
	}
}

static void p_duration(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	_cleanup_free_ char *s = scalar(d, n, k->type->expect, 0);
	uint64_t v;
	if (s && parse_duration(s, &v) < 0)
		dec_err(d, n, "use a duration like 30s, 5m or 1h", "\"%s\" is not a duration", s);
	else if (s)
		*FIELD(obj, k, uint64_t) = v;
}

/* ---- enums ---- */

/* The index of the value in k->choices, or -1 (reported). */
static int choice(struct dec *d, const struct ynode *n, const struct key *k)
{
	struct buf all = {0};
	size_t cnt = 0;
	for (; k->choices[cnt]; cnt++)
		buf_printf(&all, "%s%s", cnt ? ", " : "", k->choices[cnt]);
	_cleanup_free_ char *expect = xasprintf("one of %s", all.s ? all.s : "");
	_cleanup_free_ char *s = scalar(d, n, expect, 0);
	int r = -1;
	for (size_t i = 0; s && i < cnt && r < 0; i++)
		if (strcmp(s, k->choices[i]) == 0)
			r = (int)i;
	if (s && r < 0) {
		const char *sug = str_suggest(s, k->choices, cnt);
		_cleanup_free_ char *hint = sug ? xasprintf("did you mean `%s`?", sug) : NULL;
		dec_err(d, n, hint ? hint : "use one of those", "\"%s\" is not %s", s, expect);
	}
	buf_free(&all);
	return r;
}

static void p_enum(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	int i = choice(d, n, k);
	if (i >= 0)
		*FIELD(obj, k, int) = i;
}

static void p_enum_str(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	int i = choice(d, n, k);
	if (i >= 0)
		replace_str(FIELD(obj, k, char *), xstrdup(k->choices[i]));
}

/* Two choices onto a bool: the second is true ("tcp" | "udp"). */
static void p_enum_bool(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	int i = choice(d, n, k);
	if (i >= 0)
		*FIELD(obj, k, bool) = i == 1;
}

/* ---- lists of strings, string maps, JSON ---- */

/* A collection of type t, or null (read as an empty one). */
static bool want(struct dec *d, const struct ynode *n, enum ytype t)
{
	static const struct {
		const char *what, *hint;
	} shapes[] = {
		[Y_SEQ] = {"a list", "write `- item` lines, or [a, b]"},
		[Y_MAP] = {"a mapping", "write `key: value` lines, or { key: value }"},
	};
	if (n->type == t || ynode_null(n))
		return true;
	dec_err(d, n, shapes[t].hint, "expected %s, got %s", shapes[t].what, ynode_what(n));
	return false;
}

static void f_strlist(void *obj, const struct key *k)
{
	strv_free(FIELD(obj, k, struct strv));
}

static void p_strlist(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	if (!want(d, n, Y_SEQ))
		return;
	f_strlist(obj, k);
	struct strv *l = FIELD(obj, k, struct strv);
	for (size_t i = 0; !ynode_null(n) && i < n->nitems && spend(d, n); i++) {
		size_t mark = dec_push(d, "[%zu]", i + 1);
		char *s = checked_str(d, n->items[i], k);
		if (s)
			strv_take(l, s);
		dec_pop(d, mark);
	}
}

static void f_kv(void *obj, const struct key *k)
{
	struct kv *v = *FIELD(obj, k, struct kv *);
	for (size_t i = 0; i < *COUNT(obj, k); i++) {
		free(v[i].key);
		free(v[i].value);
	}
	free(v);
	*FIELD(obj, k, struct kv *) = NULL;
	*COUNT(obj, k) = 0;
}

static void p_kv(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	if (!want(d, n, Y_MAP))
		return;
	f_kv(obj, k);
	struct kv *v = xcalloc(n->npairs, sizeof(*v));
	size_t cnt = 0;
	for (size_t i = 0; !ynode_null(n) && i < n->npairs && spend(d, n); i++) {
		const struct ypair *p = &n->pairs[i];
		size_t mark = push_key(d, p->key->str);
		char *val = NULL;
		if (!k->valid(p->key->str))
			dec_err(d, p->key, k->hint, "\"%s\" %s", p->key->str, k->bad);
		else if ((val = scalar(d, p->val, "a string", K_MULTILINE)))
			v[cnt++] = (struct kv){xstrdup(p->key->str), val};
		dec_pop(d, mark);
	}
	*FIELD(obj, k, struct kv *) = v;
	*COUNT(obj, k) = cnt;
}

/* A decimal integer or float, or NULL (hex, inf and nan stay strings). */
static json_t *json_number(const char *s)
{
	char *end;
	if (!strpbrk(s, "0123456789") || strspn(s, "0123456789+-.eE") != strlen(s))
		return NULL;
	errno = 0;
	long long i = strtoll(s, &end, 10);
	if (!*end && !errno)
		return json_integer(i);
	double f = strtod(s, &end);
	return *end ? NULL : json_real(f);
}

/* Plain scalars keep their YAML type (5 is a number, true a bool); quoted
 * ones are strings, as Ansible would read the same YAML. */
static json_t *json_scalar(struct dec *d, const struct ynode *n)
{
	if (ynode_null(n))
		return json_null();
	_cleanup_free_ char *s = scalar(d, n, "a value", K_MULTILINE);
	json_t *j = NULL;
	if (!s)
		return NULL;
	if (!n->quoted && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0))
		return json_boolean(s[0] == 't');
	if (!n->quoted)
		j = json_number(s);
	return j ? j : json_string(s);
}

static json_t *to_json(struct dec *d, const struct ynode *n)
{
	if (!spend(d, n))
		return NULL;
	if (n->type == Y_SCALAR)
		return json_scalar(d, n);
	json_t *j = n->type == Y_MAP ? json_object() : json_array();
	size_t cnt = n->type == Y_MAP ? n->npairs : n->nitems;
	for (size_t i = 0; i < cnt; i++) {
		const struct ynode *v = n->type == Y_MAP ? n->pairs[i].val : n->items[i];
		size_t mark = n->type == Y_MAP ? push_key(d, n->pairs[i].key->str)
					       : dec_push(d, "[%zu]", i + 1);
		json_t *c = to_json(d, v);
		if (c && n->type == Y_MAP)
			json_object_set_new(j, n->pairs[i].key->str, c);
		else if (c)
			json_array_append_new(j, c);
		dec_pop(d, mark);
	}
	return j;
}

static void f_json(void *obj, const struct key *k)
{
	json_decref(*FIELD(obj, k, json_t *));
	*FIELD(obj, k, json_t *) = NULL;
}

/* A mapping of any YAML values; its own keys checked by k->valid if set. */
static void p_json(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	if (!want(d, n, Y_MAP) || ynode_null(n))
		return;
	for (size_t i = 0; k->valid && i < n->npairs; i++) {
		size_t mark = push_key(d, n->pairs[i].key->str);
		if (!k->valid(n->pairs[i].key->str))
			dec_err(d, n->pairs[i].key, k->hint, "\"%s\" %s", n->pairs[i].key->str, k->bad);
		dec_pop(d, mark);
	}
	f_json(obj, k);
	*FIELD(obj, k, json_t *) = to_json(d, n);
}

/* ---- mappings and lists of them ---- */

static void free_fields(const struct keytab *t, void *obj)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->keys[i].type->free)
			t->keys[i].type->free(obj, &t->keys[i]);
}

static const struct key *find_key(const struct keytab *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->keys[i].name, name) == 0)
			return &t->keys[i];
	return NULL;
}

static void unknown_key(struct dec *d, const struct ynode *key, const struct keytab *t)
{
	if (ydiag_full(d->errs))
		return; /* not worth a suggestion: it wouldn't be listed */
	const char *names[64];
	struct buf all = {0};
	for (size_t i = 0; i < t->n && i < NKEYS(names); i++) {
		names[i] = t->keys[i].name;
		buf_printf(&all, "%s%s", i ? ", " : "", names[i]);
	}
	const char *sug = str_suggest(key->str, names, t->n < 64 ? t->n : 64);
	_cleanup_free_ char *hint = sug ? xasprintf("did you mean `%s`?", sug)
					: xasprintf("known keys here: %s", all.s);
	dec_err(d, key, hint, "unknown key");
	buf_free(&all);
}

static void read_pair(struct dec *d, const struct ypair *p, const struct keytab *t, void *obj,
		      uint64_t *seen)
{
	const struct key *k = find_key(t, p->key->str);
	if (!k) {
		unknown_key(d, p->key, t);
	} else if ((k->flags & K_MACHINE_ONLY) && d->in_defaults) {
		dec_err(d, p->key, "set it on each machine", "not allowed in `defaults`");
	} else {
		*seen |= (uint64_t)1 << (k - t->keys);
		k->type->parse(d, p->val, obj, k);
	}
}

static void missing_key(struct dec *d, const struct ynode *n, const char *name)
{
	_cleanup_free_ char *hint = xasprintf("add `%s:`", name);
	dec_err(d, n, hint, "missing `%s`", name);
}

/* Every pair through its key's type; null reads as an empty mapping. */
static void decode_map(struct dec *d, const struct ynode *n, const struct keytab *t, void *obj)
{
	uint64_t seen = 0;
	if (!want(d, n, Y_MAP))
		return;
	for (size_t i = 0; n->type == Y_MAP && i < n->npairs && spend(d, n); i++) {
		size_t mark = push_key(d, n->pairs[i].key->str);
		read_pair(d, &n->pairs[i], t, obj, &seen);
		dec_pop(d, mark);
	}
	for (size_t i = 0; i < t->n; i++)
		if ((t->keys[i].flags & K_REQUIRED) && !(seen & ((uint64_t)1 << i)))
			missing_key(d, n, t->keys[i].name);
	if (t->check)
		t->check(d, n, obj);
}

static void p_map(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	decode_map(d, n, k->sub, FIELD(obj, k, char));
}

static void f_map(void *obj, const struct key *k)
{
	free_fields(k->sub, FIELD(obj, k, char));
}

static void f_list(void *obj, const struct key *k)
{
	char *v = *FIELD(obj, k, char *);
	for (size_t i = 0; i < *COUNT(obj, k); i++) {
		char *e = v + i * k->sub->size;
		free_fields(k->sub, e);
		if (k->sub->name_off != NONE)
			free(*(char **)(e + k->sub->name_off));
	}
	free(v);
	*FIELD(obj, k, char *) = NULL;
	*COUNT(obj, k) = 0;
}

/* A fresh element of a list; `at` positions it. */
static char *new_elem(void *obj, const struct key *k, size_t i, const struct ynode *at)
{
	char *e = *FIELD(obj, k, char *) + i * k->sub->size;
	memset(e, 0, k->sub->size);
	if (k->sub->init)
		k->sub->init(e);
	if (k->sub->pos_off != NONE)
		*(struct srcpos *)(e + k->sub->pos_off) = (struct srcpos){at->line, at->col};
	*COUNT(obj, k) = i + 1;
	return e;
}

/* Replaces the key's list with room for each item of n (a list or a
 * mapping, as t says); false when n is neither that nor null. */
static bool fresh_list(struct dec *d, const struct ynode *n, void *obj, const struct key *k,
		       enum ytype t, size_t size, size_t *cnt)
{
	if (!want(d, n, t))
		return false;
	k->type->free(obj, k);
	*cnt = ynode_null(n) ? 0 : t == Y_SEQ ? n->nitems : n->npairs;
	*FIELD(obj, k, void *) = xcalloc(*cnt, size);
	return true;
}

static void p_list(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	size_t cnt = 0;
	if (!fresh_list(d, n, obj, k, Y_SEQ, k->sub->size, &cnt))
		return;
	for (size_t i = 0; i < cnt && spend(d, n); i++) {
		size_t mark = dec_push(d, "[%zu]", i + 1);
		decode_map(d, n->items[i], k->sub, new_elem(obj, k, i, n->items[i]));
		dec_pop(d, mark);
	}
}

/* A mapping of name -> entry (top-level networks). */
static void p_named(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	size_t cnt = 0;
	if (!fresh_list(d, n, obj, k, Y_MAP, k->sub->size, &cnt))
		return;
	for (size_t i = 0; i < cnt && spend(d, n); i++) {
		const struct ypair *p = &n->pairs[i];
		size_t mark = push_key(d, p->key->str);
		char *e = new_elem(obj, k, i, p->key);
		*(char **)(e + k->sub->name_off) = xstrdup(p->key->str);
		if (!valid_name(p->key->str))
			dec_err(d, p->key, k->hint, "\"%s\" %s", p->key->str, k->bad);
		decode_map(d, p->val, k->sub, e);
		dec_pop(d, mark);
	}
}

static void p_defer(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	(void)obj;
	d->deferred[k->off] = n;
}

/* ---- ports: a list of forwards, `auto`, or { auto, exclude } ---- */

static const struct keytab tab_auto_ports;

/* k->sub is the list's element table; the `auto` forms fill ports_auto,
 * which sits at k->off's neighbour given by the machine's struct. */
static void p_ports(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	struct machine_cfg *m = obj;
	strv_free(&m->ports_auto.exclude);
	m->ports_auto.on = false;
	if (n->type == Y_SCALAR && !ynode_null(n) && strcmp(n->str, "auto") == 0) {
		f_list(obj, k);
		m->ports_auto.on = true;
	} else if (n->type == Y_MAP) {
		f_list(obj, k);
		decode_map(d, n, &tab_auto_ports, &m->ports_auto);
	} else if (n->type == Y_SCALAR && !ynode_null(n)) {
		dec_err(d, n, "write `ports: auto`, or a list like [{ guest: 80 }]",
			"expected a list of forwards or `auto`, got \"%s\"", n->str);
	} else {
		p_list(d, n, obj, k);
	}
}

static void f_ports(void *obj, const struct key *k)
{
	f_list(obj, k);
	strv_free(&((struct machine_cfg *)obj)->ports_auto.exclude);
}

/* "22" or "6000-6100", each a port, the range not reversed. */
static bool port_range(const char *s, unsigned *lo, unsigned *hi)
{
	char *end;
	unsigned long a = strtoul(s, &end, 10), b = a;
	if (end == s || s[0] < '0' || s[0] > '9')
		return false;
	if (*end == '-') {
		const char *t = end + 1;
		if (*t < '0' || *t > '9')
			return false;
		b = strtoul(t, &end, 10);
	}
	*lo = (unsigned)a;
	*hi = (unsigned)b;
	return !*end && a >= 1 && b <= 65535 && a <= b;
}

static bool valid_port_range(const char *s)
{
	unsigned lo, hi;
	return port_range(s, &lo, &hi);
}

bool auto_ports_excluded(const struct auto_ports *a, unsigned port)
{
	unsigned lo, hi;
	for (size_t i = 0; i < a->exclude.n; i++)
		if (port_range(a->exclude.v[i], &lo, &hi) && port >= lo && port <= hi)
			return true;
	return false;
}

/* ---- provisioning steps ---- */

static const struct keytab tab_step_kinds;

static void f_steps(void *obj, const struct key *k)
{
	struct step *v = *FIELD(obj, k, struct step *);
	for (size_t i = 0; i < *COUNT(obj, k); i++) {
		free_fields(tab_step_kinds.keys[v[i].kind].sub, &v[i]);
		if (v[i].kind == STEP_ANSIBLE)
			strv_free(&v[i].ansible.targets);
	}
	free(v);
	*FIELD(obj, k, struct step *) = NULL;
	*COUNT(obj, k) = 0;
}

/* `- shell: {...}`: one key naming the kind. NULL when it names none. */
static const struct key *step_kind(struct dec *d, const struct ynode *item, const struct key *k)
{
	if (item->type != Y_MAP || item->npairs != 1) {
		dec_err(d, item, "write `- shell: {...}`, `- file: {...}` or `- ansible: {...}`",
			"a step is a mapping with one key: its kind");
		return NULL;
	}
	const struct ynode *key = item->pairs[0].key;
	const struct key *kind = find_key(&tab_step_kinds, key->str);
	if (!kind) {
		size_t mark = push_key(d, key->str);
		unknown_key(d, key, &tab_step_kinds);
		dec_pop(d, mark);
	} else if ((k->flags & K_ANSIBLE_ONLY) && kind != &tab_step_kinds.keys[STEP_ANSIBLE]) {
		dec_err(d, key, "move it into a machine's `provision`",
			"a top-level step runs across machines, so it must be `ansible`");
		return NULL;
	}
	return kind;
}

static void read_step(struct dec *d, const struct ynode *item, const struct key *k,
		      struct step *s)
{
	const struct key *kind = step_kind(d, item, k);
	if (kind) {
		size_t mark = push_key(d, kind->name);
		s->kind = (enum step_kind)(kind - tab_step_kinds.keys);
		if (kind->sub->init)
			kind->sub->init(s);
		kind->type->parse(d, item->pairs[0].val, s, kind);
		dec_pop(d, mark);
	}
	if (!s->name)
		s->name = xstrdup(tab_step_kinds.keys[s->kind].name);
}

static void p_steps(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	size_t cnt = 0;
	if (!fresh_list(d, n, obj, k, Y_SEQ, sizeof(struct step), &cnt))
		return;
	struct step *v = *FIELD(obj, k, struct step *);
	for (size_t i = 0; i < cnt && spend(d, n); i++) {
		const struct ynode *item = n->items[i];
		size_t mark = dec_push(d, "[%zu]", i + 1);
		*COUNT(obj, k) = i + 1;
		v[i] = (struct step){.index = (unsigned)i + 1, .pos = {item->line, item->col}};
		read_step(d, item, k, &v[i]);
		dec_pop(d, mark);
	}
}

static void shell_init(void *obj)
{
	((struct step *)obj)->shell.privileged = true;
}

static void shell_check(struct dec *d, const struct ynode *n, void *obj)
{
	(void)obj;
	bool has_inline = ynode_get(n, "inline"), has_path = ynode_get(n, "path");
	if (has_inline == has_path)
		dec_err(d, n, "give the script in `inline:` or its file in `path:`",
			"needs exactly one of `inline` and `path`");
}

/* ---- ansible groups: "g: [hosts]", "g:children: [groups]", "g:vars: {}" ---- */

static const struct ktype t_strlist, t_json;

static const struct key group_hosts = {
	.name = "hosts", .type = &t_strlist, .off = offsetof(struct ansible_group, hosts), .valid = valid_name,
	.bad = "is not a machine name", .hint = "list machines of this envfile"};
static const struct key group_children = {
	.name = "children", .type = &t_strlist, .off = offsetof(struct ansible_group, children), .valid = valid_ident,
	.bad = "is not a group name", .hint = "group names are letters, digits and _"};
static const struct key group_vars = {
	.name = "vars", .type = &t_json, .off = offsetof(struct ansible_group, vars), .valid = valid_ident,
	.bad = "is not a variable name", .hint = "variable names are letters, digits and _"};

static void f_groups(void *obj, const struct key *k)
{
	struct ansible_group *g = *FIELD(obj, k, struct ansible_group *);
	for (size_t i = 0; i < *COUNT(obj, k); i++) {
		free(g[i].name);
		f_strlist(&g[i], &group_hosts);
		f_strlist(&g[i], &group_children);
		f_json(&g[i], &group_vars);
	}
	free(g);
	*FIELD(obj, k, struct ansible_group *) = NULL;
	*COUNT(obj, k) = 0;
}

static struct ansible_group *group_get(void *obj, const struct key *k, const char *name,
				       size_t len, const struct ynode *at)
{
	struct ansible_group *g = *FIELD(obj, k, struct ansible_group *);
	size_t *cnt = COUNT(obj, k);
	for (size_t i = 0; i < *cnt; i++)
		if (strlen(g[i].name) == len && strncmp(g[i].name, name, len) == 0)
			return &g[i];
	g = xrealloc(g, (*cnt + 1) * sizeof(*g));
	*FIELD(obj, k, struct ansible_group *) = g;
	g[*cnt] = (struct ansible_group){.name = xstrndup(name, len), .pos = {at->line, at->col}};
	return &g[(*cnt)++];
}

/* Which list of a group a key fills: "g", "g:children" or "g:vars". */
static const struct {
	const char *suffix;
	const struct key *part;
} group_parts[] = {{"", &group_hosts}, {":children", &group_children}, {":vars", &group_vars}};

static void read_group(struct dec *d, const struct ypair *p, void *obj, const struct key *k)
{
	const char *key = p->key->str, *colon = strchr(key, ':');
	size_t len = colon ? (size_t)(colon - key) : strlen(key);
	_cleanup_free_ char *name = xstrndup(key, len);
	const struct key *part = NULL;
	for (size_t i = 0; i < NKEYS(group_parts) && !part; i++)
		if (strcmp(key + len, group_parts[i].suffix) == 0)
			part = group_parts[i].part;
	if (!valid_ident(name) || !part) {
		dec_err(d, p->key, "write GROUP, GROUP:children or GROUP:vars",
			"\"%s\" is not a group (letters, digits and _)", key);
		return;
	}
	struct ansible_group *g = group_get(obj, k, key, len, p->key);
	part->type->parse(d, p->val, g, part);
}

static void p_groups(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	if (!want(d, n, Y_MAP))
		return;
	if (!ynode_null(n) && n->npairs > MAX_GROUP_KEYS) { /* found by a linear search */
		dec_err(d, n, "an inventory needs far fewer", "more than %d groups", MAX_GROUP_KEYS);
		return;
	}
	f_groups(obj, k);
	for (size_t i = 0; !ynode_null(n) && i < n->npairs && spend(d, n); i++) {
		size_t mark = push_key(d, n->pairs[i].key->str);
		read_group(d, &n->pairs[i], obj, k);
		dec_pop(d, mark);
	}
}

/* ---- values in a step's canonical config ---- */

static json_t *j_str(const void *obj, const struct key *k, const char *dir)
{
	(void)dir;
	const char *s = *CFIELD(obj, k, char *);
	return s ? json_string(s) : NULL;
}

/* Relative to the envfile: moving the project doesn't make steps new. */
static json_t *j_path(const void *obj, const struct key *k, const char *dir)
{
	const char *s = *CFIELD(obj, k, char *);
	size_t n = strlen(dir);
	if (s && strncmp(s, dir, n) == 0 && s[n] == '/')
		s += n + 1;
	return s ? json_string(s) : NULL;
}

static json_t *j_bool(const void *obj, const struct key *k, const char *dir)
{
	(void)dir;
	return json_boolean(*CFIELD(obj, k, bool));
}

static json_t *j_enum(const void *obj, const struct key *k, const char *dir)
{
	(void)dir;
	return json_string(k->choices[*CFIELD(obj, k, int)]);
}

static json_t *strlist_json(const struct strv *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

static json_t *j_strlist(const void *obj, const struct key *k, const char *dir)
{
	(void)dir;
	return strlist_json(CFIELD(obj, k, struct strv));
}

static json_t *j_kv(const void *obj, const struct key *k, const char *dir)
{
	(void)dir;
	const struct kv *v = *CFIELD(obj, k, struct kv *);
	size_t n = *(const size_t *)((const char *)obj + k->noff);
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, v[i].key, json_string(v[i].value));
	return o;
}

static json_t *j_json(const void *obj, const struct key *k, const char *dir)
{
	(void)dir;
	return json_deep_copy(*CFIELD(obj, k, json_t *));
}

static json_t *j_groups(const void *obj, const struct key *k, const char *dir)
{
	const struct ansible_group *g = *CFIELD(obj, k, struct ansible_group *);
	size_t n = *(const size_t *)((const char *)obj + k->noff);
	json_t *o = json_object();
	for (size_t i = 0; i < n; i++)
		json_object_set_new(o, g[i].name,
				    json_pack("{s:o, s:o, s:o}", "hosts", strlist_json(&g[i].hosts),
					      "children", strlist_json(&g[i].children), "vars",
					      g[i].vars ? j_json(&g[i], &group_vars, dir) : json_object()));
	return o;
}

/* ---- the value types ---- */

/* Trigger actions: one word, or a list of them, each of k->choices. */
static void p_actions(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	struct strv *l = FIELD(obj, k, struct strv);
	strv_free(l);
	if (n->type != Y_SEQ) {
		int i = choice(d, n, k);
		if (i >= 0)
			strv_push(l, k->choices[i]);
		return;
	}
	for (size_t i = 0; i < n->nitems && spend(d, n); i++) {
		size_t mark = dec_push(d, "[%zu]", i + 1);
		int c = choice(d, n->items[i], k);
		if (c >= 0)
			strv_push(l, k->choices[c]);
		dec_pop(d, mark);
	}
}

/* A host command: a list is its argv; a string is inline shell, run as
 * /bin/sh -c STRING (the user's own text, nothing put into it). */
static void p_command(struct dec *d, const struct ynode *n, void *obj, const struct key *k)
{
	if (n->type == Y_SEQ) {
		p_strlist(d, n, obj, k);
		return;
	}
	char *s = checked_str(d, n, k);
	if (!s)
		return;
	struct strv *l = FIELD(obj, k, struct strv);
	strv_free(l);
	strv_push(l, "/bin/sh");
	strv_push(l, "-c");
	strv_take(l, s);
}

static const struct ktype t_str = {"a string", p_str, f_str, j_str};
static const struct ktype t_box = {"a string", p_box, f_str, j_str};
static const struct ktype t_path = {"a path", p_path, f_str, j_path};
static const struct ktype t_user_data = {"cloud-config text or a file", p_user_data, f_str, j_str};
static const struct ktype t_bool = {"true or false", p_bool, NULL, j_bool};
static const struct ktype t_opt_bool = {"true or false", p_opt_bool, NULL, NULL};
static const struct ktype t_uint = {"a number", p_uint, NULL, NULL};
static const struct ktype t_size = {"a size like 512M", p_size, NULL, NULL};
static const struct ktype t_duration = {"a duration like 30s", p_duration, NULL, NULL};
static const struct ktype t_enum = {"a word", p_enum, NULL, j_enum};
static const struct ktype t_enum_str = {"a word", p_enum_str, f_str, j_str};
static const struct ktype t_enum_bool = {"a word", p_enum_bool, NULL, NULL};
static const struct ktype t_strlist = {"a list of strings", p_strlist, f_strlist, j_strlist};
static const struct ktype t_kv = {"a mapping of strings", p_kv, f_kv, j_kv};
static const struct ktype t_json = {"a mapping", p_json, f_json, j_json};
static const struct ktype t_map = {"a mapping", p_map, f_map, NULL};
static const struct ktype t_list = {"a list", p_list, f_list, NULL};
static const struct ktype t_named = {"a mapping", p_named, f_list, NULL};
static const struct ktype t_steps = {"a list of steps", p_steps, f_steps, NULL};
static const struct ktype t_groups = {"a mapping of groups", p_groups, f_groups, j_groups};
static const struct ktype t_defer = {"a mapping", p_defer, NULL, NULL};
static const struct ktype t_ports = {"a list of forwards or `auto`", p_ports, f_ports, NULL};
static const struct ktype t_actions = {"an action or a list of them", p_actions, f_strlist, NULL};
static const struct ktype t_command = {"a command: a list (argv) or a string (shell)", p_command,
				       f_strlist, NULL};

/* ---- the tables ---- */

#define KEY(n, t, T, m) .name = n, .type = &t, .off = offsetof(T, m)
#define LIST(n, t, T, m, cnt, s) KEY(n, t, T, m), .noff = offsetof(T, cnt), .sub = &s
#define TABLE(keys, ...) {keys, NKEYS(keys), .pos_off = NONE, .name_off = NONE, __VA_ARGS__}
#define ELEMS(keys, T, ...)                                                            \
	{keys, NKEYS(keys), sizeof(T), .pos_off = offsetof(T, pos), .name_off = NONE, __VA_ARGS__}
#define PORT_RANGE .min = 1, .max = 65535, .hint = "a port is a number from 1 to 65535"

static const char *const providers[] = {"container", "kvm", "virtualbox", "incus", "auto", NULL};
static const char *const run_whens[] = {"once", "always", "never", NULL};
static const char *const sync_types[] = {"auto", "bind", "9p", "rsync", "vboxsf", NULL};
static const char *const protocols[] = {"tcp", "udp", NULL};
static const char *const kvm_machines[] = {"q35", "microvm", NULL};
static const char *const kvm_accels[] = {"auto", "kvm", "tcg", NULL};
static const char *const firmwares[] = {"bios", "uefi", NULL};
static const char *const inits[] = {"auto", "systemd", "builtin", NULL};
static const char *const incus_types[] = {"container", "virtual-machine", NULL};
static const char *const incus_ssh[] = {"auto", "address", "forward", NULL};
static const char *const incus_net_types[] = {"auto", "bridge", "ovn", NULL};
static const char *const limit_modes[] = {"strict", "best-effort", NULL};
static const char *const ct_commands[] = {"image", NULL};
static const char *const trigger_actions[] = {"up", "halt", "reload", "destroy", "provision", NULL};
static const char *const on_errors[] = {"halt", "continue", NULL};

#define STEP_COMMON                                                                     \
	{KEY("name", t_str, struct step, name), .flags = K_NO_ID},                      \
	{KEY("run", t_enum, struct step, run), .choices = run_whens, .flags = K_NO_ID}

static const struct key shell_keys[] = {
	STEP_COMMON,
	{KEY("inline", t_str, struct step, shell.inline_script), .flags = K_MULTILINE},
	{KEY("path", t_path, struct step, shell.path), .flags = K_FILE},
	{KEY("args", t_strlist, struct step, shell.args), .flags = K_MULTILINE},
	{KEY("env", t_kv, struct step, shell.env), .noff = offsetof(struct step, shell.nenv),
	 .valid = valid_ident, .bad = "is not an environment variable name",
	 .hint = "names are letters, digits and _, not starting with a digit"},
	{KEY("privileged", t_bool, struct step, shell.privileged)},
	{KEY("binary", t_bool, struct step, shell.binary)},
	{KEY("sensitive", t_bool, struct step, shell.sensitive), .flags = K_NO_ID},
};

static const struct key file_keys[] = {
	STEP_COMMON,
	{KEY("source", t_path, struct step, file.source), .flags = K_EXISTS | K_REQUIRED},
	{KEY("destination", t_str, struct step, file.destination), .flags = K_REQUIRED,
	 .valid = valid_dest, .bad = "is not an absolute guest path",
	 .hint = "start it with / (or ~ for the login user's home)"},
};

static const struct key ansible_keys[] = {
	STEP_COMMON,
	{KEY("playbook", t_path, struct step, ansible.playbook), .flags = K_FILE | K_REQUIRED},
	{KEY("inventory", t_path, struct step, ansible.inventory), .flags = K_EXISTS},
	{KEY("groups", t_groups, struct step, ansible.groups),
	 .noff = offsetof(struct step, ansible.ngroups)},
	{KEY("extra_vars", t_json, struct step, ansible.extra_vars)},
	{KEY("limit", t_str, struct step, ansible.limit)},
	{KEY("become", t_bool, struct step, ansible.become)},
	{KEY("tags", t_strlist, struct step, ansible.tags)},
	{KEY("skip_tags", t_strlist, struct step, ansible.skip_tags)},
	{KEY("raw_arguments", t_strlist, struct step, ansible.raw_arguments), .flags = K_MULTILINE},
	{KEY("verbose", t_uint, struct step, ansible.verbose), .max = 4, .flags = K_NO_ID,
	 .hint = "0 to 4, as many as ansible-playbook's -v"},
	{KEY("pipelining", t_opt_bool, struct step, ansible.pipelining), .flags = K_NO_ID},
};

static const struct keytab tab_shell = TABLE(shell_keys, .init = shell_init, .check = shell_check);
static const struct keytab tab_file = TABLE(file_keys);
static const struct keytab tab_ansible = TABLE(ansible_keys);

/* Indexed by enum step_kind; each kind's keys are read into struct step. */
static const struct key step_kinds[] = {
	[STEP_SHELL] = {.name = "shell", .type = &t_map, .sub = &tab_shell},
	[STEP_FILE] = {.name = "file", .type = &t_map, .sub = &tab_file},
	[STEP_ANSIBLE] = {.name = "ansible", .type = &t_map, .sub = &tab_ansible},
};
static const struct keytab tab_step_kinds = TABLE(step_kinds);

static void port_init(void *obj)
{
	((struct port_fwd *)obj)->host_ip = xstrdup("127.0.0.1");
}

static const struct key port_keys[] = {
	{KEY("guest", t_uint, struct port_fwd, guest), PORT_RANGE, .flags = K_REQUIRED},
	{KEY("host", t_uint, struct port_fwd, host), PORT_RANGE},
	{KEY("host_ip", t_str, struct port_fwd, host_ip), .valid = valid_ipv4,
	 .bad = "is not an IPv4 address (forwards bind IPv4 host addresses only)",
	 .hint = "write an address like 127.0.0.1 or 0.0.0.0"},
	{KEY("protocol", t_enum_bool, struct port_fwd, udp), .choices = protocols},
	{KEY("auto_correct", t_bool, struct port_fwd, auto_correct)},
};
static const struct keytab tab_port = ELEMS(port_keys, struct port_fwd, .init = port_init);

static void probe_init(void *obj)
{
	struct probe *p = obj;
	p->status = ENV_PROBE_STATUS;
	p->timeout_ms = ENV_PROBE_TIMEOUT_MS;
	p->interval_ms = ENV_PROBE_INTERVAL_MS;
}

/* Exactly one of tcp, http and command: that one is the probe's kind. */
static void probe_check(struct dec *d, const struct ynode *n, void *obj)
{
	static const char *const kinds[] = {[PROBE_TCP] = "tcp", [PROBE_HTTP] = "http",
					    [PROBE_COMMAND] = "command"};
	struct probe *p = obj;
	unsigned have = 0;
	for (size_t i = 0; i < NKEYS(kinds); i++)
		if (ynode_get(n, kinds[i])) {
			p->kind = (enum probe_kind)i;
			have++;
		}
	if (have != 1)
		dec_err(d, n, "write { tcp: PORT }, { http: URL } or { command: CMD }",
			"a probe needs exactly one of `tcp`, `http` and `command`");
	else if (p->kind != PROBE_HTTP && ynode_get(n, "status"))
		dec_err(d, n, "remove `status`, or make it an http probe",
			"`status` belongs to http probes");
	if (p->interval_ms == 0)
		dec_err(d, n, "use an interval like 1s", "`interval` must be more than 0");
}

static bool valid_http(const char *s)
{
	return valid_url(s) && (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0);
}

/* unix:///path/to/unix.socket, an https:// URL, or the name of a remote
 * of the user's incus/lxc client configuration ("mycluster"). */
static bool valid_incus_remote(const char *s)
{
	if (!strchr(s, ':'))
		return valid_name(s);
	return valid_url(s) && ((strncmp(s, "unix:///", 8) == 0 && s[8]) || valid_http(s));
}

/* An image alias as the server names it: "debian/12", "corral-tiny". */
static bool valid_incus_image(const char *s)
{
	if (!*s || strlen(s) > 255)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_./:", *s))
			return false;
	return true;
}

static const struct key probe_keys[] = {
	{KEY("tcp", t_uint, struct probe, tcp), PORT_RANGE},
	{KEY("http", t_str, struct probe, http), .valid = valid_http,
	 .bad = "is not an http:// or https:// URL",
	 .hint = "write a URL like http://localhost:8080/health (its port is the guest's)"},
	{KEY("status", t_uint, struct probe, status), .min = 100, .max = 599,
	 .hint = "an HTTP status from 100 to 599, like 200"},
	{KEY("command", t_str, struct probe, command), .flags = K_MULTILINE},
	{KEY("timeout", t_duration, struct probe, timeout_ms)},
	{KEY("interval", t_duration, struct probe, interval_ms)},
};
static const struct keytab tab_probe = ELEMS(probe_keys, struct probe, .init = probe_init,
					     .check = probe_check);

static const struct key auto_port_keys[] = {
	{KEY("auto", t_bool, struct auto_ports, on)},
	{KEY("exclude", t_strlist, struct auto_ports, exclude), .valid = valid_port_range,
	 .bad = "is not a port or a range of ports",
	 .hint = "write a port like 22 or a range like \"6000-6100\""},
};
static const struct keytab tab_auto_ports = TABLE(auto_port_keys);

static const struct key attach_keys[] = {
	{KEY("network", t_str, struct net_attach, network), .flags = K_REQUIRED,
	 .valid = valid_name, .bad = "is not a network name",
	 .hint = "name one of the top-level `networks`"},
	{KEY("ip", t_str, struct net_attach, ip), .valid = valid_ipv4,
	 .bad = "is not an IPv4 address", .hint = "write an address like 10.20.0.5, or leave it out"},
};
static const struct keytab tab_attach = ELEMS(attach_keys, struct net_attach);

static const struct key synced_keys[] = {
	{KEY("host", t_path, struct synced_folder, host), .flags = K_REQUIRED},
	{KEY("guest", t_str, struct synced_folder, guest), .flags = K_REQUIRED,
	 .valid = valid_abs, .bad = "is not an absolute guest path", .hint = "start it with /"},
	{KEY("type", t_enum, struct synced_folder, type), .choices = sync_types},
};
static const struct keytab tab_synced = ELEMS(synced_keys, struct synced_folder);

/* run_remote needs the machine running: not before up, not after halt or destroy. */
static void trigger_check(struct dec *d, const struct ynode *n, void *obj)
{
	const struct trigger_cfg *t = obj;
	if (!t->before.n && !t->after.n)
		dec_err(d, n, "write `before: up` or `after: [halt, destroy]`",
			"needs `before` or `after`");
	if ((t->run.n > 0) == (t->run_remote != NULL))
		dec_err(d, n, "give a host command in `run:` or a guest one in `run_remote:`",
			"needs exactly one of `run` and `run_remote`");
	if (t->run_remote && (str_in_list("up", (const char *const *)t->before.v) ||
			      str_in_list("halt", (const char *const *)t->after.v) ||
			      str_in_list("destroy", (const char *const *)t->after.v)))
		dec_err(d, n, "use `run:` on the host there, or `after: up` / `before: halt`",
			"`run_remote` needs a running machine: not before up or after halt/destroy");
}

#define TRIGGER_COMMON                                                                   \
	{KEY("name", t_str, struct trigger_cfg, name)},                                  \
	{KEY("before", t_actions, struct trigger_cfg, before), .choices = trigger_actions}, \
	{KEY("after", t_actions, struct trigger_cfg, after), .choices = trigger_actions},   \
	{KEY("run", t_command, struct trigger_cfg, run), .flags = K_MULTILINE},             \
	{KEY("on_error", t_enum_bool, struct trigger_cfg, on_error_continue), .choices = on_errors}

static const struct key trigger_keys[] = {
	TRIGGER_COMMON,
	{KEY("run_remote", t_str, struct trigger_cfg, run_remote), .flags = K_MULTILINE},
};
static const struct keytab tab_trigger = ELEMS(trigger_keys, struct trigger_cfg,
					       .check = trigger_check);
/* Envfile-level triggers run on the host only. */
static const struct key env_trigger_keys[] = {TRIGGER_COMMON};
static const struct keytab tab_env_trigger = ELEMS(env_trigger_keys, struct trigger_cfg,
						   .check = trigger_check);

static const struct key ssh_keys[] = {
	{KEY("user", t_str, struct ssh_cfg, user), .valid = valid_user,
	 .bad = "is not a safe user name", .hint = "use lowercase letters, digits, _ and -"},
	{KEY("private_key", t_path, struct ssh_cfg, private_key), .flags = K_FILE},
	{KEY("forward_agent", t_bool, struct ssh_cfg, forward_agent)},
	{KEY("port", t_uint, struct ssh_cfg, port), PORT_RANGE},
	{KEY("boot_timeout", t_duration, struct ssh_cfg, boot_timeout_ms)},
};
static const struct keytab tab_ssh = TABLE(ssh_keys);

static const struct key kvm_keys[] = {
	{KEY("machine", t_enum_str, struct kvm_opts, machine), .choices = kvm_machines},
	{KEY("accel", t_enum_str, struct kvm_opts, accel), .choices = kvm_accels},
	{KEY("firmware", t_enum_str, struct kvm_opts, firmware), .choices = firmwares},
};
static const struct key vbox_keys[] = {
	{KEY("linked_clone", t_bool, struct vbox_opts, linked_clone)},
	{KEY("gui", t_bool, struct vbox_opts, gui)},
};
static const struct key container_keys[] = {
	{KEY("init", t_enum_str, struct container_opts, init), .choices = inits},
	{KEY("pids", t_uint, struct container_opts, pids), .min = 16, .max = 4194304,
	 .hint = "a whole number of processes and threads, like 4096"},
	{KEY("limits", t_enum_str, struct container_opts, limits), .choices = limit_modes},
	{KEY("fuse", t_bool, struct container_opts, fuse)},
	{KEY("max_connections", t_uint, struct container_opts, max_connections), .min = 1,
	 .max = 65536, .hint = "a whole number of connections, like 256"},
	{KEY("command", t_enum_str, struct container_opts, command), .choices = ct_commands},
};
static const struct key cloud_init_keys[] = {
	{KEY("user_data", t_user_data, struct cloud_init_cfg, user_data), .flags = K_FILE},
};
static const struct keytab tab_cloud_init = TABLE(cloud_init_keys);
static const struct key incus_keys[] = {
	{KEY("remote", t_str, struct incus_opts, remote), .valid = valid_incus_remote,
	 .bad = "is not an Incus remote",
	 .hint = "write unix:///var/lib/incus/unix.socket, https://HOST:8443 or a remote's name"},
	{KEY("project", t_str, struct incus_opts, project), .valid = valid_name,
	 .bad = "is not a project name", .hint = "use lowercase letters, digits and -"},
	{KEY("target", t_str, struct incus_opts, target), .valid = valid_name,
	 .bad = "is not a cluster member name", .hint = "use the member's name, as `incus cluster list` shows"},
	{KEY("type", t_enum_str, struct incus_opts, type), .choices = incus_types},
	{KEY("network", t_str, struct incus_opts, network), .valid = valid_name,
	 .bad = "is not a network name", .hint = "name a managed network of the server, like incusbr0"},
	{KEY("image", t_str, struct incus_opts, image), .valid = valid_incus_image,
	 .bad = "is not an image alias", .hint = "write an alias like debian/12, without spaces"},
	{KEY("client_cert", t_path, struct incus_opts, client_cert), .flags = K_FILE},
	{KEY("client_key", t_path, struct incus_opts, client_key), .flags = K_FILE},
	{KEY("server_cert", t_path, struct incus_opts, server_cert), .flags = K_FILE},
	{KEY("ssh", t_enum_str, struct incus_opts, ssh), .choices = incus_ssh},
	{KEY("network_type", t_enum_str, struct incus_opts, network_type), .choices = incus_net_types},
	{KEY("uplink", t_str, struct incus_opts, uplink), .valid = valid_server_name,
	 .bad = "is not a network name", .hint = "name the server's uplink network, like UPLINK"},
};
static const struct keytab tab_incus = TABLE(incus_keys);
static const struct keytab tab_kvm = TABLE(kvm_keys);
static const struct keytab tab_vbox = TABLE(vbox_keys);
static const struct keytab tab_container = TABLE(container_keys);

/* provider_options is no struct of its own: its keys land in machine_cfg. */
static const struct key popt_keys[] = {
	{KEY("kvm", t_map, struct machine_cfg, kvm), .sub = &tab_kvm},
	{KEY("virtualbox", t_map, struct machine_cfg, vbox), .sub = &tab_vbox},
	{KEY("container", t_map, struct machine_cfg, container), .sub = &tab_container},
	{KEY("incus", t_map, struct machine_cfg, incus), .sub = &tab_incus},
};
static const struct keytab tab_popts = TABLE(popt_keys);

#define M(n, t, m) KEY(n, t, struct machine_cfg, m)
static const struct key machine_keys[] = {
	{M("box", t_box, box), .valid = valid_box, .bad = "is not a box name",
	 .hint = "write a name like corral/debian-12, an image's URL (https://...) or a path "
		 "(./image.qcow2)"},
	{M("box_version", t_str, box_version), .valid = valid_constraint,
	 .bad = "is not a version constraint", .hint = "write a constraint like \">= 1.2, < 2\""},
	{M("box_url", t_str, box_url), .valid = valid_url, .bad = "is not a URL or path",
	 .hint = "write a URL like https://example.org/box.json, without spaces"},
	{M("box_checksum", t_str, box_checksum), .valid = valid_checksum,
	 .bad = "is not a checksum", .hint = "write TYPE:HEX, like sha256:<64 hex digits>"},
	{M("box_checksum_file", t_str, box_checksum_file), .valid = valid_url,
	 .bad = "is not a URL or path", .hint = "write the URL of a SHA256SUMS or CHECKSUM file"},
	{M("box_checksum_signature", t_str, box_checksum_signature), .valid = valid_url,
	 .bad = "is not a URL or path", .hint = "write the URL of the checksum file's .gpg/.asc/.sign"},
	{M("hostname", t_str, hostname), .flags = K_MACHINE_ONLY, .valid = valid_hostname,
	 .bad = "is not a hostname",
	 .hint = "use letters, digits and -, in dot-separated labels of at most 63"},
	{M("provider", t_enum_str, provider), .choices = providers},
	{M("cpus", t_uint, cpus), .min = 1, .max = 1024, .hint = "a whole number, like 2"},
	{M("memory", t_size, memory), .min = 16 << 20, .max = (uint64_t)16 << 40},
	{M("disk", t_size, disk), .min = 1 << 20, .max = (uint64_t)64 << 40},
	{M("primary", t_bool, primary), .flags = K_MACHINE_ONLY},
	{M("autostart", t_bool, autostart)},
	{M("count", t_uint, count), .min = 1, .max = 100, .flags = K_MACHINE_ONLY,
	 .hint = "count: N makes machines NAME-1 .. NAME-N"},
	{M("depends_on", t_strlist, depends_on), .flags = K_MACHINE_ONLY, .valid = valid_name,
	 .bad = "is not a machine name", .hint = "list machines of this envfile"},
	{LIST("networks", t_list, struct machine_cfg, networks, nnetworks, tab_attach)},
	{LIST("ports", t_ports, struct machine_cfg, ports, nports, tab_port)},
	{LIST("synced_folders", t_list, struct machine_cfg, synced, nsynced, tab_synced)},
	{M("ssh", t_map, ssh), .sub = &tab_ssh},
	{LIST("ready", t_list, struct machine_cfg, ready, nready, tab_probe)},
	{LIST("provision", t_steps, struct machine_cfg, steps, nsteps, tab_step_kinds)},
	{.name = "provider_options", .type = &t_map, .off = 0, .sub = &tab_popts},
	{LIST("triggers", t_list, struct machine_cfg, triggers, ntriggers, tab_trigger)},
	{M("graceful_halt_timeout", t_duration, graceful_halt_timeout_ms)},
	{M("cloud_init", t_map, cloud_init), .sub = &tab_cloud_init},
};
static const struct keytab tab_machine = TABLE(machine_keys);

static const struct key network_keys[] = {
	{KEY("subnet", t_str, struct network_cfg, subnet), .flags = K_REQUIRED,
	 .valid = valid_cidr, .bad = "is not an IPv4 subnet",
	 .hint = "write network/prefix with the host bits zero, like 10.20.0.0/24"},
};
static const struct keytab tab_network = {network_keys, NKEYS(network_keys),
	sizeof(struct network_cfg), .pos_off = offsetof(struct network_cfg, pos),
	.name_off = offsetof(struct network_cfg, name)};

static const struct key top_keys[] = {
	{KEY("version", t_uint, struct env, version), .min = 1, .max = 1,
	 .bad = "is not an envfile version this corral reads",
	 .hint = "write version: 1, or upgrade corral"},
	{.name = "defaults", .type = &t_defer, .off = DEFER_DEFAULTS, .sub = &tab_machine},
	{LIST("networks", t_named, struct env, networks, nnetworks, tab_network),
	 .bad = "is not a valid network name",
	 .hint = "use lowercase letters, digits and -, at most 63"},
	{.name = "machines", .type = &t_defer, .off = DEFER_MACHINES, .sub = &tab_machine},
	{LIST("provision", t_steps, struct env, steps, nsteps, tab_step_kinds),
	 .flags = K_ANSIBLE_ONLY},
	{LIST("triggers", t_list, struct env, triggers, ntriggers, tab_env_trigger)},
};
static const struct keytab tab_top = TABLE(top_keys);

/* ---- entry points ---- */

void envkeys_top(struct dec *d, const struct ynode *root, struct env *e)
{
	d->budget = DECODE_BUDGET;
	if (root->type != Y_MAP) {
		dec_err(d, root, "start from `corral init` or examples/quickstart/corral.yaml",
			"the top level must be a mapping (version, networks, machines...), not %s",
			ynode_what(root));
		return;
	}
	decode_map(d, root, &tab_top, e);
}

void envkeys_machine_init(struct machine_cfg *m)
{
	*m = (struct machine_cfg){
		.provider = xstrdup("auto"),
		.cpus = 1,
		.memory = 512 << 20,
		.autostart = true,
		.ssh = {.user = xstrdup(ENV_SSH_USER), .port = ENV_SSH_PORT,
			.boot_timeout_ms = ENV_BOOT_TIMEOUT_MS},
		.kvm = {xstrdup("q35"), xstrdup("auto"), NULL}, /* firmware: the box's */
		.vbox = {.linked_clone = true},
		.container = {.init = xstrdup("auto"), .pids = ENV_CT_PIDS,
			      .max_connections = ENV_CT_MAX_CONNECTIONS,
			      .limits = NULL}, /* strict as root, best-effort without (cgroup.c) */
		.graceful_halt_timeout_ms = ENV_HALT_TIMEOUT_MS,
	};
}

void envkeys_machine(struct dec *d, const struct ynode *n, struct machine_cfg *m)
{
	decode_map(d, n, &tab_machine, m);
}

void envkeys_machine_free(struct machine_cfg *m)
{
	free_fields(&tab_machine, m);
	free(m->name);
	free(m->base_name);
}

void envkeys_env_free(struct env *e)
{
	free_fields(&tab_top, e);
}

json_t *envkeys_step_config(const struct step *s, const char *dir)
{
	const struct key *kind = &tab_step_kinds.keys[s->kind];
	json_t *o = json_pack("{s:s}", "kind", kind->name);
	for (size_t i = 0; i < kind->sub->n; i++) {
		const struct key *k = &kind->sub->keys[i];
		json_t *v = k->flags & K_NO_ID || !k->type->json ? NULL : k->type->json(s, k, dir);
		if (v)
			json_object_set_new(o, k->name, v);
	}
	return o;
}

/* ---- every key name, for completion ---- */

static const char *all_keys[256];
static size_t nall_keys;
static pthread_once_t keys_once = PTHREAD_ONCE_INIT;

static void collect(const struct keytab *t)
{
	for (size_t i = 0; t && i < t->n; i++) {
		const struct key *k = &t->keys[i];
		size_t j = 0;
		while (j < nall_keys && strcmp(all_keys[j], k->name) != 0)
			j++;
		if (j == nall_keys && nall_keys < NKEYS(all_keys))
			all_keys[nall_keys++] = k->name;
		collect(k->sub);
	}
}

static void collect_all(void)
{
	collect(&tab_top);
	collect(&tab_auto_ports); /* under `ports`, beside its list's */
}

const char *const *envfile_keys(size_t *n)
{
	pthread_once(&keys_once, collect_all);
	*n = nall_keys;
	return all_keys;
}

/* ---- every key path, for the reference (docs/envfile.md) ---- */

struct walk {
	void (*fn)(const char *path, void *arg);
	void *arg;
	struct buf path;
};

static void walk_table(struct walk *w, const struct keytab *t, bool ansible_only);

/* The key, then what is under it: NAME stands for a map's own names,
 * [] for a list's elements. `defaults` takes the machine keys, listed
 * once under machines.NAME. */
static void walk_key(struct walk *w, const struct key *k)
{
	size_t mark = w->path.len;
	if (mark)
		buf_add(&w->path, ".", 1);
	buf_puts(&w->path, k->name);
	w->fn(w->path.s, w->arg);
	bool defaults = k->type == &t_defer && k->off == DEFER_DEFAULTS;
	if (k->type == &t_named || k->type == &t_defer)
		buf_puts(&w->path, ".NAME");
	else if (k->type == &t_list || k->type == &t_steps || k->type == &t_ports)
		buf_puts(&w->path, "[]");
	if (k->sub && !defaults)
		walk_table(w, k->sub, k->flags & K_ANSIBLE_ONLY);
	if (k->type == &t_ports) { /* ports.auto, ports.exclude */
		w->path.len -= 2;
		w->path.s[w->path.len] = '\0';
		walk_table(w, &tab_auto_ports, false);
	}
	w->path.len = mark;
	w->path.s[mark] = '\0';
}

static void walk_table(struct walk *w, const struct keytab *t, bool ansible_only)
{
	for (size_t i = 0; i < t->n; i++)
		if (!ansible_only || &t->keys[i] == &tab_step_kinds.keys[STEP_ANSIBLE])
			walk_key(w, &t->keys[i]);
}

void envfile_key_paths(void (*fn)(const char *path, void *arg), void *arg)
{
	struct walk w = {fn, arg, {0}};
	buf_add(&w.path, "", 0);
	walk_table(&w, &tab_top, false);
	buf_free(&w.path);
}
