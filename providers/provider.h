/* The provider vtable: how a machine is booted, stopped and reached.
 * Commands never name a provider; they look one up in the registry.
 * A NULL optional entry means "unsupported" and the caller says so. */
#ifndef CORRAL_PROVIDER_H
#define CORRAL_PROVIDER_H
#include <stdbool.h>

#include "core/base/diag.h"
#include "core/base/strv.h"
#include "core/host/machine.h"

/* A private-network NIC as the guest sees it, found there by its MAC. */
struct guest_nic {
	char mac[18];  /* "52:54:00:12:34:56", lower case */
	char addr[20]; /* "10.20.0.5/24" */
};

/* A helper process of a provider: corral re-executes itself as `corral
 * NAME ARGS...` (the container runtime's init and port forwarder). */
struct provider_entry {
	const char *name; /* "__init"; hidden commands start with "__" */
	int (*main)(int argc, char **argv);
};

#define PROVIDER_CHECKPOINT "provisioned"

struct provider {
	const char *name;            /* "container", "kvm", "virtualbox" */
	const char *box_provider[4]; /* box metadata providers it boots, NULL-ended */
	/* optional: the box providers for this machine instead (its options
	 * choose the kind of guest); NULL-ended */
	const char *const *(*box_providers_for)(const struct machine_cfg *mc);
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
	int (*snapshot_list)(struct machine *m, struct strv *out, struct diag *d);
	/* The guest set-up after SSH is ready (engine/guest.c). */
	bool configures_guest_network; /* the runtime sets hostname, /etc/hosts, addresses */
	unsigned sync_types;           /* synced folder types it takes: bits 1 << SYNC_... */
	enum sync_type sync_auto;      /* what `type: auto` is here */
	/* optional: what `type: auto` is for this machine instead */
	enum sync_type (*sync_auto_for)(const struct machine *m);
	/* optional: the NICs of cfg->networks, in order; *nics caller frees */
	int (*guest_nics)(struct machine *m, struct guest_nic **nics, size_t *n, struct diag *d);
	/* optional: the name synced folder i has for the guest's mount (9p tag,
	 * vboxsf share); caller frees */
	char *(*sync_tag)(const struct machine *m, size_t i);
	/* optional: stops and removes whatever a machine of this provider left
	 * on the host, found without its state.json (damaged or moved aside):
	 * processes, mounts, links, leases. *found says whether there was any.
	 * Fails while anything of it remains. */
	int (*reap)(struct machine *m, bool *found, struct diag *d);
	/* optional: `corral package`: writes the stopped machine as a .box for
	 * this provider to `out` (which must not exist; see core/box/pack.h),
	 * metadata.json first. m->box_dir is the box it was made from. The
	 * caller removes `out` on failure and renames it into place. */
	int (*package)(struct machine *m, const char *out, struct diag *d);
	/* `ports: auto`: the provider watches the guest's listening TCP ports
	 * while it runs and forwards them, listed by ports_auto_load
	 * (core/host/ports.h). */
	bool auto_ports;
	/* Its guests run on this host: SSH to them never crosses a network
	 * (core/ssh/options.c: the key exchange corral's own connections use). */
	bool guests_on_host;
	/* optional: `corral reset`. checkpoint records the running machine as
	 * it is now (right after its first complete provisioning) as its
	 * `provisioned` checkpoint, replacing an older one; reset brings it
	 * back there and leaves it running (the caller waits for SSH). NULL:
	 * the engine uses snapshot_save/snapshot_restore with the snapshot
	 * name PROVIDER_CHECKPOINT instead, and up when it is not running. */
	int (*checkpoint)(struct machine *m, struct diag *d);
	int (*reset)(struct machine *m, struct diag *d);
	/* optional: its helper processes' entry points, {NULL}-ended */
	const struct provider_entry *entries;
	/* optional: what each mode a machine ran in (state "mode", as its
	 * last up chose by who ran it) means, for `status -v` */
	const char *mode_root, *mode_rootless;
};

/* NULL when unknown. "auto" picks the first usable provider in table order. */
const struct provider *provider_find(const char *name);
const struct provider *provider_auto(struct diag *d);
const struct provider *const *provider_all(size_t *n);
/* Tests only: p becomes findable by its name (never picked by "auto");
 * NULL removes it. The envfile names only the real providers, so users
 * cannot reach it unless a test program registers it. */
void provider_register_test(const struct provider *p);
/* Runs the helper entry point `argv[0]` of whichever provider has it; 127
 * when none does. */
int provider_entry_run(int argc, char **argv);

#endif
