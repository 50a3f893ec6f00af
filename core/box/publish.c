/* `corral box publish` (see publish.h). Each box's provider and
 * architecture come from its own metadata.json, so the catalog can only
 * offer a box as what it is; `box add` checks the same again. The catalog
 * is edited as JSON (members corral does not know are kept) and written
 * in a stable order, so publishing the same thing twice changes nothing
 * and a diff of two publishes shows what changed. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/base/util.h"
#include "core/box/catalog.h"
#include "core/box/fetch.h"
#include "core/box/pack.h"
#include "core/box/publish.h"
#include "core/box/store_priv.h"
#include "core/box/version.h"

/* Provider and architecture of one .box, as its metadata.json says. */
static int box_kind(const struct publish_opts *o, const char *box, struct published *p,
		    struct diag *d)
{
	_cleanup_free_ char *text = NULL;
	if (boxpack_read_metadata(box, &text, d) < 0)
		return -1;
	json_t *m = json_loads(text, 0, NULL);
	const char *prov = json_string_value(json_object_get(m, "provider"));
	const char *arch = json_string_value(json_object_get(m, "architecture"));
	int r = 0;
	if (!prov)
		r = diag_fail(d, "%s: its metadata.json names no provider", box);
	else if (o->provider && strcmp(o->provider, prov) != 0)
		r = diag_fail(d, "%s is a %s box, not %s (its metadata.json)", box, prov, o->provider);
	p->provider = xstrdup(prov);
	p->arch = xstrdup(o->arch ? o->arch : arch);
	if (r == 0 && (!box_word_valid(p->provider) || (p->arch && !box_word_valid(p->arch))))
		r = diag_fail(d, "%s: provider or architecture is not a plain word", box);
	json_decref(m);
	return r;
}

/* src copied to dst through a temporary file beside it. */
static int copy_into(const char *src, const char *dst, struct diag *d)
{
	_cleanup_free_ char *tmp = xasprintf("%s.tmp-%d", dst, (int)getpid());
	_cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (in < 0 || out < 0)
		return diag_errno(d, "copy %s to %s", src, dst);
	char buf[1 << 16];
	ssize_t n;
	int r = 0;
	while (r == 0 && (n = read(in, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || write_all(out, buf, (size_t)n) < 0)
			r = diag_errno(d, "copy %s to %s", src, dst);
	}
	if (r == 0 && fsync(out) < 0)
		r = diag_errno(d, "write %s", tmp);
	if (r == 0 && rename(tmp, dst) < 0)
		r = diag_errno(d, "rename %s", tmp);
	if (r < 0)
		unlink(tmp);
	return r;
}

static int place_box(const struct publish_opts *o, const char *orgdir, const char *box,
		     struct published *p, struct diag *d)
{
	const char *base = strchr(o->name, '/') + 1;
	_cleanup_free_ char *file = p->arch ? xasprintf("%s-%s-%s-%s.box", base, o->version,
						       p->provider, p->arch)
					    : xasprintf("%s-%s-%s.box", base, o->version, p->provider);
	p->path = path_join(orgdir, file);
	_cleanup_free_ char *org = xstrndup(o->name, (size_t)(base - 1 - o->name));
	size_t bl = o->base_url ? strlen(o->base_url) : 0;
	while (bl && o->base_url[bl - 1] == '/')
		bl--;
	p->url = o->base_url ? xasprintf("%.*s/%s/%s", (int)bl, o->base_url, org, file)
			     : xstrdup(file);
	if (copy_into(box, p->path, d) < 0 || hash_file(p->path, "sha256", NULL, p->sha256, d) < 0)
		return -1;
	if (!o->key)
		return 0;
	return box_sign(o->key, p->path, &p->signature, d);
}

static json_t *entry_json(const struct published *p)
{
	json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "name", p->provider, "url", p->url,
			      "checksum_type", "sha256", "checksum", p->sha256);
	if (p->arch)
		json_object_set_new(e, "architecture", json_string(p->arch));
	if (p->signature)
		json_object_set_new(e, "signature", json_string(p->signature));
	return e;
}

