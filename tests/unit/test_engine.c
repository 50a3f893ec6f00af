/* The engine (engine/lifecycle.c) without a real machine: the fake
 * provider of t_provider.h behind real envfiles, a real box store in a
 * temporary $CORRAL_HOME and a real sshd on loopback. The up scheduler:
 * depends_on order, the --parallel bound, failures skipping their
 * dependents, --destroy-on-error destroying only what this up created,
 * and a stop request (Ctrl-C) mid-up: nothing more starts, a wait for SSH
 * ends early, and the next up repairs. The fake is reachable only because
 * this program registers it. */
#include <stdlib.h>
#include <string.h>

#include "core/base/cancel.h"
#include "core/base/util.h"
#include "core/host/proc.h"
#include "engine/lifecycle.h"
#include "tests/unit/t.h"
#include "tests/unit/t_provider.h"

static char T[] = "/tmp/corral-engine.XXXXXX";
static char *box_path;

/* T/name/corral.yaml: the fake box for every machine, then `machines`. */
static struct env *load(const char *name, const char *machines)
{
	struct env *e = NULL;
	struct diag d = {0};
	struct diag_list errs = {0};
	_cleanup_free_ char *dir = path_join(T, name);
	_cleanup_free_ char *path = path_join(dir, "corral.yaml");
	_cleanup_free_ char *text = xasprintf("version: 1\ndefaults:\n  box: test/fake\n"
					      "  box_url: %s\n  ssh: { boot_timeout: 10s }\n"
					      "machines:\n%s",
					      box_path, machines);
	if (mkdir_p(dir, 0755, &d) < 0 || write_file_atomic(path, text, strlen(text), 0644, &d) < 0)
		printf("#   %s\n", d.msg);
	if (envfile_load(path, &e, &errs) < 0)
		for (size_t i = 0; i < errs.n; i++)
			printf("#   %s: %s\n", name, errs.v[i].msg);
	diag_list_free(&errs);
	CHECK(e != NULL);
	return e;
}

/* One up, halt, ... of the named machines (NULL: all), with its results. */
struct run {
	int rc;
	struct lc_result res[FK_MAX];
	struct diag_list errs;
	uint64_t ms;
};

typedef int (*lc_fn)(const struct env *, const struct machine_cfg *const *, size_t,
		     const struct lc_opts *, struct diag_list *, struct lc_result *);

static void run(struct run *r, lc_fn fn, const struct env *e, const char *only,
		const struct lc_opts *o)
{
	const struct machine_cfg *sel[FK_MAX];
	size_t n = 0;
	for (size_t i = 0; i < e->nmachines; i++)
		if (!only || strcmp(only, e->machines[i].name) == 0)
			sel[n++] = &e->machines[i];
	*r = (struct run){0};
	uint64_t t0 = now_ms();
	r->rc = fn(e, sel, n, o, &r->errs, r->res);
	r->ms = now_ms() - t0;
	for (size_t i = 0; i < r->errs.n; i++)
		printf("#   diag: %s\n", r->errs.v[i].msg);
}

static void up(struct run *r, const struct env *e, const struct lc_opts *extra)
{
	struct lc_opts o = extra ? *extra : (struct lc_opts){0};
	o.provider = "test";
	run(r, lifecycle_up, e, NULL, &o);
}

static const struct lc_result *result(const struct run *r, const struct env *e, const char *name)
{
	for (size_t i = 0; i < e->nmachines; i++)
		if (strcmp(r->res[i].machine, name) == 0)
			return &r->res[i];
	static const struct lc_result none = {.machine = "(none)", .outcome = -1};
	return &none;
}

static bool has_error(const struct run *r, const char *text)
{
	for (size_t i = 0; i < r->errs.n; i++)
		if (strstr(r->errs.v[i].msg, text))
			return true;
	return false;
}

static enum mstate vm_state(const struct env *e, const char *name)
{
	struct machine m = {0};
	struct diag d = {0};
	machine_open(&m, e, env_machine(e, name), &d);
	enum mstate s = fk_vm_state(&m);
	machine_close(&m);
	return s;
}

static bool machine_dir_exists(const struct env *e, const char *name)
{
	_cleanup_free_ char *rel = xasprintf("machines/%s", name);
	_cleanup_free_ char *dir = path_join(e->state_dir, rel);
	return path_is_dir(dir);
}

