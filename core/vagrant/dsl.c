/* Vagrant's configuration objects: `Vagrant.configure`, `config.vm.*`
 * (box, hostname, define, provider blocks, network, synced_folder, disk),
 * `config.ssh.*`, ENV, and every other namespace (`config.trigger`,
 * plugins) as a note. Each setting lands in its scope's YAML tree under
 * the key corral uses; a setting corral has no key for returns "unknown"
 * with the reason, which the interpreter notes at the statement. The
 * provisioners are in dsl_step.c. */
#include <ctype.h>
#include <stdio.h>
#include <strings.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/config/envfile.h"
#include "core/config/yamltree.h"
#include "core/vagrant/vf_priv.h"

typedef struct value *(*vm_fn)(struct interp *I, struct scope *sc, struct value **a, size_t n,
			       const struct blk *blk);

static struct handle *hnew(struct interp *I, enum hk k, struct scope *sc, const char *name)
{
	struct handle *h = ar_alloc(I->ar, sizeof(*h));
	h->k = k;
	h->sc = sc;
	h->name = name;
	return h;
}

struct scope *scope_new(struct interp *I, const char *vname, int line)
{
	struct scope *sc = ar_alloc(I->ar, sizeof(*sc));
	sc->vname = vname;
	sc->line = line;
	sc->cfg = y_map(I->ar);
	if (vname)
		vec_push(I->ar, &I->machines, sc);
	return sc;
}

/* Sets a.b.c in m, making the maps on the way. */
static void set_path(struct interp *I, struct yv *m, const char *path, struct yv *v)
{
	const char *dot = strchr(path, '.');
	if (!dot) {
		y_set(I->ar, m, ar_strdup(I->ar, path), v);
		return;
	}
	const char *key = ar_strndup(I->ar, path, (size_t)(dot - path));
	struct yv *sub = y_get(m, key);
	if (!sub || sub->k != YV_MAP) {
		sub = y_map(I->ar);
		y_set(I->ar, m, key, sub);
	}
	set_path(I, sub, dot + 1, v);
}

void scope_set(struct interp *I, struct scope *sc, const char *key, struct yv *v)
{
	set_path(I, sc->cfg, key, v);
}

static void list_push(struct interp *I, struct scope *sc, const char *key, struct yv *item)
{
	struct yv *l = y_get(sc->cfg, key);
	if (!l) {
		l = y_seq(I->ar);
		y_set(I->ar, sc->cfg, key, l);
	}
	y_push(I->ar, l, item);
}

/* ---- converting values ---- */

static bool int_of(const struct value *v, long long *out)
{
	if (v && v->k == V_INT) {
		*out = v->i;
		return true;
	}
	if (v && v->k == V_STR && *v->s) {
		char *e;
		*out = strtoll(v->s, &e, 10);
		return !*e;
	}
	return false;
}

static struct value *want(struct interp *I, const char *what, const struct value *v)
{
	return v_unknown(I, "%s must be %s, not %s", what, "a plain value", v ? v_kind_name(v) : "missing");
}

const char *dsl_size(struct interp *I, const struct value *v, uint64_t min, uint64_t max)
{
	long long n;
	char u = 'M';
	if (!int_of(v, &n)) {
		char *e;
		if (!v || v->k != V_STR)
			return NULL;
		n = strtoll(v->s, &e, 10);
		u = (char)toupper((unsigned char)*e);
		if (e == v->s || !u || !strchr("MGT", u) ||
		    !(e[1] == '\0' || strcasecmp(e + 1, "B") == 0 || strcasecmp(e + 1, "iB") == 0))
			return NULL;
	}
	const char *s = n > 0 && n < (1LL << 40) ? ar_printf(I->ar, "%lld%c", n, u) : NULL;
	uint64_t bytes;
	return s && parse_size(s, &bytes) == 0 && bytes >= min && bytes <= max ? s : NULL;
}

const char *dsl_memory(struct interp *I, const struct value *v)
{
	return dsl_size(I, v, 16ull << 20, 16ull << 40);
}

const char *dsl_path(struct interp *I, const struct value *v, const char *what, bool must_exist)
{
	const char *p = v_str_of(I, v);
	if (!p || !*p || !vf_one_line(p) || (p[0] == '~' && p[1] != '/'))
		return NULL; /* corral expands ~/ only */
	const char *home = getenv("HOME");
	_cleanup_free_ char *abs = str_starts(p, "~/") && home ? path_join(home, p + 2)
				   : path_join(I->o->src_dir ? I->o->src_dir : ".", p);
	if (must_exist && !path_exists(abs)) {
		note_add(I, false, "%s — %s `%s` does not exist", node_text(I, I->stmt), what, p);
		return NULL;
	}
	if (I->o->path_dir && p[0] != '/' && p[0] != '~')
		return ar_strdup(I->ar, abs);
	return p;
}

void dsl_set_resource(struct interp *I, struct scope *sc, const char *prov, const char *key,
		      struct yv *v)
{
	const char **by = strcmp(key, "memory") == 0 ? &sc->mem_by : &sc->cpus_by;
	struct yv *old = y_get(sc->cfg, key);
	if (old && *by && strcmp(*by, prov) && !y_equal(old, v)) {
		note_add(I, true, "the %s block sets %s to %s; corral keeps %s from the %s block",
			 prov, key, v->k == YV_INT ? ar_printf(I->ar, "%lld", v->i) : v->s,
			 old->k == YV_INT ? ar_printf(I->ar, "%lld", old->i) : old->s, *by);
		return;
	}
	*by = prov;
	scope_set(I, sc, key, v);
}

