/* From Vagrant's model to corral's: each machine's settings are the global
 * ones with its own on top (lists appended, synced folders by guest path,
 * /vagrant shared unless disabled); names become corral's; private
 * addresses are grouped into named networks by subnet (/24 unless a
 * netmask says otherwise); addresses and host ports given twice are
 * noted, not written; machines NAME-1..NAME-N that differ in nothing else
 * become one entry with `count`; a global setting two or more machines
 * keep as it is moves to `defaults`. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/config/yamltree.h"
#include "core/vagrant/vf_priv.h"

static const char *const list_keys[] = {"networks", "ports", "synced_folders", "provision", NULL};
static const char *const map_keys[] = {"ssh", "provider_options", NULL};
static const char *const not_in_defaults[] = {"hostname", "primary", "count", "depends_on", NULL};

static int line_of(const struct yv *item)
{
	const struct yv *l = y_get(item, "_line");
	return l ? (int)l->i : 0;
}

/* Maps merge key by key (provider_options two levels deep). */
static void merge_map(struct interp *I, struct yv *into, const struct yv *from)
{
	for (size_t i = 0; i < from->keys.n; i++) {
		const char *k = from->keys.v[i];
		struct yv *v = from->vals.v[i], *old = y_get(into, k);
		if (old && old->k == YV_MAP && v->k == YV_MAP)
			merge_map(I, old, v);
		else
			y_set(I->ar, into, k, y_copy(I->ar, v));
	}
}

static struct yv *merged(struct interp *I, const struct yv *global, const struct yv *own)
{
	struct yv *eff = y_copy(I->ar, global);
	for (size_t i = 0; i < own->keys.n; i++) {
		const char *k = own->keys.v[i];
		struct yv *v = own->vals.v[i], *old = y_get(eff, k);
		if (old && str_in_list(k, list_keys)) {
			for (size_t j = 0; j < v->vals.n; j++)
				y_push(I->ar, old, y_copy(I->ar, v->vals.v[j]));
		} else if (old && str_in_list(k, map_keys)) {
			merge_map(I, old, v);
		} else {
			y_set(I->ar, eff, k, y_copy(I->ar, v));
		}
	}
	return eff;
}

/* Synced folders by guest path: a later one replaces an earlier one, a
 * disabled one removes it. */
static void resolve_synced(struct interp *I, struct yv *cfg)
{
	struct yv *l = y_get(cfg, "synced_folders");
	if (!l)
		return;
	struct yv *out = y_seq(I->ar);
	for (size_t i = 0; i < l->vals.n; i++) {
		struct yv *f = l->vals.v[i];
		const char *g = y_get(f, "guest")->s;
		size_t j = 0;
		while (j < out->vals.n && strcmp(y_get(out->vals.v[j], "guest")->s, g))
			j++;
		bool dis = y_get(f, "_disabled") != NULL;
		if (j < out->vals.n && dis) {
			for (; j + 1 < out->vals.n; j++)
				out->vals.v[j] = out->vals.v[j + 1];
			out->vals.n--;
		} else if (j < out->vals.n) {
			out->vals.v[j] = f;
		} else if (!dis) {
			y_push(I->ar, out, f);
		}
	}
	if (out->vals.n)
		y_set(I->ar, cfg, "synced_folders", out);
	else
		y_del(cfg, "synced_folders");
}

/* ---- names ---- */

static const char *sanitize(struct interp *I, const char *vname)
{
	struct buf b = {0};
	buf_puts(&b, "");
	for (const char *p = vname; *p && b.len < 63; p++) {
		char c = (char)tolower((unsigned char)*p);
		if (!isalnum((unsigned char)c) || (unsigned char)c >= 0x80)
			c = '-';
		if (c == '-' && (!b.len || b.s[b.len - 1] == '-'))
			continue;
		buf_add(&b, &c, 1);
	}
	while (b.len && b.s[b.len - 1] == '-')
		b.s[--b.len] = '\0';
	const char *r = ar_strdup(I->ar, b.len ? b.s : "machine");
	buf_free(&b);
	return r;
}

static bool name_taken(const struct interp *I, const char *name, size_t upto)
{
	for (size_t i = 0; i < upto; i++)
		if (strcmp(((struct scope *)I->machines.v[i])->name, name) == 0)
			return true;
	return false;
}

