/* The box limits (core/box/guard): defaults, the environment's overrides
 * and their errors, and where each check draws its line. */
#include <stdint.h>
#include <stdlib.h>

#include "core/box/guard.h"
#include "tests/unit/t.h"

#define GIB (1ull << 30)
#define MIB (1ull << 20)

static void clear_env(void)
{
	unsetenv("CORRAL_BOX_MAX_SIZE");
	unsetenv("CORRAL_BOX_MAX_ENTRIES");
	unsetenv("CORRAL_BOX_MAX_RATIO");
}

static void test_defaults_and_overrides(void)
{
	struct box_limits l;
	struct diag d = {0};
	clear_env();
	CHECK(box_limits_get(&l, &d) == 0);
	CHECK(l.max_size == 64 * GIB && l.max_entries == 2000000 && l.max_ratio == 200);
	setenv("CORRAL_BOX_MAX_SIZE", "2T", 1);
	setenv("CORRAL_BOX_MAX_ENTRIES", "0", 1);
	setenv("CORRAL_BOX_MAX_RATIO", "50:1", 1);
	CHECK(box_limits_get(&l, &d) == 0);
	CHECK(l.max_size == 2048 * GIB && l.max_entries == 0 && l.max_ratio == 50);
	static const char *const bad[][2] = {
		{"CORRAL_BOX_MAX_SIZE", "lots"}, {"CORRAL_BOX_MAX_ENTRIES", "-1"},
		{"CORRAL_BOX_MAX_ENTRIES", "1e6"}, {"CORRAL_BOX_MAX_RATIO", "1:2"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		clear_env();
		setenv(bad[i][0], bad[i][1], 1);
		CHECK(box_limits_get(&l, &d) < 0 && strstr(d.msg, bad[i][0]) && strstr(d.msg, bad[i][1]));
	}
	clear_env();
}

static void test_budget(void)
{
	struct box_budget b = {.lim = {.max_size = 10 * GIB, .max_entries = 3, .max_ratio = 100}};
	struct diag d = {0};
	CHECK(budget_entry(&b, "a", 9 * GIB, 0, &d) == 0); /* compressed size unknown: no ratio */
	CHECK(budget_entry(&b, "b", 2 * GIB, 0, &d) < 0 && strstr(d.msg, "`b` (2.0 GiB)") &&
	      strstr(d.msg, "11.0 GiB") && strstr(d.msg, "CORRAL_BOX_MAX_SIZE"));
	b = (struct box_budget){.lim = {.max_size = 0, .max_entries = 2, .max_ratio = 100}};
	CHECK(budget_entry(&b, "x", 200 * MIB, 1 * MIB, &d) == 0); /* under the ratio's floor */
	CHECK(budget_entry(&b, "y", 200 * MIB, 1 * MIB, &d) < 0 && strstr(d.msg, "above 100:1"));
	CHECK(budget_entry(&b, "z", 0, 0, &d) < 0 && strstr(d.msg, "more than 2 entries"));
	CHECK(budget_stream(&b, 300 * MIB, 3 * MIB, &d) == 0);
	CHECK(budget_stream(&b, 301 * MIB, 3 * MIB, &d) < 0 && strstr(d.msg, "tar stream"));
	b.lim = (struct box_limits){0};
	CHECK(budget_entry(&b, "huge", UINT64_MAX, 1, &d) == 0); /* 0: no limits at all */
	CHECK(budget_entry(&b, "more", UINT64_MAX, 1, &d) == 0);
}

static void test_room(void)
{
	struct diag d = {0};
	CHECK(room_free("/") > 0);
	CHECK(room_check("/", 1, &d) == 0);
	CHECK(room_check("/", UINT64_MAX - 1, &d) < 0 && strstr(d.msg, "no space left on /"));
	CHECK(room_full("/nonexistent/dir", 3 * MIB + 1, 5 * MIB, &d) < 0 &&
	      strstr(d.msg, "needed at least 4 MiB, 5 MiB free"));
}

int main(void)
{
	RUN(test_defaults_and_overrides);
	RUN(test_budget);
	RUN(test_room);
	return T_END();
}
