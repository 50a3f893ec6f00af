/* Where an image's manifests and blobs come from. A registry speaks the
 * Distribution API v2 over core/box/download.h (its TLS, CA, proxy and
 * retry rules): GET /v2/REPO/manifests/REF and /v2/REPO/blobs/DIGEST, a
 * 401 answered once through oci_auth.c. Mirrors come first:
 * CORRAL_OCI_MIRRORS="REGISTRY=URL,..." (e.g. docker.io=https://mirror:5000);
 * the first that serves the manifest serves the whole pull. Local images are
 * OCI layouts (oci:DIR), tars of one (oci-archive:, unpacked into a
 * temporary directory first) and `docker save` tars (docker-archive:),
 * whose manifest.json is turned into an OCI manifest. */
#include "core/box/oci_priv.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "core/base/digest.h"
#include "core/base/strv.h"
#include "core/box/download.h"
#include "core/box/fetch.h"
#include "core/box/store_priv.h"
#include "core/box/unpack.h"
#include "core/base/util.h"

#define MANIFEST_MAX (4u << 20)
#define DOCKER_HUB_API "https://registry-1.docker.io"

static const char accept_manifests[] =
	"Accept: application/vnd.oci.image.index.v1+json, "
	"application/vnd.docker.distribution.manifest.list.v2+json, "
	"application/vnd.oci.image.manifest.v1+json, "
	"application/vnd.docker.distribution.manifest.v2+json";

struct reply {
	struct buf body;
	size_t max;
	char *ctype, *challenge;
};

static void reply_reset(struct reply *r)
{
	buf_free(&r->body);
	buf_add(&r->body, "", 0);
	free(r->ctype);
	free(r->challenge);
	r->ctype = r->challenge = NULL;
}

static int reply_start(void *ctx, bool resumed, uint64_t total, struct diag *d)
{
	struct reply *r = ctx;
	(void)resumed;
	r->body.len = 0;
	if (total > r->max)
		return diag_fail(d, "the registry's answer is too large (%llu bytes)", (unsigned long long)total);
	return 0;
}

static int reply_write(void *ctx, const void *p, size_t n, struct diag *d)
{
	struct reply *r = ctx;
	if (r->body.len + n > r->max)
		return diag_fail(d, "the registry's answer is too large");
	buf_add(&r->body, p, n);
	return 0;
}

static char *header_value(const char *line, size_t n, const char *name)
{
	size_t k = strlen(name);
	if (n <= k || strncasecmp(line, name, k) != 0)
		return NULL;
	const char *v = line + k;
	while (*v == ' ')
		v++;
	size_t len = n - (size_t)(v - line);
	while (len && strchr("\r\n ", v[len - 1]))
		len--;
	return xstrndup(v, len);
}

static void reply_header(void *ctx, const char *line, size_t n)
{
	struct reply *r = ctx;
	char *v;
	if ((v = header_value(line, n, "Content-Type:"))) {
		free(r->ctype);
		r->ctype = v;
	} else if ((v = header_value(line, n, "WWW-Authenticate:"))) {
		free(r->challenge);
		r->challenge = v;
	}
}

/* GET url from the registry, answering one 401 challenge. */
static int reg_get(struct oci_source *s, const char *url, const char *accept, size_t max,
		   struct reply *r, struct diag *d)
{
	r->max = max;
	for (int round = 0;; round++) {
		reply_reset(r);
		const char *headers[] = {accept, NULL};
		struct download dl = {.url = url, .insecure = s->insecure, .start = reply_start,
				      .write = reply_write, .ctx = r, .headers = accept ? headers : NULL,
				      .auth = s->auth, .auth_url = s->base, .on_header = reply_header};
		if (download_run(&dl, d) == 0)
			return 0;
		if (dl.status != 401)
			return -1;
		if (round == 1) {
			diag_fail(d, "%s refused the credentials for %s", s->host, s->ref->repo);
			return diag_hint(d, "check the login for %s in ~/.docker/config.json or "
					    "$REGISTRY_AUTH_FILE", s->host);
		}
		free(s->auth);
		if (oci_answer_challenge(r->challenge, s->host, s->insecure, &s->auth, d) < 0)
			return -1;
	}
}

