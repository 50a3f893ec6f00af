/* One lock per envfile (.corral/lock): mutating commands hold it so that
 * concurrent commands on one envfile are serialized and never race state. */
#ifndef CORRAL_LOCK_H
#define CORRAL_LOCK_H
#include "core/base/diag.h"

struct lock {
	int fd;
};

/* Waits up to timeout_ms (0: fail at once) for flock(LOCK_EX) on path, then
 * records our pid in it. On failure the diag names the pid that holds it. */
int lock_acquire(const char *path, unsigned timeout_ms, struct lock *l, struct diag *d);
void lock_release(struct lock *l);

#endif
