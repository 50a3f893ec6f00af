/* The provider vtable: how a machine is booted, stopped and reached.
 * Commands never name a provider; they look one up in the registry.
 * A NULL optional entry means "unsupported" and the caller says so. */
#ifndef CORRAL_PROVIDER_H
#define CORRAL_PROVIDER_H
#include <stdbool.h>

#include "core/diag.h"
#include "core/machine.h"

struct snapshot_list {
	char **names;
	size_t n;
};

struct provider {
	const char *name;            /* "container", "kvm", "virtualbox" */
	const char *box_provider[4]; /* box metadata providers it boots, NULL-ended */
	int (*usable)(struct diag *why); /* can it run on this host? */
	int (*up)(struct machine *m, struct diag *d);   /* create or start; returns when booted */
	int (*halt)(struct machine *m, bool force, struct diag *d);
	int (*destroy)(struct machine *m, struct diag *d);
	int (*state)(struct machine *m, enum mstate *s, struct diag *d);
	int (*ssh_endpoint)(struct machine *m, struct endpoint *ep, struct diag *d);
	/* optional */
	int (*suspend)(struct machine *m, struct diag *d);
	int (*resume)(struct machine *m, struct diag *d);
	int (*snapshot_save)(struct machine *m, const char *name, struct diag *d);
	int (*snapshot_restore)(struct machine *m, const char *name, struct diag *d);
	int (*snapshot_delete)(struct machine *m, const char *name, struct diag *d);
	int (*snapshot_list)(struct machine *m, struct snapshot_list *out, struct diag *d);
};

/* NULL when unknown. "auto" picks the first usable provider in table order. */
const struct provider *provider_find(const char *name);
const struct provider *provider_auto(struct diag *d);
const struct provider *const *provider_all(size_t *n);

#endif
