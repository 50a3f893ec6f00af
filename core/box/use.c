/* The store seen from its users: `up` finding (or adding) a machine's box,
 * corral's store first, then Vagrant's as it is, and `box outdated`
 * comparing installed boxes with their catalogs. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/box/store.h"
#include "core/box/store_priv.h"
#include "core/box/catalog.h"
#include "core/box/oci.h"
#include "core/config/yamltree.h"
#include "core/base/util.h"
#include "core/host/state.h"
#include "core/box/version.h"

/* The newest box of l (newest first) meeting the constraint, for the
 * providers (in their order within one version) on this host's architecture. */
static bool pick(const struct box_list *l, const struct vconstraint *vc,
		 const char *const *providers, struct box_ref *out)
{
	const char *arches[] = {host_arch(), "unknown", NULL};
	for (size_t i = 0; i < l->n; i++) {
		if (!vconstraint_match(vc, l->v[i].version))
			continue;
		for (const char *const *p = providers; *p; p++)
			for (size_t j = i; j < l->n; j++) {
				const struct box_ref *r = &l->v[j];
				if (strcmp(r->version, l->v[i].version) == 0 &&
				    strcmp(r->provider, *p) == 0 && str_in_list(r->arch, arches)) {
					*out = (struct box_ref){xstrdup(r->name), xstrdup(r->version),
								xstrdup(r->provider), xstrdup(r->arch),
								xstrdup(r->dir), r->vagrant};
					return true;
				}
			}
	}
	return false;
}

/* In corral's store, else in Vagrant's (used in place, never copied). */
static int find_installed(const struct machine_cfg *mc, const char *const *providers,
			  struct box_ref *out, bool *found, struct diag *d)
{
	struct vconstraint vc;
	struct box_list l;
	if (vconstraint_parse(mc->box_version, &vc, d) < 0)
		return diag_wrap(d, "box_version");
	if (boxstore_find_name(mc->box, &l, d) < 0) {
		vconstraint_free(&vc);
		return -1;
	}
	*found = pick(&l, &vc, providers, out);
	box_list_free(&l);
	if (!*found) {
		vagrant_box_list(mc->box, &l);
		*found = pick(&l, &vc, providers, out);
		box_list_free(&l);
	}
	vconstraint_free(&vc);
	return 0;
}

/* An OCI image: its box in the store, else pulled (box_url is not used). */
static int ensure_oci(const struct machine_cfg *mc, const char *const *providers,
		      struct box_ref *out, struct diag *d)
{
	struct oci_ref r;
	if (!str_in_list("container", providers)) {
		diag_fail(d, "box %s is an OCI image: only the container provider boots it", mc->box);
		return diag_hint(d, "use `provider: container` for this machine");
	}
	if (oci_ref_parse(mc->box, &r, d) < 0)
		return diag_wrap(d, "box");
	struct machine_cfg named = *mc;
	named.box = oci_store_name(&r);
	oci_ref_free(&r);
	const char *const container[] = {"container", NULL};
	bool found = false;
	int rc = find_installed(&named, container, out, &found, d);
	free(named.box);
	if (rc < 0 || found)
		return rc;
	struct oci_pull_opts po = {0};
	enum box_added how;
	if (oci_pull(mc->box, &po, out, &how, NULL, d) < 0)
		return diag_wrap(d, "box %s", mc->box);
	return 0;
}

/* The add boxstore_ensure falls back to, with the lock's pin when given. */
static int add_from_source(const struct machine_cfg *mc, const char *const *providers,
			   const char *constraint, const struct box_pin *pin,
			   struct box_ref *out, struct diag *d)
{
	struct box_add_opts o = {
		.name = mc->box, .source = mc->box_url ? mc->box_url : mc->box,
		.constraint = constraint, .providers = providers, .checksum = mc->box_checksum,
		.checksum_file = mc->box_checksum_file,
		.checksum_signature = mc->box_checksum_signature,
		.arch = pin ? pin->arch : NULL, .digest = pin ? pin->digest : NULL,
	};
	enum box_added how;
	if (boxstore_add(&o, out, &how, d) < 0)
		return diag_wrap(d, "box %s", mc->box);
	return 0;
}

/* `box:` is an image's URL or path: stored as local/NAME (box_name_for_source)
 * and added from there the first time. */
static int ensure_source(const struct machine_cfg *mc, const char *const *providers,
			 struct box_ref *out, struct diag *d)
{
	struct machine_cfg named = *mc;
	named.box = box_name_for_source(mc->box);
	named.box_url = mc->box;
	bool found = false;
	int rc = find_installed(&named, providers, out, &found, d);
	if (rc == 0 && !found)
		rc = add_from_source(&named, providers, mc->box_version, NULL, out, d);
	free(named.box);
	return rc;
}

