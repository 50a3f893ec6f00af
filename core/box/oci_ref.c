/* OCI image references: what `box:` and `box add` accept, and the store
 * name each becomes. Registry references follow Docker's rules (a first
 * component with a '.' or ':' or "localhost" is a registry, otherwise it is
 * docker.io, and a one-part docker.io name is under library/); short forms
 * without oci:// or docker.io/ must carry a :tag or @digest so that a
 * Vagrant `org/name` keeps its meaning. */
#include "core/box/oci.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/base/util.h"

#define DOCKER_HUB "docker.io"

static const struct {
	const char *prefix;
	enum oci_kind kind;
} local_kinds[] = {
	{"oci-archive:", OCI_ARCHIVE},
	{"docker-archive:", OCI_DOCKER_ARCHIVE},
	{"oci:", OCI_LAYOUT},
};

void oci_ref_free(struct oci_ref *r)
{
	free(r->registry);
	free(r->repo);
	free(r->tag);
	free(r->digest);
	free(r->path);
	*r = (struct oci_ref){0};
}

static bool repo_char(char c)
{
	return islower((unsigned char)c) || isdigit((unsigned char)c) || strchr("._-/", c);
}

static bool tag_valid(const char *t)
{
	size_t n = strlen(t);
	if (!n || n > 128 || !(isalnum((unsigned char)t[0]) || t[0] == '_'))
		return false;
	return strspn(t, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") == n;
}

bool oci_digest_valid(const char *dg)
{
	if (!dg || !str_starts(dg, "sha256:") || strlen(dg) != 7 + 64)
		return false;
	return strspn(dg + 7, "0123456789abcdef") == 64;
}

static bool repo_valid(const char *r)
{
	if (!*r || r[0] == '/' || r[0] == '.' || str_ends(r, "/") || strstr(r, "//") ||
	    strstr(r, "/."))
		return false;
	for (const char *c = r; *c; c++)
		if (!repo_char(*c))
			return false;
	return true;
}

static bool is_registry(const char *first)
{
	return strchr(first, '.') || strchr(first, ':') || strcmp(first, "localhost") == 0;
}

/* Splits "NAME[:TAG][@DIGEST]" (NAME may hold a registry's :port). */
static int split_name(const char *s, struct oci_ref *r, char **name, struct diag *d)
{
	_cleanup_free_ char *copy = xstrdup(s);
	char *at = strchr(copy, '@');
	if (at) {
		*at = '\0';
		r->digest = xstrdup(at + 1);
		if (!oci_digest_valid(r->digest))
			return diag_fail(d, "`%s`: `%s` is not a sha256:HEX digest", s, r->digest);
	}
	char *slash = strrchr(copy, '/');
	char *colon = strrchr(slash ? slash : copy, ':');
	if (colon) {
		*colon = '\0';
		r->tag = xstrdup(colon + 1);
		if (!tag_valid(r->tag))
			return diag_fail(d, "`%s`: `%s` is not an image tag", s, r->tag);
	}
	*name = xstrdup(copy);
	return 0;
}

static int parse_registry_ref(const char *s, struct oci_ref *r, struct diag *d)
{
	_cleanup_free_ char *name = NULL;
	if (split_name(s, r, &name, d) < 0)
		return -1;
	char *slash = strchr(name, '/');
	_cleanup_free_ char *first = slash ? xstrndup(name, (size_t)(slash - name)) : xstrdup(name);
	if (slash && is_registry(first)) {
		r->registry = xstrdup(first);
		r->repo = xstrdup(slash + 1);
	} else {
		r->registry = xstrdup(DOCKER_HUB);
		r->repo = slash ? xstrdup(name) : xasprintf("library/%s", name);
	}
	if (strcmp(r->registry, "index.docker.io") == 0 || strcmp(r->registry, "registry-1.docker.io") == 0) {
		free(r->registry);
		r->registry = xstrdup(DOCKER_HUB);
	}
	if (strcmp(r->registry, DOCKER_HUB) == 0 && !strchr(r->repo, '/')) {
		char *full = xasprintf("library/%s", r->repo);
		free(r->repo);
		r->repo = full;
	}
	if (!repo_valid(r->repo)) {
		diag_fail(d, "`%s`: `%s` is not a repository name", s, r->repo);
		return diag_hint(d, "repository names are lower case: letters, digits, '.', '_', '-', '/'");
	}
	if (!r->tag && !r->digest)
		r->tag = xstrdup("latest");
	return 0;
}

/* PATH[:TAG] of the local kinds; only oci: and oci-archive: take a tag,
 * and only when what follows the last ':' is not part of an existing path. */
static int parse_local(const char *s, enum oci_kind kind, struct oci_ref *r, struct diag *d)
{
	_cleanup_free_ char *p = xstrdup(s);
	char *colon = strrchr(p, ':');
	if (kind != OCI_DOCKER_ARCHIVE && colon && !strchr(colon, '/') && !path_exists(p)) {
		*colon = '\0';
		r->tag = xstrdup(colon + 1);
		if (!tag_valid(r->tag))
			return diag_fail(d, "`%s`: `%s` is not an image tag", s, r->tag);
	}
	if (!*p)
		return diag_fail(d, "`%s` names no file", s);
	char cwd[4096];
	r->path = path_abs(getcwd(cwd, sizeof(cwd)) ? cwd : "/", p);
	return 0;
}

int oci_ref_parse(const char *s, struct oci_ref *r, struct diag *d)
{
	*r = (struct oci_ref){0};
	int rc;
	if (str_starts(s, "oci://")) {
		rc = parse_registry_ref(s + 6, r, d);
		if (rc == 0 && !strchr(s + 6, '/'))
			rc = diag_fail(d, "`%s` names no repository (oci://REGISTRY/REPO:TAG)", s);
		return rc < 0 ? (oci_ref_free(r), -1) : 0;
	}
	for (size_t i = 0; i < sizeof(local_kinds) / sizeof(local_kinds[0]); i++)
		if (str_starts(s, local_kinds[i].prefix)) {
			r->kind = local_kinds[i].kind;
			rc = parse_local(s + strlen(local_kinds[i].prefix), r->kind, r, d);
			return rc < 0 ? (oci_ref_free(r), -1) : 0;
		}
	rc = parse_registry_ref(s, r, d);
	return rc < 0 ? (oci_ref_free(r), -1) : 0;
}

bool oci_ref_is(const char *box)
{
	if (!box || strstr(box, "://"))
		return box && str_starts(box, "oci://");
	for (size_t i = 0; i < sizeof(local_kinds) / sizeof(local_kinds[0]); i++)
		if (str_starts(box, local_kinds[i].prefix))
			return true;
	if (str_starts(box, DOCKER_HUB "/"))
		return true;
	const char *slash = strrchr(box, '/');
	return strchr(box, '@') || strchr(slash ? slash : box, ':');
}

char *oci_ref_string(const struct oci_ref *r)
{
	if (r->kind != OCI_REGISTRY)
		return xasprintf("%s%s%s", r->path, r->tag ? ":" : "", r->tag ? r->tag : "");
	if (r->digest)
		return xasprintf("%s/%s@%s", r->registry, r->repo, r->digest);
	return xasprintf("%s/%s:%s", r->registry, r->repo, r->tag);
}

/* A registry with a port: ':' becomes '_' (box names have no ':'). */
static char *word(const char *s)
{
	char *w = xstrdup(s);
	for (char *c = w; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("-_.", *c))
			*c = '_';
	return w;
}

char *oci_store_name(const struct oci_ref *r)
{
	static const char *const kinds[] = {"", "layout", "archive", "docker-archive"};
	_cleanup_free_ char *last = r->digest ? xasprintf("sha256-%s", r->digest + 7)
					      : word(r->tag ? r->tag : "default");
	if (r->kind != OCI_REGISTRY) {
		char hex[HASH_HEX_MAX];
		hash_str(r->path, NULL, hex);
		return xasprintf("oci-local/%s-%.16s/%s", kinds[r->kind], hex, last);
	}
	_cleanup_free_ char *reg = word(r->registry);
	return xasprintf("oci/%s/%s/%s", reg, r->repo, last);
}
