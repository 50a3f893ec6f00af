/* OCI images as container boxes: references (oci_ref.c), the registry's
 * Distribution API v2 with its authentication (oci_registry.c,
 * oci_auth.c), the shared layer store and the assembly of a root tree from
 * layers (oci_layers.c), and the pull that ties them together into a box of
 * the store (oci_pull.c). The box an image becomes is an ordinary container
 * box — rootfs/ and metadata.json ("format": "oci", and an "oci" object with
 * the reference, digests and the image config's Env, WorkingDir, User,
 * Entrypoint and Cmd) — filed as NAME 0 ARCH container, where NAME is
 * oci_store_name(). */
#ifndef CORRAL_BOX_OCI_H
#define CORRAL_BOX_OCI_H
#include <stdbool.h>
#include <jansson.h>

#include "core/base/diag.h"
#include "core/box/store.h"

enum oci_kind {
	OCI_REGISTRY,       /* oci://REG/REPO[:TAG][@DIGEST], docker.io short forms */
	OCI_LAYOUT,         /* oci:DIR[:TAG] */
	OCI_ARCHIVE,        /* oci-archive:PATH[:TAG]: a tar of an OCI layout */
	OCI_DOCKER_ARCHIVE, /* docker-archive:PATH (docker save) */
};

struct oci_ref {
	enum oci_kind kind;
	char *registry; /* "docker.io", "localhost:5000" (OCI_REGISTRY) */
	char *repo;     /* "library/debian" */
	char *tag;      /* NULL when only a digest is given; "latest" when neither */
	char *digest;   /* "sha256:HEX" or NULL */
	char *path;     /* absolute path (local kinds) */
};
void oci_ref_free(struct oci_ref *r);

/* Whether `box` names an OCI image rather than a Vagrant box: oci://,
 * oci:, oci-archive:, docker-archive:, a docker.io/ prefix, or a docker
 * short form with a :tag or @digest (`debian:12`, `library/ubuntu:24.04`,
 * `ghcr.io/o/n@sha256:...`). A plain `org/name` stays a Vagrant box name. */
bool oci_ref_is(const char *box);
int oci_ref_parse(const char *s, struct oci_ref *r, struct diag *d);
/* "REG/REPO:TAG" or "REG/REPO@DIGEST"; local kinds as given. */
char *oci_ref_string(const struct oci_ref *r);
/* The image's name in the box store (box_name_valid). */
char *oci_store_name(const struct oci_ref *r);

struct oci_pull_opts {
	bool force, insecure;
	const char *arch; /* NULL: the host's */
};
struct oci_pull_stats {
	unsigned layers, layers_fetched;
	unsigned long long bytes_fetched; /* blob bytes downloaded or read by this pull */
};

/* `box add REF` and `up` of a machine whose box is one: pulls the image
 * into the store (layers already in the layer store are not fetched
 * again). Present already: BOX_PRESENT without a fetch, unless force; an
 * image whose manifest digest differs from the one recorded at its first
 * pull is reported (refused without force, replaced with it). */
int oci_pull(const char *ref, const struct oci_pull_opts *o, struct box_ref *out,
	     enum box_added *how, struct oci_pull_stats *st, struct diag *d);

/* The "oci" object of a box's metadata.json (new reference), or NULL when
 * the box is not an OCI image. */
json_t *oci_box_info(const char *box_dir);

/* Removes the layers of the layer store that no box of the store lists
 * any more (`box remove`, `box prune`); *removed counts them. */
int oci_layers_gc(unsigned *removed, struct diag *d);

#endif
