#include "core/box/catalog.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "core/base/util.h"
#include "core/box/version.h"

static const char catalog_hint[] =
	"a catalog is Vagrant's box metadata JSON: {\"name\": \"org/box\", \"versions\": "
	"[{\"version\": \"1.0.0\", \"providers\": [{\"name\": \"libvirt\", \"url\": \"...\"}]}]}";

static int bad(struct diag *d, const char *where, const char *what)
{
	diag_fail(d, "catalog %s: %s", where, what);
	return diag_hint(d, "%s", catalog_hint);
}

/* An optional string member: absent or null is NULL, another type is an error. */
static int opt_str(json_t *o, const char *key, char **out, bool required, const char *ctx,
		   const char *where, struct diag *d)
{
	json_t *v = json_object_get(o, key);
	*out = NULL;
	if ((!v || json_is_null(v)) && !required)
		return 0;
	if (!json_is_string(v) || !json_string_length(v)) {
		_cleanup_free_ char *m = xasprintf("%s\"%s\" must be a non-empty string", ctx, key);
		return bad(d, where, m);
	}
	*out = xstrdup(json_string_value(v));
	return 0;
}

static int parse_provider(json_t *o, struct catalog_provider *p, const char *ctx,
			  const char *where, struct diag *d)
{
	if (!json_is_object(o))
		return bad(d, where, ctx);
	if (opt_str(o, "name", &p->name, true, ctx, where, d) < 0 ||
	    opt_str(o, "url", &p->url, true, ctx, where, d) < 0 ||
	    opt_str(o, "checksum_type", &p->checksum_type, false, ctx, where, d) < 0 ||
	    opt_str(o, "checksum", &p->checksum, false, ctx, where, d) < 0 ||
	    opt_str(o, "signature", &p->signature, false, ctx, where, d) < 0 ||
	    opt_str(o, "architecture", &p->arch, false, ctx, where, d) < 0)
		return -1;
	return 0;
}

static int parse_version(json_t *o, size_t i, struct catalog_version *v, const char *where,
			 struct diag *d)
{
	_cleanup_free_ char *ctx = xasprintf("versions[%zu]: ", i);
	if (!json_is_object(o))
		return bad(d, where, ctx);
	if (opt_str(o, "version", &v->version, true, ctx, where, d) < 0)
		return -1;
	if (!version_valid(v->version)) {
		_cleanup_free_ char *m = xasprintf("%s\"%s\" is not a version", ctx, v->version);
		return bad(d, where, m);
	}
	json_t *ps = json_object_get(o, "providers");
	if (ps && !json_is_array(ps)) {
		_cleanup_free_ char *m = xasprintf("%s\"providers\" must be a list", ctx);
		return bad(d, where, m);
	}
	v->p = xcalloc(json_array_size(ps), sizeof(*v->p));
	for (size_t j = 0; j < json_array_size(ps); j++, v->np++) {
		_cleanup_free_ char *pctx = xasprintf("versions[%zu].providers[%zu]: ", i, j);
		if (parse_provider(json_array_get(ps, j), &v->p[j], pctx, where, d) < 0) {
			v->np++;
			return -1;
		}
	}
	return 0;
}

static int newest_first(const void *a, const void *b)
{
	const struct catalog_version *x = a, *y = b;
	return version_cmp(y->version, x->version);
}

static int parse_root(json_t *root, const char *where, struct catalog *c, struct diag *d)
{
	if (!json_is_object(root))
		return bad(d, where, "not a JSON object");
	if (opt_str(root, "name", &c->name, true, "", where, d) < 0 ||
	    opt_str(root, "description", &c->description, false, "", where, d) < 0)
		return -1;
	json_t *vs = json_object_get(root, "versions");
	if (!json_is_array(vs))
		return bad(d, where, "\"versions\" must be a list");
	c->v = xcalloc(json_array_size(vs), sizeof(*c->v));
	for (size_t i = 0; i < json_array_size(vs); i++, c->nv++)
		if (parse_version(json_array_get(vs, i), i, &c->v[i], where, d) < 0) {
			c->nv++;
			return -1;
		}
	qsort(c->v, c->nv, sizeof(*c->v), newest_first);
	return 0;
}

int catalog_parse(const char *json, size_t len, const char *where, struct catalog *c,
		  struct diag *d)
{
	*c = (struct catalog){0};
	json_error_t err;
	json_t *root = json_loadb(json, len, 0, &err);
	if (!root) {
		diag_fail(d, "catalog %s is not valid JSON: %s", where, err.text);
		diag_at(d, where, err.line, err.column);
		return diag_hint(d, "%s", catalog_hint);
	}
	int r = parse_root(root, where, c, d);
	json_decref(root);
	if (r < 0)
		catalog_free(c);
	return r;
}