/* ---- ENV ---- */

static bool env_noted(struct interp *I, const char *name)
{
	for (size_t i = 0; i < I->env_noted.n; i++)
		if (strcmp(I->env_noted.v[i], name) == 0)
			return true;
	vec_push(I->ar, &I->env_noted, (void *)name);
	return false;
}

static struct value *env_read(struct interp *I, const char *name, struct value *dflt)
{
	if (!env_noted(I, name)) {
		if (dflt && v_str_of(I, dflt))
			note_add(I, true, "ENV['%s'] is read as unset: its default `%s` is used", name,
				 v_str_of(I, dflt));
		else
			note_add(I, true, "ENV['%s'] is read as unset", name);
	}
	return dflt ? dflt : v_nil(I);
}

static const struct {
	const char *vagrant, *corral;
} provider_names[] = {{"libvirt", "kvm"}, {"qemu", "kvm"}, {"virtualbox", "virtualbox"}};

static struct value *env_call(struct interp *I, const char *m, struct value **a, size_t n)
{
	const char *name = n ? v_str_of(I, a[0]) : NULL;
	if (!name)
		return v_unknown(I, "ENV.%s", m);
	if (strcmp(m, "fetch") == 0)
		return env_read(I, name, n > 1 ? a[1] : NULL);
	if (strcmp(m, "[]") == 0)
		return env_read(I, name, NULL);
	if (strcmp(m, "key?") == 0 || strcmp(m, "has_key?") == 0 || strcmp(m, "include?") == 0) {
		env_read(I, name, NULL);
		return v_bool(I, false);
	}
	if (strcmp(m, "[]=") == 0 && n == 2 && strcmp(name, "VAGRANT_DEFAULT_PROVIDER") == 0) {
		const char *p = v_str_of(I, a[1]);
		for (size_t i = 0; p && i < sizeof(provider_names) / sizeof(provider_names[0]); i++)
			if (strcmp(p, provider_names[i].vagrant) == 0) {
				I->default_provider = provider_names[i].corral;
				if (strcmp(p, provider_names[i].corral))
					note_add(I, true, "the default provider %s is corral's %s", p,
						 provider_names[i].corral);
				return v_nil(I);
			}
		return v_unknown(I, "corral has no `%s` provider", p ? p : "?");
	}
	return v_unknown(I, "ENV.%s: Vagrant's own environment", strcmp(m, "[]=") == 0 ? "[]= sets" : m);
}

/* ---- Vagrant, config, namespaces ---- */

static struct value *vagrant_call(struct interp *I, const char *m, struct value **a, size_t n,
				  const struct blk *blk)
{
	if (strcmp(m, "configure") == 0) {
		const char *ver = n ? v_str_of(I, a[0]) : NULL;
		if (!ver || strcmp(ver, "2") || !blk)
			return v_unknown(I, "Vagrant.configure(\"%s\"): corral import reads version 2",
					 ver ? ver : "?");
		I->configured = true;
		I->configure_line = I->stmt ? I->stmt->line : 0;
		struct value *cfg = v_handle(I, hnew(I, H_CONFIG, I->global, NULL));
		run_block(I, blk, &cfg, 1);
		return v_nil(I);
	}
	if (strcmp(m, "require_version") == 0)
		return v_nil(I);
	if (strcmp(m, "has_plugin?") == 0)
		return v_unknown(I, "whether a Vagrant plugin is installed");
	if (strcmp(m, "::Config") == 0)
		return v_unknown(I, "Vagrant::Config.run, the version 1 syntax: corral import reads "
				    "Vagrant.configure(\"2\")");
	if (str_starts(m, "::"))
		return v_unknown(I, "Vagrant%s, Vagrant's own Ruby API", m);
	return v_unknown(I, "Vagrant.%s", m);
}

static const struct {
	const char *prefix, *why;
} ns_why[] = {
	{"config.vagrant", "a setting of Vagrant itself"},
	{"config.winrm", "corral logs in over SSH only"},
	{"config.winssh", "corral logs in over SSH only"},
	{"config.push", "corral has no push"},
	{"config.nfs", "corral has no NFS synced folders"},
	{"config.package", "corral has no package command"},
	{"override", "a provider override, which applies only under that provider"},
};

static struct value *ns_call(struct interp *I, struct handle *h, const char *m, size_t n,
			     const struct blk *blk)
{
	if (!n && !blk && !strchr(m, '=') && strcmp(h->name, "override") == 0)
		return v_handle(I, hnew(I, H_NS, h->sc, ar_printf(I->ar, "%s.%s", h->name, m)));
	for (size_t i = 0; i < sizeof(ns_why) / sizeof(ns_why[0]); i++)
		if (str_starts(h->name, ns_why[i].prefix))
			return v_unknown(I, "%s", ns_why[i].why);
	if (!n && !blk && !strchr(m, '='))
		return v_handle(I, hnew(I, H_NS, h->sc, ar_printf(I->ar, "%s.%s", h->name, m)));
	return v_unknown(I, "`%s` is a Vagrant plugin's setting; corral has no plugins", h->name);
}

