/* Loading an envfile: read it (size-capped before reading), parse it into a
 * tree (core/config/yamltree.c), decode it through the key table (core/config/envkeys.c),
 * then apply what spans machines: defaults and count, unique names,
 * depends_on and cycles, networks and addresses, forwarded ports, ansible
 * groups; last, each step's id. The rules are summed up in envfile.h.
 *
 * Merging: `defaults` are decoded into each machine first and the machine's
 * own keys on top, so the machine wins without a merge step of its own. */
#include "core/config/envfile.h"

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/base/util.h"
#include "core/config/yamltree.h"

#define MAX_MACHINES 1000

/* A name depends_on and ansible groups may use: a machine, or the base
 * name of a counted one (standing for all its instances). */
struct ref {
	const char *name;
	size_t first, n; /* machines[first .. first + n) */
};

struct loader {
	struct dec *d;
	struct env *e;
	const struct ypair **src; /* per machine: its entry under `machines` */
	struct ref *refs;         /* sorted by name */
	size_t nrefs;
};

static void err_at(struct loader *L, struct srcpos pos, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void err_at(struct loader *L, struct srcpos pos, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ydiagv(L->d->errs, L->d->file, pos.line, pos.col, hint, fmt, ap);
	va_end(ap);
}

/* Valid, but probably not what was meant: kept in e->warnings. */
static void warn_at(struct loader *L, struct srcpos pos, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void warn_at(struct loader *L, struct srcpos pos, const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	ydiagv(&L->e->warnings, L->d->file, pos.line, pos.col, hint, fmt, ap);
	va_end(ap);
}

static struct srcpos pos_of(const struct ynode *n)
{
	return (struct srcpos){n->line, n->col};
}

/* ---- machines: defaults, count ---- */

static void decode_machine(struct dec *d, const struct ypair *p, struct machine_cfg *m)
{
	const struct ynode *defs = d->deferred[DEFER_DEFAULTS];
	envkeys_machine_init(m);
	if (defs) {
		size_t mark = dec_push(d, "defaults");
		d->in_defaults = true;
		envkeys_machine(d, defs, m);
		d->in_defaults = false;
		dec_pop(d, mark);
	}
	if (p) {
		size_t mark = dec_push(d, "machines.%s", p->key->str);
		envkeys_machine(d, p->val, m);
		dec_pop(d, mark);
	}
}

/* Each instance is decoded from the tree again rather than copied: no deep
 * copy to keep in step with the structs (errors are listed once). */
static void add_machines(struct loader *L, const struct ypair *p)
{
	struct env *e = L->e;
	const char *base = p->key->str;
	struct machine_cfg first;
	if (!valid_name(base))
		err_at(L, pos_of(p->key), "use lowercase letters, digits and -, at most 63",
		       "machines.%s: not a valid machine name", base);
	decode_machine(L->d, p, &first);
	unsigned n = first.count ? first.count : 1;
	_cleanup_free_ char *last = xasprintf("%s-%u", base, n);
	if (first.count && valid_name(base) && !valid_name(last))
		err_at(L, pos_of(p->key), "use a shorter name",
		       "machines.%s: with count, %s is longer than 63 characters", base, last);
	if (e->nmachines + n > MAX_MACHINES) {
		err_at(L, pos_of(p->key), "split the environment", "more than %d machines",
		       MAX_MACHINES);
		envkeys_machine_free(&first);
		return;
	}
	e->machines = xrealloc(e->machines, (e->nmachines + n) * sizeof(*e->machines));
	L->src = xrealloc(L->src, (e->nmachines + n) * sizeof(*L->src));
	for (unsigned i = 0; i < n; i++) {
		struct machine_cfg *m = &e->machines[e->nmachines];
		if (i == 0)
			*m = first;
		else
			decode_machine(L->d, p, m);
		m->base_name = xstrdup(base);
		m->index = first.count ? i + 1 : 0;
		m->name = first.count ? xasprintf("%s-%u", base, i + 1) : xstrdup(base);
		m->pos = pos_of(p->key);
		m->primary = m->primary && i == 0; /* primary with count: the first one */
		if (!m->hostname)
			m->hostname = xstrdup(m->name);
		L->src[e->nmachines++] = p;
	}
}

static void load_machines(struct loader *L, const struct ynode *root)
{
	struct dec *d = L->d;
	const struct ynode *ms = d->deferred[DEFER_MACHINES];
	if (d->deferred[DEFER_DEFAULTS]) { /* once on its own: reported even without machines */
		struct machine_cfg scratch;
		decode_machine(d, NULL, &scratch);
		envkeys_machine_free(&scratch);
	}
	const char *hint = "add one: `machines: { dev: { box: corral/debian-12 } }`";
	if (!ms)
		err_at(L, pos_of(root), hint, "no `machines:`");
	else if (ms->type != Y_MAP && !ynode_null(ms))
		err_at(L, pos_of(ms), hint, "machines: expected a mapping of names, got %s",
		       ynode_what(ms));
	else if (ynode_null(ms) || ms->npairs == 0)
		err_at(L, pos_of(ms), hint, "machines: no machines");
	for (size_t i = 0; ms && ms->type == Y_MAP && i < ms->npairs; i++)
		add_machines(L, &ms->pairs[i]);
}

/* ---- names ---- */

static int ref_cmp(const void *a, const void *b)
{
	const struct ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->first > y->first) - (x->first < y->first);
}

static void index_names(struct loader *L)
{
	struct env *e = L->e;
	L->refs = xcalloc(2 * e->nmachines, sizeof(*L->refs));
	for (size_t i = 0; i < e->nmachines; i++) {
		const struct machine_cfg *m = &e->machines[i];
		L->refs[L->nrefs++] = (struct ref){m->name, i, 1};
		if (m->index == 1)
			L->refs[L->nrefs++] = (struct ref){m->base_name, i, m->count};
	}
	qsort(L->refs, L->nrefs, sizeof(*L->refs), ref_cmp);
	for (size_t i = 1; i < L->nrefs; i++) {
		const struct ref *a = &L->refs[i - 1], *b = &L->refs[i];
		if (strcmp(a->name, b->name) != 0)
			continue;
		const struct machine_cfg *first = &e->machines[a->first], *again = &e->machines[b->first];
		err_at(L, again->pos, "rename one of them (count: N on NAME makes NAME-1 .. NAME-N)",
		       "machines.%s: two machines are named `%s` (the other: machines.%s, line %d)",
		       again->base_name, b->name, first->base_name, first->pos.line);
	}
}

static int ref_name_cmp(const void *key, const void *r)
{
	return strcmp(key, ((const struct ref *)r)->name);
}

static const struct ref *find_ref(const struct loader *L, const char *name)
{
	return L->nrefs ? bsearch(name, L->refs, L->nrefs, sizeof(*L->refs), ref_name_cmp) : NULL;
}

/* Every machine `name` stands for, marked in seen (one flag a machine);
 * false when it names none. */
static bool mark_ref(const struct loader *L, const char *name, bool *seen)
{
	const struct ref *r = find_ref(L, name);
	for (size_t i = 0; r && i < r->n; i++)
		seen[r->first + i] = true;
	return r != NULL;
}

/* The marked machines' names, in envfile order. */
static struct strv marked(const struct loader *L, const bool *seen)
{
	struct strv out = {0};
	for (size_t i = 0; i < L->e->nmachines; i++)
		if (seen[i])
			strv_push(&out, L->e->machines[i].name);
	return out;
}

static void unknown_ref(struct loader *L, struct srcpos pos, const char *path, const char *name)
{
	if (ydiag_full(L->d->errs))
		return; /* not worth a suggestion: it wouldn't be listed */
	const char **cands = xcalloc(L->nrefs, sizeof(*cands));
	for (size_t i = 0; i < L->nrefs; i++)
		cands[i] = L->refs[i].name;
	const char *sug = str_suggest(name, cands, L->nrefs);
	_cleanup_free_ char *hint = sug ? xasprintf("did you mean `%s`?", sug) : NULL;
	err_at(L, pos, hint ? hint : "name a machine defined under `machines:`",
	       "%s: unknown machine `%s`", path, name);
	free(cands);
}

/* Names and base names -> machine names, in place, in envfile order.
 * Errors point at the list's items when `list` is its node, else at pos. */
static void resolve_refs(struct loader *L, struct strv *l, const struct ynode *list,
			 struct srcpos pos, const char *path)
{
	bool *seen = xcalloc(L->e->nmachines, sizeof(*seen));
	for (size_t i = 0; i < l->n; i++) {
		bool item = list && list->type == Y_SEQ && i < list->nitems;
		if (!mark_ref(L, l->v[i], seen))
			unknown_ref(L, item ? pos_of(list->items[i]) : pos, path, l->v[i]);
	}
	strv_free(l);
	*l = marked(L, seen);
	free(seen);
}

/* ---- depends_on ---- */

/* For positions only: the machine's own depends_on node (never in defaults). */
static const struct ynode *deps_node(const struct loader *L, size_t m)
{
	return ynode_get(L->src[m]->val, "depends_on");
}

static struct srcpos deps_pos(const struct loader *L, size_t m)
{
	const struct ynode *n = deps_node(L, m);
	return n ? pos_of(n) : L->e->machines[m].pos;
}

enum { WHITE, GREY, BLACK };

static void report_cycle(struct loader *L, const size_t *stack, size_t depth, size_t v)
{
	const struct machine_cfg *ms = L->e->machines;
	size_t start = depth;
	while (stack[start] != v)
		start--;
	struct buf b = {0};
	for (size_t i = start; i <= depth; i++)
		buf_printf(&b, "%s -> ", ms[stack[i]].name);
	buf_puts(&b, ms[v].name);
	err_at(L, deps_pos(L, v), "remove one of these dependencies",
	       "machines.%s.depends_on: dependency cycle: %s", ms[v].base_name, b.s);
	buf_free(&b);
}

/* Depth-first; a dependency still on the stack closes a cycle. */
static bool find_cycle(struct loader *L, size_t u, char *color, size_t *stack, size_t depth)
{
	const struct strv *deps = &L->e->machines[u].depends_on;
	color[u] = GREY;
	stack[depth] = u;
	for (size_t j = 0; j < deps->n; j++) {
		const struct ref *r = find_ref(L, deps->v[j]);
		size_t v = r ? r->first : u;
		if (!r)
			continue;
		if (color[v] == GREY) {
			report_cycle(L, stack, depth, v);
			return true;
		}
		if (color[v] == WHITE && find_cycle(L, v, color, stack, depth + 1))
			return true;
	}
	color[u] = BLACK;
	return false;
}

static void check_deps(struct loader *L)
{
	struct env *e = L->e;
	for (size_t i = 0; i < e->nmachines; i++) {
		_cleanup_free_ char *path = xasprintf("machines.%s.depends_on", e->machines[i].base_name);
		resolve_refs(L, &e->machines[i].depends_on, deps_node(L, i), deps_pos(L, i), path);
	}
	char *color = xcalloc(e->nmachines, 1);
	size_t *stack = xcalloc(e->nmachines, sizeof(*stack));
	for (size_t i = 0; i < e->nmachines; i++)
		if (color[i] == WHITE && find_cycle(L, i, color, stack, 0))
			break; /* one cycle is enough to act on */
	free(color);
	free(stack);
}

/* ---- the same value used twice: static addresses, forwarded host ports ---- */

struct use {
	uint64_t key;   /* the address, or port << 1 | udp */
	const char *ip; /* ports: host_ip */
	size_t m, j;    /* machine, and index in its list */
};

static int use_cmp(const void *a, const void *b)
{
	const struct use *x = a, *y = b;
	int c = (x->key > y->key) - (x->key < y->key);
	if (!c && x->ip)
		c = strcmp(x->ip, y->ip);
	if (!c)
		c = (x->m > y->m) - (x->m < y->m);
	return c ? c : (x->j > y->j) - (x->j < y->j);
}

static bool same_use(const struct use *x, const struct use *y)
{
	return x->key == y->key && (!x->ip || strcmp(x->ip, y->ip) == 0);
}

typedef void clash_fn(struct loader *L, const struct use *first, const struct use *again);

static void find_clashes(struct loader *L, struct use *u, size_t n, clash_fn *clash)
{
	if (n)
		qsort(u, n, sizeof(*u), use_cmp);
	for (size_t i = 1, first = 0; i < n; i++) {
		if (!same_use(&u[first], &u[i]))
			first = i;
		else
			clash(L, &u[first], &u[i]);
	}
	free(u);
}

static void ip_clash(struct loader *L, const struct use *first, const struct use *again)
{
	const struct machine_cfg *m = &L->e->machines[again->m];
	const struct net_attach *a = &m->networks[again->j];
	err_at(L, a->pos, "give each machine its own address, or leave ip out to allocate one",
	       "machines.%s.networks[%zu].ip: %s is used by both %s and %s", m->base_name,
	       again->j + 1, a->ip, L->e->machines[first->m].name, m->name);
}

static void port_clash(struct loader *L, const struct use *first, const struct use *again)
{
	const struct machine_cfg *m = &L->e->machines[again->m];
	const struct port_fwd *p = &m->ports[again->j];
	if (p->auto_correct)
		return;
	err_at(L, p->pos, "use another host port, or set `auto_correct: true`",
	       "machines.%s.ports[%zu].host: %s:%u/%s is forwarded for both %s and %s",
	       m->base_name, again->j + 1, p->host_ip, p->host, p->udp ? "udp" : "tcp",
	       L->e->machines[first->m].name, m->name);
}

/* ---- networks ---- */

static int net_cmp(const void *a, const void *b)
{
	const struct network_cfg *x = *(const struct network_cfg *const *)a;
	const struct network_cfg *y = *(const struct network_cfg *const *)b;
	return strcmp(x->name, y->name);
}

/* nets: e->networks sorted by name, so a thousand attachments stay cheap. */
static const struct network_cfg *find_network(const struct env *e,
					      const struct network_cfg *const *nets, const char *name)
{
	struct network_cfg key = {.name = (char *)name};
	const struct network_cfg *kp = &key, *const *r = NULL;
	if (e->nnetworks)
		r = bsearch(&kp, nets, e->nnetworks, sizeof(*nets), net_cmp);
	return r ? *r : NULL;
}

static void unknown_network(struct loader *L, const struct machine_cfg *m, size_t j)
{
	const struct net_attach *a = &m->networks[j];
	if (ydiag_full(L->d->errs))
		return;
	const char **names = xcalloc(L->e->nnetworks, sizeof(*names));
	for (size_t i = 0; i < L->e->nnetworks; i++)
		names[i] = L->e->networks[i].name;
	const char *sug = str_suggest(a->network, names, L->e->nnetworks);
	_cleanup_free_ char *hint = sug ? xasprintf("did you mean `%s`?", sug) : NULL;
	err_at(L, a->pos, hint ? hint : "define it under the top-level `networks:`",
	       "machines.%s.networks[%zu].network: unknown network `%s`", m->base_name, j + 1,
	       a->network);
	free(names);
}

/* Inside the subnet and not its network or broadcast address. */
static bool check_address(struct loader *L, const struct machine_cfg *m, size_t j,
			  const struct network_cfg *net, uint32_t ip)
{
	const struct net_attach *a = &m->networks[j];
	uint32_t base, mask;
	unsigned prefix;
	if (parse_cidr(net->subnet, &base, &prefix) < 0)
		return false;
	mask = prefix ? ~(uint32_t)0 << (32 - prefix) : 0;
	const char *why = (ip & mask) != base ? "is outside"
			  : prefix <= 30 && (ip == base || ip == (base | ~mask)) ? "is reserved in"
			  : NULL;
	if (why)
		err_at(L, a->pos, "pick a host address in the subnet, or leave ip out",
		       "machines.%s.networks[%zu].ip: %s %s %s's subnet %s", m->base_name, j + 1,
		       a->ip, why, net->name, net->subnet);
	return !why;
}

static void check_networks(struct loader *L)
{
	struct env *e = L->e;
	struct use *u = NULL;
	size_t n = 0;
	const struct network_cfg **nets = xcalloc(e->nnetworks, sizeof(*nets));
	for (size_t i = 0; i < e->nnetworks; i++)
		nets[i] = &e->networks[i];
	if (e->nnetworks)
		qsort(nets, e->nnetworks, sizeof(*nets), net_cmp);
	for (size_t i = 0; i < e->nmachines; i++) {
		const struct machine_cfg *m = &e->machines[i];
		for (size_t j = 0; j < m->nnetworks; j++) {
			const struct net_attach *a = &m->networks[j];
			const struct network_cfg *net = a->network ? find_network(e, nets, a->network)
								   : NULL;
			uint32_t ip;
			if (a->network && !net)
				unknown_network(L, m, j);
			if (!net || !net->subnet || !a->ip || parse_ipv4(a->ip, &ip) < 0 ||
			    !check_address(L, m, j, net, ip))
				continue;
			u = xrealloc(u, (n + 1) * sizeof(*u));
			u[n++] = (struct use){.key = ip, .m = i, .j = j};
		}
	}
	free(nets);
	find_clashes(L, u, n, ip_clash);
}

static void check_ports(struct loader *L)
{
	struct env *e = L->e;
	struct use *u = NULL;
	size_t n = 0;
	for (size_t i = 0; i < e->nmachines; i++)
		for (size_t j = 0; j < e->machines[i].nports; j++) {
			const struct port_fwd *p = &e->machines[i].ports[j];
			if (!p->host)
				continue;
			u = xrealloc(u, (n + 1) * sizeof(*u));
			u[n++] = (struct use){(uint64_t)p->host << 1 | p->udp, p->host_ip, i, j};
		}
	find_clashes(L, u, n, port_clash);
}

/* ---- per machine: box, primary ---- */

static void check_machines(struct loader *L)
{
	const struct machine_cfg *primary = NULL;
	const struct ynode *defs = L->d->deferred[DEFER_DEFAULTS];
	for (size_t i = 0; i < L->e->nmachines; i++) {
		const struct machine_cfg *m = &L->e->machines[i];
		bool box_given = ynode_get(L->src[i]->val, "box") || ynode_get(defs, "box");
		if (!m->box && !box_given) /* else its value was reported */
			err_at(L, m->pos, "set `box:` on the machine or in `defaults`",
			       "machines.%s: no box", m->base_name);
		if (m->primary && primary)
			err_at(L, m->pos, "set `primary: true` on one machine",
			       "machines.%s.primary: only one machine can be primary (%s is too)",
			       m->base_name, primary->name);
		if (m->primary && !primary)
			primary = m;
	}
}

/* ---- ansible groups and targets ---- */

static bool has_group(const struct ansible_step *a, const char *name)
{
	for (size_t i = 0; i < a->ngroups; i++)
		if (strcmp(a->groups[i].name, name) == 0)
			return true;
	return false;
}

/* Every machine in one of its groups, or every machine when it has none. */
static struct strv targets(const struct loader *L, const struct ansible_step *a)
{
	bool *seen = xcalloc(L->e->nmachines, sizeof(*seen));
	for (size_t i = 0; i < L->e->nmachines; i++)
		seen[i] = !a->ngroups;
	for (size_t i = 0; i < a->ngroups; i++)
		for (size_t j = 0; j < a->groups[i].hosts.n; j++)
			mark_ref(L, a->groups[i].hosts.v[j], seen);
	struct strv out = marked(L, seen);
	free(seen);
	return out;
}

static void check_groups(struct loader *L, struct step *s, const char *where)
{
	struct ansible_step *a = &s->ansible;
	for (size_t i = 0; i < a->ngroups; i++) {
		struct ansible_group *g = &a->groups[i];
		_cleanup_free_ char *path = xasprintf("%s.ansible.groups.%s", where, g->name);
		resolve_refs(L, &g->hosts, NULL, g->pos, path);
		if (env_machine(L->e, g->name))
			warn_at(L, g->pos, "rename the group: Ansible warns, and `--limit NAME` means both",
				"%s: group `%s` has the name of a machine", path, g->name);
		for (size_t j = 0; j < g->children.n; j++)
			if (!has_group(a, g->children.v[j]))
				err_at(L, g->pos, "list groups defined in this step's `groups`",
				       "%s:children: unknown group `%s`", path, g->children.v[j]);
	}
}

static void check_steps(struct loader *L)
{
	struct env *e = L->e;
	for (size_t i = 0; i < e->nmachines; i++)
		for (size_t j = 0; j < e->machines[i].nsteps; j++) {
			struct step *s = &e->machines[i].steps[j];
			_cleanup_free_ char *where =
				xasprintf("machines.%s.provision[%u]", e->machines[i].base_name, s->index);
			if (s->kind == STEP_ANSIBLE)
				check_groups(L, s, where);
		}
	for (size_t j = 0; j < e->nsteps; j++) {
		struct ansible_step *a = &e->steps[j].ansible;
		_cleanup_free_ char *where = xasprintf("provision[%u]", e->steps[j].index);
		if (e->steps[j].kind != STEP_ANSIBLE)
			continue; /* reported: only ansible runs across machines */
		check_groups(L, &e->steps[j], where);
		a->targets = targets(L, a);
	}
}

/* ---- step ids ---- */

static void hex_of(const unsigned char *md, unsigned n, char *hex)
{
	for (unsigned i = 0; i < n; i++)
		sprintf(hex + 2 * i, "%02x", md[i]);
}

static void sha256_hex(const char *data, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
	hex_of(md, n, hex);
}

/* Regular files only: a directory's id covers its path, not its contents. */
static int sha256_file(const char *path, char hex[65])
{
	struct stat st;
	FILE *f = stat(path, &st) == 0 && S_ISREG(st.st_mode) ? fopen(path, "rb") : NULL;
	if (!f)
		return -1;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char chunk[65536], md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	size_t got;
	EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
	while ((got = fread(chunk, 1, sizeof(chunk), f)) > 0)
		EVP_DigestUpdate(ctx, chunk, got);
	int rc = ferror(f) ? -1 : 0;
	EVP_DigestFinal_ex(ctx, md, &n);
	EVP_MD_CTX_free(ctx);
	fclose(f);
	hex_of(md, n, hex);
	return rc;
}

/* The files a step reads: their content is part of its id, so editing a
 * script makes a new step. */
static const struct {
	enum step_kind kind;
	size_t off;
	const char *key;
} hashed[] = {
	{STEP_SHELL, offsetof(struct step, shell.path), "path_sha256"},
	{STEP_FILE, offsetof(struct step, file.source), "source_sha256"},
	{STEP_ANSIBLE, offsetof(struct step, ansible.playbook), "playbook_sha256"},
	{STEP_ANSIBLE, offsetof(struct step, ansible.inventory), "inventory_sha256"},
};

/* sha256 of the step's config as JSON with sorted keys (envkeys_step_config:
 * what it does, not its name or run policy) plus the content hash of each
 * file it reads. */
static void base_id(const char *dir, struct step *s, unsigned flags)
{
	json_t *o = envkeys_step_config(s, dir);
	for (size_t i = 0; i < sizeof(hashed) / sizeof(hashed[0]); i++) {
		const char *p = *(char **)((char *)s + hashed[i].off);
		char hex[65];
		if (hashed[i].kind == s->kind && p && !(flags & ENVFILE_NO_FS) &&
		    sha256_file(p, hex) == 0)
			json_object_set_new(o, hashed[i].key, json_string(hex));
	}
	char *text = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	sha256_hex(text, strlen(text), s->id);
	free(text);
	json_decref(o);
}

static int step_by_id(const void *a, const void *b)
{
	const struct step *x = *(const struct step *const *)a, *y = *(const struct step *const *)b;
	int c = strcmp(x->id, y->id);
	return c ? c : (x > y) - (x < y);
}

/* Identical steps in one list (apt-get update twice) get distinct ids, the
 * k-th repeat sha256("<id>:k"), so each runs. */
static void step_ids(const char *dir, struct step *v, size_t n, unsigned flags)
{
	struct step **p = xcalloc(n, sizeof(*p));
	for (size_t i = 0; i < n; i++) {
		base_id(dir, &v[i], flags);
		p[i] = &v[i];
	}
	qsort(p, n, sizeof(*p), step_by_id);
	char base[65] = "";
	for (size_t i = 0, k = 0; i < n; i++) {
		if (strcmp(p[i]->id, base) != 0) {
			memcpy(base, p[i]->id, sizeof(base));
			k = 0;
			continue;
		}
		_cleanup_free_ char *again = xasprintf("%s:%zu", base, ++k);
		sha256_hex(again, strlen(again), p[i]->id);
	}
	free(p);
}

/* ---- loading ---- */

static struct env *env_new(const char *name)
{
	struct env *e = xcalloc(1, sizeof(*e));
	e->path = path_abs(NULL, name);
	e->dir = path_dirname(e->path);
	e->state_dir = path_join(e->dir, ".corral");
	e->version = 1;
	return e;
}

static void check_env(struct loader *L, const struct ynode *root)
{
	envkeys_top(L->d, root, L->e);
	if (root->type != Y_MAP)
		return;
	load_machines(L, root);
	index_names(L);
	check_machines(L);
	check_deps(L);
	check_networks(L);
	check_ports(L);
	check_steps(L);
}

/* By position, stable: the order a reader goes through the file. */
static void sort_errors(struct diag_list *errs, size_t first)
{
	for (size_t i = first + 1; i < errs->n; i++) {
		struct diag d = errs->v[i];
		size_t j = i;
		for (; j > first && (errs->v[j - 1].line > d.line ||
				     (errs->v[j - 1].line == d.line && errs->v[j - 1].col > d.col));
		     j--)
			errs->v[j] = errs->v[j - 1];
		errs->v[j] = d;
	}
}

static void parse(struct loader *L, const char *name, const char *data, size_t len)
{
	struct ytree t = {0};
	if (len > ENVFILE_MAX_BYTES)
		ydiag(L->d->errs, name, 0, 0, "an envfile is at most 4 MiB; is this the right file?",
		      "too large (%zu bytes)", len);
	else if (ytree_parse(name, data, len, &t, L->d->errs) == 0 && ynode_null(t.root))
		ydiag(L->d->errs, name, 0, 0,
		      "start from `corral init` or examples/quickstart/corral.yaml",
		      "the envfile is empty");
	else if (t.root)
		check_env(L, t.root);
	ytree_free(&t);
}

int envfile_load_buffer(const char *name, const char *data, size_t len, unsigned flags,
			struct env **out, struct diag_list *errs)
{
	size_t first = errs->n;
	struct env *e = env_new(name);
	struct dec d = {.file = name, .dir = e->dir, .flags = flags, .errs = errs};
	struct loader L = {.d = &d, .e = e};
	parse(&L, name, data, len);
	if (errs->n == first) {
		for (size_t i = 0; i < e->nmachines; i++)
			step_ids(e->dir, e->machines[i].steps, e->machines[i].nsteps, flags);
		step_ids(e->dir, e->steps, e->nsteps, flags);
	}
	sort_errors(errs, first);
	buf_free(&d.path);
	free(L.src);
	free(L.refs);
	if (errs->n > first) {
		env_free(e);
		return -1;
	}
	*out = e;
	return 0;
}

int envfile_load(const char *path, struct env **out, struct diag_list *errs)
{
	struct diag d = {0};
	_cleanup_free_ char *data = NULL;
	size_t len;
	if (read_file(path, ENVFILE_MAX_BYTES, &data, &len, &d) < 0) {
		ydiag(errs, path, 0, 0, "an envfile is a YAML file of at most 4 MiB", "%s", d.msg);
		return -1;
	}
	return envfile_load_buffer(path, data, len, 0, out, errs);
}

void env_free(struct env *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nmachines; i++)
		envkeys_machine_free(&e->machines[i]);
	free(e->machines);
	envkeys_env_free(e);
	diag_list_free(&e->warnings);
	free(e->path);
	free(e->dir);
	free(e->state_dir);
	free(e);
}

