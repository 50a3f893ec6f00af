/* `corral box publish`: .box files copied into a directory that any static
 * web server can serve as a box server, with Vagrant's versioned catalog
 * beside them. The layout is the one `box add org/name` reads
 * ($CORRAL_BOX_SERVER/org/name, core/box/add.c):
 *   DIR/ORG/NAME                          the catalog (JSON, no extension)
 *   DIR/ORG/NAME-VERSION-PROVIDER-ARCH.box  each box; the catalog's url is
 *                                         relative to the catalog (or
 *                                         BASE_URL/ORG/FILE with base_url) */
#ifndef CORRAL_BOXPUBLISH_H
#define CORRAL_BOXPUBLISH_H
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"

struct publish_opts {
	const char *dir;      /* the served directory; created when missing */
	const char *name;     /* "org/name" */
	const char *version;  /* Vagrant's version syntax */
	const char *provider; /* NULL: each box's metadata.json says; else must agree */
	const char *arch;     /* NULL: metadata.json's architecture, else none (any) */
	const char *key;      /* PEM Ed25519 private key: signs each box; NULL: unsigned */
	const char *base_url; /* NULL: relative urls */
};

/* What one box became. */
struct published {
	char *path;  /* the box's copy in DIR */
	char *url;   /* as the catalog names it */
	char *provider, *arch; /* arch NULL: none */
	char sha256[65];
	char *signature; /* base64 Ed25519 (with a key), else NULL */
};

/* Copies each box into place (temp + rename) and writes or updates the
 * catalog (temp + rename): other versions and entries kept, the entry of
 * the same version, provider and architecture replaced; versions newest
 * first, providers by name and architecture, keys sorted. *catalog gets
 * the catalog's path. Nothing is changed unless every box can be read. */
int box_publish(const struct publish_opts *o, char *const *boxes, size_t n,
		struct published **out, char **catalog, struct diag *d);
void published_free(struct published *v, size_t n);

#endif
