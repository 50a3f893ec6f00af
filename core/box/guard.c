/* The limits a box's archive must stay within, and the free-space checks
 * that keep a full disk from leaving a partly written box. A small archive
 * may declare a huge file (a sparse entry, a gzip of zeros): its declared
 * sizes are checked before a byte of it is written or hashed. */
#include "core/box/guard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/base/util.h"
#include "core/config/envfile.h"

#define RATIO_FLOOR (256ull << 20) /* below this, any ratio: small boxes compress well */
#define MIB (1ull << 20)

enum limit_kind { LIMIT_SIZE, LIMIT_COUNT, LIMIT_RATIO };

static const struct {
	const char *env;
	enum limit_kind kind;
	uint64_t def;
	size_t at; /* offset in struct box_limits */
} limit_table[] = {
	{"CORRAL_BOX_MAX_SIZE", LIMIT_SIZE, 64ull << 30, offsetof(struct box_limits, max_size)},
	{"CORRAL_BOX_MAX_ENTRIES", LIMIT_COUNT, 2000000, offsetof(struct box_limits, max_entries)},
	{"CORRAL_BOX_MAX_RATIO", LIMIT_RATIO, 200, offsetof(struct box_limits, max_ratio)},
};

/* "200" or "200:1" */
static int parse_ratio(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	if (end == s || errno || (*end && strcmp(end, ":1") != 0) || s[0] == '-')
		return -1;
	*v = n;
	return 0;
}

static int parse_limit(enum limit_kind kind, const char *s, uint64_t *v)
{
	if (kind == LIMIT_SIZE)
		return parse_size(s, v);
	if (kind == LIMIT_RATIO)
		return parse_ratio(s, v);
	char *end;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return end == s || *end || errno || s[0] == '-' ? -1 : 0;
}

int box_limits_get(struct box_limits *l, struct diag *d)
{
	static const char *const forms[] = {"a size like 64G", "a number", "a ratio like 200 or 200:1"};
	for (size_t i = 0; i < sizeof(limit_table) / sizeof(limit_table[0]); i++) {
		uint64_t *v = (uint64_t *)((char *)l + limit_table[i].at);
		const char *s = getenv(limit_table[i].env);
		*v = limit_table[i].def;
		if (s && *s && parse_limit(limit_table[i].kind, s, v) < 0) {
			diag_fail(d, "%s=%s is not %s", limit_table[i].env, s, forms[limit_table[i].kind]);
			return diag_hint(d, "0 turns the limit off; see docs/boxes.md");
		}
	}
	return 0;
}

static char *size_text(char *buf, size_t n, uint64_t v)
{
	human_bytes(buf, n, (double)v);
	return buf;
}

static int over(struct diag *d, const char *env, const char *why)
{
	return diag_hint(d, "the box is refused as %s; if you trust it, raise %s (0 turns the "
			    "limit off)", why, env);
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }
static uint64_t sat_mul(uint64_t a, uint64_t b) { return b && a > UINT64_MAX / b ? UINT64_MAX : a * b; }

/* The size check and the ratio check, for declared or streamed bytes. */
static int check_total(const struct box_limits *lim, uint64_t total, uint64_t compressed,
		       const char *what, struct diag *d)
{
	char a[32], b[32];
	if (lim->max_size && total > lim->max_size) {
		diag_fail(d, "box archive: %s %s unpacked, more than the limit of %s "
			     "(CORRAL_BOX_MAX_SIZE)", what, size_text(a, sizeof(a), total),
			  size_text(b, sizeof(b), lim->max_size));
		return over(d, "CORRAL_BOX_MAX_SIZE", "too large to unpack");
	}
	if (lim->max_ratio && compressed && total > RATIO_FLOOR &&
	    total > sat_mul(compressed, lim->max_ratio)) {
		diag_fail(d, "box archive: %s %s unpacked from %s compressed, a ratio above "
			     "%llu:1 (the limit, CORRAL_BOX_MAX_RATIO)", what,
			  size_text(a, sizeof(a), total), size_text(b, sizeof(b), compressed),
			  (unsigned long long)lim->max_ratio);
		return over(d, "CORRAL_BOX_MAX_RATIO", "a likely decompression bomb");
	}
	return 0;
}

int budget_entry(struct box_budget *b, const char *name, uint64_t size, uint64_t compressed,
		 struct diag *d)
{
	if (b->lim.max_entries && ++b->entries > b->lim.max_entries) {
		diag_fail(d, "box archive: more than %llu entries (the limit, CORRAL_BOX_MAX_ENTRIES)",
			  (unsigned long long)b->lim.max_entries);
		return over(d, "CORRAL_BOX_MAX_ENTRIES", "too many files to unpack");
	}
	b->expanded = sat_add(b->expanded, size);
	char what[4200], s[32];
	snprintf(what, sizeof(what), "entry `%s` (%s) brings the box to", name,
		 size_text(s, sizeof(s), size));
	return check_total(&b->lim, b->expanded, compressed, what, d);
}

int budget_stream(const struct box_budget *b, uint64_t plain, uint64_t compressed, struct diag *d)
{
	return check_total(&b->lim, plain, compressed, "the uncompressed tar stream reaches", d);
}

uint64_t room_free(const char *dir)
{
	struct statvfs s;
	if (statvfs(dir, &s) < 0)
		return UINT64_MAX;
	/* root may use the blocks a file system reserves for it */
	return (uint64_t)(geteuid() == 0 ? s.f_bfree : s.f_bavail) * s.f_frsize;
}

/* The top directory of the file system holding path. */
static char *mount_point(const char *path)
{
	char *at = realpath(path, NULL);
	struct stat st, up;
	if (!at)
		return xstrdup(path);
	if (stat(at, &st) < 0)
		return at;
	while (strcmp(at, "/") != 0) {
		char *parent = path_dirname(at);
		if (stat(parent, &up) < 0 || up.st_dev != st.st_dev) {
			free(parent);
			break;
		}
		free(at);
		at = parent;
	}
	return at;
}

int room_full(const char *dir, uint64_t needed, uint64_t free, struct diag *d)
{
	_cleanup_free_ char *mnt = mount_point(dir);
	diag_fail(d, "no space left on %s (needed at least %llu MiB, %llu MiB free)", mnt,
		  (unsigned long long)((needed + MIB - 1) / MIB), (unsigned long long)(free / MIB));
	return diag_hint(d, "free some space there (or point CORRAL_HOME elsewhere) and add the "
			    "box again; nothing was installed");
}

int room_check(const char *dir, uint64_t needed, struct diag *d)
{
	uint64_t free = room_free(dir);
	return free < needed ? room_full(dir, needed, free, d) : 0;
}

bool room_errno(int err) { return err == ENOSPC || err == EDQUOT || err == EFBIG; }