static const char *str_or_empty(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* The version's object in versions, added when missing. */
static json_t *version_obj(json_t *versions, const char *v)
{
	size_t i;
	json_t *x;
	json_array_foreach(versions, i, x)
		if (strcmp(str_or_empty(x, "version"), v) == 0)
			return x;
	x = json_pack("{s:s, s:[]}", "version", v, "providers");
	json_array_append_new(versions, x);
	return x;
}

/* Replaces the entry of the same provider and architecture, or adds e. */
static void put_entry(json_t *version, json_t *e)
{
	json_t *ps = json_object_get(version, "providers");
	if (!json_is_array(ps)) {
		ps = json_array();
		json_object_set_new(version, "providers", ps);
	}
	for (size_t i = json_array_size(ps); i-- > 0;) {
		json_t *x = json_array_get(ps, i);
		if (strcmp(str_or_empty(x, "name"), str_or_empty(e, "name")) == 0 &&
		    strcmp(str_or_empty(x, "architecture"), str_or_empty(e, "architecture")) == 0)
			json_array_remove(ps, i);
	}
	json_array_append_new(ps, e);
}

static int cmp_version(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	return version_cmp(str_or_empty(y, "version"), str_or_empty(x, "version"));
}

static int cmp_provider(const void *a, const void *b)
{
	json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
	int c = strcmp(str_or_empty(x, "name"), str_or_empty(y, "name"));
	return c ? c : strcmp(str_or_empty(x, "architecture"), str_or_empty(y, "architecture"));
}

/* arr sorted in place by cmp (jansson arrays have no sort of their own). */
static void sort_array(json_t *arr, int (*cmp)(const void *, const void *))
{
	size_t n = json_array_size(arr);
	json_t **v = xcalloc(n ? n : 1, sizeof(*v));
	for (size_t i = 0; i < n; i++)
		v[i] = json_incref(json_array_get(arr, i));
	qsort(v, n, sizeof(*v), cmp);
	json_array_clear(arr);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, v[i]);
	free(v);
}

static int load_catalog(const char *path, const char *name, json_t **out, struct diag *d)
{
	json_error_t err;
	json_t *c = path_exists(path) ? json_load_file(path, 0, &err) : json_object();
	if (!json_is_object(c)) {
		json_decref(c);
		diag_fail(d, "%s is not a catalog (a JSON object)", path);
		return diag_hint(d, "publish into a directory of its own, or remove the file");
	}
	if (!json_is_array(json_object_get(c, "versions")))
		json_object_set_new(c, "versions", json_array());
	json_object_set_new(c, "name", json_string(name));
	*out = c;
	return 0;
}

static int write_catalog(const struct publish_opts *o, const char *path,
			 const struct published *v, size_t n, struct diag *d)
{
	json_t *c;
	if (load_catalog(path, o->name, &c, d) < 0)
		return -1;
	json_t *versions = json_object_get(c, "versions");
	json_t *ver = version_obj(versions, o->version);
	int r = 0;
	for (size_t i = 0; i < n; i++)
		put_entry(ver, entry_json(&v[i]));
	sort_array(json_object_get(ver, "providers"), cmp_provider);
	sort_array(versions, cmp_version);
	char *s = json_dumps(c, JSON_SORT_KEYS | JSON_INDENT(2));
	if (s) {
		_cleanup_free_ char *text = xasprintf("%s\n", s);
		r = write_file_atomic(path, text, strlen(text), 0644, d);
	}
	free(s);
	json_decref(c);
	return r;
}

static int check_opts(const struct publish_opts *o, struct diag *d)
{
	if (!o->name || !strchr(o->name, '/') || strchr(strchr(o->name, '/') + 1, '/') ||
	    !box_name_valid(o->name)) {
		diag_code(d, DIAG_USAGE, "box publish needs --name ORG/NAME (one slash; letters, "
					 "digits, '-', '_', '.')");
		return -1;
	}
	if (!o->version || !version_valid(o->version))
		return diag_code(d, DIAG_USAGE, "box publish needs --version V (like 1.2.0)");
	if ((o->provider && !box_word_valid(o->provider)) || (o->arch && !box_word_valid(o->arch)))
		return diag_code(d, DIAG_USAGE, "--provider and --architecture take a plain word");
	return 0;
}

int box_publish(const struct publish_opts *o, char *const *boxes, size_t n,
		struct published **out, char **catalog, struct diag *d)
{
	*out = NULL;
	*catalog = NULL;
	if (check_opts(o, d) < 0)
		return -1;
	struct published *v = xcalloc(n ? n : 1, sizeof(*v));
	int r = 0;
	for (size_t i = 0; r == 0 && i < n; i++)
		r = box_kind(o, boxes[i], &v[i], d);
	_cleanup_free_ char *org = xstrndup(o->name, (size_t)(strchr(o->name, '/') - o->name));
	_cleanup_free_ char *orgdir = path_join(o->dir, org);
	if (r == 0)
		r = mkdir_p(orgdir, 0755, d);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = place_box(o, orgdir, boxes[i], &v[i], d);
	char *path = path_join(o->dir, o->name);
	if (r == 0)
		r = write_catalog(o, path, v, n, d);
	if (r < 0) {
		published_free(v, n);
		free(path);
		return -1;
	}
	*out = v;
	*catalog = path;
	return 0;
}

void published_free(struct published *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		free(v[i].path);
		free(v[i].url);
		free(v[i].provider);
		free(v[i].arch);
		free(v[i].signature);
	}
	free(v);
}
