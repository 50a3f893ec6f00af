/* What up, halt, reload and destroy do, for one machine and for a set of
 * machines: box ensure -> provider up -> SSH wait (first-boot key swap where
 * the provider could not write the key) -> provisioning, each machine in
 * its own thread, `up` in depends_on order. Provider-neutral: the provider
 * comes from the registry. One log_machine line per state change. */
#ifndef CORRAL_LIFECYCLE_H
#define CORRAL_LIFECYCLE_H
#include <stdbool.h>
#include <stddef.h>

#include "core/diag.h"
#include "core/envfile.h"
#include "core/machine.h"
#include "provisioners/provisioner.h"
#include "providers/provider.h"

struct lc_opts {
	const char *provider; /* --provider: for machines not yet created; NULL: the envfile's */
	enum provision_mode provision;
	bool destroy_on_error; /* a machine this up created is destroyed when its up fails */
	bool force;            /* halt -f: no graceful stop */
};

/* Each runs on the machines in sel (envfile order) and appends one diag per
 * failed machine to errs; returns -1 when any failed. */
int lifecycle_up(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		 const struct lc_opts *o, struct diag_list *errs);
int lifecycle_halt(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		   const struct lc_opts *o, struct diag_list *errs);
int lifecycle_reload(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		     const struct lc_opts *o, struct diag_list *errs);
int lifecycle_destroy(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		      const struct lc_opts *o, struct diag_list *errs);

/* The provider that created m (state "provider"), NULL when none did; *s
 * its state (MS_NOT_CREATED when no provider or it cannot tell). Works on
 * a machine opened without its envfile (m->cfg NULL), for global-status. */
const struct provider *lifecycle_state(struct machine *m, enum mstate *s);

#endif