/* ---- finding and querying ---- */

int envfile_find(const char *explicit, const char *start_dir, char **path, struct diag *d)
{
	_cleanup_free_ char *dir = path_abs(NULL, start_dir);
	if (explicit) {
		_cleanup_free_ char *abs = path_abs(dir, explicit), *here = path_abs(NULL, explicit);
		if (!path_exists(abs)) {
			diag_code(d, DIAG_USAGE, "%s: no such file", explicit);
			return diag_hint(d, "check the path given to -f");
		}
		/* As given when that names the same file: errors then read as typed. */
		*path = strcmp(abs, here) == 0 ? xstrdup(explicit) : xstrdup(abs);
		return 0;
	}
	for (char *at = xstrdup(dir);;) {
		char *p = path_join(at, "corral.yaml");
		if (path_exists(p)) {
			free(at);
			*path = p;
			return 0;
		}
		free(p);
		bool root = strcmp(at, "/") == 0;
		char *up = path_dirname(at);
		free(at);
		at = up;
		if (root) {
			free(at);
			break;
		}
	}
	diag_code(d, DIAG_USAGE, "no corral.yaml in %s or any parent directory", dir);
	return diag_hint(d, "run `corral init` to create one, or pass -f FILE");
}

const struct machine_cfg *env_machine(const struct env *e, const char *name)
{
	for (size_t i = 0; i < e->nmachines; i++)
		if (strcmp(e->machines[i].name, name) == 0)
			return &e->machines[i];
	return NULL;
}

