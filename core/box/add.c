/* Adding boxes to the store: where a source points (a .box, a catalog, a box
 * server name), what to fetch from it, and installing the unpacked box. */
#include <ctype.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/box/fetch.h"
#include "core/box/oci.h"
#include "core/box/store.h"
#include "core/box/store_priv.h"
#include "core/box/catalog.h"
#include "core/base/digest.h"
#include "core/box/download.h"
#include "core/base/log.h"
#include "core/host/state.h"
#include "core/base/util.h"
#include "core/box/version.h"
#include "core/box/distros.h"
#include "core/box/sums.h"

#define CATALOG_MAX (8u << 20)
#define PROBE_MAX (1u << 20) /* an extensionless URL: more than this is a box, not a catalog */
#define DEFAULT_SERVER "https://vagrantcloud.com"

struct source {
	bool catalog, distro;
	char *url;  /* a URL, or an absolute path */
	char *text; /* the catalog, when telling what the source is fetched it already */
	size_t len;
	struct distro dist; /* a short name's entry (distro) */
};

/* What one add fetches and where it goes. */
struct plan {
	char *name, *version, *arch, *provider; /* a .box: provider and arch known once unpacked */
	char *url, *checksum_type, *checksum, *catalog_url;
	char *signature; /* from the catalog entry or --signature; NULL: unsigned */
	const char *const *providers;
	bool arch_given;
	/* the expected digest comes from a checksum file (core/box/sums.h) */
	char *sums_url, *sums_sig_url, *sums_signer;
	char *dir, *file;    /* a short name's: url is dir + the name file matches */
	struct strv keys;    /* fingerprints the signer must have; empty: any trusted key */
	enum boxfetch_voucher vouch; /* BY_CHECKSUM_FILE once a checksum file's signature was checked */
};

static void plan_free(struct plan *p)
{
	free(p->name);
	free(p->version);
	free(p->arch);
	free(p->provider);
	free(p->url);
	free(p->checksum_type);
	free(p->checksum);
	free(p->signature);
	free(p->catalog_url);
	free(p->sums_url);
	free(p->sums_sig_url);
	free(p->sums_signer);
	free(p->dir);
	free(p->file);
	strv_free(&p->keys);
}

static char *box_server(void)
{
	const char *s = getenv("CORRAL_BOX_SERVER");
	char *u = xstrdup(s && *s ? s : DEFAULT_SERVER);
	for (size_t n = strlen(u); n > 0 && u[n - 1] == '/'; n--)
		u[n - 1] = '\0';
	return u;
}

static bool has_scheme(const char *s)
{
	const char *p = s;
	while (isalnum((unsigned char)*p) || *p == '+' || *p == '-' || *p == '.')
		p++;
	return p > s && str_starts(p, "://");
}

static bool looks_like_json(const char *p, size_t n)
{
	while (n && isspace((unsigned char)*p))
		p++, n--;
	return n && *p == '{';
}