static void name_machines(struct interp *I)
{
	for (size_t i = 0; i < I->machines.n; i++) {
		struct scope *m = I->machines.v[i];
		const char *base = sanitize(I, m->vname), *name = base;
		for (int k = 2; name_taken(I, name, i); k++)
			name = ar_printf(I->ar, "%.58s-%d", base, k);
		m->name = name;
		if (strcmp(name, m->vname))
			note_at(I, m, m->line, true, "the machine `%s` is `%s` here: corral's names "
				   "are lowercase letters, digits and -", m->vname, name);
	}
}

static const char *corral_name(const struct interp *I, const char *vname)
{
	for (size_t i = 0; i < I->machines.n; i++) {
		const struct scope *m = I->machines.v[i];
		if (strcmp(m->vname, vname) == 0 || strcmp(m->name, vname) == 0)
			return m->name;
	}
	return NULL;
}

/* ---- per machine ---- */

static void fix_box(struct interp *I, struct scope *m)
{
	struct yv *c = m->cfg, *cks = y_get(c, "_checksum"), *type = y_get(c, "_checksum_type");
	const char *both = cks && type ? ar_printf(I->ar, "%s:%s", type->s, cks->s) : NULL;
	if (both && valid_checksum(both))
		y_set(I->ar, c, "box_checksum", y_str(I->ar, both));
	else if (both)
		note_at(I, m, m->line, false, "box_download_checksum `%s` is not a %s checksum",
			   cks->s, type->s);
	else if (cks)
		note_at(I, m, m->line, false, "box_download_checksum without "
			   "box_download_checksum_type: corral needs both");
	if (!y_get(c, "box")) {
		y_set(I->ar, c, "box", y_str(I->ar, "corral/debian-12"));
		note_at(I, m, m->line, false, "the Vagrantfile names no box for `%s`: "
			   "corral/debian-12 stands in for it — change it", m->vname);
	}
}

static void fix_primary(struct interp *I)
{
	bool seen = false;
	for (size_t i = 0; i < I->machines.n; i++) {
		struct scope *m = I->machines.v[i];
		if (!y_get(m->cfg, "primary"))
			continue;
		if (seen) {
			y_del(m->cfg, "primary");
			note_at(I, m, m->line, false, "primary: true — another machine is primary");
		}
		seen = true;
	}
}

/* Group members are Vagrant's machine names: corral's, or left out. */
static void fix_groups(struct interp *I, struct scope *m, struct yv *groups, int line)
{
	for (size_t i = 0; i < groups->keys.n; i++) {
		const char *g = groups->keys.v[i];
		struct yv *hosts = groups->vals.v[i];
		if (strchr(g, ':'))
			continue;
		struct yv *out = y_seq(I->ar);
		out->flow = true;
		for (size_t j = 0; j < hosts->vals.n; j++) {
			const char *h = ((struct yv *)hosts->vals.v[j])->s;
			const char *n = corral_name(I, h);
			if (n)
				y_push(I->ar, out, y_str(I->ar, n));
			else
				note_at(I, m, line, false, "ansible group %s: `%s` is no machine of "
					   "this Vagrantfile", g, h);
		}
		groups->vals.v[i] = out;
	}
	for (size_t i = 0; i < groups->keys.n; i++) {
		const char *g = groups->keys.v[i];
		const char *c = strstr(g, ":children");
		if (!c)
			continue;
		struct yv *kids = groups->vals.v[i], *out = y_seq(I->ar);
		out->flow = true;
		for (size_t j = 0; j < kids->vals.n; j++) {
			const char *k = ((struct yv *)kids->vals.v[j])->s;
			if (y_get(groups, k))
				y_push(I->ar, out, kids->vals.v[j]);
			else
				note_at(I, m, line, false, "ansible group %s: `%s` is no group of "
					   "this step", g, k);
		}
		groups->vals.v[i] = out;
	}
}

static void fix_steps(struct interp *I, struct scope *m, struct yv *cfg)
{
	struct yv *l = y_get(cfg, "provision");
	for (size_t i = 0; l && i < l->vals.n; i++) {
		struct yv *a = y_get(l->vals.v[i], "ansible");
		struct yv *g = a ? y_get(a, "groups") : NULL;
		if (g)
			fix_groups(I, m, g, line_of(l->vals.v[i]));
	}
}

/* An Ansible step whose limit reaches other machines relied on Vagrant's
 * one-at-a-time `up`: the machines defined before were up when it ran.
 * corral boots in parallel, so the machine waits for them (depends_on). */
