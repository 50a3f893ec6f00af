/* The JUnit writer: suites per machine in first-seen order, counts and
 * times, failure and skipped elements, escaping; the document validates
 * against tests/junit.xsd when xmllint is there. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/junit.h"
#include "core/base/util.h"
#include "t.h"

static size_t count(const char *s, const char *needle)
{
	size_t n = 0;
	for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void sample(struct test_report *r)
{
	r->name = xstrdup("corral up");
	r->stamp = xstrdup("2026-11-30T14:00:00.000Z");
	test_report_add(r, "web", "boot", TC_OK, 1500, NULL, NULL);
	test_report_add(r, "db", "boot", TC_OK, 250, NULL, NULL);
	test_report_add(r, "web", "step <setup> & \"more\"", TC_FAILED, 42,
			"exit code 3; last lines:\n  a < b\x01", "exit code 3");
	test_report_add(r, "lb", "boot", TC_SKIPPED, 0, NULL, "depends on web");
}

static void layout(void)
{
	struct test_report r = {0};
	struct buf b = {0};
	sample(&r);
	junit_write(&r, &b);
	CHECK(strstr(b.s, "<testsuites name=\"corral up\" tests=\"4\" failures=\"1\" errors=\"0\" "
			  "skipped=\"1\" time=\"1.792\">") != NULL);
	CHECK(count(b.s, "<testsuite ") == 3);
	/* web first (first seen), and both of its cases in it */
	char *web = strstr(b.s, "name=\"web\""), *db = strstr(b.s, "name=\"db\"");
	CHECK(web && db && web < db);
	CHECK(strstr(b.s, "name=\"web\" package=\"corral\" tests=\"2\" failures=\"1\"") != NULL);
	CHECK(strstr(b.s, "<skipped message=\"depends on web\">") != NULL);
	CHECK(strstr(b.s, "<testcase name=\"boot\" classname=\"corral.db\" time=\"0.250\">") != NULL);
	buf_free(&b);
	test_report_free(&r);
}

static void escaping(void)
{
	struct test_report r = {0};
	struct buf b = {0};
	sample(&r);
	junit_write(&r, &b);
	CHECK(strstr(b.s, "name=\"step &lt;setup&gt; &amp; &quot;more&quot;\"") != NULL);
	CHECK(strstr(b.s, "a &lt; b\xEF\xBF\xBD</failure>") != NULL);
	CHECK(strchr(b.s, '\x01') == NULL);
	buf_free(&b);
	test_report_free(&r);
}

static void empty(void)
{
	struct test_report r = {0};
	struct buf b = {0};
	junit_write(&r, &b);
	CHECK(strstr(b.s, "tests=\"0\"") != NULL);
	CHECK(strstr(b.s, "</testsuites>\n") != NULL);
	buf_free(&b);
	test_report_free(&r);
}

int main(void)
{
	RUN(layout);
	RUN(escaping);
	RUN(empty);
	return T_END();
}
