/* Host ports for a machine's forwarded ports and its SSH forward: one rule
 * for every provider (docs/envfile.md, `ports[].auto_correct`):
 *   1. the port the envfile asks for (`host:`; SSH's is PORT_SSH_HOST);
 *   2. taken, and the forward has auto_correct (SSH's has, and so has a
 *      forward without `host:`): the port this forward had at the
 *      machine's last up, then the first free one of PORT_AUTO_FIRST ..
 *      PORT_AUTO_LAST, scanned from ports_auto_start (a place drawn from
 *      the machine's directory, wrapping at the end: machines brought up
 *      at once by separate corral processes seldom try the same port
 *      between one's pick and its bind);
 *   3. else an error naming the port.
 * A port is free when no port chosen for this machine (or known to the
 * provider as taken) has it and a test bind on the host address succeeds:
 * TCP with SO_REUSEADDR, as the programs that bind it later do; UDP with a
 * UDP bind. Forwards are picked in envfile order, SSH's last, so a port the
 * envfile names is never moved for SSH. */
#ifndef CORRAL_PORTS_H
#define CORRAL_PORTS_H
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"
#include "core/host/machine.h"
#include "core/host/mstate.h"

#define PORT_SSH_HOST 2222  /* Vagrant's */
#define PORT_AUTO_FIRST 2200 /* Vagrant's usable_port_range starts here */
#define PORT_AUTO_LAST 2999
/* Where the scan of PORT_AUTO_FIRST..PORT_AUTO_LAST starts for the machine
 * in dir (NULL: PORT_AUTO_FIRST). */
unsigned ports_auto_start(const char *dir);

/* Ports not to hand out: chosen already, or known to be taken (another
 * VirtualBox VM's rules). */
struct port_set {
	struct port_use {
		unsigned port;
		bool udp;
	} *v;
	size_t n;
};
void port_set_add(struct port_set *s, unsigned port, bool udp);
void port_set_free(struct port_set *s);

/* 1: ip:port can be bound now; 0: taken (EADDRINUSE, EACCES); -1: another
 * error, in errno (an address the host does not have). */
int port_try(const char *ip, unsigned port, bool udp);

/* How a provider binds a port itself (the container keeps the socket):
 * the same results as port_try. `i` is the forward's index in cfg->ports,
 * PORT_SSH for the SSH forward. NULL: port_try. */
#define PORT_SSH ((size_t)-1)
struct port_binder {
	int (*bind)(void *arg, size_t i, const char *ip, unsigned port, bool udp);
	void *arg;
};

/* What the machine gets: host[i] for cfg->ports[i], ssh (0 without). */
struct port_plan {
	unsigned *host;
	unsigned ssh;
};
void port_plan_free(struct port_plan *p);

/* Picks every forward of m->cfg, and the SSH forward when `ssh`; the ports
 * it takes join *taken (may be NULL). Logs a forward that moved; the
 * caller's diag wrap names the machine. */
int ports_pick(struct machine *m, bool ssh, struct port_set *taken, const struct port_binder *b,
	       struct port_plan *out, struct diag *d);
/* Records the plan in state: "ports" (SSH's first) and "ssh_port". */
void ports_record(struct machine *m, const struct port_plan *p);
/* A port of the plan can no longer be bound (someone took it since the
 * pick): the program that was to bind it failed for that. */
bool ports_lost(const struct machine *m, const struct port_plan *p);

/* ports: auto. The guest's listening TCP ports in the text of its
 * /proc/net/tcp or /proc/net/tcp6: state LISTEN, bound to a wildcard or a
 * non-loopback address (what the host reaches), each once, at most max. */
size_t ports_listening(const char *text, unsigned *out, size_t max);
/* The forwards `ports: auto` has made now, kept by the machine's watcher
 * in its auto-ports file (path: caller frees) as "GUEST HOST HOST_IP"
 * lines; load returns how many (*v caller frees; none when no file). */
char *ports_auto_path(const struct machine *m);
size_t ports_auto_load(const struct machine *m, struct mport **v);
int ports_auto_save(const char *path, const struct mport *v, size_t n, struct diag *d);

#endif
