/* The machine lifecycle: up, halt, reload, reset, destroy, global-status, port,
 * and providers' helper processes (__init, __portfwd).
 * The work is in engine/lifecycle. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/events.h"
#include "cmd/lockfile.h"
#include "cmd/outcome.h"
#include "core/base/cancel.h"
#include "core/base/event.h"
#include "core/host/index.h"
#include "core/host/ports.h"
#include "engine/lifecycle.h"
#include "core/base/log.h"
#include "core/host/mstate.h"
#include "core/base/util.h"

enum {
	O_PROVIDER = 256, O_PROVISION, O_NO_PROVISION, O_DESTROY_ON_ERROR, O_FORCE, O_PRUNE,
	O_PARALLEL, O_PROVISION_WITH, O_REPORT, O_LOCKED, O_WATCH,
};

static const struct option lc_opts_table[] = {
	{"provider", required_argument, NULL, O_PROVIDER},
	{"provision", no_argument, NULL, O_PROVISION},
	{"no-provision", no_argument, NULL, O_NO_PROVISION},
	{"destroy-on-error", no_argument, NULL, O_DESTROY_ON_ERROR},
	{"force", no_argument, NULL, O_FORCE},
	{"prune", no_argument, NULL, O_PRUNE},
	{"parallel", required_argument, NULL, O_PARALLEL},
	{"provision-with", required_argument, NULL, O_PROVISION_WITH},
	{"report", required_argument, NULL, O_REPORT},
	{"locked", no_argument, NULL, O_LOCKED},
	{"watch", no_argument, NULL, O_WATCH},
	{0},
};

struct parsed {
	struct lc_opts o;
	bool prune, locked, watch;
	struct strv only; /* --provision-with */
};

static int parse_parallel(const struct command *cmd, const char *s, unsigned *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);
	if (s[0] < '1' || s[0] > '9' || *end || v > 4096)
		return usage_error(cmd, "--parallel takes a number of machines from 1 to 4096, not `%s`",
				   s);
	*out = (unsigned)v;
	return EXIT_OK;
}

/* --provision-with implies --provision, for the named steps only. */
static int check_provision(const struct command *cmd, struct parsed *p)
{
	if (!p->only.n)
		return EXIT_OK;
	if (p->o.provision == PROVISION_NONE)
		return usage_error(cmd, "--provision-with and --no-provision contradict each other");
	p->o.provision = PROVISION_FORCE;
	p->o.only = &p->only;
	return EXIT_OK;
}

/* Parses the options `allowed` names (by their val) into p; names follow. */
static int parse_opts(struct ctx *c, const int *allowed, struct parsed *p)
{
	struct lc_opts *o = &p->o;
	const struct command *cmd = command_find(c->argv[0]);
	int opt;
	while ((opt = getopt_long(c->argc, c->argv, "f", lc_opts_table, NULL)) != -1) {
		if (opt == 'f')
			opt = O_FORCE;
		bool ok = false;
		for (const int *a = allowed; *a; a++)
			ok |= *a == opt;
		if (!ok)
			return usage_error(cmd, "unknown option");
		switch (opt) {
		case O_PROVIDER: o->provider = optarg; break;
		case O_PROVISION: o->provision = PROVISION_FORCE; break;
		case O_NO_PROVISION: o->provision = PROVISION_NONE; break;
		case O_DESTROY_ON_ERROR: o->destroy_on_error = true; break;
		case O_FORCE: o->force = true; break;
		case O_PRUNE: p->prune = true; break;
		case O_LOCKED: p->locked = true; break;
		case O_WATCH: p->watch = true; break;
		case O_PROVISION_WITH: steps_split(optarg, &p->only); break;
		case O_REPORT:
			if (events_report_arg(cmd, optarg))
				return EXIT_USAGE;
			break;
		case O_PARALLEL:
			if (parse_parallel(cmd, optarg, &o->parallel))
				return EXIT_USAGE;
			break;
		}
	}
	return check_provision(cmd, p);
}

/* The machines named after the options (a count base name selects all of
 * its machines), in envfile order; none named: every machine (for up:
 * those with autostart). */