int boxstore_ensure(const struct machine_cfg *mc, const char *const *providers,
		    struct box_ref *out, struct diag *d)
{
	*out = (struct box_ref){0};
	if (!mc->box)
		return diag_fail(d, "machine %s has no box", mc->name);
	bool found = false;
	if (oci_ref_is(mc->box))
		return ensure_oci(mc, providers, out, d);
	if (box_is_source(mc->box) && !mc->box_url)
		return ensure_source(mc, providers, out, d);
	if (find_installed(mc, providers, out, &found, d) < 0)
		return diag_wrap(d, "box %s", mc->box);
	if (found)
		return 0;
	return add_from_source(mc, providers, mc->box_version, NULL, out, d);
}

/* The sha256 the store recorded for the box's bytes ("" when it has no
 * record: a box of Vagrant's store). */
static void recorded_digest(const struct box_ref *r, char *out, size_t n)
{
	_cleanup_free_ char *rec = path_join(r->dir, BOXSTORE_RECORD);
	json_t *o = NULL;
	struct diag ignored;
	out[0] = '\0';
	if (path_exists(rec) && state_load(rec, &o, &ignored) == 0 && state_str(o, "sha256", NULL))
		snprintf(out, n, "sha256:%s", state_str(o, "sha256", ""));
	json_decref(o);
}

static int check_pinned(const struct machine_cfg *mc, const struct box_pin *pin,
			const struct box_ref *r, struct diag *d)
{
	char have[80];
	recorded_digest(r, have, sizeof(have));
	if (!pin->digest || !have[0] || strcmp(have, pin->digest) == 0)
		return 0;
	diag_fail(d, "box %s %s (%s) in the store has digest %s, but corral.lock pins %s", mc->box,
		  pin->version, pin->provider, have, pin->digest);
	return diag_hint(d, "remove it (`corral box remove %s --box-version %s`) to fetch the "
			    "locked one, or `corral lock --update %s` to pin the one you have",
			 mc->box, pin->version, mc->name);
}

/* An image in the store whose manifest digest is not the pinned one. */
static int check_oci_pinned(const struct machine_cfg *mc, const struct box_pin *pin,
			    const struct box_ref *r, struct diag *d)
{
	char have[80];
	recorded_digest(r, have, sizeof(have));
	if (!have[0] || strcmp(have, pin->digest) == 0)
		return 0;
	diag_fail(d, "image %s in the store (%s) has manifest digest %s, but corral.lock pins %s",
		  mc->box, r->name, have, pin->digest);
	return diag_hint(d, "remove it (`corral box remove %s`) to pull the locked one, or "
			    "`corral lock --update %s` to pin the one you have", r->name, mc->name);
}

/* The image's box under its own name in the store, without pulling. */
static int find_oci(const struct machine_cfg *mc, struct box_ref *out, bool *found,
		    struct diag *d)
{
	struct oci_ref r;
	if (oci_ref_parse(mc->box, &r, d) < 0)
		return diag_wrap(d, "box");
	struct machine_cfg named = *mc;
	named.box = oci_store_name(&r);
	named.box_version = NULL;
	oci_ref_free(&r);
	const char *const container[] = {"container", NULL};
	int rc = find_installed(&named, container, out, found, d);
	free(named.box);
	return rc;
}

/* A registry image named by tag, pulled by the pinned manifest digest
 * (the tag may have moved since the lock was written); NULL for others. */
static char *by_pinned_digest(const char *box, const char *digest)
{
	struct oci_ref r;
	struct diag ignored;
	if (oci_ref_parse(box, &r, &ignored) < 0)
		return NULL;
	char *s = NULL;
	if (r.kind == OCI_REGISTRY && !r.digest) {
		r.digest = xstrdup(digest);
		_cleanup_free_ char *ref = oci_ref_string(&r);
		s = xasprintf("oci://%s", ref);
	}
	oci_ref_free(&r);
	return s;
}

/* An OCI image under the lock: the store's box when its manifest digest
 * is the pinned one, else the image by that digest from its registry; a
 * box or local image with another digest is refused, naming both. */
static int ensure_oci_pinned(const struct machine_cfg *mc, const char *const *providers,
			     const struct box_pin *pin, struct box_ref *out, struct diag *d)
{
	if (!pin->digest)
		return ensure_oci(mc, providers, out, d);
	if (!str_starts(pin->digest, "sha256:"))
		return diag_fail(d, "%s: corral.lock: digest `%s` is not sha256:HEX", mc->name,
				 pin->digest);
	bool found = false;
	if (str_in_list("container", providers) && find_oci(mc, out, &found, d) < 0)
		return -1;
	_cleanup_free_ char *exact = found ? NULL : by_pinned_digest(mc->box, pin->digest);
	int rc = 0;
	if (exact) {
		struct oci_pull_opts po = {.arch = pin->arch};
		enum box_added how;
		if (oci_pull(exact, &po, out, &how, NULL, d) < 0)
			return diag_wrap(d, "box %s (locked at %s)", mc->box, pin->digest);
	} else if (!found && (rc = ensure_oci(mc, providers, out, d)) < 0)
		return rc;
	if (check_oci_pinned(mc, pin, out, d) < 0) {
		box_ref_free(out);
		return -1;
	}
	return 0;
}