static bool file_is_json(const char *path)
{
	char head[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	ssize_t n = read(fd, head, sizeof(head));
	close(fd);
	return n > 0 && looks_like_json(head, (size_t)n);
}

/* "org/name": one slash, not a path that exists. */
static bool server_name(const char *s)
{
	const char *slash = strchr(s, '/');
	return slash && !strchr(slash + 1, '/') && box_name_valid(s) && !path_exists(s);
}

/* A URL without .box or .json is a catalog when its content is JSON. */
static void probe_url(struct source *s, const struct boxfetch_opts *fo)
{
	struct diag ignored;
	_cleanup_free_ char *path = download_url_part(s->url, CURLUPART_PATH);
	if (path && str_ends(path, ".json")) {
		s->catalog = true;
	} else if (!(path && str_ends(path, ".box")) &&
		   fetch_text(s->url, PROBE_MAX, fo, &s->text, &s->len, &ignored) == 0) {
		s->catalog = looks_like_json(s->text, s->len);
		if (!s->catalog) {
			free(s->text);
			s->text = NULL;
		}
	}
}

static int resolve_source(const char *src, const char *arch, const struct boxfetch_opts *fo,
			  struct source *s, struct diag *d)
{
	*s = (struct source){0};
	if (!has_scheme(src) && !path_exists(src) &&
	    distro_find(src, arch, &s->dist, &s->distro, d) < 0)
		return -1;
	if (s->distro) {
		s->url = xasprintf("%s%s", s->dist.dir, s->dist.image);
	} else if (has_scheme(src)) {
		s->url = xstrdup(src);
		probe_url(s, fo);
	} else if (path_exists(src)) {
		char cwd[4096];
		s->url = path_abs(getcwd(cwd, sizeof(cwd)) ? cwd : "/", src);
		s->catalog = path_is_dir(s->url) ? false : file_is_json(s->url);
	} else if (server_name(src)) {
		_cleanup_free_ char *server = box_server();
		s->url = xasprintf("%s/%s", server, src);
		s->catalog = true;
	} else {
		diag_fail(d, "`%s` is not a file, a URL or an org/name box", src);
		return diag_hint(d, "give a .box file or URL (with --name), a catalog .json file or "
				    "URL, or a box server name like org/name ($CORRAL_BOX_SERVER)");
	}
	return 0;
}

/* Catalog entries may name their box relative to the catalog. */
static char *entry_url(const char *catalog_url, const char *u)
{
	if (has_scheme(u))
		return xstrdup(u);
	if (!has_scheme(catalog_url)) {
		_cleanup_free_ char *dir = path_dirname(catalog_url);
		return path_join(dir, u);
	}
	CURLU *h = curl_url();
	char *out = NULL, *res = NULL;
	if (curl_url_set(h, CURLUPART_URL, catalog_url, 0) == CURLUE_OK &&
	    curl_url_set(h, CURLUPART_URL, u, 0) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_URL, &out, 0) == CURLUE_OK)
		res = xstrdup(out);
	curl_free(out);
	curl_url_cleanup(h);
	return res ? res : xstrdup(u);
}

static int get_catalog(const char *url, const struct boxfetch_opts *fo, char *text, size_t len,
		       struct catalog *c, struct diag *d)
{
	_cleanup_free_ char *fetched = NULL;
	if (!text && fetch_text(url, CATALOG_MAX, fo, &fetched, &len, d) < 0)
		return diag_wrap(d, "catalog");
	return catalog_parse(text ? text : fetched, len, url, c, d);
}

static struct boxfetch_opts fetch_opts(bool insecure, char **token_url)
{
	*token_url = box_server();
	return (struct boxfetch_opts){.insecure = insecure, .token_url = *token_url};
}

int box_catalog_fetch(const char *url, bool insecure, struct catalog *c, struct diag *d)
{
	_cleanup_free_ char *token_url = NULL;
	struct boxfetch_opts fo = fetch_opts(insecure, &token_url);
	return get_catalog(url, &fo, NULL, 0, c, d);
}

static int plan_catalog(const struct box_add_opts *o, struct source *s,
			const struct boxfetch_opts *fo, struct plan *p, struct diag *d)
{
	struct catalog c;
	struct catalog_pick pick;
	if (get_catalog(s->url, fo, s->text, s->len, &c, d) < 0)
		return -1;
	int r = catalog_pick(&c, o->constraint, o->providers, o->arch, &pick, d);
	if (r == 0 && o->name && strcmp(o->name, c.name) != 0) {
		diag_fail(d, "the catalog %s is for box %s, not %s", s->url, c.name, o->name);
		r = diag_hint(d, "a catalog names its box: drop --name, or use the name it gives");
	}
	if (r == 0 && !box_name_valid(c.name))
		r = diag_fail(d, "catalog %s: \"%s\" is not a box name", s->url, c.name);
	if (r == 0 && (!box_word_valid(pick.provider->name) || !box_word_valid(pick.arch)))
		r = diag_fail(d, "catalog %s: bad provider or architecture name", s->url);
	_cleanup_free_ char *url = r == 0 ? entry_url(s->url, pick.provider->url) : NULL;
	if (r == 0 && download_is_remote(s->url) && !download_is_remote(url)) {
		diag_fail(d, "catalog %s names a local file: %s", s->url, url);
		r = diag_hint(d, "a catalog fetched over the network may only name http(s) URLs");
	}
	if (r == 0)
		*p = (struct plan){
			.name = xstrdup(c.name), .version = xstrdup(pick.version->version),
			.arch = xstrdup(pick.arch), .provider = xstrdup(pick.provider->name),
			.url = xstrdup(url),
			.checksum_type = xstrdup(pick.provider->checksum_type),
			.checksum = xstrdup(pick.provider->checksum), .catalog_url = xstrdup(s->url),
			.signature = xstrdup(pick.provider->signature),
		};
	catalog_free(&c);
	return r;
}