static struct value *config_call(struct interp *I, struct handle *h, const char *m, size_t n,
				 const struct blk *blk)
{
	if (n || blk || strchr(m, '='))
		return v_unknown(I, "`config.%s`, which corral import does not know", m);
	if (strcmp(m, "vm") == 0)
		return v_handle(I, hnew(I, H_VM, h->sc, NULL));
	if (strcmp(m, "ssh") == 0)
		return v_handle(I, hnew(I, H_SSH, h->sc, NULL));
	return v_handle(I, hnew(I, H_NS, h->sc, ar_printf(I->ar, "config.%s", m)));
}

/* ---- config.vm ---- */

static struct value *arg(struct value **a, size_t n, size_t i) { return i < n ? a[i] : NULL; }

static struct value *opts_of(struct value **a, size_t n)
{
	return n && a[n - 1]->k == V_HASH ? a[n - 1] : NULL;
}

/* Options of a call other than `known`, as "a, b" (NULL when none). */
static const char *other_opts(struct interp *I, const struct value *opts, const char *const *known)
{
	struct buf b = {0};
	for (size_t i = 0; opts && i < opts->keys.n; i++) {
		const char *k = v_str_of(I, opts->keys.v[i]);
		bool ok = false;
		for (const char *const *p = known; k && *p && !ok; p++)
			ok = strcmp(k, *p) == 0;
		if (!ok)
			buf_printf(&b, "%s%s", b.len ? ", " : "", k ? k : "?");
	}
	const char *r = b.len ? ar_strdup(I->ar, b.s) : NULL;
	buf_free(&b);
	return r;
}

/* Notes the options of the statement other than `known`: "WHAT options corral does not have". */
static void note_other_opts(struct interp *I, const struct value *opts, const char *const *known,
			    const char *what)
{
	const char *other = other_opts(I, opts, known);
	if (other)
		note_add(I, false, "%s — %s options corral does not have: %s", node_text(I, I->stmt),
			 what, other);
}

static struct value *vm_box(struct interp *I, struct scope *sc, struct value **a, size_t n,
			    const struct blk *blk)
{
	(void)n, (void)blk;
	const char *s = v_str_of(I, a[0]);
	if (!s || !valid_box(s))
		return s ? v_unknown(I, "`%s` is not a box name corral takes", s) : want(I, "box", a[0]);
	scope_set(I, sc, "box", y_str(I->ar, s));
	return v_nil(I);
}

static struct value *vm_str_key(struct interp *I, struct scope *sc, const char *key,
				const struct value *v, bool (*valid)(const char *))
{
	const char *s = v_str_of(I, v);
	if (!s || !*s)
		return want(I, key, v);
	if (!valid(s))
		return v_unknown(I, "%s `%s` is not one corral takes", key, s);
	scope_set(I, sc, key, y_str(I->ar, s));
	return v_nil(I);
}

static struct value *vm_box_version(struct interp *I, struct scope *sc, struct value **a,
				    size_t n, const struct blk *blk)
{
	(void)n, (void)blk;
	return vm_str_key(I, sc, "box_version", a[0], valid_constraint);
}

static struct value *vm_box_url(struct interp *I, struct scope *sc, struct value **a, size_t n,
				const struct blk *blk)
{
	(void)n, (void)blk;
	struct value *v = a[0];
	if (v->k == V_ARRAY && v->items.n) {
		if (v->items.n > 1)
			note_add(I, true, "corral takes one box_url: the first, %s",
				 v_str_of(I, v->items.v[0]) ? v_str_of(I, v->items.v[0]) : "?");
		v = v->items.v[0];
	}
	return vm_str_key(I, sc, "box_url", v, valid_url);
}

static struct value *vm_check_update(struct interp *I, struct scope *sc, struct value **a,
				     size_t n, const struct blk *blk)
{
	(void)sc, (void)n, (void)blk;
	if (a[0]->k != V_BOOL)
		return want(I, "box_check_update", a[0]);
	if (a[0]->b)
		note_add(I, true, "corral does not check for box updates on `up`; "
				  "`corral box outdated` does");
	return v_nil(I);
}

static struct value *vm_checksum(struct interp *I, struct scope *sc, struct value **a, size_t n,
				 const struct blk *blk)
{
	(void)n, (void)blk;
	const char *s = v_str_of(I, a[0]);
	if (!s || !vf_one_line(s))
		return want(I, "box_download_checksum", a[0]);
	scope_set(I, sc, "_checksum", y_str(I->ar, s));
	return v_nil(I);
}

static struct value *vm_checksum_type(struct interp *I, struct scope *sc, struct value **a,
				      size_t n, const struct blk *blk)
{
	(void)n, (void)blk;
	static const char *const types[] = {"md5", "sha1", "sha256", "sha384", "sha512", NULL};
	const char *s = v_str_of(I, a[0]);
	for (const char *const *t = types; s && *t; t++)
		if (strcasecmp(s, *t) == 0) {
			scope_set(I, sc, "_checksum_type", y_str(I->ar, *t));
			return v_nil(I);
		}
	return v_unknown(I, "corral checks md5, sha1, sha256, sha384 and sha512 checksums");
}

