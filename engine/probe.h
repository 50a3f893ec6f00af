/* Readiness probes: `up` waits for every probe of a machine (`ready:` in
 * the envfile) to pass before the machine counts as up. */
#ifndef CORRAL_PROBE_H
#define CORRAL_PROBE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/diag.h"
#include "core/host/machine.h"
#include "core/ssh/ssh.h"

/* Waits for m's probes in order (c: the machine's SSH connection, for
 * command probes). A probe that does not pass in its timeout fails with
 * its last output and the console's last lines; a stop request ends the
 * wait as a failure. Each probe is an EV_PROBE event (start, end). */
int probes_wait(struct machine *m, struct ssh_conn *c, struct diag *d);

/* Where the host reaches guest TCP port `guest` of m: host:port of its
 * forward, else the machine's address and the port itself. */
int probe_target(const struct machine *m, unsigned guest, char host[64], unsigned *port,
		 struct diag *d);

/* "tcp 5432", "http URL", "command CMD", for logs and reports. */
void probe_describe(const struct probe *p, char *out, size_t n);

#endif