/* The mirrors configured for registry, then the registry itself. */
static void bases(const char *registry, struct strv *out)
{
	const char *m = getenv("CORRAL_OCI_MIRRORS");
	_cleanup_free_ char *copy = xstrdup(m ? m : "");
	for (char *save = NULL, *t = strtok_r(copy, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		char *eq = strchr(t, '=');
		if (eq && (size_t)(eq - t) == strlen(registry) && strncmp(t, registry, strlen(registry)) == 0)
			strv_push(out, eq + 1);
	}
	if (strcmp(registry, "docker.io") == 0)
		strv_push(out, DOCKER_HUB_API);
	else
		strv_pushf(out, "https://%s", registry);
}

static json_int_t file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (json_int_t)st.st_size : -1;
}

/* A mirror's credentials are its own: looked up by its host[:port]. */
static char *mirror_host(const char *base)
{
	_cleanup_free_ char *h = download_url_part(base, CURLUPART_HOST);
	_cleanup_free_ char *port = download_url_part(base, CURLUPART_PORT);
	if (!h)
		return xstrdup(base);
	return port ? xasprintf("%s:%s", h, port) : xstrdup(h);
}

static bool is_digest(const char *s) { return str_starts(s, "sha256:"); }

static char *blob_file(const struct oci_source *s, const char *digest)
{
	const char *rel = json_string_value(json_object_get(s->blob_paths, digest));
	if (rel)
		return path_join(s->dir, rel);
	return xasprintf("%s/blobs/sha256/%s", s->dir, digest + 7);
}

static int local_manifest(struct oci_source *s, const char *ref, char **body, size_t *len,
			  struct diag *d)
{
	if (s->synthetic && !is_digest(ref)) {
		*body = xstrdup(s->synthetic);
		*len = strlen(*body);
		return 0;
	}
	if (!is_digest(ref))
		ref = s->tag_digest;
	_cleanup_free_ char *f = blob_file(s, ref);
	return read_file(f, MANIFEST_MAX, body, len, d);
}

static int remote_manifest(struct oci_source *s, const char *ref, struct reply *r,
			   struct diag *d)
{
	struct strv b = {0};
	bases(s->ref->registry, &b);
	int rc = -1;
	for (size_t i = 0; i < b.n && rc < 0; i++) {
		if (s->base && strcmp(s->base, b.v[i]) != 0)
			continue;
		_cleanup_free_ char *url = xasprintf("%s/v2/%s/manifests/%s", b.v[i], s->ref->repo, ref);
		free(s->base);
		s->base = xstrdup(b.v[i]);
		free(s->host);
		s->host = i + 1 < b.n ? mirror_host(b.v[i]) : xstrdup(s->ref->registry);
		rc = reg_get(s, url, accept_manifests, MANIFEST_MAX, r, d);
		if (rc < 0 && i + 1 < b.n && !s->auth) {
			free(s->base);
			s->base = NULL;
		}
	}
	strv_free(&b);
	return rc;
}

int oci_get_manifest(struct oci_source *s, const char *ref, char **body, size_t *len,
		     char **media_type, char *digest, struct diag *d)
{
	*media_type = NULL;
	if (is_digest(ref) && !oci_digest_valid(ref))
		return diag_fail(d, "`%s` is not a sha256 digest", ref);
	if (s->dir) {
		if (local_manifest(s, ref, body, len, d) < 0)
			return -1;
	} else {
		struct reply r = {0};
		if (remote_manifest(s, ref, &r, d) < 0) {
			reply_reset(&r);
			buf_free(&r.body);
			return -1;
		}
		*body = r.body.s;
		*len = r.body.len;
		*media_type = r.ctype;
		free(r.challenge);
	}
	struct hash *h = hash_new("sha256");
	hash_update(h, *body, *len);
	char hex[HASH_HEX_MAX];
	hash_final(h, NULL, hex);
	snprintf(digest, 72, "sha256:%s", hex);
	if (is_digest(ref) && strcmp(ref, digest) != 0) {
		free(*body);
		free(*media_type);
		*media_type = NULL;
		diag_fail(d, "manifest digest mismatch for %s: expected %s, got %s", s->ref->repo, ref, digest);
		return diag_hint(d, "the registry or the image is damaged; nothing was installed");
	}
	return 0;
}