static struct value *vm_hostname(struct interp *I, struct scope *sc, struct value **a, size_t n,
				 const struct blk *blk)
{
	(void)n, (void)blk;
	if (a[0]->k == V_NIL)
		return v_nil(I);
	const char *s = v_str_of(I, a[0]);
	if (!s || !valid_hostname(s))
		return s ? v_unknown(I, "`%s` is not a host name corral takes (RFC 1123)", s)
			 : want(I, "hostname", a[0]);
	scope_set(I, sc, "hostname", y_str(I->ar, s));
	return v_nil(I);
}

static struct value *seconds_key(struct interp *I, struct scope *sc, const char *key,
				 const struct value *v)
{
	long long s;
	uint64_t ms;
	const char *d = int_of(v, &s) && s > 0 && s < (1LL << 32) ? ar_printf(I->ar, "%llds", s) : NULL;
	if (!d || parse_duration(d, &ms) < 0)
		return want(I, key, v);
	scope_set(I, sc, key, y_plain(I->ar, d));
	return v_nil(I);
}

static struct value *vm_boot_timeout(struct interp *I, struct scope *sc, struct value **a,
				     size_t n, const struct blk *blk)
{
	(void)n, (void)blk;
	return seconds_key(I, sc, "ssh.boot_timeout", a[0]);
}

static struct value *vm_halt_timeout(struct interp *I, struct scope *sc, struct value **a,
				     size_t n, const struct blk *blk)
{
	(void)n, (void)blk;
	return seconds_key(I, sc, "graceful_halt_timeout", a[0]);
}

static struct value *vm_communicator(struct interp *I, struct scope *sc, struct value **a,
				     size_t n, const struct blk *blk)
{
	(void)sc, (void)n, (void)blk;
	const char *s = v_str_of(I, a[0]);
	if (s && strcmp(s, "ssh") == 0)
		return v_nil(I);
	return v_unknown(I, "corral logs in over SSH only");
}

static struct value *vm_guest(struct interp *I, struct scope *sc, struct value **a, size_t n,
			      const struct blk *blk)
{
	(void)sc, (void)n, (void)blk;
	const char *s = v_str_of(I, a[0]);
	if (s && strcmp(s, "windows") == 0)
		return v_unknown(I, "corral provisions over SSH: a Windows guest needs an SSH "
				    "server and `ssh.user`");
	return v_unknown(I, "corral finds what it needs of the guest itself");
}

static struct value *vm_define(struct interp *I, struct scope *sc, struct value **a, size_t n,
			       const struct blk *blk)
{
	if (sc != I->global)
		return v_unknown(I, "a machine defined inside a machine");
	const char *name = v_str_of(I, a[0]);
	if (!name || !*name)
		return want(I, "a machine's name", a[0]);
	struct scope *m = NULL;
	for (size_t i = 0; i < I->machines.n && !m; i++)
		if (strcmp(((struct scope *)I->machines.v[i])->vname, name) == 0)
			m = I->machines.v[i];
	if (!m)
		m = scope_new(I, ar_strdup(I->ar, name), I->stmt ? I->stmt->line : 0);
	struct scope *saved = I->cur;
	I->cur = m;
	struct value *opts = n > 1 ? a[1] : NULL;
	struct value *primary = v_opt(opts, "primary"), *autostart = v_opt(opts, "autostart");
	if (primary && primary->k == V_BOOL && primary->b)
		scope_set(I, m, "primary", y_bool(I->ar, true));
	if (autostart && autostart->k == V_BOOL && !autostart->b)
		scope_set(I, m, "autostart", y_bool(I->ar, false));
	note_other_opts(I, opts, (const char *const[]){"primary", "autostart", NULL}, "define");
	if (blk) {
		struct value *cfg = v_handle(I, hnew(I, H_CONFIG, m, NULL));
		run_block(I, blk, &cfg, 1);
	}
	I->cur = saved;
	return v_nil(I);
}

static const char *const providers[] = {"virtualbox", "libvirt", "vmware_desktop",
					"vmware_fusion", "vmware_workstation", "docker", "hyperv",
					"parallels", "qemu", NULL};

static struct value *vm_provider(struct interp *I, struct scope *sc, struct value **a, size_t n,
				 const struct blk *blk)
{
	(void)n;
	const char *p = v_str_of(I, a[0]);
	bool known = false;
	for (const char *const *k = providers; p && *k; k++)
		known |= strcmp(p, *k) == 0;
	if (!known)
		return v_unknown(I, "corral has no `%s` provider", p ? p : "?");
	if (!blk)
		return v_unknown(I, "a provider preference: corral picks one with `provider:` "
				    "(auto: container, kvm, virtualbox)");
	struct value *args[2] = {v_handle(I, hnew(I, H_PROVIDER, sc, ar_strdup(I->ar, p))),
				 v_handle(I, hnew(I, H_NS, sc, "override"))};
	run_block(I, blk, args, 2);
	return v_nil(I);
}

