/* Short names for well-known distributions' cloud images ("debian/12",
 * "ubuntu/24.04", ...). The table is data, not code: distros.json in
 * corral's data directory (data/ in the source tree, share/corral when
 * installed; $CORRAL_DATA_DIR overrides). Each entry names the publisher's
 * directory, image file, checksum file, signature file and signing key
 * fingerprints, per architecture. $CORRAL_IMAGE_MIRROR (a base URL or path)
 * replaces every publisher's https://HOST/PATH with MIRROR/HOST/PATH: a
 * mirror laid out like the publishers' own directories. */
#ifndef CORRAL_DISTROS_H
#define CORRAL_DISTROS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"
#include "core/base/strv.h"

struct distro {
	char *name, *description, *arch; /* arch: corral's name (amd64, arm64) */
	char *dir;                       /* the publisher's directory URL, ending in '/' */
	char *image;                     /* file name in dir (may be an fnmatch pattern) */
	char *sums_url, *signature_url;  /* signature_url NULL: clearsigned or unsigned */
	struct strv keys;                /* pinned fingerprints; empty: no signature published */
	char *note;                      /* what is (not) verified, for `box search`; may be NULL */
};
void distro_free(struct distro *x);

struct distro_list {
	struct distro *v;
	size_t n;
};
void distro_list_free(struct distro_list *l);

/* A file or directory in corral's data directory, or NULL when there is none. */
char *distros_data_path(const char *name);

/* Every entry and architecture, in the table's order; term (NULL: all)
 * narrows to names or descriptions containing it. */
int distros_list(const char *term, struct distro_list *l, struct diag *d);

/* The entry for name on arch (NULL: this host's); *found false when the
 * table has no such name. A known name without that architecture is an error. */
int distro_find(const char *name, const char *arch, struct distro *out, bool *found,
		struct diag *d);

#endif
