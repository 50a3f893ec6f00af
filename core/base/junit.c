/* The JUnit XML writer: <testsuites> with one <testsuite> per suite name in
 * order of first appearance, counts and times summed, each case with a
 * <failure> or <skipped> when it did not pass and its output in <system-out>. */
#include "core/base/junit.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/strv.h"

static char *dup_or_null(const char *s) { return s ? xstrdup(s) : NULL; }

void test_report_add(struct test_report *r, const char *suite, const char *name,
		     enum tc_status st, uint64_t ms, const char *output, const char *message)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 16;
		r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
	}
	r->v[r->n++] = (struct test_case){.suite = xstrdup(suite), .name = xstrdup(name),
					  .status = st, .ms = ms, .output = dup_or_null(output),
					  .message = dup_or_null(message)};
}

void test_report_free(struct test_report *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->v[i].suite);
		free(r->v[i].name);
		free(r->v[i].output);
		free(r->v[i].message);
	}
	free(r->v);
	free(r->name);
	free(r->stamp);
	*r = (struct test_report){0};
}

/* Escaped text: the five entities; controls XML 1.0 refuses as U+FFFD. */
static void esc(struct buf *b, const char *s)
{
	static const char *const ent[256] = {['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;",
					     ['"'] = "&quot;", ['\''] = "&apos;"};
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		if (ent[*p])
			buf_puts(b, ent[*p]);
		else if (*p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r')
			buf_puts(b, "\xEF\xBF\xBD");
		else
			buf_add(b, (const char *)p, 1);
	}
}

static void secs(struct buf *b, uint64_t ms)
{
	buf_printf(b, "%llu.%03llu", (unsigned long long)(ms / 1000),
		   (unsigned long long)(ms % 1000));
}

struct totals {
	size_t tests, failures, skipped;
	uint64_t ms;
};

static struct totals count(const struct test_report *r, const char *suite)
{
	struct totals t = {0};
	for (size_t i = 0; i < r->n; i++) {
		if (suite && strcmp(r->v[i].suite, suite) != 0)
			continue;
		t.tests++;
		t.failures += r->v[i].status == TC_FAILED;
		t.skipped += r->v[i].status == TC_SKIPPED;
		t.ms += r->v[i].ms;
	}
	return t;
}

static void counts(struct buf *b, struct totals t)
{
	buf_printf(b, " tests=\"%zu\" failures=\"%zu\" errors=\"0\" skipped=\"%zu\" time=\"", t.tests,
		   t.failures, t.skipped);
	secs(b, t.ms);
	buf_puts(b, "\"");
}

static void write_case(struct buf *b, const struct test_case *c)
{
	static const char *const tag[] = {[TC_FAILED] = "failure", [TC_SKIPPED] = "skipped"};
	buf_puts(b, "    <testcase name=\"");
	esc(b, c->name);
	buf_puts(b, "\" classname=\"corral.");
	esc(b, c->suite);
	buf_puts(b, "\" time=\"");
	secs(b, c->ms);
	buf_puts(b, "\">\n");
	if (c->status != TC_OK) {
		buf_printf(b, "      <%s message=\"", tag[c->status]);
		esc(b, c->message ? c->message : tag[c->status]);
		buf_printf(b, "\"%s>", c->status == TC_FAILED ? " type=\"failed\"" : "");
		esc(b, c->status == TC_FAILED ? c->output : NULL);
		buf_printf(b, "</%s>\n", tag[c->status]);
	}
	if (c->output && c->status == TC_OK) {
		buf_puts(b, "      <system-out>");
		esc(b, c->output);
		buf_puts(b, "</system-out>\n");
	}
	buf_puts(b, "    </testcase>\n");
}

static void write_suite(struct buf *b, const struct test_report *r, const char *suite, size_t id)
{
	char host[256] = "localhost";
	if (gethostname(host, sizeof(host) - 1) < 0)
		strcpy(host, "localhost");
	buf_printf(b, "  <testsuite id=\"%zu\" name=\"", id);
	esc(b, suite);
	buf_puts(b, "\" package=\"corral\"");
	counts(b, count(r, suite));
	buf_puts(b, " timestamp=\"");
	esc(b, r->stamp);
	buf_puts(b, "\" hostname=\"");
	esc(b, host);
	buf_puts(b, "\">\n");
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i].suite, suite) == 0)
			write_case(b, &r->v[i]);
	buf_puts(b, "  </testsuite>\n");
}

void junit_write(const struct test_report *r, struct buf *out)
{
	struct strv suites = {0};
	buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"");
	esc(out, r->name);
	buf_puts(out, "\"");
	counts(out, count(r, NULL));
	buf_puts(out, ">\n");
	for (size_t i = 0; i < r->n; i++) {
		if (str_in_list(r->v[i].suite, (const char *const *)suites.v))
			continue;
		strv_push(&suites, r->v[i].suite);
		write_suite(out, r, r->v[i].suite, suites.n - 1);
	}
	buf_puts(out, "</testsuites>\n");
	strv_free(&suites);
}