int boxstore_ensure_pinned(const struct machine_cfg *mc, const char *const *providers,
			   const struct box_pin *pin, struct box_ref *out, struct diag *d)
{
	*out = (struct box_ref){0};
	if (!mc->box)
		return diag_fail(d, "machine %s has no box", mc->name);
	if (oci_ref_is(mc->box))
		return ensure_oci_pinned(mc, providers, pin, out, d);
	if (box_is_source(mc->box) && !mc->box_url) { /* an image's URL or path */
		struct machine_cfg named = *mc;
		named.box = box_name_for_source(mc->box);
		named.box_url = mc->box;
		int rc = boxstore_ensure_pinned(&named, providers, pin, out, d);
		free(named.box);
		return rc;
	}
	if (!str_in_list(pin->provider, providers))
		return diag_fail(d, "%s: corral.lock pins box %s for provider %s, which this "
				    "machine's provider cannot boot", mc->name, mc->box, pin->provider);
	if (pin->digest && !str_starts(pin->digest, "sha256:"))
		return diag_fail(d, "%s: corral.lock: digest `%s` is not sha256:HEX", mc->name,
				 pin->digest);
	const char *only[] = {pin->provider, NULL};
	_cleanup_free_ char *exact = xasprintf("= %s", pin->version);
	struct machine_cfg pinned = *mc;
	pinned.box_version = exact;
	bool found = false;
	if (find_installed(&pinned, only, out, &found, d) < 0)
		return diag_wrap(d, "box %s", mc->box);
	if (found && strcmp(out->arch, pin->arch ? pin->arch : out->arch) != 0) {
		box_ref_free(out);
		found = false;
	}
	if (!found && add_from_source(mc, only, exact, pin, out, d) < 0)
		return -1;
	if (check_pinned(mc, pin, out, d) < 0) {
		box_ref_free(out);
		return -1;
	}
	return 0;
}

int boxstore_resolve_latest(const struct machine_cfg *mc, const char *const *providers,
			    struct box_ref *out, struct diag *d)
{
	*out = (struct box_ref){0};
	if (!mc->box)
		return diag_fail(d, "machine %s has no box", mc->name);
	return add_from_source(mc, providers, mc->box_version, NULL, out, d);
}

static char *metadata_url(const char *name)
{
	_cleanup_free_ char *root = boxes_root();
	_cleanup_free_ char *esc = box_name_escape(name);
	_cleanup_free_ char *path = xasprintf("%s/%s/metadata_url", root, esc);
	char *text = NULL;
	size_t len;
	struct diag d;
	if (!path_exists(path) || read_file(path, 64 << 10, &text, &len, &d) < 0)
		return NULL;
	while (len && strchr(" \t\r\n", text[len - 1]))
		text[--len] = '\0';
	return text;
}

static void add_status(struct box_status **v, size_t *n, const struct box_ref *r,
		       const char *latest, const char *url)
{
	*v = xrealloc(*v, (*n + 1) * sizeof(**v));
	(*v)[(*n)++] = (struct box_status){
		.box = {.name = xstrdup(r->name), .version = xstrdup(r->version),
			.provider = xstrdup(r->provider), .arch = xstrdup(r->arch),
			.dir = xstrdup(r->dir), .vagrant = r->vagrant},
		.latest = xstrdup(latest), .catalog_url = xstrdup(url),
	};
}

/* The boxes l.v[from..to) share one name. */
static void check_name(const struct box_list *l, size_t from, size_t to, bool insecure,
		       struct box_status **v, size_t *n, struct diag_list *errs)
{
	_cleanup_free_ char *url = metadata_url(l->v[from].name);
	struct catalog c = {0};
	struct diag d;
	if (url && box_catalog_fetch(url, insecure, &c, &d) < 0) {
		diag_wrap(&d, "box %s", l->v[from].name);
		diag_list_add(errs, &d);
		return;
	}
	for (size_t i = from; i < to; i++) {
		if (!box_newest_of_kind(l, i))
			continue;
		const char *provs[] = {l->v[i].provider, NULL};
		struct catalog_pick pick;
		bool ok = url && catalog_pick(&c, NULL, provs, l->v[i].arch, &pick, &d) == 0;
		add_status(v, n, &l->v[i], ok ? pick.version->version : NULL, url);
	}
	catalog_free(&c);
}

int boxstore_outdated(const char *name, bool insecure, struct box_status **v, size_t *n,
		      struct diag_list *errs, struct diag *d)
{
	struct box_list l;
	*v = NULL;
	*n = 0;
	if ((name ? boxstore_find_name(name, &l, d) : boxstore_list(&l, d)) < 0)
		return -1;
	if (name && !l.n) {
		diag_fail(d, "box %s is not in the store", name);
		return diag_hint(d, "`corral box list` shows the boxes in the store");
	}
	for (size_t i = 0, j; i < l.n; i = j) {
		for (j = i + 1; j < l.n && strcmp(l.v[j].name, l.v[i].name) == 0;)
			j++;
		check_name(&l, i, j, insecure, v, n, errs);
	}
	box_list_free(&l);
	return 0;
}

void box_status_free(struct box_status *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		box_ref_free(&v[i].box);
		free(v[i].latest);
		free(v[i].catalog_url);
	}
	free(v);
}
