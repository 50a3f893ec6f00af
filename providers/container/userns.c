/* The host side of a container's user namespace: every machine gets its own
 * range of CT_IDMAP_SIZE host ids (its uid 0 is the range's first id), carved
 * out of one block reserved for the user `corral` in /etc/subuid and
 * /etc/subgid (the entry is added when missing). Which slot of the block a
 * machine holds is recorded host-wide in a pool file, under a lock, like the
 * address pools of core/host/net.c, and in the machine's state ("idmap_base");
 * a slot whose machine directory is gone is free again. The upper layer is
 * stored with the range's ids, so a file the guest makes set-uid is owned by
 * an unprivileged host id; a machine made before user namespaces has its
 * upper layer shifted into its new range once. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/host/lock.h"
#include "core/host/paths.h"
#include "core/host/mstate.h"
#include "core/host/state.h"
#include "providers/container/container.h"

#define SUBID_USER "corral"
#define BLOCK_FLOOR 0x80000000u /* the block starts at 2^31 or after every other entry */
#define BLOCK_SLOTS 4096u

static char *lib_path(const char *leaf)
{
	_cleanup_free_ char *r = host_lib_dir();
	return path_join(r, leaf);
}

/* Our entry's start in a subuid/subgid file's text, else 0; *end gets the
 * highest id any entry covers. */
static uint32_t subid_scan(char *text, uint64_t *end)
{
	uint32_t ours = 0;
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char name[64];
		uint64_t start, count;
		if (!ct_subid_line(l, name, &start, &count))
			continue;
		if (strcmp(name, SUBID_USER) == 0 && count >= (uint64_t)CT_IDMAP_SIZE * BLOCK_SLOTS)
			ours = (uint32_t)start;
		if (start + count > *end)
			*end = start + count;
	}
	return ours;
}

/* The block's first id: the one both files give `corral`, or a new entry
 * past every existing one (the same start in both files). */
static int subid_block(uint32_t *start, struct diag *d)
{
	static const char *const files[] = {"/etc/subuid", "/etc/subgid"};
	uint32_t have[2];
	uint64_t end = BLOCK_FLOOR;
	for (int i = 0; i < 2; i++) {
		char *text = NULL;
		size_t len;
		if (path_exists(files[i]) && read_file(files[i], 1 << 20, &text, &len, d) < 0)
			return -1;
		have[i] = text ? subid_scan(text, &end) : 0;
		free(text);
	}
	if (have[0] && have[0] == have[1]) {
		*start = have[0];
		return 0;
	}
	end = (end + CT_IDMAP_SIZE - 1) / CT_IDMAP_SIZE * CT_IDMAP_SIZE;
	if (end + (uint64_t)CT_IDMAP_SIZE * BLOCK_SLOTS >= 0xffffffffull)
		return diag_fail(d, "no room in /etc/subuid for corral's block of user ids");
	for (int i = 0; i < 2; i++) {
		FILE *f = fopen(files[i], "a");
		if (!f || fprintf(f, "%s:%llu:%u\n", SUBID_USER, (unsigned long long)end,
				  CT_IDMAP_SIZE * BLOCK_SLOTS) < 0 || fclose(f) != 0)
			return diag_errno(d, "add corral's entry to %s", files[i]);
	}
	*start = (uint32_t)end;
	return 0;
}

/* The first free slot of the pool for owner (its own when it has one). */
static int pool_pick(json_t *slots, const char *owner, unsigned *slot, struct diag *d)
{
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(slots, tmp, k, v) {
		const char *o = json_string_value(v);
		if (!o || !path_is_dir(o))
			json_object_del(slots, k); /* its machine is gone */
		else if (strcmp(o, owner) == 0)
			return *slot = (unsigned)strtoul(k, NULL, 10), 0;
	}
	for (unsigned i = 0; i < BLOCK_SLOTS; i++) {
		char key[16];
		snprintf(key, sizeof(key), "%u", i);
		if (!json_object_get(slots, key)) {
			json_object_set_new(slots, key, json_string(owner));
			return *slot = i, 0;
		}
	}
	return diag_fail(d, "all %u user id ranges for containers are taken", BLOCK_SLOTS);
}