static int parse_checksum(const char *spec, struct plan *p, struct diag *d)
{
	const char *colon = spec ? strchr(spec, ':') : NULL;
	if (!spec)
		return 0;
	p->checksum_type = colon ? xstrndup(spec, (size_t)(colon - spec)) : NULL;
	bool hex = colon && colon[1];
	for (const char *c = colon ? colon + 1 : ""; *c; c++)
		hex &= isxdigit((unsigned char)*c) != 0;
	if (!hex || !hash_known(p->checksum_type)) {
		diag_fail(d, "checksum `%s` is not TYPE:HEX", spec);
		return diag_hint(d, "e.g. sha256:9f86d08...; types: sha256 sha384 sha512 sha1 md5");
	}
	p->checksum = xstrdup(colon + 1);
	return 0;
}

static int plan_direct(const struct box_add_opts *o, const struct source *s, struct plan *p,
		       struct diag *d)
{
	if (!o->name && str_ends(s->url, ".box")) { /* as Vagrant: a .box is named */
		diag_fail(d, "a .box file or URL needs a name: %s", s->url);
		return diag_hint(d, "corral box add --name NAME %s (or: corral box add NAME %s)",
				 o->source, o->source);
	}
	/* an image (qcow2, raw, ...) is named after its file, as Lima and Multipass do */
	_cleanup_free_ char *made = o->name ? NULL : box_name_for_source(s->url);
	const char *name = o->name ? o->name : made;
	if (made)
		log_info("%s: stored as box %s (--name chooses another)", o->source, made);
	if (!box_name_valid(name)) {
		diag_fail(d, "`%s` is not a box name", name);
		return diag_hint(d, "box names are like org/name: letters, digits, '-', '_', '.'");
	}
	bool ok;
	if (version_satisfies(o->constraint, "0", &ok, d) < 0)
		return -1;
	if (!ok) {
		diag_fail(d, "%s is a .box, not a catalog: it is always version 0, which "
			     "\"%s\" excludes", s->url, o->constraint);
		return diag_hint(d, "drop the version constraint, or add the box from a catalog");
	}
	*p = (struct plan){.name = xstrdup(name), .version = xstrdup("0"),
			   .arch = xstrdup(o->arch ? o->arch : host_arch()), .url = xstrdup(s->url),
			   .providers = o->providers, .arch_given = o->arch != NULL,
			   .signature = xstrdup(o->signature), .sums_url = xstrdup(o->checksum_file),
			   .sums_sig_url = xstrdup(o->checksum_signature)};
	if (o->checksum && o->checksum_file) {
		diag_code(d, DIAG_USAGE, "give the box's checksum or a checksum file, not both");
		return diag_hint(d, "drop --checksum: the checksum file names the digest");
	}
	if (o->checksum_signature && !o->checksum_file)
		return diag_code(d, DIAG_USAGE, "a checksum signature needs its checksum file");
	return parse_checksum(o->checksum, p, d);
}

/* A short name: the box is the publisher's image, checked against its
 * checksum file and signature, for the arch the entry is for. */
