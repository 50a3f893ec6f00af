/* OpenPGP signatures of publishers' checksum files, checked by gpgv
 * (GnuPG's verify-only tool: no agent, no trust database, keys only from
 * the keyrings it is given). The keyring is assembled for each check from
 * $CORRAL_HOME/trusted-keys/ (files ending .asc, .gpg or .pgp,
 * armored or binary) and the keys shipped with corral (share/corral/keys).
 * gpgv's status lines (--status-fd) say which key signed: a signature
 * counts only when its key's fingerprint is one the caller pins. */
#ifndef CORRAL_OPENPGP_H
#define CORRAL_OPENPGP_H
#include <stdbool.h>

#include "core/base/diag.h"

#define PGP_FPR_LEN 40

struct pgp_check {
	const char *sig_path;    /* a detached signature, or the clearsigned file */
	const char *data_path;   /* the signed file; NULL: sig_path is clearsigned */
	const char *out_path;    /* clearsigned: the verified text is written here */
	const char *const *keys; /* fingerprints (hex, spaces allowed); NULL: any key in the keyring */
	const char *workdir;     /* an empty private directory: keyring and gpgv's home */
};

/* 0 with the signer's primary key fingerprint (upper-case hex) when a good
 * signature by an allowed key is there; else -1 with DIAG_SIG_BAD (damaged,
 * altered, no signature) or DIAG_SIG_UNKNOWN_KEY (no such key, or not one
 * of c->keys). */
int pgp_verify(const struct pgp_check *c, char signer[PGP_FPR_LEN + 1], struct diag *d);

/* A fingerprint as written by people ("D2EB 4462 ...") in gpgv's form;
 * false when it is not 40 hex digits. */
bool pgp_fpr_normal(const char *in, char out[PGP_FPR_LEN + 1]);

#endif
