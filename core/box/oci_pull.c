/* Pulling an image into the box store: the manifest (an index or manifest
 * list resolved to this host's platform), checked against the reference's
 * digest or the one recorded at the image's first pull; the config; each
 * layer not yet in the layer store, streamed through hash + size check +
 * unpack; then the box — rootfs/ assembled from the layers, metadata.json
 * with the config's Env, WorkingDir, User, Entrypoint and Cmd, manifest and
 * record — renamed into place. Anything refused leaves the store as it was. */
#include "core/box/oci_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/box/catalog.h"
#include "core/base/strv.h"
#include "core/box/store_priv.h"
#include "core/host/state.h"
#include "core/base/util.h"

#define DIGEST_LEN 72

static const struct {
	const char *vagrant, *oci;
} arches[] = {{"amd64", "amd64"}, {"arm64", "arm64"}, {"i386", "386"}, {"armhf", "arm"},
	      {"ppc64le", "ppc64le"}, {"s390x", "s390x"}, {"riscv64", "riscv64"}};

static const char *const layer_types[] = {
	"application/vnd.oci.image.layer.v1.tar",
	"application/vnd.oci.image.layer.v1.tar+gzip",
	"application/vnd.oci.image.layer.v1.tar+zstd",
	"application/vnd.docker.image.rootfs.diff.tar.gzip",
	NULL,
};

static const char *oci_arch(const char *vagrant)
{
	for (size_t i = 0; i < sizeof(arches) / sizeof(arches[0]); i++)
		if (strcmp(arches[i].vagrant, vagrant) == 0)
			return arches[i].oci;
	return vagrant;
}

struct pull {
	const struct oci_pull_opts *o;
	struct oci_ref ref;
	struct oci_source src;
	char *name, *shown, *arch;
	char top_digest[DIGEST_LEN], digest[DIGEST_LEN];
	json_t *manifest, *config;
	char *config_digest;
	struct oci_pull_stats st;
};

static bool is_index(json_t *m, const char *media_type)
{
	const char *mt = json_string_value(json_object_get(m, "mediaType"));
	if (!mt)
		mt = media_type;
	return json_is_array(json_object_get(m, "manifests")) ||
	       (mt && (strstr(mt, "index") || strstr(mt, "manifest.list")));
}

/* The index entry for linux on this architecture. */
static const char *pick_platform(struct pull *p, json_t *idx, struct diag *d)
{
	size_t i;
	json_t *m;
	struct buf seen = {0};
	json_array_foreach(json_object_get(idx, "manifests"), i, m) {
		json_t *pl = json_object_get(m, "platform");
		const char *os = json_string_value(json_object_get(pl, "os"));
		const char *arch = json_string_value(json_object_get(pl, "architecture"));
		if (os && arch && strcmp(os, "linux") == 0 && strcmp(arch, oci_arch(p->arch)) == 0) {
			buf_free(&seen);
			return json_string_value(json_object_get(m, "digest"));
		}
		buf_printf(&seen, "%s%s/%s", seen.len ? ", " : "", os ? os : "?", arch ? arch : "?");
	}
	diag_fail(d, "%s has no image for linux/%s (it has: %s)", p->shown, oci_arch(p->arch),
		  seen.s ? seen.s : "none");
	buf_free(&seen);
	return NULL;
}

static int load_json(const char *body, size_t len, const char *what, json_t **out, struct diag *d)
{
	json_error_t err;
	*out = json_loadb(body, len, 0, &err);
	if (json_is_object(*out))
		return 0;
	json_decref(*out);
	*out = NULL;
	return diag_fail(d, "%s is not a JSON object (%s)", what, err.text);
}

