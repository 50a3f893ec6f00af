/* corral.lock: beside the envfile, what each machine's box resolved to
 * (box name, version, provider, architecture, the URL its bytes came from,
 * their digest "sha256:HEX", the signer when a trusted key verified it),
 * with what the envfile asked (box, box_version, box_url) to tell when the
 * lock no longer matches. JSON with sorted keys, one machine per block,
 * machines by name: stable and diff-friendly, meant to be committed. */
#ifndef CORRAL_BOXLOCK_H
#define CORRAL_BOXLOCK_H
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"
#include "core/base/strv.h"
#include "core/box/store.h"
#include "core/config/envfile.h"

#define BOXLOCK_FILE "corral.lock"

struct boxlock_entry {
	char *machine;
	char *box, *constraint, *source;      /* the envfile's box, box_version, box_url (NULL: none) */
	char *version, *provider, *arch;      /* what it resolved to */
	char *url, *digest, *signer;          /* where its bytes came from, "sha256:HEX", key name */
};

struct boxlock {
	struct boxlock_entry *v; /* sorted by machine */
	size_t n;
};

/* ENVDIR/corral.lock for the envfile e. */
char *boxlock_path(const struct env *e);
/* Reads the lock; a missing file is an empty lock with *exists false. */
int boxlock_load(const char *path, struct boxlock *l, bool *exists, struct diag *d);
/* Writes it atomically (keys sorted, machines by name). */
int boxlock_save(const char *path, const struct boxlock *l, struct diag *d);
void boxlock_free(struct boxlock *l);

const struct boxlock_entry *boxlock_find(const struct boxlock *l, const char *machine);
/* Adds or replaces the machine's entry (copied). */
void boxlock_set(struct boxlock *l, const struct boxlock_entry *e);
/* Drops entries of machines e does not have. */
void boxlock_retain(struct boxlock *l, const struct env *e);

/* Whether the entry still stands for mc: same box, box_version and box_url. */
bool boxlock_fits(const struct boxlock_entry *le, const struct machine_cfg *mc);
/* Each way the lock and the envfile differ, as a sentence appended to why
 * ("machine db is not in corral.lock", "web: box_version changed from ...").
 * Returns how many. */
size_t boxlock_stale(const struct boxlock *l, const struct env *e, struct strv *why);

/* The entry for machine mc whose box is ref (its store record read for URL,
 * digest and signer; a box of Vagrant's store has none). Caller frees with
 * boxlock_entry_free. */
void boxlock_entry_from_box(const struct machine_cfg *mc, const struct box_ref *ref,
			    struct boxlock_entry *out);
void boxlock_entry_free(struct boxlock_entry *e);

#endif