static void wait_for_earlier(struct interp *I, size_t i)
{
	struct scope *m = I->machines.v[i];
	struct yv *l = y_get(m->cfg, "provision");
	int line = 0;
	for (size_t j = 0; l && j < l->vals.n && !line; j++) {
		struct yv *a = y_get(l->vals.v[j], "ansible");
		struct yv *limit = a ? y_get(a, "limit") : NULL;
		if (limit && strcmp(limit->s, m->name))
			line = line_of(l->vals.v[j]);
	}
	if (!line || !i)
		return;
	struct yv *deps = y_seq(I->ar);
	for (size_t j = 0; j < i; j++)
		y_push(I->ar, deps, y_str(I->ar, ((struct scope *)I->machines.v[j])->name));
	y_set(I->ar, m->cfg, "depends_on", deps);
	note_at(I, m, line, true, "the ansible step's limit reaches other machines: depends_on "
		   "makes %s wait for the machines before it, as Vagrant's one-by-one up did", m->name);
}

/* ---- networks ---- */

/* Where `type: "dhcp"` networks go: VirtualBox's default DHCP network. */
#define DHCP_SUBNET "172.28.128.0/24"

struct nets {
	struct yv *map; /* name -> { subnet } */
	bool dhcp;
	struct vec subnets;
	struct vec used; /* "a.b.c.d" given to a machine */
};

