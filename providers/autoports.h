/* `ports: auto`, shared by the providers whose guests are reached over SSH
 * (kvm, virtualbox, incus): a detached `corral __<provider>-ports` per machine
 * keeps one SSH channel open on which a loop in the guest prints
 * /proc/net/tcp and tcp6 every second, and forwards each listening port
 * (but the excluded ones) from 127.0.0.1 (or the provider's host_ip) — the
 * same port when free, else the next free one above it, also when the
 * provider's add fails (taken where it listens) — through its add/remove. The
 * forwards are listed in the machine's auto-ports file (core/host/ports.h).
 * It reconnects when the session drops (a reset, a reboot in the guest)
 * and ends when the machine no longer runs; autoports_stop stops it and
 * removes the list. Its messages go to ports.log in the machine directory. */
#ifndef CORRAL_PROVIDERS_AUTOPORTS_H
#define CORRAL_PROVIDERS_AUTOPORTS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"
#include "core/base/strv.h"
#include "core/host/machine.h"

/* What a provider does for the watcher; ctx is the provider's own. */
struct autoports_ops {
	/* a provider argument KEY=VALUE (key: klen bytes); false when unknown */
	bool (*arg)(void *ctx, const char *key, size_t klen, const char *value);
	/* every provider argument was given */
	bool (*ready)(const void *ctx);
	/* forward 127.0.0.1:host to the guest's port */
	int (*add)(void *ctx, unsigned host, unsigned guest, struct diag *d);
	int (*remove)(void *ctx, unsigned host, unsigned guest, struct diag *d);
	/* whether the machine still runs: the watcher ends when not */
	bool (*alive)(void *ctx);
	/* where the forwards listen when not on this host's 127.0.0.1 (a
	 * remote server's address), else NULL; may itself be NULL */
	const char *(*host_ip)(const void *ctx);
};

/* The watcher's entry point body: argv is `NAME KEY=VALUE...`, the common
 * keys (file, host, port, user, key, known_hosts, exclude) and the
 * provider's. */
int autoports_main(int argc, char **argv, const struct autoports_ops *ops, void *ctx);
/* Starts `corral ENTRY` detached for the running machine m with the common
 * arguments and `extra` (the provider's KEY=VALUE ones); its pid becomes the
 * machine's MP_PORTFWD process. */
int autoports_start(struct machine *m, const char *entry, const struct strv *extra,
		    struct diag *d);
/* Stops the watcher (if any) and removes its list of forwards. */
void autoports_stop(struct machine *m);

#endif
