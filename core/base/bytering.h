/* A bounded byte stream between threads: one producer, a few consumers, and
 * every consumer sees every byte. The producer waits for the slowest one, so
 * memory stays bounded whatever the speeds. Consumers read in place (no copy). */
#ifndef CORRAL_BYTERING_H
#define CORRAL_BYTERING_H
#include <stddef.h>
#include <sys/types.h>

#define RING_MAX_CONSUMERS 4

struct ring;
struct ring *ring_new(size_t cap, unsigned consumers);
void ring_free(struct ring *r);

/* Producer: copies all n bytes in, waiting for room. -1 once aborted. */
int ring_write(struct ring *r, const void *p, size_t n);
void ring_close(struct ring *r); /* the end of the stream */

/* Consumer c: gives back what the previous call returned, then waits for
 * more. Returns the length (> 0) with *p pointing into the ring, 0 at the end
 * of the stream, -1 once aborted. */
ssize_t ring_read(struct ring *r, unsigned c, const void **p);
/* Consumer c is done: the producer no longer waits for it. */
void ring_detach(struct ring *r, unsigned c);

/* Wakes every side; all later calls fail. Idempotent. */
void ring_abort(struct ring *r);

#endif
