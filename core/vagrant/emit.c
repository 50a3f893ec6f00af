/* The one YAML writer of corral import: keys in corral's order, lists of
 * small mappings in flow style, scripts as literal blocks, every scalar
 * plain only when YAML reads it back as the same string (else double
 * quoted), `$` doubled where corral's ${VAR} expansion would see it, and
 * the notes as comments at the machine they concern. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/vagrant/vf_priv.h"

#define FLOW_WIDTH 96

static const char *const key_order[] = {
	"count", "box", "box_version", "box_url", "box_checksum", "hostname", "primary",
	"autostart", "depends_on", "provider", "cpus", "memory", "disk", "networks", "ports", "synced_folders",
	"ssh", "provider_options", "graceful_halt_timeout", "provision",
	/* in lists and steps */
	"network", "ip", "guest", "host", "host_ip", "protocol", "auto_correct", "type", "user",
	"private_key", "forward_agent", "port", "boot_timeout", "name", "inline", "path", "args",
	"env", "privileged", "binary", "sensitive", "source", "destination", "playbook",
	"inventory", "groups", "extra_vars", "limit", "become", "tags", "skip_tags",
	"raw_arguments", "verbose", "run", "subnet", NULL,
};

static size_t rank(const char *k)
{
	for (size_t i = 0; key_order[i]; i++)
		if (strcmp(key_order[i], k) == 0)
			return i;
	return 1000;
}

/* The map's keys in writing order, as indices: hidden _keys left out,
 * corral's keys in its order, the user's maps and flow maps as built. */
static size_t order(const struct yv *m, size_t *idx)
{
	size_t n = 0;
	for (size_t i = 0; i < m->keys.n; i++)
		if (((const char *)m->keys.v[i])[0] != '_')
			idx[n++] = i;
	for (size_t i = 1; !m->user && !m->flow && i < n; i++)
		for (size_t j = i; j > 0 && rank(m->keys.v[idx[j - 1]]) > rank(m->keys.v[idx[j]]); j--) {
			size_t t = idx[j];
			idx[j] = idx[j - 1];
			idx[j - 1] = t;
		}
	return n;
}

/* ---- scalars ---- */

static const char *const specials[] = {"true", "false", "yes", "no", "on", "off", "y", "n",
				       "null", "~", ".inf", "-.inf", ".nan", "<<", "=", NULL};

static bool looks_special(const char *s)
{
	for (const char *const *p = specials; *p; p++)
		if (strcasecmp(s, *p) == 0)
			return true;
	/* numbers in any YAML spelling: 12, -1.5, 0x1f, 1e3, 1_000, 12:30 */
	const char *p = s + (*s == '-' || *s == '+');
	if (!isdigit((unsigned char)*p) && !(*p == '.' && isdigit((unsigned char)p[1])))
		return false;
	int dots = 0;
	for (; *p; p++) {
		if (*p == '.')
			dots++;
		else if (!isxdigit((unsigned char)*p) && !strchr("xXoO_:+-", *p))
			return false;
	}
	return dots < 2;
}

static bool plain_ok(const char *s)
{
	if (!*s || strchr("-?:,[]{}#&*!|>'\"%@`=~ \t", *s) || looks_special(s))
		return false;
	size_t len = strlen(s);
	if (s[len - 1] == ' ' || s[len - 1] == ':')
		return false;
	for (const char *p = s; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x7f || strchr(",[]{}", c))
			return false;
		if ((c == ':' && p[1] == ' ') || (c == ' ' && p[1] == '#'))
			return false;
	}
	return true;
}

/* corral expands ${VAR} and $$ in values: a literal `$` before `{` or `$` is written `$$`. */
static char *dollars(const char *s, bool value)
{
	struct buf b = {0};
	buf_puts(&b, "");
	for (const char *p = s; *p; p++) {
		if (value && *p == '$' && (p[1] == '{' || p[1] == '$'))
			buf_add(&b, "$", 1);
		buf_add(&b, p, 1);
	}
	return b.s;
}

static void quoted(struct buf *out, const char *s)
{
	buf_add(out, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': buf_puts(out, "\\\""); break;
		case '\\': buf_puts(out, "\\\\"); break;
		case '\n': buf_puts(out, "\\n"); break;
		case '\t': buf_puts(out, "\\t"); break;
		case '\r': buf_puts(out, "\\r"); break;
		default:
			if (*p < 0x20 || *p == 0x7f)
				buf_printf(out, "\\x%02x", *p);
			else
				buf_add(out, (const char *)p, 1);
		}
	}
	buf_add(out, "\"", 1);
}

