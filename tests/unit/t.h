/* A minimal unit-test harness: each TEST is a case, each failing CHECK
 * prints where and what, each case prints one TAP line that tests/run counts. */
#ifndef CORRAL_T_H
#define CORRAL_T_H
#include <stdio.h>
#include <string.h>

static int t_case_failed, t_failed, t_passed;

#define CHECK(cond)                                                              \
	do {                                                                     \
		if (!(cond)) {                                                   \
			printf("#   %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
			t_case_failed = 1;                                       \
		}                                                                \
	} while (0)

#define CHECK_STR(a, b)                                                          \
	do {                                                                     \
		const char *t_a = (a), *t_b = (b);                               \
		if (!t_a || !t_b || strcmp(t_a, t_b) != 0) {                     \
			printf("#   %s:%d: %s == %s: \"%s\" != \"%s\"\n", __FILE__, __LINE__, #a, #b, \
			       t_a ? t_a : "(null)", t_b ? t_b : "(null)");      \
			t_case_failed = 1;                                       \
		}                                                                \
	} while (0)

#define RUN(fn)                                                                  \
	do {                                                                     \
		t_case_failed = 0;                                               \
		fn();                                                            \
		printf("%s - %s: %s\n", t_case_failed ? "not ok" : "ok", __FILE__, #fn); \
		fflush(stdout);                                                  \
		if (t_case_failed)                                               \
			t_failed++;                                              \
		else                                                             \
			t_passed++;                                              \
	} while (0)

#define T_END() (t_failed ? 1 : 0)

#endif
