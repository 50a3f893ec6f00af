/* What up, halt, reload and destroy do, for one machine and for a set of
 * machines: box ensure -> provider up -> SSH wait (first-boot key swap where
 * the provider could not write the key) -> provisioning, each machine in
 * its own thread, `up` in depends_on order. Provider-neutral: the provider
 * comes from the registry. One log_machine line per state change. */
#ifndef CORRAL_LIFECYCLE_H
#define CORRAL_LIFECYCLE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/diag.h"
#include "core/box/boxlock.h"
#include "core/config/envfile.h"
#include "core/host/machine.h"
#include "provisioners/provisioner.h"
#include "providers/provider.h"

struct lc_opts {
	const char *provider; /* --provider: for machines not yet created; NULL: the envfile's */
	enum provision_mode provision;
	bool destroy_on_error; /* a machine this up created is destroyed when its up fails */
	bool force;            /* halt -f: no graceful stop */
	unsigned parallel;     /* up/reload --parallel: at most this many machines at once; 0: all */
	const struct strv *only; /* --provision-with: only these steps (with provision
				       PROVISION_FORCE; `run: never` ones run too) */
	/* corral.lock (NULL: none): up boots a new machine on exactly the box
	 * its fitting entry pins, and sets the entry of each machine it brings
	 * up that has none that fits (from the box it resolved or runs). */
	struct boxlock *lock;
};

/* What became of one machine, for the summary cmd/ prints. */
enum lc_outcome { LC_DONE, LC_FAILED, LC_SKIPPED };
struct lc_result {
	const char *machine; /* the machine's name (owned by the env) */
	enum lc_outcome outcome;
	uint64_t ms;                    /* how long it took; 0 when skipped */
	uint64_t boot_ms;               /* of it, up to SSH ready */
	uint64_t provision_ms;          /* of it, provisioning (its top-level steps too) */
	/* the provisioning step that failed, else NULL; a top-level step that
	 * failed on this machine makes it LC_FAILED too */
	const struct step *failed_step;
	/* skipped: the dependency that failed or was skipped; NULL: a stop was
	 * requested (Ctrl-C) before it started */
	const char *blocked_by;
};

/* Each runs on the machines in sel (envfile order) and appends one diag per
 * failed machine to errs; returns -1 when any failed. res (NULL or n
 * entries) gets each machine's result, in sel's order. up and reload start
 * a machine once every depends_on machine among sel is up, never more than
 * o->parallel at a time; a machine whose dependency failed is skipped.
 * After cancel_request() (core/base/cancel.h) no machine starts and those
 * underway fail at their next step ("interrupted"; --destroy-on-error
 * applies), leaving each as far as it got for the next up. */
int lifecycle_up(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		 const struct lc_opts *o, struct diag_list *errs, struct lc_result *res);
int lifecycle_halt(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		   const struct lc_opts *o, struct diag_list *errs, struct lc_result *res);
int lifecycle_reload(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		     const struct lc_opts *o, struct diag_list *errs, struct lc_result *res);
int lifecycle_destroy(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		      const struct lc_opts *o, struct diag_list *errs, struct lc_result *res);
/* Each machine back to its `provisioned` checkpoint (taken by `up` after
 * its first complete provisioning), running and SSH-ready, its probes
 * passed; all at once. */
int lifecycle_reset(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		    const struct lc_opts *o, struct diag_list *errs, struct lc_result *res);

/* `corral lock`: sets the lock entry of each machine of sel that has none
 * fitting the envfile (update: of every one), from the box its provider
 * would boot — resolved again from the source with update, else the box a
 * created machine runs or the one `up` would take (added when missing).
 * Appends one diag per machine that fails; returns -1 when any did. */
int lifecycle_lock(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		   bool update, struct boxlock *lock, struct diag_list *errs);

/* What the top-level steps did to each result (n of them): their time,
 * and the step that failed on a machine, which makes that machine failed.
 * `up` applies it itself; for `corral provision`. */
void lifecycle_add_env(struct lc_result *res, size_t n, const struct env_failure *f);

/* The provider that created m (state "provider"), NULL when none did; *s
 * its state (MS_NOT_CREATED when no provider or it cannot tell). Works on
 * a machine opened without its envfile (m->cfg NULL), for global-status. */
const struct provider *lifecycle_state(struct machine *m, enum mstate *s);

/* How to reach a running machine, from the provider that created it.
 * Returns 1 (with a diag saying so and how to start it) when it is not
 * running, -1 on errors, 0 with *ep filled. */
int lifecycle_endpoint(struct machine *m, struct endpoint *ep, struct diag *d);
/* p's endpoint of m, whatever its state, with on_host from p. */
int lifecycle_provider_endpoint(const struct provider *p, struct machine *m, struct endpoint *ep,
				struct diag *d);
/* An SSH session to the running machine m at ep (from the two above),
 * waiting for its sshd as long as a busy guest may take to answer
 * (LIFECYCLE_CONNECT_MS); the diag names the machine. For the commands
 * and triggers that act on a machine `up` already started. */
#define LIFECYCLE_CONNECT_MS 30000
int lifecycle_connect(const struct machine *m, const struct endpoint *ep,
		      struct ssh_conn **conn, struct diag *d);

/* A provider's helper process (`__init`, `__portfwd`, ...): runs the
 * entry point argv[0] of whichever provider has it; 127 when none does. */
int lifecycle_entry_run(int argc, char **argv);

#endif
