/* The event sink: JSON lines for --json, test cases for --report. Events
 * arrive one at a time (event_emit serialises them), so the recorder needs
 * no lock of its own. */
#include "cmd/events.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "cmd/outcome.h"
#include "core/base/event.h"
#include "core/base/junit.h"
#include "core/base/util.h"

enum report_format { RF_JUNIT, RF_JSON };
struct report_file {
	enum report_format fmt;
	const char *path;
};

static struct {
	bool json;
	struct report_file files[16];
	size_t nfiles;
	struct test_report cases;
} rec;

/* "2026-11-30T14:30:00.123Z" */
static void stamp(char *out, size_t n)
{
	struct timeval tv;
	struct tm tm;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out + k, n - k, ".%03dZ", (int)(tv.tv_usec / 1000));
}

static void set_str(json_t *o, const char *key, const char *v)
{
	if (v)
		json_object_set_new(o, key, json_string(v));
}

static json_t *event_json(const struct corral_event *ev)
{
	static const char *const phase[] = {[EV_AT] = "", [EV_START] = "_start", [EV_END] = "_end"};
	char name[64], when[40];
	snprintf(name, sizeof(name), "%s%s", event_kind_name(ev->kind),
		 ev->kind == EV_STATE ? "" : phase[ev->phase]);
	stamp(when, sizeof(when));
	json_t *o = json_pack("{s:s, s:s}", "event", name, "time", when);
	set_str(o, "machine", ev->machine);
	if (ev->kind != EV_STATE && ev->kind != EV_BOOT && ev->kind != EV_HALT &&
	    ev->kind != EV_DESTROY)
		set_str(o, "name", ev->name);
	set_str(o, "state", ev->state);
	if (ev->phase == EV_END) {
		set_str(o, "status", event_status_name(ev->status));
		json_object_set_new(o, "seconds", json_real((double)ev->ms / 1000.0));
		set_str(o, "output", ev->output);
	}
	if (ev->exit_status >= 0)
		json_object_set_new(o, "exit_status", json_integer(ev->exit_status));
	if (ev->kind == EV_PORT) {
		set_str(o, "host_ip", ev->host_ip);
		json_object_set_new(o, "host", json_integer(ev->host));
		json_object_set_new(o, "guest", json_integer(ev->guest));
	}
	if (ev->kind == EV_DOWNLOAD) {
		json_object_set_new(o, "bytes", json_integer((json_int_t)ev->done));
		json_object_set_new(o, "total", ev->total ? json_integer((json_int_t)ev->total)
							  : json_null());
	}
	return o;
}

static void print_line(const struct corral_event *ev)
{
	json_t *o = event_json(ev);
	char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
	puts(s);
	fflush(stdout);
	free(s);
	json_decref(o);
}

/* Boot, steps, probes, triggers, resets, halts, destroys; not downloads. */
static void record(const struct corral_event *ev)
{
	if (ev->phase != EV_END || ev->kind == EV_DOWNLOAD || ev->kind == EV_STATE ||
	    ev->kind == EV_PORT)
		return;
	const char *kind = event_kind_name(ev->kind);
	_cleanup_free_ char *name = ev->name && strcmp(ev->name, kind) != 0
					    ? xasprintf("%s %s", kind, ev->name)
					    : xstrdup(kind);
	enum tc_status st = ev->status == EV_FAILED ? TC_FAILED
			    : ev->status == EV_SKIPPED ? TC_SKIPPED : TC_OK;
	/* a failure's message: the first line of what it said */
	_cleanup_free_ char *msg = st != TC_OK && ev->output ? xstrdup(ev->output) : NULL;
	if (msg)
		msg[strcspn(msg, "\n")] = '\0';
	test_report_add(&rec.cases, ev->machine ? ev->machine : "corral", name, st, ev->ms,
			ev->output, msg);
}

static void sink(const struct corral_event *ev, void *ctx)
{
	(void)ctx;
	if (rec.json)
		print_line(ev);
	if (rec.nfiles)
		record(ev);
}

void events_setup(bool json)
{
	rec.json = json;
	if (json)
		event_set_sink(sink, NULL);
}

int events_report_arg(const struct command *cmd, const char *arg)
{
	static const struct { const char *prefix; enum report_format fmt; } kinds[] = {
		{"junit:", RF_JUNIT}, {"json:", RF_JSON},
	};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		if (!str_starts(arg, kinds[i].prefix) || !arg[strlen(kinds[i].prefix)])
			continue;
		if (rec.nfiles == sizeof(rec.files) / sizeof(rec.files[0]))
			return usage_error(cmd, "at most 16 --report files");
		rec.files[rec.nfiles++] = (struct report_file){kinds[i].fmt,
							       arg + strlen(kinds[i].prefix)};
		if (!rec.cases.stamp) {
			char when[40];
			stamp(when, sizeof(when));
			rec.cases.stamp = xstrdup(when);
		}
		event_set_sink(sink, NULL);
		return EXIT_OK;
	}
	return usage_error(cmd, "--report takes junit:FILE or json:FILE, not `%s`", arg);
}

/* A machine that never started is one skipped case, saying why. */
static void add_skipped(const struct lc_result *res, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (res[i].outcome != LC_SKIPPED)
			continue;
		_cleanup_free_ char *why = res[i].blocked_by
						   ? xasprintf("depends on %s", res[i].blocked_by)
						   : xstrdup("interrupted");
		test_report_add(&rec.cases, res[i].machine, "boot", TC_SKIPPED, 0, NULL, why);
	}
}

static json_t *cases_json(void)
{
	static const char *const st[] = {[TC_OK] = "ok", [TC_FAILED] = "failed",
					 [TC_SKIPPED] = "skipped"};
	json_t *a = json_array();
	for (size_t i = 0; i < rec.cases.n; i++) {
		const struct test_case *c = &rec.cases.v[i];
		json_t *o = json_pack("{s:s, s:s, s:s, s:f}", "suite", c->suite, "name", c->name,
				      "status", st[c->status], "seconds", (double)c->ms / 1000.0);
		set_str(o, "output", c->output);
		set_str(o, "message", c->message);
		json_array_append_new(a, o);
	}
	return a;
}

static void render(enum report_format fmt, const struct lc_result *res, size_t n,
		   const char *done_word, struct buf *out)
{
	if (fmt == RF_JUNIT) {
		junit_write(&rec.cases, out);
		return;
	}
	json_t *o = json_pack("{s:s, s:s, s:o, s:o}", "name", rec.cases.name, "time",
			      rec.cases.stamp, "cases", cases_json(), "machines",
			      outcome_json(res, n, done_word));
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
	buf_puts(out, s);
	buf_puts(out, "\n");
	free(s);
	json_decref(o);
}

int events_write_reports(const char *name, const struct lc_result *res, size_t n,
			 const char *done_word)
{
	int rc = EXIT_OK;
	if (!rec.nfiles)
		return rc;
	if (!rec.json)
		event_set_sink(NULL, NULL);
	rec.cases.name = xasprintf("corral %s", name);
	add_skipped(res, n);
	for (size_t i = 0; i < rec.nfiles; i++) {
		struct buf out = {0};
		struct diag d = {0};
		render(rec.files[i].fmt, res, n, done_word, &out);
		if (write_file_atomic(rec.files[i].path, out.s, out.len, 0644, &d) < 0) {
			report(&d);
			rc = EXIT_FAIL;
		}
		buf_free(&out);
	}
	test_report_free(&rec.cases);
	rec.nfiles = 0;
	return rc;
}