/* The top manifest (p->top_digest), then, for an index, this platform's. */
static int resolve_manifest(struct pull *p, struct diag *d)
{
	char *body, *mt;
	size_t len;
	/* a local layout's index names the tag's manifest by digest: checked too */
	const char *want = p->ref.digest ? p->ref.digest : p->src.tag_digest ? p->src.tag_digest : p->ref.tag;
	if (oci_get_manifest(&p->src, want ? want : "latest", &body, &len, &mt, p->top_digest, d) < 0)
		return -1;
	int rc = load_json(body, len, "the manifest", &p->manifest, d);
	bool index = rc == 0 && is_index(p->manifest, mt);
	free(body);
	free(mt);
	memcpy(p->digest, p->top_digest, DIGEST_LEN);
	if (rc < 0 || !index)
		return rc;
	const char *sub = pick_platform(p, p->manifest, d);
	_cleanup_free_ char *subd = sub ? xstrdup(sub) : NULL;
	if (subd && !oci_digest_valid(subd)) {
		free(subd);
		subd = NULL;
		diag_fail(d, "%s: the index names a manifest without a sha256 digest", p->shown);
	}
	json_decref(p->manifest);
	p->manifest = NULL;
	if (!subd || oci_get_manifest(&p->src, subd, &body, &len, &mt, p->digest, d) < 0)
		return -1;
	rc = load_json(body, len, "the platform's manifest", &p->manifest, d);
	free(body);
	free(mt);
	return rc;
}

static int get_config(struct pull *p, struct diag *d)
{
	json_t *c = json_object_get(p->manifest, "config");
	const char *dg = json_string_value(json_object_get(c, "digest"));
	json_int_t size = json_integer_value(json_object_get(c, "size"));
	char *body;
	size_t len;
	if (!dg || size <= 0)
		return diag_fail(d, "%s: the manifest names no config", p->shown);
	if (oci_get_blob_text(&p->src, dg, (uint64_t)size, &body, &len, d) < 0)
		return diag_wrap(d, "%s: config", p->shown);
	p->config_digest = xstrdup(dg);
	int rc = load_json(body, len, "the image config", &p->config, d);
	free(body);
	return rc;
}

/* One layer into the layer store, unless it is there already. */
static int fetch_layer(struct pull *p, json_t *desc, size_t i, size_t n, char **dir,
		       struct diag *d)
{
	const char *dg = json_string_value(json_object_get(desc, "digest"));
	const char *mt = json_string_value(json_object_get(desc, "mediaType"));
	json_int_t size = json_integer_value(json_object_get(desc, "size"));
	if (!oci_digest_valid(dg) || size < 0)
		return diag_fail(d, "%s: layer %zu has no sha256 digest and size", p->shown, i + 1);
	if (mt && !str_in_list(mt, layer_types)) {
		diag_fail(d, "%s: layer %zu has media type %s", p->shown, i + 1, mt);
		return diag_hint(d, "corral takes tar layers, plain, gzip or zstd");
	}
	*dir = oci_layer_dir(dg);
	if (path_is_dir(*dir))
		return 0;
	_cleanup_free_ char *parent = path_dirname(*dir), *tmp = box_tmpdir(d);
	if (!tmp || mkdir_p(parent, 0700, d) < 0)
		return -1;
	_cleanup_free_ char *dest = path_join(tmp, "layer");
	_cleanup_free_ char *label = xasprintf("%s layer %zu/%zu", p->shown, i + 1, n);
	char why[600];
	int rc = oci_fetch_layer(&p->src, dg, (uint64_t)size, dest, box_store_private(why, sizeof(why)),
				 label, d);
	if (rc == 0 && rename(dest, *dir) < 0 && errno != EEXIST && errno != ENOTEMPTY)
		rc = diag_errno(d, "move the layer into %s", *dir);
	struct diag ignored;
	rm_rf(tmp, &ignored);
	p->st.layers_fetched += rc == 0;
	return rc;
}

static int fetch_layers(struct pull *p, struct strv *dirs, struct diag *d)
{
	json_t *layers = json_object_get(p->manifest, "layers"), *l;
	size_t i, n = json_array_size(layers);
	if (!n)
		return diag_fail(d, "%s: the manifest lists no layers", p->shown);
	json_array_foreach(layers, i, l) {
		char *dir = NULL;
		int rc = fetch_layer(p, l, i, n, &dir, d);
		if (dir)
			strv_take(dirs, dir);
		if (rc < 0)
			return -1;
	}
	p->st.layers = (unsigned)n;
	return 0;
}

static json_t *config_str(json_t *cfg, const char *key, const char *def)
{
	const char *v = json_string_value(json_object_get(cfg, key));
	return json_string(v && *v ? v : def);
}

static json_t *config_list(json_t *cfg, const char *key)
{
	json_t *v = json_object_get(cfg, key);
	return json_is_array(v) ? json_deep_copy(v) : json_array();
}