static int select_machines(struct ctx *c, bool autostart_only,
			   const struct machine_cfg ***sel, size_t *n)
{
	const struct env *e = c->env;
	*sel = xcalloc(e->nmachines, sizeof(**sel));
	*n = 0;
	int rc = check_machine_names(command_find(c->argv[0]), e, c->argv + optind,
				     (size_t)(c->argc - optind));
	if (rc)
		return rc;
	for (size_t k = 0; k < e->nmachines; k++) {
		bool take = optind >= c->argc && (!autostart_only || e->machines[k].autostart);
		for (int i = optind; i < c->argc && !take; i++)
			take = machine_named(&e->machines[k], c->argv[i]);
		if (take)
			(*sel)[(*n)++] = &e->machines[k];
	}
	return EXIT_OK;
}

static int report_all(struct diag_list *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		report(&errs->v[i]);
	int rc = errs->n ? EXIT_FAIL : EXIT_OK;
	diag_list_free(errs);
	return rc;
}

/* Ctrl-C (or SIGTERM) during up and reload: the engine stops starting
 * machines and those underway stop at their next step; the summary says
 * which. A second Ctrl-C ends corral at once (SA_RESETHAND). */
static void on_interrupt(int sig)
{
	static const char msg[] = "\ninterrupted: no more machines start; those underway stop at "
				  "their next step (Ctrl-C again to quit now)\n";
	(void)sig;
	cancel_request();
	ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)w;
}

static void catch_interrupts(bool on, struct sigaction old[2])
{
	static const int sigs[] = {SIGINT, SIGTERM};
	struct sigaction sa = {.sa_handler = on_interrupt, .sa_flags = SA_RESETHAND | SA_RESTART};
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < 2; i++)
		sigaction(sigs[i], on ? &sa : &old[i], on ? &old[i] : NULL);
}

typedef int (*lc_fn)(const struct env *, const struct machine_cfg *const *, size_t,
		     const struct lc_opts *, struct diag_list *, struct lc_result *);

/* summary: up and reload end with what became of each machine; they also
 * take boxes from corral.lock and write it. */
static int run_lifecycle(struct ctx *c, struct lc_opts *o, lc_fn fn, bool autostart_only,
			 bool summary, bool locked)
{
	_cleanup_free_ const struct machine_cfg **sel = NULL;
	size_t n;
	int rc = ctx_load_env(c);
	if (rc || (rc = select_machines(c, autostart_only, &sel, &n)) ||
	    (o->only && (rc = steps_check(c->env, o->only, command_find(c->argv[0])))) ||
	    (rc = ctx_lock(c)))
		return rc;
	struct boxlock pins = {0};
	if (summary && (rc = lockfile_open(c, locked, &pins)))
		return rc;
	if (summary)
		o->lock = &pins;
	struct diag_list errs = {0};
	_cleanup_free_ struct lc_result *res = xcalloc(n + 1, sizeof(*res));
	struct sigaction old[2];
	if (summary)
		catch_interrupts(true, old);
	fn(c->env, sel, n, o, &errs, res);
	if (summary)
		catch_interrupts(false, old);
	rc = report_all(&errs);
	if (summary && lockfile_write(c, &pins) != EXIT_OK)
		rc = EXIT_FAIL;
	boxlock_free(&pins);
	if (summary)
		outcome_print(res, n, "running", c->json);
	if (events_write_reports(c->argv[0], res, n, "running") != EXIT_OK)
		rc = EXIT_FAIL;
	return rc;
}

static int parse_and_run(struct ctx *c, const int *allowed, lc_fn fn, bool autostart_only)
{
	struct parsed p = {.o.provision = PROVISION_DEFAULT};
	bool summary = fn == lifecycle_up || fn == lifecycle_reload || fn == lifecycle_reset;
	int rc = parse_opts(c, allowed, &p);
	if (rc == EXIT_OK)
		rc = run_lifecycle(c, &p.o, fn, autostart_only, summary, p.locked);
	strv_free(&p.only);
	return rc;
}

int cmd_up(struct ctx *c)
{
	static const int allowed[] = {O_PROVIDER, O_PROVISION, O_NO_PROVISION, O_DESTROY_ON_ERROR,
				      O_PARALLEL, O_PROVISION_WITH, O_REPORT, O_LOCKED, 0};
	return parse_and_run(c, allowed, lifecycle_up, true);
}

int cmd_halt(struct ctx *c)
{
	static const int allowed[] = {O_FORCE, 0};
	return parse_and_run(c, allowed, lifecycle_halt, false);
}