const struct network_cfg *env_network(const struct env *e, const char *name)
{
	for (size_t i = 0; e && i < e->nnetworks; i++)
		if (strcmp(e->networks[i].name, name) == 0)
			return &e->networks[i];
	return NULL;
}

const char *mcfg_ssh_user(const struct machine_cfg *mc)
{
	return mc && mc->ssh.user ? mc->ssh.user : ENV_SSH_USER;
}

unsigned mcfg_ssh_port(const struct machine_cfg *mc)
{
	return mc && mc->ssh.port ? mc->ssh.port : ENV_SSH_PORT;
}

uint64_t mcfg_halt_timeout_ms(const struct machine_cfg *mc)
{
	return mc ? mc->graceful_halt_timeout_ms : ENV_HALT_TIMEOUT_MS; /* 0s: no grace */
}

const struct machine_cfg *env_primary(const struct env *e)
{
	for (size_t i = 0; i < e->nmachines; i++)
		if (e->machines[i].primary)
			return &e->machines[i];
	return e->nmachines == 1 ? &e->machines[0] : NULL;
}

uint32_t *env_fixed_ips(const struct env *e, const char *network, size_t *n)
{
	size_t max = 0;
	for (size_t i = 0; i < e->nmachines; i++)
		max += e->machines[i].nnetworks;
	uint32_t *ips = xcalloc(max + 1, sizeof(*ips));
	*n = 0;
	for (size_t i = 0; i < e->nmachines; i++)
		for (size_t j = 0; j < e->machines[i].nnetworks; j++) {
			const struct net_attach *a = &e->machines[i].networks[j];
			if (a->ip && strcmp(a->network, network) == 0 && parse_ipv4(a->ip, &ips[*n]) == 0)
				(*n)++;
		}
	return ips;
}
