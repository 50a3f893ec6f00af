/* corral provision [NAME...] [--provision-with NAMES]: runs provisioning
 * steps on running machines now, whatever ran before (`run: never` steps
 * only when named), then the top-level steps all of whose targets were
 * provisioned. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/events.h"
#include "cmd/outcome.h"
#include "engine/lifecycle.h"
#include "engine/triggers.h"
#include "core/base/log.h"
#include "core/ssh/ssh.h"
#include "core/host/state.h"
#include "provisioners/provisioner.h"

struct run {
	struct ctx *c;
	struct strv names, only;
	bool with_only;
	struct machine *ms;       /* every machine of the envfile */
	struct prov_target *up;   /* the running ones; selected ones first */
	size_t nup, nsel;
};

static int parse_args(struct run *r)
{
	static const struct option opts[] = {{"provision-with", required_argument, NULL, 'w'},
					     {"report", required_argument, NULL, 'r'},
					     {0}};
	const struct command *cmd = command_find("provision");
	int o;
	while ((o = getopt_long(r->c->argc, r->c->argv, "", opts, NULL)) != -1) {
		if (o == 'r' && events_report_arg(cmd, optarg))
			return EXIT_USAGE;
		if (o == 'r')
			continue;
		if (o != 'w')
			return usage_error(cmd, "unknown option");
		steps_split(optarg, &r->only);
		r->with_only = true;
	}
	if (r->with_only && !r->only.n)
		return usage_error(cmd, "--provision-with needs step names");
	for (int i = optind; i < r->c->argc; i++)
		steps_split(r->c->argv[i], &r->names);
	return EXIT_OK;
}

static bool selected(const struct run *r, const struct machine_cfg *mc)
{
	for (size_t i = 0; i < r->names.n; i++)
		if (machine_named(mc, r->names.v[i]))
			return true;
	return r->names.n == 0;
}

static int check_names(const struct run *r)
{
	const struct env *e = r->c->env;
	const struct command *cmd = command_find("provision");
	int rc = check_machine_names(cmd, e, r->names.v, r->names.n);
	return rc ? rc : steps_check(e, &r->only, cmd);
}

/* Whether any of the machine's own steps runs: only then is it worth an
 * SSH connection (Ansible makes its own). */
static bool runs_a_step(const struct run *r, const struct machine_cfg *mc)
{
	const struct strv *only = r->with_only ? &r->only : NULL;
	for (size_t i = 0; i < mc->nsteps; i++)
		if (provision_selects(&mc->steps[i], PROVISION_FORCE, only, false, false))
			return true;
	return false;
}

/* Without names, machines that are not running are left out; a named one
 * that is not running is an error. */
static int add_target(struct run *r, struct machine *m, bool sel, struct diag *d)
{
	struct prov_target t = {.m = m};
	int rc = lifecycle_endpoint(m, &t.ep, d);
	if (rc != 0)
		return sel && (rc < 0 || r->names.n) ? -1 : 0;
	const struct env *e = r->c->env;
	bool connect = sel && (runs_a_step(r, m->cfg) ||
			       triggers_remote(e, m->cfg, TRIG_BEFORE, "provision") ||
			       triggers_remote(e, m->cfg, TRIG_AFTER, "provision"));
	if (connect && lifecycle_connect(m, &t.ep, &t.conn, d) < 0)
		return -1;
	if (sel) {
		memmove(&r->up[r->nsel + 1], &r->up[r->nsel], (r->nup - r->nsel) * sizeof(t));
		r->up[r->nsel++] = t;
	} else {
		r->up[r->nup] = t;
	}
	r->nup++;
	return 0;
}

static int gather(struct run *r)
{
	const struct env *e = r->c->env;
	int rc = EXIT_OK;
	r->ms = xcalloc(e->nmachines, sizeof(*r->ms));
	r->up = xcalloc(e->nmachines, sizeof(*r->up));
	for (size_t i = 0; i < e->nmachines; i++) {
		struct diag d = {0};
		bool sel = selected(r, &e->machines[i]);
		if (machine_open(&r->ms[i], e, &e->machines[i], &d) < 0 ||
		    add_target(r, &r->ms[i], sel, &d) < 0) {
			report(&d);
			rc = EXIT_FAIL;
		}
	}
	return rc;
}

