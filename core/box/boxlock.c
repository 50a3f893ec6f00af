/* corral.lock read, written and compared with the envfile. The file is a
 * JSON object {"lock_version": 1, "machines": {NAME: {...}}} written with
 * sorted keys and two-space indents, so that a changed box shows as the
 * few lines of its machine's block. */
#include "core/box/boxlock.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/host/state.h"

/* The entry's fields with their JSON keys, for reading and writing alike. */
static const struct field {
	const char *key;
	size_t off;
} fields[] = {
	{"box", offsetof(struct boxlock_entry, box)},
	{"box_version", offsetof(struct boxlock_entry, constraint)},
	{"box_url", offsetof(struct boxlock_entry, source)},
	{"version", offsetof(struct boxlock_entry, version)},
	{"provider", offsetof(struct boxlock_entry, provider)},
	{"architecture", offsetof(struct boxlock_entry, arch)},
	{"url", offsetof(struct boxlock_entry, url)},
	{"digest", offsetof(struct boxlock_entry, digest)},
	{"signer", offsetof(struct boxlock_entry, signer)},
};
#define NFIELDS (sizeof(fields) / sizeof(fields[0]))

static char **field(struct boxlock_entry *e, size_t i)
{
	return (char **)((char *)e + fields[i].off);
}

static const char *cfield(const struct boxlock_entry *e, size_t i)
{
	return *(char *const *)((const char *)e + fields[i].off);
}

char *boxlock_path(const struct env *e) { return path_join(e->dir, BOXLOCK_FILE); }

void boxlock_entry_free(struct boxlock_entry *e)
{
	free(e->machine);
	for (size_t i = 0; i < NFIELDS; i++)
		free(*field(e, i));
	*e = (struct boxlock_entry){0};
}

void boxlock_free(struct boxlock *l)
{
	for (size_t i = 0; i < l->n; i++)
		boxlock_entry_free(&l->v[i]);
	free(l->v);
	*l = (struct boxlock){0};
}

static void copy_entry(struct boxlock_entry *dst, const struct boxlock_entry *src)
{
	dst->machine = xstrdup(src->machine);
	for (size_t i = 0; i < NFIELDS; i++)
		*field(dst, i) = cfield(src, i) ? xstrdup(cfield(src, i)) : NULL;
}

const struct boxlock_entry *boxlock_find(const struct boxlock *l, const char *machine)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i].machine, machine) == 0)
			return &l->v[i];
	return NULL;
}

static int by_machine(const void *a, const void *b)
{
	return strcmp(((const struct boxlock_entry *)a)->machine,
		      ((const struct boxlock_entry *)b)->machine);
}

void boxlock_set(struct boxlock *l, const struct boxlock_entry *e)
{
	struct boxlock_entry *old = (struct boxlock_entry *)boxlock_find(l, e->machine);
	struct boxlock_entry copy;
	copy_entry(&copy, e);
	if (old) {
		boxlock_entry_free(old);
		*old = copy;
		return;
	}
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = copy;
	qsort(l->v, l->n, sizeof(*l->v), by_machine);
}

void boxlock_retain(struct boxlock *l, const struct env *e)
{
	size_t out = 0;
	for (size_t i = 0; i < l->n; i++) {
		if (env_machine(e, l->v[i].machine))
			l->v[out++] = l->v[i];
		else
			boxlock_entry_free(&l->v[i]);
	}
	l->n = out;
}

static int read_entry(const char *name, json_t *o, struct boxlock_entry *e, const char *path,
		      struct diag *d)
{
	*e = (struct boxlock_entry){.machine = xstrdup(name)};
	if (!json_is_object(o))
		return diag_fail(d, "%s: machine %s is not an object", path, name);
	for (size_t i = 0; i < NFIELDS; i++) {
		json_t *v = json_object_get(o, fields[i].key);
		if (v && !json_is_string(v))
			return diag_fail(d, "%s: %s.%s is not a string", path, name, fields[i].key);
		*field(e, i) = v ? xstrdup(json_string_value(v)) : NULL;
	}
	if (!e->box || !e->version || !e->provider)
		return diag_fail(d, "%s: machine %s lacks box, version or provider", path, name);
	return 0;
}