static int plan_distro(const struct box_add_opts *o, struct source *s, struct plan *p,
		       struct diag *d)
{
	struct box_add_opts named = *o;
	named.name = o->name ? o->name : s->dist.name;
	named.arch = s->dist.arch;
	if (o->checksum || o->checksum_file)
		return diag_code(d, DIAG_USAGE, "%s comes with its publisher's checksums; drop "
			       "--checksum and --checksum-file", s->dist.name);
	if (plan_direct(&named, s, p, d) < 0)
		return -1;
	p->sums_url = xstrdup(s->dist.sums_url);
	p->sums_sig_url = xstrdup(s->dist.signature_url);
	p->dir = xstrdup(s->dist.dir);
	p->file = xstrdup(s->dist.image);
	for (size_t i = 0; i < s->dist.keys.n; i++)
		strv_push(&p->keys, s->dist.keys.v[i]);
	return 0;
}

/* The expected digest, from the checksum file the plan names. */
static int plan_sums(struct plan *p, const struct boxfetch_opts *fo, struct diag *d)
{
	struct sums_source src = {.image_url = p->url, .file = p->file, .sums_url = p->sums_url,
				  .signature_url = p->sums_sig_url,
				  .keys = p->keys.n ? (const char *const *)p->keys.v : NULL,
				  .insecure = fo->insecure, .token_url = fo->token_url};
	struct sums_result r;
	if (sums_resolve(&src, &r, d) < 0)
		return -1;
	if (p->dir && (strchr(r.e.name, '/') || strcmp(r.e.name, "..") == 0)) {
		sums_entry_free(&r.e);
		return diag_fail(d, "%s lists a file name with a slash", p->sums_url);
	}
	if (p->dir) {
		free(p->url);
		p->url = xasprintf("%s%s", p->dir, r.e.name);
	}
	p->checksum_type = r.e.type;
	p->checksum = r.e.hex;
	free(r.e.name);
	p->vouch = r.signature_checked ? BOXFETCH_BY_CHECKSUM_FILE : BOXFETCH_BY_SIGNATURE;
	p->sums_signer = r.signature_checked ? xstrdup(r.signer) : NULL;
	if (r.signature_checked)
		log_info("box %s: checksum file signed by key %s", p->name, r.signer);
	return 0;
}

static void fill_ref(const struct plan *p, struct box_ref *out)
{
	*out = (struct box_ref){xstrdup(p->name), xstrdup(p->version), xstrdup(p->provider),
				xstrdup(p->arch), boxstore_path(p->name, p->version, p->arch, p->provider), false};
}

/* A .box whose provider is unknown until unpacked: present when one of the
 * providers asked for is, or else when the same source was added before. */
static bool direct_present(struct plan *p)
{
	struct box_list l;
	struct diag d;
	bool found = false;
	if (boxstore_find_name(p->name, &l, &d) < 0)
		return false;
	for (size_t i = 0; i < l.n && !found; i++) {
		const struct box_ref *r = &l.v[i];
		bool prov = str_in_list(r->provider, p->providers);
		_cleanup_free_ char *rec = path_join(r->dir, BOXSTORE_RECORD);
		json_t *o = NULL;
		if (!p->providers && state_load(rec, &o, &d) == 0)
			prov = strcmp(state_str(o, "source", ""), p->url) == 0;
		json_decref(o);
		found = strcmp(r->version, "0") == 0 && prov &&
			(!p->arch_given || strcmp(r->arch, p->arch) == 0);
		if (found) {
			free(p->provider);
			free(p->arch);
			p->provider = xstrdup(r->provider);
			p->arch = xstrdup(r->arch);
		}
	}
	box_list_free(&l);
	return found;
}

static bool present(struct plan *p)
{
	if (!p->provider)
		return direct_present(p);
	_cleanup_free_ char *dir = boxstore_path(p->name, p->version, p->arch, p->provider);
	return path_is_dir(dir);
}

static int meta_str(json_t *m, const char *key, char **out, struct diag *d)
{
	const char *v = state_str(m, key, NULL);
	if (v && !box_word_valid(v))
		return diag_fail(d, "the box's metadata.json: \"%s\" is not a valid %s", v, key);
	*out = xstrdup(v);
	return 0;
}

/* Vagrant's rule: metadata.json names the box's provider, which must be the
 * one the catalog listed (or one asked for). */