static int provision_one(struct run *r, struct prov_target *t, struct lc_result *res)
{
	const struct strv *only = r->with_only ? &r->only : NULL;
	struct prov_ctx pc = {.m = t->m, .conn = t->conn, .ep = &t->ep,
			      .peers = r->up, .npeers = r->nup};
	struct diag d = {0};
	uint64_t t0 = now_ms();
	const struct env *e = r->c->env;
	int rc = triggers_fire(e, t->m->cfg, TRIG_BEFORE, "provision", t->conn, &d);
	if (rc == 0)
		rc = provision_machine(&pc, PROVISION_FORCE, false, only, &d);
	if (rc == 0)
		rc = triggers_fire(e, t->m->cfg, TRIG_AFTER, "provision", t->conn, &d);
	uint64_t ms = now_ms() - t0;
	*res = (struct lc_result){.machine = t->m->cfg->name, .ms = ms, .provision_ms = ms,
				  .outcome = rc < 0 ? LC_FAILED : LC_DONE, .failed_step = pc.failed};
	if (rc < 0) {
		report(&d);
		return EXIT_FAIL;
	}
	log_machine(t->m->cfg->name, "provisioned");
	return EXIT_OK;
}

static int provision_all(struct run *r)
{
	const struct strv *only = r->with_only ? &r->only : NULL;
	int rc = EXIT_OK;
	size_t ok = 0;
	_cleanup_free_ struct prov_target *done = xcalloc(r->nsel + 1, sizeof(*done));
	_cleanup_free_ struct lc_result *res = xcalloc(r->nsel + 1, sizeof(*res));
	for (size_t i = 0; i < r->nsel; i++) {
		if (provision_one(r, &r->up[i], &res[i]) != EXIT_OK)
			rc = EXIT_FAIL;
		else
			done[ok++] = r->up[i];
	}
	struct diag d = {0};
	struct env_failure f = {0};
	if (provision_env(r->c->env, done, ok, PROVISION_FORCE, only, &f, &d) < 0 ||
	    triggers_fire(r->c->env, NULL, TRIG_AFTER, "provision", NULL, &d) < 0) {
		report(&d);
		rc = EXIT_FAIL;
	}
	lifecycle_add_env(res, r->nsel, &f);
	strv_free(&f.machines);
	outcome_print(res, r->nsel, "provisioned", r->c->json);
	if (events_write_reports("provision", res, r->nsel, "provisioned") != EXIT_OK)
		rc = EXIT_FAIL;
	return rc;
}

/* The envfile-level `before: provision` triggers. */
static int provision_before(struct run *r)
{
	struct diag d = {0};
	if (triggers_fire(r->c->env, NULL, TRIG_BEFORE, "provision", NULL, &d) < 0)
		return report_exit(&d);
	return EXIT_OK;
}

static void run_free(struct run *r)
{
	for (size_t i = 0; i < r->nsel; i++)
		ssh_close(r->up[i].conn);
	for (size_t i = 0; r->ms && i < r->c->env->nmachines; i++)
		machine_close(&r->ms[i]);
	free(r->ms);
	free(r->up);
	strv_free(&r->names);
	strv_free(&r->only);
}

int cmd_provision(struct ctx *c)
{
	struct run r = {.c = c};
	int rc = parse_args(&r);
	if (rc == EXIT_OK)
		rc = ctx_load_env(c);
	if (rc == EXIT_OK)
		rc = check_names(&r);
	if (rc == EXIT_OK)
		rc = ctx_lock(c);
	if (rc == EXIT_OK)
		rc = gather(&r);
	if (rc == EXIT_OK && r.nsel == 0) {
		struct diag d = {0};
		diag_fail(&d, "no running machine to provision");
		diag_hint(&d, "start them with `corral up`");
		report(&d);
		rc = EXIT_FAIL;
	}
	if (rc == EXIT_OK)
		rc = provision_before(&r);
	if (rc == EXIT_OK)
		rc = provision_all(&r);
	run_free(&r);
	return rc;
}
