/* The short-name table: reading distros.json, filling in {arch} and the
 * mirror, and finding an entry. */
#include "core/box/distros.h"

#include <jansson.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/box/catalog.h"

#define TABLE_MAX (1u << 20)

void distro_free(struct distro *x)
{
	free(x->name);
	free(x->description);
	free(x->arch);
	free(x->dir);
	free(x->image);
	free(x->sums_url);
	free(x->signature_url);
	free(x->note);
	strv_free(&x->keys);
	*x = (struct distro){0};
}

void distro_list_free(struct distro_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		distro_free(&l->v[i]);
	free(l->v);
	*l = (struct distro_list){0};
}

/* $CORRAL_DATA_DIR, else next to the binary: PREFIX/bin/corral ->
 * PREFIX/share/corral; build/corral in the source tree -> data/. */
char *distros_data_path(const char *name)
{
	const char *env = getenv("CORRAL_DATA_DIR");
	if (env && *env) {
		char *p = path_join(env, name);
		if (path_exists(p))
			return p;
		free(p);
		return NULL;
	}
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	_cleanup_free_ char *bin = path_dirname(exe);
	static const char *const rel[] = {"../share/corral", "../data"};
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		_cleanup_free_ char *dir = path_join(bin, rel[i]);
		char *p = path_join(dir, name);
		if (path_exists(p))
			return p;
		free(p);
	}
	return NULL;
}

/* s with each "{arch}" replaced. */
static char *subst_arch(const char *s, const char *arch)
{
	struct buf b = {0};
	buf_add(&b, "", 0);
	for (const char *p = s; *p;) {
		if (str_starts(p, "{arch}")) {
			buf_puts(&b, arch);
			p += strlen("{arch}");
		} else {
			buf_add(&b, p++, 1);
		}
	}
	return b.s;
}

/* https://HOST/PATH -> MIRROR/HOST/PATH when $CORRAL_IMAGE_MIRROR is set. */
static char *mirrored(const char *url)
{
	const char *m = getenv("CORRAL_IMAGE_MIRROR");
	const char *rest = str_starts(url, "https://") ? url + 8
			 : str_starts(url, "http://") ? url + 7 : NULL;
	if (!m || !*m || !rest)
		return xstrdup(url);
	size_t n = strlen(m);
	while (n && m[n - 1] == '/')
		n--;
	return xasprintf("%.*s/%s", (int)n, m, rest);
}

static char *url_of(const char *dir, const char *file, const char *arch)
{
	if (!file)
		return NULL;
	_cleanup_free_ char *full = xasprintf("%s%s", dir, file);
	_cleanup_free_ char *a = subst_arch(full, arch);
	return mirrored(a);
}

static const char *jstr(json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* One entry for one architecture (its name in corral, its name in the publisher's paths). */
static int fill(json_t *e, const char *arch, const char *pub_arch, struct distro *x,
		struct diag *d)
{
	const char *name = jstr(e, "name"), *dir = jstr(e, "dir"), *image = jstr(e, "image"),
		   *sums = jstr(e, "checksums");
	if (!name || !dir || !image || !sums || !str_ends(dir, "/"))
		return diag_fail(d, "distros.json: an entry lacks name, dir (ending in /), image or checksums");
	_cleanup_free_ char *d_arch = subst_arch(dir, pub_arch);
	*x = (struct distro){
		.name = xstrdup(name), .description = xstrdup(jstr(e, "description")),
		.arch = xstrdup(arch), .dir = mirrored(d_arch), .image = subst_arch(image, pub_arch),
		.sums_url = url_of(dir, sums, pub_arch),
		.signature_url = url_of(dir, jstr(e, "signature"), pub_arch),
		.note = xstrdup(jstr(e, "note")),
	};
	size_t i;
	json_t *k;
	json_array_foreach(json_object_get(e, "keys"), i, k)
		if (json_is_string(k))
			strv_push(&x->keys, json_string_value(k));
	return 0;
}

static int load(json_t **root, struct diag *d)
{
	_cleanup_free_ char *path = distros_data_path("distros.json");
	if (!path) {
		diag_fail(d, "corral's table of distributions (distros.json) is not installed");
		return diag_hint(d, "reinstall corral, or point $CORRAL_DATA_DIR at its data directory");
	}
	char *text;
	size_t len;
	if (read_file(path, TABLE_MAX, &text, &len, d) < 0)
		return -1;
	json_error_t je;
	*root = json_loadb(text, len, 0, &je);
	free(text);
	if (!json_is_array(json_object_get(*root, "distros"))) {
		json_decref(*root);
		return diag_fail(d, "%s: line %d: not a table of distributions (%s)", path, je.line,
				 je.text);
	}
	return 0;
}

static bool matches(json_t *e, const char *term)
{
	const char *name = jstr(e, "name"), *desc = jstr(e, "description");
	return !term || (name && strstr(name, term)) || (desc && strcasestr(desc, term));
}

int distros_list(const char *term, struct distro_list *l, struct diag *d)
{
	*l = (struct distro_list){0};
	json_t *root, *e, *pub;
	if (load(&root, d) < 0)
		return -1;
	size_t i;
	const char *arch;
	int r = 0;
	json_array_foreach(json_object_get(root, "distros"), i, e) {
		if (!matches(e, term))
			continue;
		json_object_foreach(json_object_get(e, "arch"), arch, pub) {
			l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
			if (r == 0 && (r = fill(e, arch, json_string_value(pub), &l->v[l->n], d)) == 0)
				l->n++;
		}
	}
	json_decref(root);
	if (r < 0)
		distro_list_free(l);
	return r;
}

int distro_find(const char *name, const char *arch, struct distro *out, bool *found,
		struct diag *d)
{
	*found = false;
	*out = (struct distro){0};
	_cleanup_free_ char *table = distros_data_path("distros.json");
	json_t *root, *e;
	if (!table)
		return 0; /* no table: no short names */
	if (load(&root, d) < 0)
		return -1;
	const char *want = arch ? arch : host_arch();
	size_t i;
	int r = 0;
	json_array_foreach(json_object_get(root, "distros"), i, e) {
		const char *n = jstr(e, "name");
		if (!n || strcmp(n, name) != 0)
			continue;
		*found = true;
		const char *pub = jstr(json_object_get(e, "arch"), want);
		r = pub ? fill(e, want, pub, out, d)
			: diag_fail(d, "%s has no image for architecture %s", name, want);
		break;
	}
	json_decref(root);
	return r;
}