static int check_metadata(const char *dir, struct plan *p, struct diag *d)
{
	_cleanup_free_ char *path = path_join(dir, "metadata.json");
	char *text;
	size_t len;
	if (!path_exists(path)) {
		diag_fail(d, "the box has no metadata.json");
		return diag_hint(d, "a .box is a tar archive with metadata.json "
				    "({\"provider\": \"libvirt\", ...}) at its top");
	}
	if (read_file(path, 1 << 20, &text, &len, d) < 0)
		return -1;
	json_t *m = json_loadb(text, len, 0, NULL);
	free(text);
	_cleanup_free_ char *prov = NULL, *arch = NULL;
	int r = !json_is_object(m) ? diag_fail(d, "the box's metadata.json is not a JSON object")
				   : meta_str(m, "provider", &prov, d);
	if (r == 0)
		r = meta_str(m, "architecture", &arch, d);
	json_decref(m);
	if (r == 0 && !prov)
		r = diag_fail(d, "the box's metadata.json names no provider");
	if (r < 0)
		return -1;
	if (p->provider ? strcmp(prov, p->provider) != 0
			: p->providers && !str_in_list(prov, p->providers)) {
		diag_fail(d, "the box is for provider %s, not %s", prov,
			  p->provider ? p->provider : p->providers[0]);
		return diag_hint(d, "add a box built for that provider");
	}
	if (!p->provider) {
		p->provider = xstrdup(prov);
		if (arch && !p->arch_given) {
			free(p->arch);
			p->arch = xstrdup(arch);
		}
	}
	return 0;
}

static int write_record(const char *dir, const struct plan *p, const struct boxfetch_result *res,
			struct diag *d)
{
	char when[32];
	time_t t = time(NULL);
	struct tm tm;
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:s?, s:s?, s:s?, s:s, s:b, "
			      "s:s?, s:s?, s:s?}",
			      "name", p->name, "version", p->version, "provider", p->provider,
			      "architecture", p->arch, "source", p->url, "sha256", res->sha256,
			      "bytes", (json_int_t)res->bytes, "checksum_type", p->checksum_type,
			      "checksum", p->checksum, "catalog_url", p->catalog_url, "added_at",
			      when, "signature_checked", res->signature_checked, "checksum_file",
			      p->sums_url, "checksum_signer", p->sums_signer, "signer",
			      res->signer[0] ? res->signer : p->sums_signer);
	_cleanup_free_ char *path = path_join(dir, BOXSTORE_RECORD);
	int r = state_save(path, o, d);
	json_decref(o);
	return r;
}

/* Renames the unpacked box into place; --force swaps it with the old one in
 * one step, so a reader sees the old box or the new, never none. */
static int install(const char *unpacked, const struct plan *p, enum box_added *how,
		   struct diag *d)
{
	_cleanup_free_ char *final = boxstore_path(p->name, p->version, p->arch, p->provider);
	_cleanup_free_ char *parent = path_dirname(final);
	if (mkdir_p(parent, 0755, d) < 0)
		return -1;
	bool replace = path_exists(final);
	if (replace ? renameat2(AT_FDCWD, unpacked, AT_FDCWD, final, RENAME_EXCHANGE) < 0
		    : rename(unpacked, final) < 0)
		return diag_errno(d, "move the box into %s", final);
	*how = replace ? BOX_REPLACED : BOX_ADDED;
	if (!p->catalog_url)
		return 0;
	_cleanup_free_ char *root = boxes_root();
	_cleanup_free_ char *esc = box_name_escape(p->name);
	_cleanup_free_ char *murl = xasprintf("%s/%s/metadata_url", root, esc);
	return write_file_atomic(murl, p->catalog_url, strlen(p->catalog_url), 0644, d);
}

