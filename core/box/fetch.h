/* The box fetch pipeline: download (or read a local file), hash and unpack
 * in one overlapping pass, verify checksum and signature, and leave either a
 * complete unpacked directory or nothing. The box store builds on this. */
#ifndef CORRAL_BOXFETCH_H
#define CORRAL_BOXFETCH_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/diag.h"

/* Who vouches for the digest a box is checked against. */
enum boxfetch_voucher {
	BOXFETCH_BY_SIGNATURE,     /* the box's own Ed25519 `signature`, under CORRAL_VERIFY_SIGNATURES (none: unsigned) */
	BOXFETCH_BY_CHECKSUM_FILE, /* `checksum` came from a checksum file whose OpenPGP signature was checked */
	BOXFETCH_BY_MANIFEST,      /* an OCI blob: `checksum` is the digest a verified manifest names */
};

struct boxfetch_opts {
	bool insecure;             /* --insecure: TLS verification off (caller warns once) */
	const char *checksum_type; /* "sha256"|"sha384"|"sha512"|"sha1"|"md5", or NULL */
	const char *checksum;      /* expected hex digest, or NULL */
	const char *signature;     /* base64 Ed25519 signature over the box's sha256 digest (raw 32 bytes), or NULL */
	enum boxfetch_voucher vouch; /* default BOXFETCH_BY_SIGNATURE */
	const char *token_url;     /* only its scheme://host:port receives "Authorization: Bearer $CORRAL_BOX_TOKEN"; NULL: nobody */
	const char *label;         /* progress label, e.g. "corral/debian-12 12.0.0 (container)" */
	bool private_store;        /* dest_dir is reachable by root only: a container root tree keeps setuid bits and file capabilities */
	/* For OCI blobs (core/box/oci_*.c): headers sent on every hop, auth
	 * only to auth_url's origin (see core/box/download.h); size: the exact
	 * byte count the descriptor gives (0: not known), a different length
	 * fails as soon as it shows; layer: unpack as an image layer (unpack.h;
	 * its digest is vouched for BOXFETCH_BY_MANIFEST). */
	const char *const *headers;
	const char *auth, *auth_url;
	uint64_t size;
	bool layer;
};

struct boxfetch_result {
	char sha256[65];
	uint64_t bytes;
	bool signature_checked;
	char signer[128]; /* the trusted key that verified the signature ("" none): its file name without .pub */
	uint64_t stripped; /* setuid/setgid bits and file capabilities dropped from a container root tree (!private_store) */
};

/* Fetches `src` (http://, https://, file://, or a plain local path) and unpacks the
 * archive into dest_dir (must not exist; created 0755), within the limits and
 * free space of core/box/guard.h (a box larger than the space left is refused
 * as soon as its size is known, before it is downloaded). Verifies checksum and the
 * signature policy (CORRAL_VERIFY_SIGNATURES=required|if-present|off, default
 * if-present; trusted keys: $CORRAL_HOME/trusted-keys/NAME.pub, PEM or raw base64 Ed25519
 * public keys). On any failure dest_dir does not exist afterwards and the error says
 * what (expected and actual digest on mismatch). */
int boxfetch(const char *src, const char *dest_dir, const struct boxfetch_opts *o,
	     struct boxfetch_result *r, struct diag *d);

/* CORRAL_VERIFY_SIGNATURES, default "if-present" (check_opts refuses other words). */
const char *boxfetch_signature_policy(void);

/* A small document (a catalog JSON), max bytes. Same TLS/token/proxy rules.
 * A plain path or file:// URL is read from disk. *data is NUL-terminated. */
int fetch_text(const char *url, size_t max, const struct boxfetch_opts *o,
	       char **data, size_t *len, struct diag *d);

/* For `corral box sign KEY BOXFILE`: base64 signature over sha256(BOXFILE) with a
 * PEM Ed25519 private key. */
int box_sign(const char *key_path, const char *box_path, char **sig_b64, struct diag *d);

/* For `box verify`: checks a directory against the per-file manifest written at
 * unpack time (dir/.corral-manifest.json: path -> sha256, symlink targets, modes).
 * Each difference is added to *problems; returns -1 only when the check itself
 * cannot run (no manifest, unreadable). */
int boxfetch_verify_dir(const char *dir, struct diag_list *problems, struct diag *d);

/* The manifest's file name inside an unpacked box. */
#define BOXFETCH_MANIFEST ".corral-manifest.json"
/* dir's manifest, loaded: its "files" object (path -> record), borrowed
 * from *doc, which the caller releases (also on failure, when it may be
 * NULL); NULL with the reason in why (the JSON error, or no "files"). */
struct json_t;
struct json_t *boxfetch_manifest_files(const char *dir, struct json_t **doc, char why[160]);

#endif
