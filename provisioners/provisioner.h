/* Provisioners: a row per step kind (shell, file, ansible). A provisioner
 * sees a machine and an SSH connection, never a provider.
 *
 * Run semantics (what `provision_machine` and `provision_env` select):
 *   PROVISION_DEFAULT  a machine created by this `up` runs every step but
 *                      `run: never`; a later `up` runs only `run: always`
 *                      steps — unless the first plan was interrupted: the
 *                      machine's state keeps "provision_pending" until every
 *                      step of its first plan (its own and the top-level ones
 *                      that target it) has run, and until then each `up`
 *                      resumes it: the `once` steps not yet in "provisioned"
 *                      run, in order, like a resumable plan.
 *   PROVISION_FORCE    every step but `run: never`, recorded or not.
 *   `only`             restricts either mode to the named steps; a
 *                      `run: never` step runs only when named there.
 * Each finished step's id is appended to the machine's state.json
 * ("provisioned": [ids]) and saved at once, so a crash loses at most the
 * step that was running. A stop request (Ctrl-C, core/base/cancel.h) ends
 * a plan before its next step, which the next `up` resumes. */
#ifndef CORRAL_PROVISIONER_H
#define CORRAL_PROVISIONER_H
#include <stdbool.h>

#include "core/base/diag.h"
#include "core/config/envfile.h"
#include "core/host/machine.h"

struct ssh_conn;

/* A running machine as the provisioners see it. */
struct prov_target {
	struct machine *m;
	struct ssh_conn *conn; /* connected as the machine's SSH user */
	struct endpoint ep;
	bool created; /* this `up` created it */
};

struct prov_ctx {
	struct machine *m;
	struct ssh_conn *conn;     /* connected as the machine's SSH user */
	const struct endpoint *ep; /* how the host reaches it (ansible needs it) */
	const char *prefix;        /* output prefix: machine name when several run, else NULL */
	/* Every running machine of the envfile (this one included), for the
	 * Ansible inventory; none: the inventory holds this machine alone. */
	const struct prov_target *peers;
	size_t npeers;
	const struct step *failed; /* set by provision_machine: the step that failed */
};

struct provisioner {
	const char *name;
	enum step_kind kind;
	int (*run)(struct prov_ctx *pc, const struct step *s, struct diag *d);
};

const struct provisioner *provisioner_for(enum step_kind kind);

enum provision_mode {
	PROVISION_DEFAULT, /* on first creation: all steps; later: only `run: always` */
	PROVISION_FORCE,   /* up --provision / corral provision: every step but `run: never`
			      (a `never` step runs only when named in `only`) */
	PROVISION_NONE,    /* up --no-provision */
};

/* Runs the steps `mode` selects (restricted to step names in `only` when
 * non-NULL), in order, recording each finished step's id in the machine's
 * state ("provisioned": [ids]) as it completes. `created` says whether this
 * up created the machine. Stops at the first failing step; the diag names
 * machine, step number/name, exit code and the last lines of output. */
int provision_machine(struct prov_ctx *pc, enum provision_mode mode, bool created,
		      const struct strv *only, struct diag *d);

/* The envfile's top-level `provision:` steps, each once every machine it
 * targets is among `targets` (the machines this run brought up); a step
 * with a target outside them is not run, with a log line only when it was
 * due on the targets that are there (so `up web-2` on a provisioned
 * topology says nothing). Recorded in every target's
 * state. Call after provision_machine has run for each target. */
struct env_failure {
	const struct step *step; /* the top-level step that failed, else NULL */
	struct strv machines;    /* the machines it failed on (all its targets when
				    Ansible named none); free with strv_free */
	uint64_t ms;             /* time spent in top-level steps */
};
int provision_env(const struct env *e, struct prov_target *targets, size_t n,
		  enum provision_mode mode, const struct strv *only, struct env_failure *f,
		  struct diag *d);

/* Whether step s runs, given the mode, `only`, whether the machine's first
 * plan is due (created or pending) and whether s is already recorded. */
bool provision_selects(const struct step *s, enum provision_mode mode, const struct strv *only,
		       bool plan_due, bool recorded);

#endif
