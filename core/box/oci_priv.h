/* Shared by the oci_*.c files only: where an image's manifests and blobs
 * come from (a registry or one of its mirrors, or a local layout), the
 * registry's authentication, and the layer store. */
#ifndef CORRAL_BOX_OCI_PRIV_H
#define CORRAL_BOX_OCI_PRIV_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "core/base/diag.h"
#include "core/box/oci.h"

/* Where the bytes come from. For a registry: base is "https://HOST[:PORT]"
 * (the registry, or the mirror that answered), host the name credentials
 * are looked up by, auth the Authorization line the last challenge earned.
 * For local kinds: dir is an OCI layout (an oci-archive unpacked into a
 * temporary directory), or a docker-archive's directory with blob_paths
 * (digest -> file in dir). */
struct oci_source {
	const struct oci_ref *ref;
	bool insecure;
	char *base, *host, *auth;
	char *dir, *tmp; /* tmp: removed by oci_source_close */
	json_t *blob_paths;
	char *synthetic;   /* a docker-archive's manifest, made up from manifest.json */
	char *tag_digest;  /* a local layout's top manifest for the tag */
	uint64_t bytes;    /* blob bytes fetched so far */
};

int oci_source_open(struct oci_source *s, const struct oci_ref *r, bool insecure, struct diag *d);
void oci_source_close(struct oci_source *s);

/* A manifest or index by tag or digest, up to 4 MiB; *media_type from the
 * response (or the document's mediaType); *digest the sha256 of the bytes. */
int oci_get_manifest(struct oci_source *s, const char *tag_or_digest, char **body, size_t *len,
		     char **media_type, char *digest, struct diag *d);
/* A small blob (the image config), checked against digest and size. */
int oci_get_blob_text(struct oci_source *s, const char *digest, uint64_t size, char **body,
		      size_t *len, struct diag *d);
/* A layer, streamed through hash, size check and unpack into dest (which
 * must not exist), as boxfetch does; on failure dest does not exist. */
int oci_fetch_layer(struct oci_source *s, const char *digest, uint64_t size, const char *dest,
		    bool private_store, const char *label, struct diag *d);

/* "sha256:" and 64 lower-case hex digits: safe in a path or URL. */
bool oci_digest_valid(const char *digest);

/* oci_auth.c */
char *oci_credentials(const char *host);
int oci_answer_challenge(const char *challenge, const char *host, bool insecure, char **auth,
			 struct diag *d);

/* oci_layers.c: the layer store, boxes/.oci/layers/sha256-HEX/ (rootfs/ and
 * its manifest); layers are unpacked there once and shared. */
char *oci_layer_dir(const char *digest);
/* Builds box_dir/rootfs from the layer directories, lowest first, as links
 * to their files (whiteouts and opaque directories applied, hard links to
 * lower layers made), and box_dir's manifest with extra records (path ->
 * record, e.g. metadata.json's) added. */
int oci_assemble(const char *box_dir, char *const *layer_dirs, size_t n, json_t *extra,
		 struct diag *d);
/* The layer store's lock: shared while pulling, exclusive to collect;
 * returns the fd to close, or -1. */
int oci_layers_lock(bool exclusive, struct diag *d);

#endif
