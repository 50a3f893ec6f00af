/* Test reports: a list of test cases (a machine's boot, each provisioning
 * step, probe, trigger, reset: what --report collects from events) and the
 * JUnit XML that CI systems read (the Ant/Jenkins schema GitLab and GitHub
 * readers accept: tests/junit.xsd). One <testsuite> per machine, in the
 * order machines first appear; cases keep their order. */
#ifndef CORRAL_JUNIT_H
#define CORRAL_JUNIT_H
#include <stddef.h>
#include <stdint.h>

#include "core/base/util.h"

enum tc_status { TC_OK, TC_FAILED, TC_SKIPPED };

struct test_case {
	char *suite;   /* the machine's name; "corral" for top-level ones */
	char *name;    /* "boot", "step setup", "probe db", ... */
	enum tc_status status;
	uint64_t ms;
	char *output;  /* tail of output or the error; NULL: none */
	char *message; /* why it failed or was skipped; NULL: none */
};

struct test_report {
	char *name;    /* "corral up" */
	char *stamp;   /* ISO 8601 start time */
	struct test_case *v;
	size_t n, cap;
};

/* Copies the strings (any may be NULL but suite and name). */
void test_report_add(struct test_report *r, const char *suite, const char *name,
		     enum tc_status st, uint64_t ms, const char *output, const char *message);
void test_report_free(struct test_report *r);
/* The whole XML document appended to out. Text is escaped; characters XML
 * 1.0 cannot hold (controls but tab and newlines) become U+FFFD. */
void junit_write(const struct test_report *r, struct buf *out);

#endif