static const char *ip_str(struct interp *I, unsigned a)
{
	return ar_printf(I->ar, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
}

static const char *net_name(struct interp *I, struct nets *N, const char *subnet)
{
	for (size_t i = 0; i < N->subnets.n; i++)
		if (strcmp(N->subnets.v[i], subnet) == 0)
			return N->map->keys.v[i];
	const char *name = ar_printf(I->ar, "net%zu", N->subnets.n + 1);
	vec_push(I->ar, &N->subnets, (void *)subnet);
	struct yv *n = y_map(I->ar);
	n->flow = true;
	y_set(I->ar, n, "subnet", y_str(I->ar, subnet));
	y_set(I->ar, N->map, name, n);
	return name;
}

/* A private network entry as { network, ip }; NULL (noted) when corral
 * cannot have it. `fresh`: the address may not have been given before. */
static struct yv *convert_net(struct interp *I, struct nets *N, struct scope *m,
			      const struct yv *e, bool fresh)
{
	struct yv *out = y_map(I->ar);
	out->flow = true;
	int line = line_of(e);
	if (y_get(e, "_dhcp")) {
		y_set(I->ar, out, "network", y_str(I->ar, net_name(I, N, DHCP_SUBNET)));
		N->dhcp = true;
		return out;
	}
	const char *ip = y_get(e, "_ip")->s;
	int prefix = (int)y_get(e, "_prefix")->i;
	unsigned a, b0, b1, b2, b3;
	sscanf(ip, "%u.%u.%u.%u", &b0, &b1, &b2, &b3);
	a = b0 << 24 | b1 << 16 | b2 << 8 | b3;
	if (prefix < 8 || prefix > 30) {
		note_at(I, m, line, false, "private network %s/%d — corral's networks are /8 to /30",
			   ip, prefix);
		return NULL;
	}
	unsigned mask = ~0u << (32 - prefix), net = a & mask;
	if (a == net || a == (net | ~mask)) {
		note_at(I, m, line, false, "private network %s — the network's own or broadcast "
			   "address", ip);
		return NULL;
	}
	for (size_t i = 0; fresh && i < N->used.n; i++)
		if (strcmp(N->used.v[i], ip) == 0) {
			note_at(I, m, line, false, "private network %s — another machine has this "
				   "address", ip);
			return NULL;
		}
	if (fresh)
		vec_push(I->ar, &N->used, (void *)ip);
	const char *subnet = ar_printf(I->ar, "%s/%d", ip_str(I, net), prefix);
	y_set(I->ar, out, "network", y_str(I->ar, net_name(I, N, subnet)));
	y_set(I->ar, out, "ip", y_str(I->ar, ip));
	return out;
}

static void convert_nets(struct interp *I, struct nets *N, struct scope *m, struct yv *cfg,
			 bool fresh)
{
	struct yv *l = y_get(cfg, "networks");
	if (!l)
		return;
	struct yv *out = y_seq(I->ar);
	for (size_t i = 0; i < l->vals.n; i++) {
		struct yv *e = convert_net(I, N, m, l->vals.v[i], fresh);
		if (e)
			y_push(I->ar, out, e);
	}
	if (out->vals.n)
		y_set(I->ar, cfg, "networks", out);
	else
		y_del(cfg, "networks");
}

/* A host port (address, protocol) forwarded again without auto_correct
 * (after any earlier forward of it, as corral's loader checks): noted, not
 * written. */
static void dedupe_ports(struct interp *I, struct vec *seen, struct scope *m)
{
	struct yv *l = y_get(m->cfg, "ports");
	if (!l)
		return;
	struct yv *out = y_seq(I->ar);
	for (size_t i = 0; i < l->vals.n; i++) {
		struct yv *p = l->vals.v[i], *h = y_get(p, "host"), *ip = y_get(p, "host_ip"),
			  *proto = y_get(p, "protocol");
		const char *key = h ? ar_printf(I->ar, "%s/%s/%lld", ip ? ip->s : "127.0.0.1",
						proto ? proto->s : "tcp", h->i) : NULL;
		bool dup = false;
		for (size_t j = 0; key && j < seen->n && !dup; j++)
			dup = strcmp(seen->v[j], key) == 0;
		if (dup && !y_get(p, "auto_correct")) {
			note_at(I, m, line_of(p), false, "forwarded port %lld — host port %lld is "
				   "forwarded already (add auto_correct: true to move it)",
				   y_get(p, "guest")->i, h->i);
			continue;
		}
		if (key && !dup)
			vec_push(I->ar, seen, (void *)key);
		y_push(I->ar, out, p);
	}
	if (out->vals.n)
		y_set(I->ar, m->cfg, "ports", out);
	else
		y_del(m->cfg, "ports");
}

/* ---- count ---- */

static bool same_notes(const struct scope *a, const struct scope *b)
{
	if (a->notes.n != b->notes.n)
		return false;
	for (size_t i = 0; i < a->notes.n; i++) {
		const struct note *x = a->notes.v[i], *y = b->notes.v[i];
		if (x->line != y->line || x->imported != y->imported || strcmp(x->text, y->text))
			return false;
	}
	return true;
}

/* The configuration without a hostname equal to the machine's name. */
static struct yv *without_own_hostname(struct interp *I, const struct scope *m, bool *ok)
{
	struct yv *c = y_copy(I->ar, m->cfg), *h = y_get(c, "hostname");
	*ok = !h || strcmp(h->s, m->name) == 0;
	y_del(c, "hostname");
	return c;
}

static bool member_of(struct interp *I, const struct scope *first, const struct scope *m,
		      const char *base, size_t k)
{
	const char *want = ar_printf(I->ar, "%s-%zu", base, k);
	bool ok1, ok2;
	if (strcmp(m->name, want))
		return false;
	struct yv *a = without_own_hostname(I, first, &ok1), *b = without_own_hostname(I, m, &ok2);
	return ok1 && ok2 && y_equal(a, b) && same_notes(first, m);
}

static void fold_counts(struct interp *I, struct model *out)
{
	for (size_t i = 0; i < I->machines.n;) {
		struct scope *m = I->machines.v[i];
		size_t len = strlen(m->name), j = i + 1;
		if (len > 2 && str_ends(m->name, "-1")) {
			const char *base = ar_strndup(I->ar, m->name, len - 2);
			while (j < I->machines.n && member_of(I, m, I->machines.v[j], base, j - i + 1))
				j++;
			if (j - i >= 2 && !name_taken(I, base, I->machines.n)) {
				bool ok;
				m->cfg = without_own_hostname(I, m, &ok);
				m->name = base;
				m->count = (unsigned)(j - i);
				vec_push(I->ar, &out->machines, m);
				i = j;
				continue;
			}
		}
		vec_push(I->ar, &out->machines, m);
		i++;
	}
}

/* ---- defaults ---- */

/* How many entries have v as their value of key. */
static size_t sharing(const struct model *out, const char *key, const struct yv *v)
{
	size_t n = 0;
	for (size_t i = 0; i < out->machines.n; i++)
		n += y_equal(v, y_get(((struct scope *)out->machines.v[i])->cfg, key));
	return n;
}

static void factor_defaults(struct interp *I, struct model *out, const struct yv *global)
{
	out->defaults = y_map(I->ar);
	for (size_t i = 0; i < global->keys.n; i++) {
		const char *k = global->keys.v[i];
		if (k[0] == '_' || str_in_list(k, not_in_defaults))
			continue;
		struct yv *v = global->vals.v[i];
		if (sharing(out, k, v) >= 2)
			y_set(I->ar, out->defaults, k, y_copy(I->ar, v));
	}
	for (size_t i = 0; i < out->machines.n; i++) {
		struct scope *m = out->machines.v[i];
		for (size_t j = 0; j < out->defaults->keys.n; j++) {
			const char *k = out->defaults->keys.v[j];
			struct yv *v = y_get(m->cfg, k);
			if (y_equal(v, out->defaults->vals.v[j]))
				y_del(m->cfg, k);
			else if (!v && str_in_list(k, list_keys))
				y_set(I->ar, m->cfg, k, y_seq(I->ar));
		}
	}
}

static bool has_note(const struct vec *v, const struct note *n)
{
	for (size_t i = 0; i < v->n; i++) {
		const struct note *o = v->v[i];
		if (o->line == n->line && o->imported == n->imported && strcmp(o->text, n->text) == 0)
			return true;
	}
	return false;
}

/* Drops the machine's copies of the global scope's notes; `single`: the
 * only entry takes them instead (there is no top section then). */
static void drop_global_notes(struct interp *I, const struct scope *g, struct scope *m, bool single)
{
	struct vec keep = {0};
	for (size_t i = 0; i < m->notes.n; i++)
		if (single || !has_note(&g->notes, m->notes.v[i]))
			vec_push(I->ar, &keep, m->notes.v[i]);
	for (size_t i = 0; single && i < g->notes.n; i++)
		if (!has_note(&keep, g->notes.v[i]))
			vec_push(I->ar, &keep, g->notes.v[i]);
	m->notes = keep;
}

static void sort_notes(struct vec *v)
{
	for (size_t i = 1; i < v->n; i++)
		for (size_t j = i; j > 0 && ((struct note *)v->v[j - 1])->line >
					    ((struct note *)v->v[j])->line; j--) {
			void *t = v->v[j];
			v->v[j] = v->v[j - 1];
			v->v[j - 1] = t;
		}
}

/* Vagrant shares the project as /vagrant unless a synced folder disables it:
 * the global scope's first folder, which a later one may replace or disable. */
static void share_project(struct interp *I, struct scope *g)
{
	struct yv *f = y_map(I->ar), *l = y_seq(I->ar), *old = y_get(g->cfg, "synced_folders");
	f->flow = true;
	y_set(I->ar, f, "host", y_str(I->ar, I->o->path_dir ? I->o->path_dir : "."));
	y_set(I->ar, f, "guest", y_str(I->ar, "/vagrant"));
	y_push(I->ar, l, f);
	for (size_t i = 0; old && i < old->vals.n; i++)
		y_push(I->ar, l, old->vals.v[i]);
	y_set(I->ar, g->cfg, "synced_folders", l);
}

void model_build(struct interp *I, struct model *out)
{
	struct scope *g = I->global;
	if (!I->configured)
		note_at(I, g, 0, false, "no Vagrant.configure(\"2\") block: nothing to import");
	if (!I->machines.n)
		scope_new(I, "default", I->configure_line);
	share_project(I, g);
	if (I->default_provider)
		y_set(I->ar, g->cfg, "provider", y_str(I->ar, I->default_provider));
	for (size_t i = 0; i < I->machines.n; i++) {
		struct scope *m = I->machines.v[i];
		m->cfg = merged(I, g->cfg, m->cfg);
		resolve_synced(I, m->cfg);
	}
	struct yv *gres = y_copy(I->ar, g->cfg);
	resolve_synced(I, gres);
	name_machines(I);
	fix_steps(I, g, gres);
	fix_primary(I);
	struct nets N = {.map = y_map(I->ar)};
	struct vec ports = {0};
	for (size_t i = 0; i < I->machines.n; i++) {
		struct scope *m = I->machines.v[i];
		fix_box(I, m);
		fix_steps(I, m, m->cfg);
		wait_for_earlier(I, i);
		convert_nets(I, &N, m, m->cfg, true);
		dedupe_ports(I, &ports, m);
	}
	out->networks = N.map;
	out->dhcp = N.dhcp;
	fold_counts(I, out);
	if (out->machines.n > 1) {
		struct scope scratch = {0};
		convert_nets(I, &N, &scratch, gres, false);
		factor_defaults(I, out, gres);
		for (size_t i = 0; i < g->notes.n; i++)
			vec_push(I->ar, &out->notes, g->notes.v[i]);
	}
	/* a note about a global setting is written once, at the top */
	for (size_t i = 0; i < out->machines.n; i++)
		drop_global_notes(I, g, out->machines.v[i], out->machines.n == 1);
	sort_notes(&out->notes);
	for (size_t i = 0; i < out->machines.n; i++)
		sort_notes(&((struct scope *)out->machines.v[i])->notes);
}
