/* Hashing through OpenSSL EVP, base64, and Ed25519 box signatures. */
#ifndef CORRAL_DIGEST_H
#define CORRAL_DIGEST_H
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"

#define HASH_MAX 64                     /* bytes of the largest digest (sha512) */
#define HASH_HEX_MAX (2 * HASH_MAX + 1) /* its hex form with the NUL */

/* One running digest: "sha256", "sha384", "sha512", "sha1" or "md5". */
struct hash;
bool hash_known(const char *type);
struct hash *hash_new(const char *type); /* NULL for an unknown type */
void hash_update(struct hash *h, const void *p, size_t n);
/* n zero bytes (a hole of a sparse file) from memory. */
void hash_zeros(struct hash *h, long long n);
/* Finishes and frees h; raw (HASH_MAX bytes) and hex (HASH_HEX_MAX) may be NULL.
 * Returns the digest's length in bytes. */
size_t hash_final(struct hash *h, unsigned char *raw, char *hex);
/* sha256 of the string s in one call: raw and hex as for hash_final. */
void hash_str(const char *s, unsigned char *raw, char *hex);
void hash_free(struct hash *h);
/* The file's digest. Holes of a sparse file (a raw disk image) are hashed
 * as the zeros they read as, without reading them. */
int hash_file(const char *path, const char *type, unsigned char *raw, char *hex,
	      struct diag *d);
/* Case-insensitive comparison of hex digests. */
bool hash_hex_equal(const char *a, const char *b);

char *b64_encode(const unsigned char *p, size_t n);
/* -1 when s is not valid base64. */
int b64_decode(const char *s, unsigned char **out, size_t *n);

/* Ed25519 over msg with a PEM private key; the signature in base64. */
int sig_sign(const char *key_path, const unsigned char *msg, size_t n, char **sig_b64,
	     struct diag *d);
/* Checks sig_b64 against every keys_dir/NAME.pub (PEM, or the raw 32-byte key in
 * base64). 0 and *key_name (the file name) when one key verifies; -1 with the
 * reason otherwise (bad signature, no trusted keys, unreadable key). */
int sig_verify(const char *keys_dir, const unsigned char *msg, size_t n, const char *sig_b64,
	       char **key_name, struct diag *d);

#endif
