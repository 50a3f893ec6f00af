/* Which steps run, in what order, and the record of what ran: the
 * machine's state.json holds "provisioned" (ids of finished steps) and,
 * while its first plan is unfinished, "provision_pending": true.
 * The rules are in provisioner.h. */
#include <string.h>

#include "core/base/cancel.h"
#include "core/base/event.h"
#include "core/base/log.h"
#include "core/host/mstate.h"
#include "provisioners/ansible.h"
#include "provisioners/step.h"

static bool listed(const struct strv *l, const char *s)
{
	for (size_t i = 0; i < l->n; i++)
		if (strcmp(l->v[i], s) == 0)
			return true;
	return false;
}

bool provision_selects(const struct step *s, enum provision_mode mode, const struct strv *only,
		       bool plan_due, bool recorded)
{
	if (mode == PROVISION_NONE)
		return false;
	if (only)
		return listed(only, s->name);
	if (s->run == RUN_NEVER)
		return false;
	if (mode == PROVISION_FORCE || s->run == RUN_ALWAYS)
		return true;
	return plan_due && !recorded;
}

static bool recorded(struct machine *m, const struct step *s)
{
	return machine_list_has(m, MK_PROVISIONED, s->id);
}

static bool pending(const struct machine *m)
{
	return machine_flag(m, MK_PROVISION_PENDING);
}

static bool targets(const struct step *s, const char *machine)
{
	return listed(&s->ansible.targets, machine);
}

/* The first plan is complete once every step of it but `never` ones has
 * run: the machine's own and the top-level ones that target it. */
static bool plan_complete(struct machine *m)
{
	const struct env *e = m->env;
	for (size_t i = 0; i < m->cfg->nsteps; i++)
		if (m->cfg->steps[i].run != RUN_NEVER && !recorded(m, &m->cfg->steps[i]))
			return false;
	for (size_t i = 0; i < e->nsteps; i++)
		if (e->steps[i].run != RUN_NEVER && targets(&e->steps[i], m->cfg->name) &&
		    !recorded(m, &e->steps[i]))
			return false;
	return true;
}

static int record(struct machine *m, const struct step *s, struct diag *d)
{
	if (!recorded(m, s))
		machine_list_add(m, MK_PROVISIONED, s->id);
	if (pending(m) && plan_complete(m))
		machine_del(m, MK_PROVISION_PENDING);
	return machine_save(m, d);
}

/* A new machine starts a new plan: nothing of a former life counts. */
static int begin_plan(struct machine *m, struct diag *d)
{
	machine_list_clear(m, MK_PROVISIONED);
	machine_set_flag(m, MK_PROVISION_PENDING, true);
	return machine_save(m, d);
}

static int run_step(struct prov_ctx *pc, const struct step *s, size_t nsteps, struct diag *d)
{
	const char *name = pc->m->cfg->name;
	log_machine(name, "provisioning: step %u/%zu: %s", s->index, nsteps, s->name);
	event_start(EV_STEP, name, s->name);
	uint64_t t0 = now_ms();
	const struct provisioner *p = provisioner_for(s->kind);
	if (!p || p->run(pc, s, d) < 0) {
		pc->failed = s;
		diag_wrap(d, "%s: provision step %u (%s)", name, s->index, s->name);
		event_end(EV_STEP, name, s->name, false, now_ms() - t0, d->msg);
		return -1;
	}
	event_end(EV_STEP, name, s->name, true, now_ms() - t0, NULL);
	return record(pc->m, s, d);
}

int provision_machine(struct prov_ctx *pc, enum provision_mode mode, bool created,
		      const struct strv *only, struct diag *d)
{
	struct machine *m = pc->m;
	if (mode == PROVISION_NONE)
		return 0;
	if (created && begin_plan(m, d) < 0)
		return -1;
	bool due = created || pending(m);
	for (size_t i = 0; i < m->cfg->nsteps; i++) {
		const struct step *s = &m->cfg->steps[i];
		if (provision_selects(s, mode, only, due, recorded(m, s)) &&
		    (cancel_check(m->cfg->name, d) < 0 || run_step(pc, s, m->cfg->nsteps, d) < 0))
			return -1;
	}
	if (pending(m) && plan_complete(m)) {
		machine_del(m, MK_PROVISION_PENDING);
		return machine_save(m, d);
	}
	return 0;
}