static void done(struct run *r, struct env *e)
{
	diag_list_free(&r->errs);
	env_free(e);
	fk_reset();
	cancel_reset();
}

/* Requests a stop once the fake has seen op for each of names, as Ctrl-C
 * would. */
struct interrupter {
	const char *op, *names[3]; /* NULL-ended */
	pthread_t th;
};

static void *interrupt_after(void *arg)
{
	struct interrupter *x = arg;
	for (const char *const *n = x->names; *n; n++)
		if (!fk_wait_for(x->op, *n, false, 5000))
			printf("#   %s %s never happened\n", x->op, *n);
	sleep_ms(20);
	cancel_request();
	return NULL;
}

/* Before registration nothing reaches the fake: not the registry, not an
 * envfile (which names only the real providers). */
static void test_unreachable_unless_registered(void)
{
	CHECK(provider_find("test") == NULL);
	struct env *e = NULL;
	struct diag_list errs = {0};
	_cleanup_free_ char *dir = path_join(T, "unreachable");
	_cleanup_free_ char *path = path_join(dir, "corral.yaml");
	static const char yaml[] = "version: 1\nmachines:\n  m: { box: test/fake, provider: test }\n";
	struct diag d = {0};
	mkdir_p(dir, 0755, &d);
	write_file_atomic(path, yaml, strlen(yaml), 0644, &d);
	CHECK(envfile_load(path, &e, &errs) < 0);
	CHECK(errs.n == 1 && strstr(errs.v[0].msg, "provider"));
	diag_list_free(&errs);
	provider_register_test(&fk_provider);
	CHECK(provider_find("test") == &fk_provider);
}

/* A machine starts once every dependency is up (its SSH reached); machines
 * without a dependency between them boot at the same time. Up again: every
 * machine already runs, none is booted. */
static void test_depends_on_order(void)
{
	struct env *e = load("order", "  db: {}\n  cache: {}\n"
				      "  web: { depends_on: [db, cache] }\n"
				      "  worker: { depends_on: [web] }\n");
	struct run r;
	fk_plan("db", FK_MEET, 2);
	fk_plan("cache", FK_MEET, 2);
	up(&r, e, NULL);
	CHECK(r.rc == 0);
	const char *names[] = {"db", "cache", "web", "worker"};
	for (size_t i = 0; i < 4; i++)
		CHECK(result(&r, e, names[i])->outcome == LC_DONE);
	CHECK(fk.max_inflight == 2); /* db and cache together */
	long web = fk_pos("up", "web", false), worker = fk_pos("up", "worker", false);
	CHECK(web > fk_pos("ssh_endpoint", "db", false));
	CHECK(web > fk_pos("ssh_endpoint", "cache", false));
	CHECK(worker > fk_pos("ssh_endpoint", "web", false));
	CHECK(fk_pos("ssh_endpoint", "db", false) > fk_pos("up", "db", true));
	CHECK(vm_state(e, "worker") == MS_RUNNING);
	printf("#   first up: %llu ms\n", (unsigned long long)r.ms);
	diag_list_free(&r.errs);
	fk_reset();
	up(&r, e, NULL);
	CHECK(r.rc == 0);
	for (size_t i = 0; i < 4; i++)
		CHECK(fk_calls("up", names[i]) == 0);
	CHECK(result(&r, e, "worker")->outcome == LC_DONE);
	done(&r, e);
}

/* --parallel N: never more than N machines in up, and N reached. */
static void test_parallel_bound(void)
{
	struct env *e = load("parallel", "  m1: {}\n  m2: {}\n  m3: {}\n  m4: {}\n");
	const char *names[] = {"m1", "m2", "m3", "m4"};
	for (size_t i = 0; i < 4; i++)
		fk_plan(names[i], FK_MEET, 2);
	struct run r;
	up(&r, e, &(struct lc_opts){.parallel = 2});
	CHECK(r.rc == 0);
	CHECK(fk.max_inflight == 2);
	for (size_t i = 0; i < 4; i++)
		CHECK(result(&r, e, names[i])->outcome == LC_DONE);
	done(&r, e);

	e = load("serial", "  s1: {}\n  s2: {}\n  s3: {}\n");
	const char *serial[] = {"s1", "s2", "s3"};
	for (size_t i = 0; i < 3; i++)
		fk_plan(serial[i], FK_SLOW, 20);
	up(&r, e, &(struct lc_opts){.parallel = 1});
	CHECK(r.rc == 0);
	CHECK(fk.max_inflight == 1);
	CHECK(fk_pos("up", "s2", false) > fk_pos("ssh_endpoint", "s1", false));
	done(&r, e);
}

