#include "core/base/bytering.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"

/* Consumers take at most this much at a time, so they give space back often. */
#define RING_CHUNK (1u << 20)

struct ring {
	pthread_mutex_t mu;
	pthread_cond_t more, room;
	unsigned char *buf;
	size_t cap;
	uint64_t head;                        /* bytes ever written */
	uint64_t tail[RING_MAX_CONSUMERS];    /* bytes each consumer gave back */
	size_t held[RING_MAX_CONSUMERS];      /* bytes each consumer is reading now */
	bool active[RING_MAX_CONSUMERS];
	unsigned n;
	bool closed, aborted;
};

struct ring *ring_new(size_t cap, unsigned consumers)
{
	struct ring *r = xcalloc(1, sizeof(*r));
	pthread_mutex_init(&r->mu, NULL);
	pthread_cond_init(&r->more, NULL);
	pthread_cond_init(&r->room, NULL);
	r->buf = xmalloc(cap);
	r->cap = cap;
	r->n = consumers < RING_MAX_CONSUMERS ? consumers : RING_MAX_CONSUMERS;
	for (unsigned i = 0; i < r->n; i++)
		r->active[i] = true;
	return r;
}

void ring_free(struct ring *r)
{
	if (!r)
		return;
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->more);
	pthread_cond_destroy(&r->room);
	free(r->buf);
	free(r);
}

/* Free space for the producer: behind the slowest active consumer. */
static size_t room(const struct ring *r)
{
	uint64_t low = r->head;
	for (unsigned i = 0; i < r->n; i++)
		if (r->active[i] && r->tail[i] < low)
			low = r->tail[i];
	return r->cap - (size_t)(r->head - low);
}

int ring_write(struct ring *r, const void *p, size_t n)
{
	const unsigned char *s = p;
	pthread_mutex_lock(&r->mu);
	while (n > 0 && !r->aborted) {
		size_t free_bytes = room(r);
		if (free_bytes == 0) {
			pthread_cond_wait(&r->room, &r->mu);
			continue;
		}
		size_t at = (size_t)(r->head % r->cap);
		size_t k = r->cap - at;
		if (k > free_bytes)
			k = free_bytes;
		if (k > n)
			k = n;
		/* Copy unlocked: consumers only read below head, so this
		 * region is the producer's alone until head moves past it. */
		pthread_mutex_unlock(&r->mu);
		memcpy(r->buf + at, s, k);
		pthread_mutex_lock(&r->mu);
		r->head += k;
		s += k;
		n -= k;
		pthread_cond_broadcast(&r->more);
	}
	int rc = r->aborted ? -1 : 0;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

void ring_close(struct ring *r)
{
	pthread_mutex_lock(&r->mu);
	r->closed = true;
	pthread_cond_broadcast(&r->more);
	pthread_mutex_unlock(&r->mu);
}

ssize_t ring_read(struct ring *r, unsigned c, const void **p)
{
	pthread_mutex_lock(&r->mu);
	r->tail[c] += r->held[c];
	r->held[c] = 0;
	pthread_cond_broadcast(&r->room);
	while (!r->aborted && r->tail[c] == r->head && !r->closed)
		pthread_cond_wait(&r->more, &r->mu);
	ssize_t rc;
	if (r->aborted) {
		rc = -1;
	} else if (r->tail[c] == r->head) {
		rc = 0;
	} else {
		size_t at = (size_t)(r->tail[c] % r->cap);
		size_t k = (size_t)(r->head - r->tail[c]);
		if (k > r->cap - at)
			k = r->cap - at;
		if (k > RING_CHUNK)
			k = RING_CHUNK;
		r->held[c] = k;
		*p = r->buf + at;
		rc = (ssize_t)k;
	}
	pthread_mutex_unlock(&r->mu);
	return rc;
}

void ring_detach(struct ring *r, unsigned c)
{
	pthread_mutex_lock(&r->mu);
	r->active[c] = false;
	pthread_cond_broadcast(&r->room);
	pthread_mutex_unlock(&r->mu);
}

void ring_abort(struct ring *r)
{
	pthread_mutex_lock(&r->mu);
	r->aborted = true;
	pthread_cond_broadcast(&r->more);
	pthread_cond_broadcast(&r->room);
	pthread_mutex_unlock(&r->mu);
}
