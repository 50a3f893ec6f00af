/* Vagrant's versioned box metadata (a "catalog"): parsing, and choosing the
 * version, provider and architecture the way `vagrant box add` does.
 *   {"name": "org/box", "versions": [{"version": "1.2.0", "providers": [
 *     {"name": "libvirt", "url": "...", "checksum_type": "sha256",
 *      "checksum": "...", "architecture": "amd64"}]}]} */
#ifndef CORRAL_CATALOG_H
#define CORRAL_CATALOG_H
#include <stddef.h>

#include "core/base/diag.h"

struct catalog_provider {
	char *name, *url;
	char *checksum_type, *checksum; /* NULL when absent */
	char *signature;                /* base64 Ed25519 over the box's sha256; NULL when absent */
	char *arch;                     /* NULL: the entry fits any architecture */
};

struct catalog_version {
	char *version;
	struct catalog_provider *p;
	size_t np;
};

struct catalog {
	char *name, *description;
	struct catalog_version *v; /* newest first */
	size_t nv;
};

/* `where` (the catalog's URL or path) names the document in errors. */
int catalog_parse(const char *json, size_t len, const char *where, struct catalog *c,
		  struct diag *d);
void catalog_free(struct catalog *c);

struct catalog_pick {
	const struct catalog_version *version;
	const struct catalog_provider *provider;
	const char *arch; /* the entry's architecture, else the one asked for */
};

/* The newest version meeting `constraint` (NULL: any) with an entry for one
 * of `providers` (NULL-ended, in order of preference; NULL: any provider) and
 * for `arch` (NULL: the host's, then "unknown"). When nothing fits, the error
 * lists what the catalog offers. */
int catalog_pick(const struct catalog *c, const char *constraint, const char *const *providers,
		 const char *arch, struct catalog_pick *out, struct diag *d);

/* Vagrant's name for this host's architecture: "amd64", "arm64", "i386", ... */
const char *host_arch(void);

#endif