static void scalar(struct buf *out, const char *s, bool value)
{
	_cleanup_free_ char *d = dollars(s, value);
	if (plain_ok(d))
		buf_puts(out, d);
	else
		quoted(out, d);
}

/* A multi-line string a literal block can hold exactly. */
static bool literal_ok(const char *s)
{
	if (!strchr(s, '\n'))
		return false;
	const char *first = s;
	while (*first == '\n')
		first++;
	if (!*first)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f)
			return false;
	/* a line of only blanks before the first text would confuse indentation */
	for (const char *p = s; p < first; p++)
		if (*p != '\n')
			return false;
	return *first != '\t';
}

static void indent(struct buf *out, int n)
{
	for (int i = 0; i < n; i++)
		buf_add(out, " ", 1);
}

static void literal(struct buf *out, const char *s, int ind)
{
	_cleanup_free_ char *d = dollars(s, true);
	size_t len = strlen(d), nl = 0;
	while (nl < len && d[len - 1 - nl] == '\n')
		nl++;
	const char *first = d;
	while (*first == '\n')
		first++;
	buf_puts(out, "|");
	if (*first == ' ')
		buf_puts(out, "2");
	buf_puts(out, nl == 0 ? "-" : nl == 1 ? "" : "+");
	buf_add(out, "\n", 1);
	const char *end = d + len - (nl ? 1 : 0), *p = d;
	for (;;) {
		const char *e = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;
		if (!e)
			e = end;
		if (e > p)
			indent(out, ind);
		buf_add(out, p, (size_t)(e - p));
		buf_add(out, "\n", 1);
		if (e >= end)
			break;
		p = e + 1;
	}
}

/* ---- values ---- */

static bool is_scalar(const struct yv *v) { return v->k != YV_MAP && v->k != YV_SEQ; }

static void scalar_value(struct buf *out, const struct yv *v)
{
	switch (v->k) {
	case YV_INT: buf_printf(out, "%lld", v->i); break;
	case YV_BOOL: buf_puts(out, v->b ? "true" : "false"); break;
	case YV_PLAIN: buf_puts(out, v->s); break;
	default: scalar(out, v->s, true); break;
	}
}

/* The flow form of v ("[a, b]", "{ k: v }"), or NULL when it has no short one. */
static char *flow(const struct yv *v)
{
	struct buf b = {0};
	size_t idx[256];
	if (is_scalar(v)) {
		if (v->k == YV_STR && strchr(v->s, '\n'))
			return NULL;
		scalar_value(&b, v);
		return b.s;
	}
	if (v->vals.n > 256)
		return NULL;
	bool map = v->k == YV_MAP;
	size_t n = map ? order(v, idx) : v->vals.n;
	buf_puts(&b, map ? (n ? "{ " : "{") : "[");
	for (size_t i = 0; i < n; i++) {
		const struct yv *e = v->vals.v[map ? idx[i] : i];
		if (!is_scalar(e) || (e->k == YV_STR && strchr(e->s, '\n'))) {
			buf_free(&b);
			return NULL;
		}
		if (i)
			buf_puts(&b, ", ");
		if (map) {
			scalar(&b, v->keys.v[idx[i]], false);
			buf_puts(&b, ": ");
		}
		scalar_value(&b, e);
	}
	buf_puts(&b, map ? (n ? " }" : "}") : "]");
	if (b.len > FLOW_WIDTH) {
		buf_free(&b);
		return NULL;
	}
	return b.s;
}

static void value(struct buf *out, const struct yv *v, int ind);

/* "key: value" lines of a block mapping at indentation ind; the first line's
 * indentation is already written when `first_inline`. */
static void block_map(struct buf *out, const struct yv *m, int ind, bool first_inline)
{
	size_t idx[512];
	size_t n = m->keys.n > 512 ? 0 : order(m, idx);
	for (size_t i = 0; i < n; i++) {
		if (i || !first_inline)
			indent(out, ind);
		scalar(out, m->keys.v[idx[i]], false);
		buf_add(out, ":", 1);
		value(out, m->vals.v[idx[i]], ind);
	}
}

static bool wants_flow(const struct yv *v)
{
	return v->k == YV_SEQ ? true : v->flow;
}