void catalog_free(struct catalog *c)
{
	for (size_t i = 0; i < c->nv; i++) {
		for (size_t j = 0; j < c->v[i].np; j++) {
			struct catalog_provider *p = &c->v[i].p[j];
			free(p->name);
			free(p->url);
			free(p->checksum_type);
			free(p->checksum);
			free(p->signature);
			free(p->arch);
		}
		free(c->v[i].p);
		free(c->v[i].version);
	}
	free(c->v);
	free(c->name);
	free(c->description);
	*c = (struct catalog){0};
}

/* An entry for an architecture named exactly wins over one that names none. */
static const struct catalog_provider *find_entry(const struct catalog_version *v,
						 const char *provider, const char *const *arches)
{
	for (const char *const *a = arches; *a; a++)
		for (size_t i = 0; i < v->np; i++)
			if ((!provider || strcmp(v->p[i].name, provider) == 0) && v->p[i].arch &&
			    strcmp(v->p[i].arch, *a) == 0)
				return &v->p[i];
	for (size_t i = 0; i < v->np; i++)
		if ((!provider || strcmp(v->p[i].name, provider) == 0) && !v->p[i].arch)
			return &v->p[i];
	return NULL;
}

static const struct catalog_provider *pick_in(const struct catalog_version *v,
					      const char *const *providers,
					      const char *const *arches)
{
	if (!providers)
		return find_entry(v, NULL, arches);
	for (const char *const *p = providers; *p; p++) {
		const struct catalog_provider *e = find_entry(v, *p, arches);
		if (e)
			return e;
	}
	return NULL;
}

static void join(struct buf *b, const char *const *list, const char *none)
{
	if (!list || !*list) {
		buf_puts(b, none);
		return;
	}
	for (size_t i = 0; list[i]; i++)
		buf_printf(b, "%s%s", i ? "|" : "", list[i]);
}

static int no_match(const struct catalog *c, const char *constraint,
		    const char *const *providers, const char *const *arches, struct diag *d)
{
	struct buf b = {0};
	buf_printf(&b, "no version of %s fits: version \"%s\", provider ", c->name,
		   constraint && *constraint ? constraint : "any");
	join(&b, providers, "any");
	buf_puts(&b, ", architecture ");
	join(&b, arches, "any");
	buf_puts(&b, "; the catalog offers:");
	for (size_t i = 0; i < c->nv; i++) {
		buf_printf(&b, " %s (", c->v[i].version);
		for (size_t j = 0; j < c->v[i].np; j++)
			buf_printf(&b, "%s%s/%s", j ? ", " : "", c->v[i].p[j].name,
				   c->v[i].p[j].arch ? c->v[i].p[j].arch : "any");
		buf_puts(&b, i + 1 < c->nv ? ");" : ")");
	}
	if (!c->nv)
		buf_puts(&b, " no versions");
	diag_fail(d, "%s", b.s);
	buf_free(&b);
	return diag_hint(d, "choose one the catalog offers (--box-version, --provider, "
			    "--architecture; box_version and provider in the envfile)");
}

int catalog_pick(const struct catalog *c, const char *constraint, const char *const *providers,
		 const char *arch, struct catalog_pick *out, struct diag *d)
{
	struct vconstraint vc;
	if (vconstraint_parse(constraint, &vc, d) < 0)
		return -1;
	const char *arches[] = {arch ? arch : host_arch(), arch ? NULL : "unknown", NULL};
	*out = (struct catalog_pick){0};
	for (size_t i = 0; i < c->nv && !out->provider; i++) {
		if (!vconstraint_match(&vc, c->v[i].version))
			continue;
		out->provider = pick_in(&c->v[i], providers, arches);
		out->version = &c->v[i];
	}
	vconstraint_free(&vc);
	if (!out->provider)
		return no_match(c, constraint, providers, arches, d);
	out->arch = out->provider->arch ? out->provider->arch : arches[0];
	return 0;
}

const char *host_arch(void)
{
	static const struct {
		const char *uname, *vagrant;
	} names[] = {
		{"x86_64", "amd64"}, {"amd64", "amd64"}, {"i386", "i386"}, {"i486", "i386"},
		{"i586", "i386"},    {"i686", "i386"},   {"aarch64", "arm64"}, {"arm64", "arm64"},
		{"armv7l", "arm"},   {"armv6l", "arm"},
	};
	static char other[65];
	struct utsname u;
	if (uname(&u) < 0)
		return "unknown";
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(u.machine, names[i].uname) == 0)
			return names[i].vagrant;
	snprintf(other, sizeof(other), "%s", u.machine);
	return other;
}