/* A failed machine's dependents (and theirs) are skipped and never
 * booted; the summary names what blocked each; others come up. */
static void test_failure_skips_dependents(void)
{
	struct env *e = load("fail", "  db: {}\n  web: { depends_on: [db] }\n"
				     "  worker: { depends_on: [web] }\n  other: {}\n");
	fk_plan("db", FK_FAIL, 0);
	struct run r;
	up(&r, e, NULL);
	CHECK(r.rc == -1);
	CHECK(result(&r, e, "db")->outcome == LC_FAILED);
	const struct lc_result *web = result(&r, e, "web"), *worker = result(&r, e, "worker");
	CHECK(web->outcome == LC_SKIPPED && web->ms == 0);
	CHECK_STR(web->blocked_by, "db");
	CHECK(worker->outcome == LC_SKIPPED);
	CHECK_STR(worker->blocked_by, "web");
	CHECK(result(&r, e, "other")->outcome == LC_DONE);
	CHECK(fk_calls("up", "web") == 0 && fk_calls("up", "worker") == 0);
	CHECK(r.errs.n == 3);
	CHECK(has_error(&r, "db: the fake provider's up fails"));
	CHECK(has_error(&r, "web: not started: depends on db, which failed"));
	CHECK(has_error(&r, "worker: not started: depends on web, which was not started"));
	/* without --destroy-on-error the failed machine stays, stopped */
	CHECK(fk_calls("destroy", "db") == 0 && vm_state(e, "db") == MS_STOPPED);
	done(&r, e);
}

/* --destroy-on-error: a machine this up created and whose up failed is
 * destroyed; one an earlier up created is left as it is, failed or not. */
static void test_destroy_on_error(void)
{
	struct env *e = load("doe", "  old: {}\n  new: {}\n  fine: {}\n");
	struct lc_opts o = {.provider = "test"};
	struct run r;
	run(&r, lifecycle_up, e, "old", &o);
	CHECK(r.rc == 0 && vm_state(e, "old") == MS_RUNNING);
	diag_list_free(&r.errs);
	run(&r, lifecycle_halt, e, "old", &o);
	CHECK(r.rc == 0 && vm_state(e, "old") == MS_STOPPED);
	diag_list_free(&r.errs);
	fk_reset();
	fk_plan("old", FK_FAIL, 0);
	fk_plan("new", FK_FAIL, 0);
	up(&r, e, &(struct lc_opts){.destroy_on_error = true});
	CHECK(r.rc == -1);
	CHECK(result(&r, e, "old")->outcome == LC_FAILED);
	CHECK(result(&r, e, "new")->outcome == LC_FAILED);
	CHECK(result(&r, e, "fine")->outcome == LC_DONE);
	CHECK(fk_calls("destroy", "new") == 1);
	CHECK(vm_state(e, "new") == MS_NOT_CREATED && !machine_dir_exists(e, "new"));
	CHECK(fk_calls("destroy", "old") == 0);
	CHECK(vm_state(e, "old") == MS_STOPPED && machine_dir_exists(e, "old"));
	CHECK(fk_calls("destroy", "fine") == 0 && vm_state(e, "fine") == MS_RUNNING);
	done(&r, e);
}

/* Ctrl-C while two machines boot (--parallel 2): one whose provider
 * notices fails at once, one whose provider does not fails as soon as its
 * up returns, before its SSH wait; the others never start and are reported
 * so. The next up brings all of them up, the interrupted ones included. */