static int fetch_install(const struct box_add_opts *o, struct plan *p, struct boxfetch_opts fo,
			 enum box_added *how, struct diag *d)
{
	_cleanup_free_ char *tmp = box_tmpdir(d);
	if (!tmp)
		return -1;
	_cleanup_free_ char *unpacked = path_join(tmp, "box");
	_cleanup_free_ char *label = xasprintf("%s %s%s%s%s", p->name, p->version,
					       p->provider ? " (" : "",
					       p->provider ? p->provider : "", p->provider ? ")" : "");
	fo.checksum_type = p->checksum_type;
	fo.checksum = p->checksum;
	fo.signature = p->signature;
	fo.vouch = p->signature ? BOXFETCH_BY_SIGNATURE : p->vouch; /* a box's own signature is checked first */
	fo.label = label;
	struct boxfetch_result res = {0};
	char why[600];
	fo.private_store = box_store_private(why, sizeof(why));
	log_info("box %s: fetching %s", label, p->url);
	if (!p->checksum && download_is_remote(p->url))
		log_warn("box %s: no checksum given, so its bytes are not verified (pass --checksum "
			 "TYPE:HEX, or use a catalog that lists one)", label);
	int r = boxfetch(p->url, unpacked, &fo, &res, d);
	if (r == 0 && o->digest && strcmp(o->digest + strlen("sha256:"), res.sha256) != 0) {
		diag_fail(d, "box %s: its bytes have digest sha256:%s, but corral.lock pins %s", label,
			  res.sha256, o->digest);
		r = diag_hint(d, "the box changed where it is published; if that is expected, "
				 "`corral lock --update` pins what is there now");
	}
	if (r == 0 && res.stripped)
		log_warn("box %s: setuid/setgid bits and file capabilities were removed from %llu "
			 "files of its root tree (sudo and the like will not work in its machines) "
			 "because %s; make the store private (chmod 700, owned by root) and add the "
			 "box again with --force", label, (unsigned long long)res.stripped, why);
	if (r == 0 && (r = check_metadata(unpacked, p, d)) < 0)
		diag_wrap(d, "%s", p->url);
	if (r == 0 && !o->force && present(p))
		*how = BOX_PRESENT;
	else if (r == 0 && (r = write_record(unpacked, p, &res, d)) == 0)
		r = install(unpacked, p, how, d);
	struct diag ignored;
	rm_rf(tmp, &ignored);
	return r;
}

static int add_planned(const struct box_add_opts *o, struct plan *p,
		       const struct boxfetch_opts *fo, struct box_ref *out, enum box_added *how,
		       struct diag *d)
{
	struct lock l = {-1};
	if (box_name_lock(p->name, &l, d) < 0)
		return -1;
	int r = 0;
	if (!o->force && present(p))
		*how = BOX_PRESENT;
	else if (!p->sums_url || (r = plan_sums(p, fo, d)) == 0)
		r = fetch_install(o, p, *fo, how, d);
	lock_release(&l);
	if (r == 0)
		fill_ref(p, out);
	return r;
}

int boxstore_add(const struct box_add_opts *o, struct box_ref *out, enum box_added *how,
		 struct diag *d)
{
	*out = (struct box_ref){0};
	if (o->arch && !box_word_valid(o->arch))
		return diag_fail(d, "`%s` is not an architecture name", o->arch);
	if (oci_ref_is(o->source)) {
		struct oci_pull_opts po = {.force = o->force, .insecure = o->insecure, .arch = o->arch};
		return oci_pull(o->source, &po, out, how, NULL, d);
	}
	struct vconstraint vc; /* a typo fails before any download */
	if (vconstraint_parse(o->constraint, &vc, d) < 0)
		return -1;
	vconstraint_free(&vc);
	_cleanup_free_ char *token_url = NULL;
	struct boxfetch_opts fo = fetch_opts(o->insecure, &token_url);
	struct source s;
	struct plan p = {0};
	if (resolve_source(o->source, o->arch, &fo, &s, d) < 0)
		return -1;
	int r = s.distro    ? plan_distro(o, &s, &p, d)
		: s.catalog ? plan_catalog(o, &s, &fo, &p, d)
			    : plan_direct(o, &s, &p, d);
	if (r == 0)
		r = add_planned(o, &p, &fo, out, how, d);
	plan_free(&p);
	free(s.url);
	free(s.text);
	distro_free(&s.dist);
	return r;
}
