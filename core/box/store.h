/* The box store: $CORRAL_HOME/boxes in Vagrant's layout,
 *   boxes/NAME/VERSION/ARCH/PROVIDER/   ("/" in NAME stored as -VAGRANTSLASH-)
 *   boxes/NAME/metadata_url             the catalog a box came from
 * Each box directory holds the unpacked box (metadata.json, disk, ...),
 * boxfetch's manifest and BOXSTORE_RECORD (source URL, archive sha256,
 * checksum, catalog URL, time added). A box directory appears only complete: it is
 * unpacked into boxes/.tmp-XXXXXX and renamed into place. Adds and removes
 * of one box name are serialized by flock on boxes/.lock-NAME.
 * store.c: layout, listing, removal, pruning; add.c: adding (from a
 * path, URL, catalog or box server), outdated/update, and ensure for `up`. */
#ifndef CORRAL_BOXSTORE_H
#define CORRAL_BOXSTORE_H
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"
#include "core/config/envfile.h"

#define BOXSTORE_RECORD ".corral-box.json"

struct box_ref {
	char *name, *version, *provider, *arch, *dir;
	bool vagrant; /* in Vagrant's store (read only), not corral's */
};
void box_ref_free(struct box_ref *r);

struct box_list {
	struct box_ref *v;
	size_t n;
};
void box_list_free(struct box_list *l);

/* Every box in the store, by name, then version (oldest first), arch, provider. */
int boxstore_list(struct box_list *l, struct diag *d);

/* Vagrant's own store, $VAGRANT_HOME/boxes (default ~/.vagrant.d/boxes), read
 * in place and never written: NAME/VERSION/PROVIDER (Vagrant before 2.4) or
 * NAME/VERSION/ARCH/PROVIDER, "/" in NAME as -VAGRANTSLASH-. Its boxes are
 * listed by `box list` (marked) and booted by `up` when corral's store has
 * no match, without adding them again. The old layout's arch is "unknown". */
char *vagrant_boxes_root(void);
/* Every box there, ordered as boxstore_list; name NULL: all, else that one's, newest first. */
int vagrant_box_list(const char *name, struct box_list *l);

/* The store directory of one box (whether or not it exists). */
char *boxstore_path(const char *name, const char *version, const char *arch,
		    const char *provider);

/* What `box remove` acts on: the boxes of `name`, narrowed by version,
 * provider and arch (each NULL: any). More than one version without
 * `all`, or several providers/architectures of one version, is an error
 * listing them, as in Vagrant. */
struct box_filter {
	const char *name, *version, *provider, *arch;
	bool all;
};
int boxstore_select(const struct box_filter *f, struct box_list *out, struct diag *d);

/* Removes one box; refuses one a created machine uses unless force. Empty
 * version/arch directories go with it, and the name's directory (with its
 * metadata_url) with its last box. */
int boxstore_remove(const struct box_ref *r, bool force, struct diag *d);

/* `box verify`: each way the box's files differ from what was unpacked goes
 * to problems; -1 only when the check cannot run. */
int boxstore_verify(const struct box_ref *r, struct diag_list *problems, struct diag *d);

/* `box prune`: keep the newest version of each name/provider/arch, and
 * every box in use (who: "envfile:machine"). */
enum prune_action { PRUNE_KEEP, PRUNE_REMOVE, PRUNE_IN_USE };
struct prune_item {
	struct box_ref box;
	enum prune_action action;
	char who[1024];
};
int boxstore_prune_plan(struct prune_item **v, size_t *n, struct diag *d);
void prune_plan_free(struct prune_item *v, size_t n);

/* `box add`. source: a path or URL of a .box (needs name; version "0"), a
 * path or URL of a catalog (names itself), a short name of a distribution's
 * cloud image ("debian/12": core/box/distros.h; the name is the box's, version
 * "0", verified by the publisher's checksum file and signature), or
 * "org/name", whose catalog is fetched from $CORRAL_BOX_SERVER/org/name
 * (default https://vagrantcloud.com, the only host that gets $CORRAL_BOX_TOKEN). */
struct box_add_opts {
	const char *name;              /* required for a .box, must match a catalog's */
	const char *source;
	const char *constraint;        /* NULL: newest */
	const char *const *providers;  /* NULL-ended, preferred first; NULL: any */
	const char *arch;              /* NULL: the host's, then "unknown" */
	const char *checksum;          /* "TYPE:HEX" for a .box; NULL: none */
	const char *signature;         /* base64 Ed25519 for a .box; NULL: none */
	const char *checksum_file;     /* URL of a checksum file listing the box file (core/box/sums.h) */
	const char *checksum_signature; /* URL of its detached OpenPGP signature; NULL: clearsigned or none */
	const char *digest;            /* "sha256:HEX" the bytes must have (corral.lock); NULL: any */
	bool force, insecure;
};
enum box_added { BOX_ADDED, BOX_PRESENT, BOX_REPLACED };
/* The store name of a box given as its file or URL (`box: ./x.qcow2`,
 * `box add URL` without --name): "local/" + the file name without its
 * suffixes (.qcow2, .img, .raw, .tar, .xz, ...). */
char *box_name_for_source(const char *src);
int boxstore_add(const struct box_add_opts *o, struct box_ref *out, enum box_added *how,
		 struct diag *d);

/* `box outdated`: for each name/provider/arch added from a catalog, the newest
 * version installed and the newest the catalog offers for it (latest NULL:
 * the catalog no longer offers that provider/arch). Catalogs that cannot be
 * read are added to errs and skipped. name NULL: every box. */
struct box_status {
	struct box_ref box; /* the newest installed */
	char *latest, *catalog_url;
};
int boxstore_outdated(const char *name, bool insecure, struct box_status **v, size_t *n,
		      struct diag_list *errs, struct diag *d);
void box_status_free(struct box_status *v, size_t n);

/* Finds the machine's box in the store for one of `providers` (NULL-ended
 * list, e.g. {"kvm","libvirt","qemu",NULL}), honouring box_version; when
 * missing, adds it from box_url (catalog, .box URL, file:// or path;
 * box_checksum "TYPE:HEX" for direct boxes) or from $CORRAL_BOX_SERVER for
 * an org/name. Fills out (caller frees with box_ref_free). */
int boxstore_ensure(const struct machine_cfg *mc, const char *const *providers,
		    struct box_ref *out, struct diag *d);

/* What corral.lock pins a machine's box to (core/box/boxlock.h). */
struct box_pin {
	const char *version, *provider, *arch;
	const char *digest; /* "sha256:HEX"; NULL: not known (a box of Vagrant's store) */
};
/* boxstore_ensure for exactly that version, provider and architecture,
 * even when a newer one fits box_version; a box in the store, or fetched,
 * whose bytes differ from pin->digest is refused, naming both digests. */
int boxstore_ensure_pinned(const struct machine_cfg *mc, const char *const *providers,
			   const struct box_pin *pin, struct box_ref *out, struct diag *d);
/* Resolves again from the box's source (catalog or box server): the newest
 * version fitting box_version, added when missing (`corral lock --update`). */
int boxstore_resolve_latest(const struct machine_cfg *mc, const char *const *providers,
			    struct box_ref *out, struct diag *d);

#endif