int cmd_reload(struct ctx *c)
{
	static const int allowed[] = {O_PROVISION, O_NO_PROVISION, O_PARALLEL, O_PROVISION_WITH, 0};
	return parse_and_run(c, allowed, lifecycle_reload, false);
}

int cmd_reset(struct ctx *c)
{
	static const int allowed[] = {O_REPORT, 0};
	return parse_and_run(c, allowed, lifecycle_reset, false);
}

/* Without -f a person at a terminal confirms; scripts (no TTY) need not. */
static bool confirmed(void)
{
	if (!isatty(STDIN_FILENO))
		return true;
	fprintf(stderr, "Destroy the machines and everything in them? [y/N] ");
	char line[16];
	return fgets(line, sizeof(line), stdin) && (line[0] == 'y' || line[0] == 'Y');
}

int cmd_destroy(struct ctx *c)
{
	static const int allowed[] = {O_FORCE, 0};
	struct parsed p = {0};
	int rc = parse_opts(c, allowed, &p);
	if (rc)
		return rc;
	if (!p.o.force && !confirmed()) {
		fputs("nothing destroyed\n", stderr);
		return EXIT_OK;
	}
	return run_lifecycle(c, &p.o, lifecycle_destroy, false, false, false);
}

/* member: the cluster member it runs on (incus), or NULL. */
static void print_entry(json_t *arr, const struct index_entry *e, const char *state,
			const char *member, bool json)
{
	if (json) {
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?}", "name",
						     e->name, "provider", e->provider, "state",
						     state, "envfile", e->envfile, "dir", e->dir,
						     "member", member));
		return;
	}
	_cleanup_free_ char *dir = path_dirname(e->envfile);
	printf("%-16s %-10s %-12s %-12s %s\n", e->name, e->provider, state, member ? member : "-",
	       dir);
}

/* Its state, and the cluster member it was last started on (*member,
 * caller frees; NULL when none). */
static const char *entry_state(const struct index_entry *e, char **member)
{
	*member = NULL;
	if (!path_is_dir(e->dir))
		return "missing";
	struct machine m;
	struct diag d = {0};
	if (machine_open_dir(&m, e->dir, &d) < 0)
		return "unreadable";
	enum mstate s;
	lifecycle_state(&m, &s);
	*member = s == MS_NOT_CREATED ? NULL : xstrdup(machine_str(&m, MK_LOCATION));
	machine_close(&m);
	return mstate_name(s);
}

int cmd_global_status(struct ctx *c)
{
	static const int allowed[] = {O_PRUNE, 0};
	struct parsed p = {0};
	int rc = parse_opts(c, allowed, &p);
	bool prune = p.prune;
	struct index_entry *v;
	size_t n;
	struct diag d = {0};
	if (rc)
		return rc;
	if (index_load(&v, &n, &d) < 0) {
		report(&d);
		return EXIT_FAIL;
	}
	json_t *arr = json_array();
	if (!c->json)
		printf("%-16s %-10s %-12s %-12s %s\n", "NAME", "PROVIDER", "STATE", "MEMBER",
		       "DIRECTORY");
	for (size_t i = 0; i < n && rc == EXIT_OK; i++) {
		_cleanup_free_ char *member = NULL;
		const char *state = entry_state(&v[i], &member);
		if (prune && strcmp(state, "missing") == 0) {
			if (index_forget(v[i].dir, &d) < 0) {
				report(&d);
				rc = EXIT_FAIL;
			}
			continue;
		}
		print_entry(arr, &v[i], state, member, c->json);
	}
	if (c->json) {
		char *s = json_dumps(arr, JSON_INDENT(2));
		puts(s);
		free(s);
	}
	json_decref(arr);
	index_free(v, n);
	return rc;
}

static const struct machine_cfg *port_machine(struct ctx *c)
{
	const struct command *cmd = command_find("port");
	if (optind < c->argc - 1) {
		usage_error(cmd, "one machine at a time");
		return NULL;
	}
	if (optind == c->argc) {
		const struct machine_cfg *mc = env_primary(c->env);
		if (!mc)
			usage_error(cmd, "several machines and none is `primary`: name one");
		return mc;
	}
	const struct machine_cfg *mc = env_machine(c->env, c->argv[optind]);
	if (!mc)
		usage_error(cmd, "no machine `%s` in %s", c->argv[optind], c->env->path);
	return mc;
}

