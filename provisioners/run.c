/* Which steps run, in what order, and the record of what ran: the
 * machine's state.json holds "provisioned" (ids of finished steps) and,
 * while its first plan is unfinished, "provision_pending": true.
 * The rules are in provisioner.h. */
#include <string.h>

#include "core/base/log.h"
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

static json_t *ran_list(struct machine *m)
{
	json_t *a = json_object_get(m->state, "provisioned");
	if (!json_is_array(a)) {
		a = json_array();
		json_object_set_new(m->state, "provisioned", a);
	}
	return a;
}

static bool recorded(struct machine *m, const struct step *s)
{
	size_t i;
	json_t *v;
	json_array_foreach(ran_list(m), i, v)
		if (json_is_string(v) && strcmp(json_string_value(v), s->id) == 0)
			return true;
	return false;
}

static bool pending(const struct machine *m)
{
	return json_is_true(json_object_get(m->state, "provision_pending"));
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
		json_array_append_new(ran_list(m), json_string(s->id));
	if (pending(m) && plan_complete(m))
		json_object_del(m->state, "provision_pending");
	return machine_save(m, d);
}

/* A new machine starts a new plan: nothing of a former life counts. */
static int begin_plan(struct machine *m, struct diag *d)
{
	json_object_set_new(m->state, "provisioned", json_array());
	json_object_set_new(m->state, "provision_pending", json_true());
	return machine_save(m, d);
}

static int run_step(struct prov_ctx *pc, const struct step *s, size_t nsteps, struct diag *d)
{
	const char *name = pc->m->cfg->name;
	log_machine(name, "provisioning: step %u/%zu: %s", s->index, nsteps, s->name);
	const struct provisioner *p = provisioner_for(s->kind);
	if (!p || p->run(pc, s, d) < 0) {
		pc->failed = s;
		return diag_wrap(d, "%s: provision step %u (%s)", name, s->index, s->name);
	}
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
		    run_step(pc, s, m->cfg->nsteps, d) < 0)
			return -1;
	}
	if (pending(m) && plan_complete(m)) {
		json_object_del(m->state, "provision_pending");
		return machine_save(m, d);
	}
	return 0;
}

/* A top-level step's targets among the machines that are up, in the
 * step's order; 0 when one is missing (named in *missing). */
static size_t find_targets(const struct step *s, struct prov_target *ts, size_t n,
			   struct prov_target **out, const char **missing)
{
	const struct strv *want = &s->ansible.targets;
	for (size_t i = 0; i < want->n; i++) {
		out[i] = NULL;
		for (size_t k = 0; k < n && !out[i]; k++)
			if (strcmp(ts[k].m->cfg->name, want->v[i]) == 0)
				out[i] = &ts[k];
		if (!out[i]) {
			*missing = want->v[i];
			return 0;
		}
	}
	return want->n;
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

static int run_env_step(const struct env *e, const struct step *s, struct prov_target *ts,
			size_t n, struct prov_target **t, size_t nt, struct diag *d)
{
	struct ansible_job j = {
		.env = e, .step = s, .hosts = ts, .nhosts = n, .prefix = s->name,
	};
	log_info("provisioning: top-level step %u/%zu: %s", s->index, e->nsteps, s->name);
	if (ansible_run(&j, d) < 0)
		return diag_wrap(d, "top-level provision step %u (%s)", s->index, s->name);
	for (size_t i = 0; i < nt; i++)
		if (record(t[i]->m, s, d) < 0)
			return -1;
	return 0;
}

int provision_env(const struct env *e, struct prov_target *targets_up, size_t n,
		  enum provision_mode mode, const struct strv *only, struct diag *d)
{
	if (mode == PROVISION_NONE)
		return 0;
	for (size_t i = 0; i < e->nsteps; i++) {
		const struct step *s = &e->steps[i];
		struct prov_target *t[s->ansible.targets.n + 1];
		const char *missing = NULL;
		size_t nt = find_targets(s, targets_up, n, t, &missing);
		if (missing) {
			if (provision_selects(s, mode, only, true, false))
				log_info("provisioning: top-level step %u (%s) waits: %s is not up",
					 s->index, s->name, missing);
			continue;
		}
		if (env_step_selected(s, t, nt, mode, only) &&
		    run_env_step(e, s, targets_up, n, t, nt, d) < 0)
			return -1;
	}
	return 0;
}