static json_t *metadata(const struct pull *p)
{
	json_t *cfg = json_object_get(p->config, "config");
	json_t *oci = json_pack("{s:s, s:s, s:s}", "reference", p->shown, "manifest_digest",
				p->top_digest, "config_digest", p->config_digest);
	if (strcmp(p->digest, p->top_digest) != 0)
		json_object_set_new(oci, "platform_digest", json_string(p->digest));
	json_object_set_new(oci, "env", config_list(cfg, "Env"));
	json_object_set_new(oci, "working_dir", config_str(cfg, "WorkingDir", "/"));
	json_object_set_new(oci, "user", config_str(cfg, "User", ""));
	json_object_set_new(oci, "entrypoint", config_list(cfg, "Entrypoint"));
	json_object_set_new(oci, "cmd", config_list(cfg, "Cmd"));
	json_t *layers = json_array(), *l;
	size_t i;
	json_array_foreach(json_object_get(p->manifest, "layers"), i, l)
		json_array_append(layers, json_object_get(l, "digest"));
	json_object_set_new(oci, "layers", layers); /* what the layer store keeps for it */
	return json_pack("{s:s, s:s, s:s, s:o}", "provider", "container", "architecture", p->arch,
			 "format", "oci", "oci", oci);
}

/* metadata.json and its manifest record. */
static int write_metadata(const struct pull *p, const char *dir, json_t *extra, struct diag *d)
{
	json_t *m = metadata(p);
	_cleanup_free_ char *text = json_dumps(m, JSON_SORT_KEYS | JSON_INDENT(2));
	_cleanup_free_ char *path = path_join(dir, "metadata.json");
	json_decref(m);
	char hex[HASH_HEX_MAX];
	hash_str(text, NULL, hex);
	json_object_set_new(extra, "metadata.json",
			    json_pack("{s:s, s:s, s:I, s:I, s:s, s:I}", "type", "file", "mode", "0644",
				      "uid", (json_int_t)geteuid(), "gid", (json_int_t)getegid(),
				      "sha256", hex, "size", (json_int_t)strlen(text)));
	return write_file_atomic(path, text, strlen(text), 0644, d);
}

static int write_record(const struct pull *p, const char *dir, struct diag *d)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s}", "name", p->name,
			      "version", "0", "provider", "container", "architecture", p->arch,
			      "source", p->shown, "manifest_digest", p->top_digest, "sha256",
			      p->top_digest + 7, "bytes", (json_int_t)p->st.bytes_fetched, "added_at", when);
	_cleanup_free_ char *path = path_join(dir, BOXSTORE_RECORD);
	int r = state_save(path, o, d);
	json_decref(o);
	return r;
}

static int build_box(struct pull *p, const char *unpacked, const struct strv *dirs,
		     struct diag *d)
{
	json_t *extra = json_object();
	int rc = mkdir(unpacked, 0755) < 0 ? diag_errno(d, "create %s", unpacked) : 0;
	if (rc == 0)
		rc = write_metadata(p, unpacked, extra, d);
	if (rc == 0)
		rc = oci_assemble(unpacked, dirs->v, dirs->n, extra, d);
	if (rc == 0)
		rc = write_record(p, unpacked, d);
	json_decref(extra);
	return rc;
}

static int install(struct pull *p, const struct strv *dirs, enum box_added *how, struct diag *d)
{
	_cleanup_free_ char *tmp = box_tmpdir(d);
	if (!tmp)
		return -1;
	_cleanup_free_ char *unpacked = path_join(tmp, "box");
	_cleanup_free_ char *final = boxstore_path(p->name, "0", p->arch, "container");
	_cleanup_free_ char *parent = path_dirname(final);
	int rc = build_box(p, unpacked, dirs, d);
	if (rc == 0)
		rc = mkdir_p(parent, 0755, d);
	bool replace = path_exists(final);
	if (rc == 0 && (replace ? renameat2(AT_FDCWD, unpacked, AT_FDCWD, final, RENAME_EXCHANGE)
				: rename(unpacked, final)) < 0)
		rc = diag_errno(d, "move the box into %s", final);
	*how = replace ? BOX_REPLACED : BOX_ADDED;
	struct diag ignored;
	rm_rf(tmp, &ignored);
	return rc;
}

