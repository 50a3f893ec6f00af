/* What unpacking a box may cost, checked as it streams: the limits on its
 * expanded size, entry count and compression ratio (defaults, overridden by
 * CORRAL_BOX_MAX_SIZE, CORRAL_BOX_MAX_ENTRIES and CORRAL_BOX_MAX_RATIO), and
 * the free space of the file system it is written to. */
#ifndef CORRAL_BOX_GUARD_H
#define CORRAL_BOX_GUARD_H
#include <stdbool.h>
#include <stdint.h>

#include "core/base/diag.h"

struct box_limits {
	uint64_t max_size;    /* bytes, sparse holes included; 0: no limit */
	uint64_t max_entries; /* 0: no limit */
	uint64_t max_ratio;   /* expanded : compressed, when the compressed size is known; 0: no limit */
};

/* The limits from the environment; an unreadable value is an error. */
int box_limits_get(struct box_limits *l, struct diag *d);

/* What one box has declared so far. */
struct box_budget {
	struct box_limits lim;
	uint64_t entries;
	uint64_t expanded; /* the sum of the entries' sizes */
};

/* Counts one entry of `size` bytes (0 for all but regular files);
 * compressed is the archive's size, 0 when not known. */
int budget_entry(struct box_budget *b, const char *name, uint64_t size, uint64_t compressed,
		 struct diag *d);
/* The uncompressed tar stream so far, against the same limits. */
int budget_stream(const struct box_budget *b, uint64_t plain, uint64_t compressed,
		  struct diag *d);

/* Free space on the file system holding dir, as the one unpacking can use
 * it; UINT64_MAX when it cannot be told. */
uint64_t room_free(const char *dir);
/* Fails with "no space left on MOUNT (needed at least N MiB, M MiB free)". */
int room_full(const char *dir, uint64_t needed, uint64_t free, struct diag *d);
/* room_full unless dir's file system has `needed` bytes free. */
int room_check(const char *dir, uint64_t needed, struct diag *d);
/* Whether a failed write's errno means the file system is full. */
bool room_errno(int err);

#endif
