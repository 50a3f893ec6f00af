/* Inside the guest, between "SSH ready" and provisioning, for every
 * provider (Vagrant's guest capabilities): the host name and its
 * 127.0.1.1 line in /etc/hosts; the static addresses of private networks,
 * on the NICs the provider names by MAC, persisted for the next boot (a
 * systemd-networkd file matching the MAC, else ifupdown's interfaces.d);
 * and synced folders: 9p and vboxsf mounted over SSH, rsync run from the
 * host. The guest side is a constant script per job, values passed as
 * quoted arguments. Idempotent: what is already right is left alone, and
 * a guest where nothing is missing needs neither root nor sudo. */
#ifndef CORRAL_GUEST_H
#define CORRAL_GUEST_H
#include "core/base/diag.h"
#include "core/base/strv.h"
#include "core/host/machine.h"
#include "core/ssh/ssh.h"
#include "providers/provider.h"

/* Every synced folder's type is one p takes and its host directory
 * exists; the error names the machine, the folder and the types p takes. */
int guest_check_folders(const struct provider *p, const struct machine *m, struct diag *d);

/* The whole set-up on a running machine, over c (logged in as ep->user).
 * Records each folder's type as used ("9p", "rsync", ...) in m->state
 * "synced" (auto on kvm: 9p, else rsync when the guest cannot mount it). */
int guest_setup(const struct provider *p, struct machine *m, struct ssh_conn *c,
		const struct endpoint *ep, struct diag *d);

/* `corral rsync`: the machine's rsync folders copied again. *n: how many. */
int guest_rsync(const struct provider *p, struct machine *m, struct ssh_conn *c,
		const struct endpoint *ep, size_t *n, struct diag *d);

/* The host directory's `rsync` argv for a folder: rsync -az --delete -e
 * "ssh -F ssh_config" [--exclude=/.corral/] HOST/ corral-guest:GUEST
 * (state_dir is excluded when it lies inside HOST). Free with strv_free.
 * Exposed for tests. */
struct strv guest_rsync_argv(const char *ssh_config, const char *host, const char *guest,
			     const char *state_dir);

#endif