static void test_interrupt_mid_up(void)
{
	struct env *e = load("interrupt", "  a: {}\n  s: {}\n  b: {}\n  c: { depends_on: [a] }\n");
	fk_plan("a", FK_HANG, 0);
	fk_plan("s", FK_SLOW, 300);
	struct interrupter x = {.op = "up", .names = {"a", "s"}};
	pthread_create(&x.th, NULL, interrupt_after, &x);
	struct run r;
	up(&r, e, &(struct lc_opts){.parallel = 2});
	pthread_join(x.th, NULL);
	CHECK(r.rc == -1);
	CHECK(r.ms < 2000);
	CHECK(result(&r, e, "a")->outcome == LC_FAILED);
	CHECK(result(&r, e, "s")->outcome == LC_FAILED);
	CHECK(has_error(&r, "a: interrupted while booting"));
	CHECK(has_error(&r, "s: interrupted"));
	CHECK(fk_calls("ssh_endpoint", "s") == 0);
	for (const char *const *n = (const char *const[]){"b", "c", NULL}; *n; n++) {
		const struct lc_result *s = result(&r, e, *n);
		CHECK(s->outcome == LC_SKIPPED && s->blocked_by == NULL);
		CHECK(fk_calls("up", *n) == 0);
	}
	CHECK(has_error(&r, "b: not started: interrupted"));
	CHECK(vm_state(e, "a") == MS_STOPPED);
	diag_list_free(&r.errs);
	/* repaired by the next up */
	cancel_reset();
	fk_reset();
	up(&r, e, &(struct lc_opts){.parallel = 2});
	CHECK(r.rc == 0);
	for (const char *const *n = (const char *const[]){"a", "s", "b", "c", NULL}; *n; n++)
		CHECK(result(&r, e, *n)->outcome == LC_DONE && vm_state(e, *n) == MS_RUNNING);
	done(&r, e);
}

/* Ctrl-C while up waits for a guest's sshd that does not answer: the wait
 * ends at once rather than at ssh.boot_timeout (10 s here), and
 * --destroy-on-error applies to the interrupted machine. */
static void test_interrupt_ssh_wait(void)
{
	struct env *e = load("mute", "  m: {}\n");
	fk_plan("m", FK_MUTE, 0);
	struct interrupter x = {.op = "ssh_endpoint", .names = {"m"}};
	pthread_create(&x.th, NULL, interrupt_after, &x);
	struct run r;
	up(&r, e, &(struct lc_opts){.destroy_on_error = true});
	pthread_join(x.th, NULL);
	CHECK(r.rc == -1);
	CHECK(r.ms < 2000);
	CHECK(has_error(&r, "interrupted while waiting for ssh"));
	CHECK(fk_calls("destroy", "m") == 1 && vm_state(e, "m") == MS_NOT_CREATED);
	done(&r, e);
}

/* The fake box: a .box with only metadata.json, provider "test". */
static bool setup(void)
{
	struct diag d = {0};
	if (!mkdtemp(T))
		return false;
	_cleanup_free_ char *home = path_join(T, "home");
	_cleanup_free_ char *boxdir = path_join(T, "box");
	_cleanup_free_ char *meta = path_join(boxdir, "metadata.json");
	static const char json[] = "{\"provider\": \"test\"}\n";
	box_path = path_join(T, "fake.box");
	setenv("CORRAL_HOME", home, 1);
	const char *tar[] = {"tar", "-C", boxdir, "-czf", box_path, "metadata.json", NULL};
	if (mkdir_p(boxdir, 0755, &d) < 0 || write_file_atomic(meta, json, strlen(json), 0644, &d) < 0 ||
	    proc_run(tar, NULL, &d) < 0) {
		printf("# setup: %s\n", d.msg);
		return false;
	}
	return fk_sshd_start(T);
}

/* Each case with its wall time. */
#define TIMED(fn)                                                                   \
	do {                                                                        \
		uint64_t t_start = now_ms();                                        \
		RUN(fn);                                                            \
		printf("#   %s: %llu ms\n", #fn, (unsigned long long)(now_ms() - t_start)); \
	} while (0)

int main(void)
{
	bool ready = setup();
	RUN(test_unreachable_unless_registered);
	if (ready) {
		TIMED(test_depends_on_order);
		TIMED(test_parallel_bound);
		TIMED(test_failure_skips_dependents);
		TIMED(test_destroy_on_error);
		TIMED(test_interrupt_mid_up);
		TIMED(test_interrupt_ssh_wait);
	} else {
		printf("not ok - %s: set-up (box, sshd)\n", __FILE__);
		t_failed++;
	}
	fk_sshd_stop();
	struct diag d = {0};
	rm_rf(T, &d);
	free(box_path);
	return T_END();
}