/* After "key:" (or "- "): the value and its new line. */
static void value(struct buf *out, const struct yv *v, int ind)
{
	if (v->k == YV_STR && literal_ok(v->s)) {
		buf_add(out, " ", 1);
		literal(out, v->s, ind + 2);
		return;
	}
	if (is_scalar(v)) { /* a string no literal block holds is quoted, \n and all */
		buf_add(out, " ", 1);
		scalar_value(out, v);
		buf_add(out, "\n", 1);
		return;
	}
	_cleanup_free_ char *f = (is_scalar(v) || wants_flow(v) || !v->vals.n) ? flow(v) : NULL;
	if (f) {
		buf_printf(out, " %s\n", f);
		return;
	}
	buf_add(out, "\n", 1);
	if (v->k == YV_MAP) {
		block_map(out, v, ind + 2, false);
		return;
	}
	for (size_t i = 0; i < v->vals.n; i++) {
		const struct yv *e = v->vals.v[i];
		indent(out, ind + 2);
		buf_puts(out, "-");
		_cleanup_free_ char *ef = (is_scalar(e) || wants_flow(e)) ? flow(e) : NULL;
		if (ef) {
			buf_printf(out, " %s\n", ef);
		} else if (e->k == YV_MAP && e->keys.n) {
			buf_add(out, " ", 1);
			block_map(out, e, ind + 4, true);
		} else {
			value(out, e, ind + 2);
		}
	}
}

/* ---- the file ---- */

static void comment_note(struct buf *out, const struct note *n, int ind)
{
	indent(out, ind);
	if (n->line)
		buf_printf(out, "# %s (Vagrantfile line %d): %s\n",
			   n->imported ? "note" : "not imported", n->line, n->text);
	else
		buf_printf(out, "# %s: %s\n", n->imported ? "note" : "not imported", n->text);
}

static void header(struct interp *I, struct buf *out, const struct model *m)
{
	buf_printf(out, "# corral.yaml imported from %s by `corral import`.\n", I->o->name);
	buf_puts(out, "# Review it, and each `not imported` line: the part of the Vagrantfile\n"
		      "# named there has no translation and was left out. Keys: docs/envfile.md;\n"
		      "# Vagrant and corral side by side: docs/migrating-from-vagrant.md.\n");
	bool vagrant_dir = false;
	for (size_t i = 0; i < m->machines.n && !vagrant_dir; i++) {
		const struct scope *s = m->machines.v[i];
		const struct yv *l = y_get(s->cfg, "synced_folders");
		if (!l && m->defaults)
			l = y_get(m->defaults, "synced_folders");
		for (size_t j = 0; l && j < l->vals.n; j++)
			vagrant_dir |= strcmp(y_get(l->vals.v[j], "guest")->s, "/vagrant") == 0;
	}
	if (vagrant_dir)
		buf_puts(out, "# Vagrant shares the project directory as /vagrant unless a synced\n"
			      "# folder disables it: corral shares it only when the file says so,\n"
			      "# as it does here.\n");
	buf_puts(out, "version: 1\n");
}

char *emit_yaml(struct interp *I, const struct model *m)
{
	struct buf out = {0};
	header(I, &out, m);
	if (m->networks->keys.n) {
		buf_puts(&out, "# Vagrant's private networks have no names: each subnet of their\n"
			       "# addresses (a /24 unless a netmask said otherwise) is one here.\n");
		if (m->dhcp)
			buf_puts(&out, "# `type: \"dhcp\"` ones join 172.28.128.0/24 (VirtualBox's DHCP\n"
				       "# network) without an address: corral hands one out.\n");
		buf_puts(&out, "networks:");
		value(&out, m->networks, 0);
	}
	for (size_t i = 0; i < m->notes.n; i++)
		comment_note(&out, m->notes.v[i], 0);
	if (m->defaults && m->defaults->keys.n) {
		buf_puts(&out, "defaults:");
		value(&out, m->defaults, 0);
	}
	buf_puts(&out, "machines:\n");
	for (size_t i = 0; i < m->machines.n; i++) {
		struct scope *s = m->machines.v[i];
		if (s->count)
			y_set(I->ar, s->cfg, "count", y_int(I->ar, s->count));
		buf_puts(&out, "  ");
		scalar(&out, s->name, false);
		buf_puts(&out, ":");
		bool empty = true;
		for (size_t k = 0; k < s->cfg->keys.n; k++)
			empty &= ((const char *)s->cfg->keys.v[k])[0] == '_';
		if (empty && !s->notes.n) {
			buf_puts(&out, " {}\n");
			continue;
		}
		buf_puts(&out, "\n");
		for (size_t j = 0; j < s->notes.n; j++)
			comment_note(&out, s->notes.v[j], 4);
		if (empty)
			buf_puts(&out, "    {}\n");
		else
			block_map(&out, s->cfg, 4, false);
	}
	return out.s;
}