static void pool_drop(json_t *slots, const char *owner)
{
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(slots, tmp, k, v) {
		const char *o = json_string_value(v);
		if (!o || strcmp(o, owner) == 0)
			json_object_del(slots, k);
	}
}

/* Takes (take) or frees owner's slot under the pool's lock. */
static int pool_update(const char *owner, bool take, uint32_t *base, struct diag *d)
{
	_cleanup_free_ char *dir = lib_path("");
	_cleanup_free_ char *lp = lib_path("idmap.lock"), *pp = lib_path("idmap.json");
	struct lock l;
	if (mkdir_p(dir, 0700, d) < 0 || lock_acquire(lp, 30000, &l, d) < 0)
		return diag_wrap(d, "user id ranges");
	json_t *pool;
	uint32_t start = 0;
	int r = state_load(pp, &pool, d);
	if (r == 0) {
		json_t *slots = json_object_get(pool, "slots");
		if (!json_is_object(slots))
			json_object_set_new(pool, "slots", slots = json_object());
		unsigned slot = 0;
		if (take)
			r = subid_block(&start, d) < 0 || pool_pick(slots, owner, &slot, d) < 0 ? -1 : 0;
		else
			pool_drop(slots, owner);
		*base = start + slot * CT_IDMAP_SIZE;
		if (r == 0)
			r = state_save(pp, pool, d);
		json_decref(pool);
	}
	lock_release(&l);
	return r;
}

static uint32_t shift_by;

static int shift_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)flag, (void)f;
	if (st->st_uid >= CT_IDMAP_SIZE && st->st_gid >= CT_IDMAP_SIZE)
		return 0;
	uid_t u = st->st_uid < CT_IDMAP_SIZE ? st->st_uid + shift_by : st->st_uid;
	gid_t g = st->st_gid < CT_IDMAP_SIZE ? st->st_gid + shift_by : st->st_gid;
	if (lchown(p, u, g) < 0)
		return -1;
	/* chown clears set-uid and set-gid bits: they come back */
	if (!S_ISLNK(st->st_mode) && (st->st_mode & 06000) && chmod(p, st->st_mode & 07777) < 0)
		return -1;
	return 0;
}

/* Moves every id below CT_IDMAP_SIZE in tree into the range at base. */
static int shift_tree(const char *tree, uint32_t base, struct diag *d)
{
	shift_by = base;
	if (nftw(tree, shift_one, 32, FTW_PHYS) != 0)
		return diag_errno(d, "move %s into the machine's user ids", tree);
	return 0;
}

int ct_idmap_acquire(struct machine *m, const struct ct_boot *b, uint32_t *base, struct diag *d)
{
	long long have = machine_int(m, MK_IDMAP_BASE);
	if (have > 0) {
		*base = (uint32_t)have;
		return 0;
	}
	if (pool_update(m->dir, true, base, d) < 0)
		return diag_wrap(d, "%s", m->cfg->name);
	/* A machine from before user namespaces: its upper layer holds guest ids. */
	if (path_is_dir(b->upper) && shift_tree(b->upper, *base, d) < 0)
		return -1;
	machine_set_int(m, MK_IDMAP_BASE, *base);
	return 0;
}

/* By the machine's directory, so a machine whose state.json is lost (see
 * reap.c) gives its range back too. */
void ct_idmap_release(struct machine *m)
{
	uint32_t base;
	struct diag ignored = {0};
	pool_update(m->dir, false, &base, &ignored);
	machine_del(m, MK_IDMAP_BASE);
}

/* The upper layer's root stands for the guest's /: owned as the box's is. */
int ct_idmap_upper(const struct ct_boot *b, struct diag *d)
{
	struct stat st;
	if (stat(b->lower, &st) < 0)
		return diag_errno(d, "stat %s", b->lower);
	if (chown(b->upper, st.st_uid + b->idmap, st.st_gid + b->idmap) < 0 ||
	    chmod(b->upper, st.st_mode & 07777) < 0)
		return diag_errno(d, "set owner of %s", b->upper);
	return 0;
}