int boxlock_load(const char *path, struct boxlock *l, bool *exists, struct diag *d)
{
	*l = (struct boxlock){0};
	*exists = path_exists(path);
	if (!*exists)
		return 0;
	json_error_t err;
	json_t *root = json_load_file(path, 0, &err);
	json_t *ms = root ? json_object_get(root, "machines") : NULL;
	if (!json_is_object(ms)) {
		json_decref(root);
		diag_fail(d, "%s is not a corral.lock: %s", path, root ? "no \"machines\"" : err.text);
		return diag_hint(d, "remove it and run `corral lock` to write it again");
	}
	const char *name;
	json_t *o;
	int rc = 0;
	json_object_foreach(ms, name, o) {
		struct boxlock_entry e;
		rc = read_entry(name, o, &e, path, d);
		if (rc == 0)
			boxlock_set(l, &e);
		boxlock_entry_free(&e);
		if (rc < 0)
			break;
	}
	json_decref(root);
	if (rc < 0)
		boxlock_free(l);
	return rc;
}

int boxlock_save(const char *path, const struct boxlock *l, struct diag *d)
{
	json_t *ms = json_object();
	for (size_t i = 0; i < l->n; i++) {
		json_t *o = json_object();
		for (size_t k = 0; k < NFIELDS; k++)
			if (cfield(&l->v[i], k))
				json_object_set_new(o, fields[k].key, json_string(cfield(&l->v[i], k)));
		json_object_set_new(ms, l->v[i].machine, o);
	}
	json_t *root = json_pack("{s:i, s:o}", "lock_version", 1, "machines", ms);
	char *text = json_dumps(root, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(root);
	_cleanup_free_ char *body = xasprintf("%s\n", text);
	free(text);
	return write_file_atomic(path, body, strlen(body), 0644, d);
}

static bool same(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

bool boxlock_fits(const struct boxlock_entry *le, const struct machine_cfg *mc)
{
	return same(le->box, mc->box) && same(le->constraint, mc->box_version) &&
	       same(le->source, mc->box_url);
}

/* One sentence per key of the envfile that changed. */
static size_t changes(const struct boxlock_entry *le, const struct machine_cfg *mc,
		      struct strv *why)
{
	const struct {
		const char *key, *was, *now;
	} keys[] = {
		{"box", le->box, mc->box},
		{"box_version", le->constraint, mc->box_version},
		{"box_url", le->source, mc->box_url},
	};
	size_t n = 0;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (same(keys[i].was, keys[i].now))
			continue;
		strv_pushf(why, "%s: %s is `%s` in the envfile but `%s` in corral.lock", mc->name,
			   keys[i].key, keys[i].now ? keys[i].now : "(none)",
			   keys[i].was ? keys[i].was : "(none)");
		n++;
	}
	return n;
}

size_t boxlock_stale(const struct boxlock *l, const struct env *e, struct strv *why)
{
	size_t n = 0;
	for (size_t i = 0; i < e->nmachines; i++) {
		const struct boxlock_entry *le = boxlock_find(l, e->machines[i].name);
		if (le) {
			n += changes(le, &e->machines[i], why);
			continue;
		}
		strv_pushf(why, "machine %s is not in corral.lock", e->machines[i].name);
		n++;
	}
	for (size_t i = 0; i < l->n; i++) {
		if (env_machine(e, l->v[i].machine))
			continue;
		strv_pushf(why, "machine %s is in corral.lock but no longer in the envfile",
			   l->v[i].machine);
		n++;
	}
	return n;
}

void boxlock_entry_from_box(const struct machine_cfg *mc, const struct box_ref *ref,
			    struct boxlock_entry *out)
{
	*out = (struct boxlock_entry){
		.machine = xstrdup(mc->name), .box = xstrdup(mc->box ? mc->box : ref->name),
		.constraint = mc->box_version ? xstrdup(mc->box_version) : NULL,
		.source = mc->box_url ? xstrdup(mc->box_url) : NULL,
		.version = xstrdup(ref->version), .provider = xstrdup(ref->provider),
		.arch = xstrdup(ref->arch),
	};
	_cleanup_free_ char *rec = path_join(ref->dir, BOXSTORE_RECORD);
	json_t *o = NULL;
	struct diag ignored;
	if (!path_exists(rec) || state_load(rec, &o, &ignored) < 0)
		return;
	const char *sha = state_str(o, "sha256", NULL), *url = state_str(o, "source", NULL);
	const char *signer = state_str(o, "signer", NULL);
	out->digest = sha ? xasprintf("sha256:%s", sha) : NULL;
	out->url = url ? xstrdup(url) : NULL;
	out->signer = signer ? xstrdup(signer) : NULL;
	json_decref(o);
}