/* "10.0.0.5" (and a prefix from "/24"), as corral's parser reads it; -1 when not IPv4. */
static int parse_ip(const char *s, unsigned *addr, int *prefix)
{
	const char *slash = strchr(s, '/');
	char buf[16];
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	uint32_t a;
	if (n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (parse_ipv4(buf, &a) < 0)
		return -1;
	*addr = a;
	if (slash) {
		char *e;
		long p = isdigit((unsigned char)slash[1]) ? strtol(slash + 1, &e, 10) : -1;
		if (p < 0 || p > 32 || *e)
			return -1;
		*prefix = (int)p;
	}
	return 0;
}

static int mask_prefix(struct interp *I, const struct value *v)
{
	long long p;
	if (int_of(v, &p))
		return p >= 0 && p <= 32 ? (int)p : -1;
	const char *s = v_str_of(I, v);
	unsigned m;
	int ignored = 0;
	if (!s || parse_ip(s, &m, &ignored) < 0)
		return -1;
	int bits = 0;
	while (bits < 32 && (m & (1u << (31 - bits))))
		bits++;
	return (bits == 32 || !(m << bits)) ? bits : -1;
}

static struct value *private_network(struct interp *I, struct scope *sc, struct value *opts)
{
	struct yv *e = y_map(I->ar);
	const struct value *type = v_opt(opts, "type"), *ip = v_opt(opts, "ip");
	const char *t = type ? v_str_of(I, type) : NULL;
	if (t && strcmp(t, "dhcp") == 0) {
		y_set(I->ar, e, "_dhcp", y_bool(I->ar, true));
	} else if (t && strcmp(t, "static")) {
		return v_unknown(I, "a private network of type %s", t);
	} else {
		const char *s = v_str_of(I, ip);
		unsigned addr;
		int prefix = 24;
		if (!s)
			return v_unknown(I, "a private network needs `ip:` or `type: \"dhcp\"`");
		if (strchr(s, ':'))
			return v_unknown(I, "corral's networks are IPv4");
		if (parse_ip(s, &addr, &prefix) < 0)
			return v_unknown(I, "`%s` is not an IPv4 address", s);
		const struct value *mask = v_opt(opts, "netmask");
		if (mask && (prefix = mask_prefix(I, mask)) < 0)
			return v_unknown(I, "a netmask corral import does not read");
		y_set(I->ar, e, "_ip", y_str(I->ar, ar_printf(I->ar, "%u.%u.%u.%u", addr >> 24,
							      (addr >> 16) & 255, (addr >> 8) & 255,
							      addr & 255)));
		y_set(I->ar, e, "_prefix", y_int(I->ar, prefix));
	}
	note_other_opts(I, opts, (const char *const[]){"ip", "type", "netmask", NULL},
			"private network");
	y_set(I->ar, e, "_line", y_int(I->ar, I->stmt ? I->stmt->line : 0));
	list_push(I, sc, "networks", e);
	return v_nil(I);
}

static struct value *forwarded_port(struct interp *I, struct scope *sc, struct value *opts)
{
	long long guest, host;
	const struct value *id = v_opt(opts, "id");
	if (id && v_str_of(I, id) && strcmp(v_str_of(I, id), "ssh") == 0)
		return v_unknown(I, "corral forwards SSH itself");
	if (!int_of(v_opt(opts, "guest"), &guest) || guest < 1 || guest > 65535)
		return v_unknown(I, "a forwarded port needs `guest:` from 1 to 65535");
	struct yv *p = y_map(I->ar);
	p->flow = true;
	y_set(I->ar, p, "guest", y_int(I->ar, guest));
	const struct value *h = v_opt(opts, "host");
	if (h && (!int_of(h, &host) || host < 1 || host > 65535))
		return v_unknown(I, "`host:` must be a port from 1 to 65535");
	if (h)
		y_set(I->ar, p, "host", y_int(I->ar, host));
	const char *hip = v_str_of(I, v_opt(opts, "host_ip"));
	unsigned ignored;
	int pfx = 32;
	if (hip && *hip && parse_ip(hip, &ignored, &pfx) < 0)
		return v_unknown(I, "host_ip `%s` is not an IPv4 address", hip);
	if (hip && *hip)
		y_set(I->ar, p, "host_ip", y_str(I->ar, hip));
	const char *proto = v_str_of(I, v_opt(opts, "protocol"));
	if (proto && strcmp(proto, "tcp") && strcmp(proto, "udp"))
		return v_unknown(I, "protocol `%s`: corral forwards tcp and udp", proto);
	if (proto)
		y_set(I->ar, p, "protocol", y_str(I->ar, proto));
	const struct value *ac = v_opt(opts, "auto_correct");
	if (ac && ac->k == V_BOOL && ac->b)
		y_set(I->ar, p, "auto_correct", y_bool(I->ar, true));
	note_other_opts(I, opts, (const char *const[]){"guest", "host", "host_ip", "protocol",
							"auto_correct", NULL}, "forwarded port");
	y_set(I->ar, p, "_line", y_int(I->ar, I->stmt ? I->stmt->line : 0));
	list_push(I, sc, "ports", p);
	return v_nil(I);
}

static struct value *vm_network(struct interp *I, struct scope *sc, struct value **a, size_t n,
				const struct blk *blk)
{
	(void)blk;
	const char *type = v_str_of(I, a[0]);
	struct value *opts = opts_of(a, n);
	if (type && strcmp(type, "private_network") == 0)
		return private_network(I, sc, opts);
	if (type && strcmp(type, "forwarded_port") == 0)
		return forwarded_port(I, sc, opts);
	if (type && strcmp(type, "public_network") == 0)
		return v_unknown(I, "corral has no public (bridged) networks");
	return v_unknown(I, "a network of type %s", type ? type : "?");
}

static const struct {
	const char *vagrant, *corral;
} sync_types[] = {{"rsync", "rsync"}, {"virtualbox", "vboxsf"}, {"9p", "9p"}};

static struct value *vm_synced_folder(struct interp *I, struct scope *sc, struct value **a,
				      size_t n, const struct blk *blk)
{
	(void)blk;
	const char *guest = v_str_of(I, arg(a, n, 1));
	struct value *opts = n > 2 ? a[2] : NULL;
	const struct value *dis = v_opt(opts, "disabled");
	if (!guest || !valid_abs(guest) || !vf_one_line(guest))
		return v_unknown(I, "a synced folder's guest path must be absolute");
	struct yv *f = y_map(I->ar);
	f->flow = true;
	if (dis && dis->k == V_BOOL && dis->b) {
		y_set(I->ar, f, "guest", y_str(I->ar, guest));
		y_set(I->ar, f, "_disabled", y_bool(I->ar, true));
		list_push(I, sc, "synced_folders", f);
		return v_nil(I);
	}
	const char *host = dsl_path(I, a[0], "synced folder", false);
	if (!host)
		return want(I, "a synced folder's host path", a[0]);
	y_set(I->ar, f, "host", y_str(I->ar, host));
	y_set(I->ar, f, "guest", y_str(I->ar, guest));
	const char *type = v_str_of(I, v_opt(opts, "type"));
	bool mapped = !type;
	for (size_t i = 0; type && i < sizeof(sync_types) / sizeof(sync_types[0]); i++)
		if (strcmp(type, sync_types[i].vagrant) == 0) {
			y_set(I->ar, f, "type", y_str(I->ar, sync_types[i].corral));
			mapped = true;
		}
	if (!mapped)
		note_add(I, true, "synced folder type %s is corral's auto (bind, 9p or rsync, by "
				  "provider)", type);
	note_other_opts(I, opts, (const char *const[]){"type", "disabled", NULL}, "synced folder");
	list_push(I, sc, "synced_folders", f);
	return v_nil(I);
}

static struct value *vm_disk(struct interp *I, struct scope *sc, struct value **a, size_t n,
			     const struct blk *blk)
{
	(void)blk;
	const char *kind = v_str_of(I, a[0]);
	struct value *opts = opts_of(a, n);
	const struct value *primary = v_opt(opts, "primary");
	if (!kind || strcmp(kind, "disk") || !primary || primary->k != V_BOOL || !primary->b)
		return v_unknown(I, "corral sizes the primary disk only");
	const char *size = dsl_size(I, v_opt(opts, "size"), 1ull << 20, 64ull << 40);
	if (!size)
		return v_unknown(I, "a disk size corral import does not read");
	scope_set(I, sc, "disk", y_plain(I->ar, size));
	return v_nil(I);
}

static const struct {
	const char *name;
	vm_fn fn;
	size_t min_args;
} vm_table[] = {
	{"box=", vm_box, 1}, {"box_version=", vm_box_version, 1}, {"box_url=", vm_box_url, 1},
	{"box_check_update=", vm_check_update, 1}, {"box_download_checksum=", vm_checksum, 1},
	{"box_download_checksum_type=", vm_checksum_type, 1}, {"hostname=", vm_hostname, 1},
	{"boot_timeout=", vm_boot_timeout, 1}, {"graceful_halt_timeout=", vm_halt_timeout, 1},
	{"communicator=", vm_communicator, 1}, {"guest=", vm_guest, 1},
	{"define", vm_define, 1}, {"provider", vm_provider, 1}, {"network", vm_network, 1},
	{"synced_folder", vm_synced_folder, 2}, {"provision", NULL, 1}, {"disk", vm_disk, 1},
};

static struct value *vm_call(struct interp *I, struct scope *sc, const char *m, struct value **a,
			     size_t n, const struct blk *blk)
{
	for (size_t i = 0; i < sizeof(vm_table) / sizeof(vm_table[0]); i++) {
		if (strcmp(m, vm_table[i].name))
			continue;
		if (n < vm_table[i].min_args)
			return v_unknown(I, "config.vm.%s without its arguments", m);
		return vm_table[i].fn ? vm_table[i].fn(I, sc, a, n, blk)
				      : dsl_provision(I, sc, a, n, blk);
	}
	if (strcmp(m, "box_download_insecure=") == 0)
		return v_unknown(I, "corral checks TLS (`corral box add --insecure` does not, once)");
	size_t len = strlen(m);
	return v_unknown(I, "`config.vm.%.*s` has no corral equivalent",
			 (int)(m[len - 1] == '=' ? len - 1 : len), m);
}

/* ---- config.ssh ---- */

static struct value *ssh_call(struct interp *I, struct scope *sc, const char *m, struct value **a,
			      size_t n)
{
	struct value *v = n ? a[0] : NULL;
	if (strcmp(m, "username=") == 0) {
		const char *s = v_str_of(I, v);
		if (!s || !valid_user(s))
			return v_unknown(I, "`%s` is not a user name corral takes", s ? s : "?");
		scope_set(I, sc, "ssh.user", y_str(I->ar, s));
	} else if (strcmp(m, "private_key_path=") == 0) {
		if (v && v->k == V_ARRAY && v->items.n) {
			if (v->items.n > 1)
				note_add(I, true, "corral takes one first-boot key: the first");
			v = v->items.v[0];
		}
		const char *p = dsl_path(I, v, "the key", true);
		if (!p)
			return v_nil(I); /* noted */
		scope_set(I, sc, "ssh.private_key", y_str(I->ar, p));
	} else if (strcmp(m, "forward_agent=") == 0 && v && v->k == V_BOOL) {
		scope_set(I, sc, "ssh.forward_agent", y_bool(I->ar, v->b));
	} else if (strcmp(m, "guest_port=") == 0) {
		long long p;
		if (!int_of(v, &p) || p < 1 || p > 65535)
			return want(I, "guest_port", v);
		scope_set(I, sc, "ssh.port", y_int(I->ar, p));
	} else if (strcmp(m, "insert_key=") == 0 && v && v->k == V_BOOL) {
		if (!v->b)
			return v_unknown(I, "corral always replaces Vagrant's insecure key with "
					    "the machine's own");
	} else if (strcmp(m, "port=") == 0) {
		return v_unknown(I, "the port Vagrant connects to; corral's ssh.port is the "
				    "guest's (config.ssh.guest_port)");
	} else {
		size_t len = strlen(m);
		return v_unknown(I, "`config.ssh.%.*s` has no corral equivalent",
				 (int)(m[len - 1] == '=' ? len - 1 : len), m);
	}
	return v_nil(I);
}

/* ---- provider blocks ---- */

static bool is_vmware(const char *p) { return str_starts(p, "vmware_"); }

static struct value *set_memory(struct interp *I, struct handle *h, const struct value *v)
{
	const char *m = dsl_memory(I, v);
	if (!m)
		return v_unknown(I, "memory corral import does not read (MiB from 16)");
	dsl_set_resource(I, h->sc, h->name, "memory", y_plain(I->ar, m));
	return v_nil(I);
}

static struct value *set_cpus(struct interp *I, struct handle *h, const struct value *v)
{
	long long c;
	if (!int_of(v, &c) || c < 1 || c > 1024)
		return v_unknown(I, "cpus must be a number from 1 to 1024");
	dsl_set_resource(I, h->sc, h->name, "cpus", y_int(I->ar, c));
	return v_nil(I);
}

/* vb.customize ["modifyvm", :id, "--memory", 2048, ...]: --memory and --cpus. */
static struct value *customize(struct interp *I, struct handle *h, const struct value *v)
{
	if (!v || v->k != V_ARRAY || v->items.n < 2)
		return v_unknown(I, "a VBoxManage command corral does not run");
	const char *cmd = v_str_of(I, v->items.v[0]), *id = v_str_of(I, v->items.v[1]);
	if (!cmd || strcmp(cmd, "modifyvm") || !id || strcmp(id, "id"))
		return v_unknown(I, "VBoxManage %s, which corral does not run", cmd ? cmd : "?");
	struct buf rest = {0};
	for (size_t i = 2; i + 1 < v->items.n + 1; i += 2) {
		const char *flag = v_str_of(I, v->items.v[i]);
		const struct value *val = i + 1 < v->items.n ? v->items.v[i + 1] : NULL;
		if (flag && val && strcmp(flag, "--memory") == 0 && dsl_memory(I, val))
			set_memory(I, h, val);
		else if (flag && val && strcmp(flag, "--cpus") == 0)
			set_cpus(I, h, val);
		else
			buf_printf(&rest, "%s%s", rest.len ? ", " : "", flag ? flag : "?");
	}
	if (rest.len) {
		struct value *u = v_unknown(I, "VBoxManage modifyvm %s, which corral does not set", rest.s);
		buf_free(&rest);
		return u;
	}
	return v_nil(I);
}

static struct value *docker_ports(struct interp *I, struct handle *h, const struct value *v)
{
	if (!v || v->k != V_ARRAY)
		return want(I, "ports", v);
	for (size_t i = 0; i < v->items.n; i++) {
		const char *s = v_str_of(I, v->items.v[i]);
		char ip[64] = "";
		unsigned host, guest;
		char proto[8] = "tcp";
		if (!s || (sscanf(s, "%u:%u/%7s", &host, &guest, proto) < 2 &&
			   sscanf(s, "%63[0-9.]:%u:%u/%7s", ip, &host, &guest, proto) < 3))
			return v_unknown(I, "a docker port `%s` corral import does not read", s ? s : "?");
		struct value *o = v_hash(I);
		v_hash_set(I, o, v_sym(I, "guest"), v_int(I, guest));
		v_hash_set(I, o, v_sym(I, "host"), v_int(I, host));
		if (*ip)
			v_hash_set(I, o, v_sym(I, "host_ip"), v_str(I, ar_strdup(I->ar, ip)));
		if (strcmp(proto, "tcp"))
			v_hash_set(I, o, v_sym(I, "protocol"), v_str(I, ar_strdup(I->ar, proto)));
		struct value *r = forwarded_port(I, h->sc, o);
		if (r->k == V_UNKNOWN)
			return r;
	}
	return v_nil(I);
}

static struct value *provider_call(struct interp *I, struct handle *h, const char *m,
				   struct value **a, size_t n)
{
	const char *p = h->name;
	struct value *v = n ? a[0] : NULL;
	bool docker = strcmp(p, "docker") == 0, vbox = strcmp(p, "virtualbox") == 0;
	if (strcmp(m, "memory=") == 0 && !docker)
		return set_memory(I, h, v);
	if (strcmp(m, "cpus=") == 0 && !docker)
		return set_cpus(I, h, v);
	if (vbox && (strcmp(m, "gui=") == 0 || strcmp(m, "linked_clone=") == 0) && v &&
	    v->k == V_BOOL) {
		const char *key = m[0] == 'g' ? "provider_options.virtualbox.gui"
					      : "provider_options.virtualbox.linked_clone";
		scope_set(I, h->sc, key, y_bool(I->ar, v->b));
		return v_nil(I);
	}
	if (vbox && strcmp(m, "customize") == 0)
		return customize(I, h, v);
	if (is_vmware(p) && strcmp(m, "vmx") == 0 && !n)
		return v_handle(I, hnew(I, H_VMX, h->sc, p));
	if (strcmp(p, "libvirt") == 0 && strcmp(m, "machine_virtual_size=") == 0) {
		long long gb;
		uint64_t bytes;
		const char *size = int_of(v, &gb) && gb > 0 && gb <= 65536 ? ar_printf(I->ar, "%lldG", gb) : NULL;
		if (!size || parse_size(size, &bytes) < 0)
			return want(I, "machine_virtual_size (GB, at most 64T)", v);
		scope_set(I, h->sc, "disk", y_plain(I->ar, size));
		return v_nil(I);
	}
	if (docker && strcmp(m, "ports=") == 0)
		return docker_ports(I, h, v);
	if (docker && (strcmp(m, "image=") == 0 || strcmp(m, "build_dir=") == 0))
		return v_unknown(I, "corral's container provider boots boxes, not Docker images");
	if (strcmp(m, "name=") == 0 || strcmp(m, "vmname=") == 0)
		return v_unknown(I, "corral names its VMs itself");
	size_t len = strlen(m);
	return v_unknown(I, "the %s setting `%.*s` has no corral equivalent", p,
			 (int)(m[len - 1] == '=' ? len - 1 : len), m);
}

static struct value *vmx_call(struct interp *I, struct handle *h, const char *m, struct value **a,
			      size_t n)
{
	const char *key = n == 2 ? v_str_of(I, a[0]) : NULL;
	if (strcmp(m, "[]=") || !key)
		return v_unknown(I, "a vmx setting corral import does not read");
	if (strcmp(key, "memsize") == 0)
		return set_memory(I, h, a[1]);
	if (strcmp(key, "numvcpus") == 0)
		return set_cpus(I, h, a[1]);
	return v_unknown(I, "the vmx setting %s has no corral equivalent", key);
}

/* ---- entry points ---- */

static const char *const ruby_consts[] = {"YAML", "JSON", "File", "Dir", "IO", "RbConfig", "Etc",
					   "Socket", "Time", "ARGV", "Process", "Open3", "FileUtils",
					   "Pathname", "ERB", "Net", "URI", "SecureRandom", "IPAddr",
					   "Kernel", "Object", "OS", NULL};

struct value *dsl_const(struct interp *I, const char *name)
{
	if (strcmp(name, "Vagrant") == 0)
		return v_handle(I, hnew(I, H_VAGRANT, NULL, NULL));
	if (strcmp(name, "ENV") == 0)
		return v_handle(I, hnew(I, H_ENV, NULL, NULL));
	for (const char *const *c = ruby_consts; *c; c++)
		if (strcmp(name, *c) == 0)
			return v_unknown(I, "Ruby's %s, which corral import does not run", name);
	return NULL;
}

struct value *dsl_call(struct interp *I, struct handle *h, const char *m, struct value **a,
		       size_t n, const struct blk *blk)
{
	switch (h->k) {
	case H_VAGRANT: return vagrant_call(I, m, a, n, blk);
	case H_ENV: return env_call(I, m, a, n);
	case H_CONFIG: return config_call(I, h, m, n, blk);
	case H_VM: return vm_call(I, h->sc, m, a, n, blk);
	case H_SSH: return ssh_call(I, h->sc, m, a, n);
	case H_NS:
		if (strcmp(h->name, "config.trigger") == 0)
			return dsl_trigger(I, h->sc, m, a, n, blk);
		return ns_call(I, h, m, n, blk);
	case H_PROVIDER: return provider_call(I, h, m, a, n);
	case H_VMX: return vmx_call(I, h, m, a, n);
	case H_STEP:
		if (n == 1 && m[strlen(m) - 1] == '=')
			return dsl_step_set(I, h->st, ar_strndup(I->ar, m, strlen(m) - 1), a[0]);
		return v_unknown(I, "`%s` on a provisioner", m);
	case H_TRIGGER:
		if (n == 1 && m[strlen(m) - 1] == '=')
			return dsl_trigger_set(I, h->tr, ar_strndup(I->ar, m, strlen(m) - 1), a[0]);
		return v_unknown(I, "`%s` on a trigger", m);
	}
	return v_unknown(I, "`%s`", m);
}

void dsl_run_settings(struct interp *I, const struct blk *blk, enum hk k, struct scope *sc,
		      void *what)
{
	if (!blk)
		return;
	struct handle *h = ar_alloc(I->ar, sizeof(*h));
	h->k = k;
	h->sc = sc;
	if (k == H_STEP)
		h->st = what;
	else
		h->tr = what;
	struct value *hv = v_handle(I, h);
	run_block(I, blk, &hv, 1);
}

struct value *dsl_index(struct interp *I, struct handle *h, struct value **a, size_t n)
{
	if (h->k == H_ENV)
		return env_call(I, "[]", a, n);
	return v_unknown(I, "reading a setting back");
}