/* The manifest digest the store recorded for this box, or NULL. */
static char *recorded_digest(const char *box_dir)
{
	_cleanup_free_ char *rec = path_join(box_dir, BOXSTORE_RECORD);
	json_t *o = NULL;
	struct diag ignored;
	if (!path_exists(rec) || state_load(rec, &o, &ignored) < 0)
		return NULL;
	char *r = xstrdup(state_str(o, "manifest_digest", NULL));
	json_decref(o);
	return r;
}

/* Present with the same digest: nothing to do; a changed tag is reported. */
static int check_present(struct pull *p, bool *present, struct diag *d)
{
	_cleanup_free_ char *dir = boxstore_path(p->name, "0", p->arch, "container");
	_cleanup_free_ char *had = recorded_digest(dir);
	*present = had && strcmp(had, p->top_digest) == 0 && !p->o->force;
	if (!had || strcmp(had, p->top_digest) == 0)
		return 0;
	if (p->o->force) {
		log_warn("%s changed since it was pulled: it was %s, it is now %s; replacing it",
			 p->shown, had, p->top_digest);
		return 0;
	}
	diag_fail(d, "%s changed since it was pulled: it was %s, the registry now has %s",
		  p->shown, had, p->top_digest);
	return diag_hint(d, "pin the old one with @%s, or take the new one with `corral box add "
			    "--force %s`", had, p->shown);
}

static int pull_locked(struct pull *p, enum box_added *how, struct diag *d)
{
	_cleanup_free_ char *dir = boxstore_path(p->name, "0", p->arch, "container");
	if (!p->o->force && p->ref.digest && path_is_dir(dir)) {
		*how = BOX_PRESENT; /* a digest never changes */
		return 0;
	}
	bool present = false;
	if (oci_source_open(&p->src, &p->ref, p->o->insecure, d) < 0 || resolve_manifest(p, d) < 0 ||
	    check_present(p, &present, d) < 0)
		return -1;
	if (present) {
		*how = BOX_PRESENT;
		return 0;
	}
	struct strv dirs = {0};
	int lock = oci_layers_lock(false, d); /* no layer collected until the box is in */
	int rc = lock < 0 ? -1 : get_config(p, d);
	if (rc == 0)
		rc = fetch_layers(p, &dirs, d);
	p->st.bytes_fetched = p->src.bytes;
	if (rc == 0)
		log_info("%s: %u layers, %u fetched, %u already in the layer store; %llu bytes fetched",
			 p->shown, p->st.layers, p->st.layers_fetched, p->st.layers - p->st.layers_fetched,
			 p->st.bytes_fetched);
	if (rc == 0)
		rc = install(p, &dirs, how, d);
	strv_free(&dirs);
	if (lock >= 0)
		close(lock);
	return rc;
}

int oci_pull(const char *ref, const struct oci_pull_opts *o, struct box_ref *out,
	     enum box_added *how, struct oci_pull_stats *st, struct diag *d)
{
	struct pull p = {.o = o, .arch = xstrdup(o->arch ? o->arch : host_arch())};
	*out = (struct box_ref){0};
	if (oci_ref_parse(ref, &p.ref, d) < 0) {
		free(p.arch);
		return -1;
	}
	p.name = oci_store_name(&p.ref);
	p.shown = oci_ref_string(&p.ref);
	struct lock l = {-1};
	int rc = box_name_lock(p.name, &l, d);
	if (rc == 0) {
		rc = pull_locked(&p, how, d);
		lock_release(&l);
	}
	if (rc == 0)
		*out = (struct box_ref){xstrdup(p.name), xstrdup("0"), xstrdup("container"),
					xstrdup(p.arch), boxstore_path(p.name, "0", p.arch, "container"), false};
	if (st)
		*st = p.st;
	oci_source_close(&p.src);
	oci_ref_free(&p.ref);
	json_decref(p.manifest);
	json_decref(p.config);
	free(p.config_digest);
	free(p.name);
	free(p.shown);
	free(p.arch);
	return rc;
}

json_t *oci_box_info(const char *box_dir)
{
	_cleanup_free_ char *path = path_join(box_dir, "metadata.json");
	char *text;
	size_t len;
	struct diag ignored;
	if (read_file_flags(path, O_NOFOLLOW, 1 << 20, &text, &len, &ignored) < 0)
		return NULL;
	json_t *m = json_loadb(text, len, 0, NULL);
	free(text);
	json_t *oci = json_incref(json_object_get(m, "oci"));
	json_decref(m);
	return json_is_object(oci) ? oci : (json_decref(oci), NULL);
}