/* A top-level step's targets among the machines that are up, in the
 * step's order; returns how many were found; *missing names the first
 * that is not (NULL when none is missing). */
static size_t find_targets(const struct step *s, struct prov_target *ts, size_t n,
			   struct prov_target **out, const char **missing)
{
	const struct strv *want = &s->ansible.targets;
	size_t found = 0;
	*missing = NULL;
	for (size_t i = 0; i < want->n; i++) {
		struct prov_target *t = NULL;
		for (size_t k = 0; k < n && !t; k++)
			if (strcmp(ts[k].m->cfg->name, want->v[i]) == 0)
				t = &ts[k];
		if (t)
			out[found++] = t;
		else if (!*missing)
			*missing = want->v[i];
	}
	return found;
}

/* A `once` step is due when a target whose first plan is open has not run it. */
static bool env_step_selected(const struct step *s, struct prov_target **t, size_t nt,
			      enum provision_mode mode, const struct strv *only)
{
	bool due = false;
	for (size_t i = 0; i < nt; i++)
		due |= (t[i]->created || pending(t[i]->m)) && !recorded(t[i]->m, s);
	return provision_selects(s, mode, only, due, false);
}

/* A failed step's machines: those Ansible named, else every target. */
static void blame(struct env_failure *f, const struct step *s, struct prov_target **t, size_t nt)
{
	f->step = s;
	for (size_t i = 0; !f->machines.n && i < nt; i++)
		strv_push(&f->machines, t[i]->m->cfg->name);
}

static int run_env_step(const struct env *e, const struct step *s, struct prov_target *ts,
			size_t n, struct prov_target **t, size_t nt, struct env_failure *f,
			struct diag *d)
{
	struct ansible_job j = {
		.env = e, .step = s, .hosts = ts, .nhosts = n, .prefix = s->name,
	};
	uint64_t t0 = now_ms();
	log_info("provisioning: top-level step %u/%zu: %s", s->index, e->nsteps, s->name);
	event_start(EV_STEP, NULL, s->name);
	int rc = ansible_run(&j, &f->machines, d);
	f->ms += now_ms() - t0;
	if (rc < 0) {
		blame(f, s, t, nt);
		diag_wrap(d, "top-level provision step %u (%s)", s->index, s->name);
		event_end(EV_STEP, NULL, s->name, false, now_ms() - t0, d->msg);
		return -1;
	}
	event_end(EV_STEP, NULL, s->name, true, now_ms() - t0, NULL);
	strv_free(&f->machines);
	for (size_t i = 0; i < nt; i++)
		if (record(t[i]->m, s, d) < 0)
			return -1;
	return 0;
}

int provision_env(const struct env *e, struct prov_target *targets_up, size_t n,
		  enum provision_mode mode, const struct strv *only, struct env_failure *f,
		  struct diag *d)
{
	if (mode == PROVISION_NONE)
		return 0;
	for (size_t i = 0; i < e->nsteps; i++) {
		const struct step *s = &e->steps[i];
		struct prov_target *t[s->ansible.targets.n + 1];
		const char *missing = NULL;
		size_t nt = find_targets(s, targets_up, n, t, &missing);
		if (missing) { /* said only when it would have run on the targets that are here */
			if (env_step_selected(s, t, nt, mode, only))
				log_info("provisioning: top-level step %u (%s) not run: it targets %s, "
					 "which this run did not bring up; it runs once all its "
					 "targets are up in one `corral up` or `corral provision`",
					 s->index, s->name, missing);
			continue;
		}
		if (env_step_selected(s, t, nt, mode, only) &&
		    (cancel_check("provisioning", d) < 0 ||
		     run_env_step(e, s, targets_up, n, t, nt, f, d) < 0))
			return -1;
	}
	return 0;
}