static int blob_check(const char *digest, uint64_t size, const char *body, size_t len,
		      struct diag *d)
{
	char hex[HASH_HEX_MAX];
	struct hash *h = hash_new("sha256");
	hash_update(h, body, len);
	hash_final(h, NULL, hex);
	if (len != size)
		return diag_fail(d, "size mismatch for blob %s: the descriptor says %llu bytes, got %zu",
				 digest, (unsigned long long)size, len);
	if (!hash_hex_equal(hex, digest + 7))
		return diag_fail(d, "digest mismatch for blob %s: got sha256:%s", digest, hex);
	return 0;
}

int oci_get_blob_text(struct oci_source *s, const char *digest, uint64_t size, char **body,
		      size_t *len, struct diag *d)
{
	if (!oci_digest_valid(digest) || size > MANIFEST_MAX)
		return diag_fail(d, "the image config `%s` is not a sha256 blob of at most 4 MiB", digest);
	if (s->dir) {
		_cleanup_free_ char *f = blob_file(s, digest);
		if (read_file(f, MANIFEST_MAX, body, len, d) < 0)
			return -1;
	} else {
		struct reply r = {0};
		_cleanup_free_ char *url = xasprintf("%s/v2/%s/blobs/%s", s->base, s->ref->repo, digest);
		int rc = reg_get(s, url, NULL, MANIFEST_MAX, &r, d);
		free(r.ctype);
		free(r.challenge);
		if (rc < 0)
			return buf_free(&r.body), -1;
		*body = r.body.s;
		*len = r.body.len;
	}
	s->bytes += *len;
	if (blob_check(digest, size, *body, *len, d) < 0) {
		free(*body);
		return -1;
	}
	return 0;
}

int oci_fetch_layer(struct oci_source *s, const char *digest, uint64_t size, const char *dest,
		    bool private_store, const char *label, struct diag *d)
{
	if (!oci_digest_valid(digest))
		return diag_fail(d, "layer `%s` is not named by a sha256 digest", digest);
	_cleanup_free_ char *src = s->dir ? blob_file(s, digest)
					  : xasprintf("%s/v2/%s/blobs/%s", s->base, s->ref->repo, digest);
	struct boxfetch_opts fo = {.insecure = s->insecure, .checksum_type = "sha256",
				   .checksum = digest + 7, .label = label, .private_store = private_store,
				   .auth = s->auth, .auth_url = s->base, .size = size, .layer = true,
				   .vouch = BOXFETCH_BY_MANIFEST};
	struct boxfetch_result res;
	if (boxfetch(src, dest, &fo, &res, d) < 0)
		return diag_wrap(d, "layer %.19s", digest);
	s->bytes += res.bytes;
	return 0;
}

/* An OCI layout: index.json's entry for the tag (its
 * org.opencontainers.image.ref.name), or its only entry. */
static int open_layout(struct oci_source *s, struct diag *d)
{
	_cleanup_free_ char *path = path_join(s->dir, "index.json");
	json_error_t err;
	json_t *idx = json_load_file(path, 0, &err), *m, *only = NULL;
	size_t i, n = 0;
	const char *tag = s->ref->tag;
	json_array_foreach(json_object_get(idx, "manifests"), i, m) {
		const char *name = json_string_value(json_object_get(
			json_object_get(m, "annotations"), "org.opencontainers.image.ref.name"));
		n++;
		only = m;
		if (tag && name && strcmp(name, tag) == 0)
			s->tag_digest = xstrdup(json_string_value(json_object_get(m, "digest")));
	}
	if (!s->tag_digest && n == 1 && (!tag || strcmp(tag, "latest") == 0))
		s->tag_digest = xstrdup(json_string_value(json_object_get(only, "digest")));
	json_decref(idx);
	if (s->ref->digest || (s->tag_digest && is_digest(s->tag_digest)))
		return 0;
	diag_fail(d, "%s: %s", s->dir, idx ? "no image with that tag" : "not an OCI layout (no index.json)");
	return diag_hint(d, "name the image as oci:DIR:TAG with a tag its index.json lists");
}

