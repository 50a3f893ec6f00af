/* Vagrant's well-known insecure key pairs (hashicorp/vagrant keys/): boxes
 * ship with their public halves authorized, and corral logs in with them
 * once, on first boot, to install the machine's own key. Public on purpose;
 * never a secret. */
#ifndef CORRAL_INSECURE_KEY_H
#define CORRAL_INSECURE_KEY_H
#include <stddef.h>

struct insecure_key {
	const char *type;    /* "ed25519", "rsa" */
	const char *private; /* PEM / OpenSSH private key text */
	const char *public;  /* OpenSSH public line */
};

/* Newest first: ed25519, then the original rsa key. */
const struct insecure_key *insecure_keys(size_t *n);

#endif
