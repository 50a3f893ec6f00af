/* corral.lock as commands use it (cmd/lock.c). */
#ifndef CORRAL_CMD_LOCKFILE_H
#define CORRAL_CMD_LOCKFILE_H
#include <stdbool.h>

#include "cmd/cmd.h"
#include "core/box/boxlock.h"

/* Loads the envfile's corral.lock into l (empty when there is none); with
 * locked (`up --locked`) a missing or stale lock is an error naming each
 * difference. Returns EXIT_OK, or the exit code after printing why. */
int lockfile_open(struct ctx *c, bool locked, struct boxlock *l);
/* Writes l (without machines the envfile no longer has). */
int lockfile_write(struct ctx *c, struct boxlock *l);
/* A sentence for out when the envfile's corral.lock is stale or unreadable. */
void lockfile_warn_stale(const struct env *e, struct strv *out);

#endif