/* v[fixed..n) are the forwards `ports: auto` made. */
static void print_ports(const struct mport *v, size_t n, size_t fixed, bool json)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		const char *proto = v[i].udp ? "udp" : "tcp";
		if (json)
			json_array_append_new(arr, json_pack("{s:i, s:i, s:s, s:s, s:b}", "guest",
							     (int)v[i].guest, "host", (int)v[i].host,
							     "host_ip", v[i].host_ip, "protocol", proto,
							     "auto", i >= fixed));
		else
			printf("%6u (guest) => %u (host %s, %s%s)\n", v[i].guest, v[i].host,
			       v[i].host_ip, proto, i >= fixed ? ", auto" : "");
	}
	if (json) {
		char *s = json_dumps(arr, JSON_INDENT(2));
		puts(s);
		free(s);
	}
	json_decref(arr);
}

static bool has_port(const struct mport *v, size_t n, const struct mport *p)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].guest == p->guest && v[i].host == p->host &&
		    strcmp(v[i].host_ip, p->host_ip) == 0)
			return true;
	return false;
}

/* Each forward of a that b lacks, as a line (or a --json event). */
static void port_changes(const char *name, const struct mport *a, size_t na,
			 const struct mport *b, size_t nb, bool added, bool json)
{
	for (size_t i = 0; i < na; i++) {
		if (has_port(b, nb, &a[i]))
			continue;
		event_port(name, added ? "forwarded" : "removed", a[i].host_ip, a[i].host, a[i].guest);
		if (json)
			continue;
		if (added)
			printf("%s: forwarding %s:%u -> %u\n", name, a[i].host_ip, a[i].host, a[i].guest);
		else
			printf("%s: guest port %u closed: forward %s:%u removed\n", name, a[i].guest,
			       a[i].host_ip, a[i].host);
		fflush(stdout);
	}
}

/* --watch: the forwards `ports: auto` makes and removes, as they happen,
 * until the machine stops running (or Ctrl-C). */
static void watch_ports(struct machine *m, bool json)
{
	struct mport *was = NULL;
	size_t nwas = 0;
	enum mstate s = MS_RUNNING;
	for (;;) {
		struct mport *now;
		lifecycle_state(m, &s);
		size_t n = s == MS_RUNNING ? ports_auto_load(m, &now) : (now = NULL, 0);
		port_changes(m->cfg->name, was, nwas, now, n, false, json);
		port_changes(m->cfg->name, now, n, was, nwas, true, json);
		free(was);
		was = now;
		nwas = n;
		if (s != MS_RUNNING)
			break;
		usleep(250 * 1000);
	}
	free(was);
	if (!json)
		printf("%s: %s\n", m->cfg->name, mstate_name(s));
}

int cmd_port(struct ctx *c)
{
	static const int allowed[] = {O_WATCH, 0};
	struct parsed p = {0};
	int rc = parse_opts(c, allowed, &p);
	if (rc || (rc = ctx_load_env(c)))
		return rc;
	const struct machine_cfg *mc = port_machine(c);
	if (!mc)
		return EXIT_USAGE;
	struct machine m;
	struct diag d = {0};
	if (machine_open(&m, c->env, mc, &d) < 0) {
		report(&d);
		return EXIT_FAIL;
	}
	enum mstate s;
	lifecycle_state(&m, &s);
	if (s != MS_RUNNING) {
		diag_fail(&d, "%s is %s: no ports are forwarded", mc->name, mstate_name(s));
		diag_hint(&d, "start it with `corral up %s`", mc->name);
		report(&d);
		rc = EXIT_FAIL;
	} else {
		struct mport *v, *a;
		size_t n = machine_ports(&m, &v), na = ports_auto_load(&m, &a);
		v = xrealloc(v, (n + na + 1) * sizeof(*v));
		if (na)
			memcpy(v + n, a, na * sizeof(*a));
		if (!p.watch)
			print_ports(v, n + na, n, c->json);
		free(v);
		free(a);
		if (p.watch)
			watch_ports(&m, c->json);
	}
	machine_close(&m);
	return rc;
}

int cmd_provider_entry(struct ctx *c) { return lifecycle_entry_run(c->argc, c->argv); }
