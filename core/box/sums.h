/* Publishers' checksum files, and where a box's expected digest comes from
 * when a box entry names one:
 *   GNU coreutils  "HEX  NAME" or "HEX *NAME" (sha256sum/sha512sum output;
 *                  the type follows from the digest's length)
 *   BSD tags       "SHA256 (NAME) = HEX" (Fedora's, AlmaLinux's and Rocky's CHECKSUM)
 * either of them possibly clearsigned (the armor is skipped, dash-escaping
 * undone); '#' lines and blank lines are ignored.
 * sums_resolve fetches the file and its signature, checks the signature
 * (core/box/openpgp.h) by the policy of CORRAL_VERIFY_SIGNATURES and finds
 * the box file's entry: the digest the one-pass fetch then checks. */
#ifndef CORRAL_SUMS_H
#define CORRAL_SUMS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"

struct sums_entry {
	char *name; /* as listed (a pattern given to sums_find matched this one) */
	char *type; /* "sha256", "sha512", ... */
	char *hex;  /* lower case */
};
void sums_entry_free(struct sums_entry *e);

/* The entry for `file` (a plain name, or an fnmatch pattern like
 * "Fedora-Cloud-Base-Generic-41-*.x86_64.qcow2": the greatest matching name
 * wins, newest by the publishers' naming). A "./" or "*" before a name is no
 * part of it. No entry: -1 with DIAG_SUMS_NO_ENTRY; two different digests
 * of one type for the file: -1. */
int sums_find(const char *text, size_t len, const char *file, struct sums_entry *e,
	      struct diag *d);

/* The text is a clearsigned OpenPGP message. */
bool sums_clearsigned(const char *text, size_t len);

struct sums_source {
	const char *image_url;     /* the box file; its last path part is looked up */
	const char *file;          /* the name to look up instead (a pattern), or NULL */
	const char *sums_url;      /* the checksum file */
	const char *signature_url; /* its detached signature, or NULL (clearsigned or unsigned) */
	const char *const *keys;   /* fingerprints the signer must have; NULL: any trusted key */
	bool insecure;
	const char *token_url;
};
struct sums_result {
	struct sums_entry e;
	bool signature_checked;
	char signer[41]; /* the signing key's primary fingerprint, when checked */
};
/* Fetches, verifies and looks up, as the header comment says. Errors carry
 * DIAG_SIG_BAD, DIAG_SIG_UNKNOWN_KEY, DIAG_SIG_MISSING or DIAG_SUMS_NO_ENTRY. */
int sums_resolve(const struct sums_source *s, struct sums_result *r, struct diag *d);

#endif