/* A `docker save` tar: manifest.json's first image becomes an OCI manifest
 * whose blobs are the files it names (layers are plain tars, named by their
 * sha256, which is what the config's diff_ids record). */
static int open_docker_archive(struct oci_source *s, struct diag *d)
{
	_cleanup_free_ char *path = path_join(s->dir, "manifest.json");
	json_t *doc = json_load_file(path, 0, NULL);
	json_t *img = json_array_get(doc, 0), *l;
	const char *config = json_string_value(json_object_get(img, "Config"));
	if (!config) {
		json_decref(doc);
		return diag_fail(d, "%s is not a docker-archive (no manifest.json)", s->ref->path);
	}
	s->blob_paths = json_object();
	json_t *layers = json_array();
	size_t i;
	int rc = 0;
	json_array_foreach(json_object_get(img, "Layers"), i, l) {
		struct diag ignored;
		_cleanup_free_ char *f = path_join(s->dir, json_string_value(l) ? json_string_value(l) : "");
		char hex[HASH_HEX_MAX];
		if (!json_string_value(l) || strstr(json_string_value(l), "..") || json_string_value(l)[0] == '/' ||
		    hash_file(f, "sha256", NULL, hex, &ignored) < 0) {
			rc = diag_fail(d, "%s: manifest.json names a layer it does not hold", s->ref->path);
			break;
		}
		_cleanup_free_ char *dg = xasprintf("sha256:%s", hex);
		json_object_set(s->blob_paths, dg, l);
		json_array_append_new(layers, json_pack("{s:s, s:s, s:I}", "mediaType",
			"application/vnd.oci.image.layer.v1.tar", "digest", dg,
			"size", file_size(f)));
	}
	_cleanup_free_ char *cf = path_join(s->dir, config);
	char chex[HASH_HEX_MAX];
	if (rc == 0 && (strstr(config, "..") || config[0] == '/' || hash_file(cf, "sha256", NULL, chex, d) < 0))
		rc = -1;
	if (rc == 0) {
		_cleanup_free_ char *cdg = xasprintf("sha256:%s", chex);
		json_object_set(s->blob_paths, cdg, json_object_get(img, "Config"));
		json_t *m = json_pack("{s:i, s:s, s:{s:s, s:s, s:I}, s:O}", "schemaVersion", 2,
				      "mediaType", "application/vnd.oci.image.manifest.v1+json", "config",
				      "mediaType", "application/vnd.oci.image.config.v1+json", "digest", cdg,
				      "size", file_size(cf), "layers", layers);
		s->synthetic = json_dumps(m, JSON_COMPACT);
		json_decref(m);
	}
	json_decref(layers);
	json_decref(doc);
	return rc;
}

/* An archive is unpacked (with the box rules) into a temporary directory. */
static int open_archive(struct oci_source *s, struct diag *d)
{
	s->tmp = box_tmpdir(d);
	if (!s->tmp)
		return -1;
	s->dir = path_join(s->tmp, "image");
	if (mkdir_p(s->dir, 0700, d) < 0 || unpack_file(s->ref->path, s->dir, NULL, NULL, d) < 0)
		return diag_wrap(d, "%s", s->ref->path);
	return s->ref->kind == OCI_DOCKER_ARCHIVE ? open_docker_archive(s, d) : open_layout(s, d);
}

int oci_source_open(struct oci_source *s, const struct oci_ref *r, bool insecure, struct diag *d)
{
	*s = (struct oci_source){.ref = r, .insecure = insecure};
	if (r->kind == OCI_REGISTRY) {
		s->host = xstrdup(r->registry);
		return 0;
	}
	if (r->kind != OCI_LAYOUT)
		return open_archive(s, d);
	s->dir = xstrdup(r->path);
	return open_layout(s, d);
}

void oci_source_close(struct oci_source *s)
{
	struct diag ignored;
	if (s->tmp)
		rm_rf(s->tmp, &ignored);
	free(s->tmp);
	free(s->dir);
	free(s->base);
	free(s->host);
	free(s->auth);
	free(s->synthetic);
	free(s->tag_digest);
	json_decref(s->blob_paths);
	*s = (struct oci_source){0};
}
