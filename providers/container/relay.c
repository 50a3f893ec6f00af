/* Private networks without root: no host bridge (it needs host root), but
 * one Ethernet segment per envfile network as a multicast group on the
 * host's loopback (as QEMU's `-netdev socket,mcast=`), which the machines
 * of that network join. The init makes a tap device ethN in the machine's
 * network namespace for each private network and hands its fd over (with
 * its "R", spawn.c); a detached `corral __ctrelay` on the host copies
 * frames between each tap and its group: out through a socket bound to an
 * ephemeral loopback port, in through one bound to the group, skipping
 * what came from its own port. The group and port come from the user's
 * uid, the project and the network's name: each envfile network of each
 * user its own segment. Any local user may join a loopback group: the
 * segment is private from the outside, not from the host's users. The
 * relay's identity is state MP_RELAY; it ends with the machine (its taps
 * go away) or when stopped. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/host/lock.h"
#include "core/host/mstate.h"
#include "core/host/paths.h"
#include "core/host/state.h"
#include "core/host/proc.h"
#include "providers/container/container.h"

#define FRAME_MAX 65536
#define FIRST_FD 3

/* The network `name`'s segment for the machine's envfile (net_segment_of). */
static void segment_of(const struct machine *m, const char *name, struct net_segment *s)
{
	_cleanup_free_ char *machines = path_dirname(m->dir);
	net_segment_of(machines, name, s);
}

static void group_of(const struct machine *m, const char *name, struct sockaddr_in *g)
{
	struct net_segment s;
	segment_of(m, name, &s);
	*g = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)s.port),
				  .sin_addr = s.group};
}

/* The group's receiving socket (bound to it, joined on loopback) and the
 * sending one (an ephemeral loopback port, connected to the group). */
static int group_sockets(const struct sockaddr_in *g, int *rx, int *tx, struct diag *d)
{
	struct ip_mreq mr = {.imr_multiaddr = g->sin_addr};
	struct in_addr lo = {.s_addr = htonl(INADDR_LOOPBACK)};
	struct sockaddr_in any_lo = {.sin_family = AF_INET, .sin_addr = lo};
	int one = 1, zero = 0;
	mr.imr_interface = lo;
	*rx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	*tx = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (*rx < 0 || *tx < 0 ||
	    setsockopt(*rx, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(*rx, (const struct sockaddr *)g, sizeof(*g)) < 0 ||
	    setsockopt(*rx, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof(mr)) < 0 ||
	    bind(*tx, (const struct sockaddr *)&any_lo, sizeof(any_lo)) < 0 ||
	    setsockopt(*tx, IPPROTO_IP, IP_MULTICAST_IF, &lo, sizeof(lo)) < 0 ||
	    setsockopt(*tx, IPPROTO_IP, IP_MULTICAST_LOOP, &one, sizeof(one)) < 0 ||
	    setsockopt(*tx, IPPROTO_IP, IP_MULTICAST_TTL, &zero, sizeof(zero)) < 0 ||
	    connect(*tx, (const struct sockaddr *)g, sizeof(*g)) < 0)
		return diag_errno(d, "a loopback multicast socket for the network");
	return 0;
}

/* A machine without an `ip:` gets one from the segment's own pool (the
 * rule of core/host/net.c: the same address on every up), in the user's
 * run directory under a lock. Leases of machines whose directory is gone
 * are free again. */
int ct_segment_ip(const struct machine *m, const char *network, const char *subnet,
		  const struct net_skip *skip, char ip[16], struct diag *d)
{
	struct net_segment seg;
	struct subnet sn;
	segment_of(m, network, &seg);
	_cleanup_free_ char *run = host_run_dir();
	_cleanup_free_ char *pp = xasprintf("%s/ctnet-%s.json", run, seg.hex);
	_cleanup_free_ char *lp = xasprintf("%s/ctnet-%s.lock", run, seg.hex);
	struct lock l;
	json_t *pool;
	if (net_subnet_parse(subnet, &sn, d) < 0 || mkdir_p(run, 0700, d) < 0 ||
	    lock_acquire(lp, 30000, &l, d) < 0)
		return -1;
	int r = state_load(pp, &pool, d);
	if (r == 0) {
		json_t *leases = json_object_get(pool, "leases"), *v;
		const char *k;
		void *tmp;
		json_object_foreach_safe(leases, tmp, k, v)
			if (!path_is_dir(json_string_value(v)))
				json_object_del(leases, k);
		r = net_pool_pick(pool, &sn, m->dir, NULL, skip, ip, 16, d);
		if (r == 0)
			r = state_save(pp, pool, d);
		json_decref(pool);
	}
	lock_release(&l);
	return r;
}

int ct_relay_start(struct machine *m, const int *taps, struct diag *d)
{
	const struct machine_cfg *c = m->cfg;
	int fds[FIRST_FD + 3 * CT_MAX_NETS];
	size_t n = 0;
	fds[0] = fds[1] = fds[2] = PROC_NULL;
	int r = 0;
	for (size_t i = 0; r == 0 && i < c->nnetworks && i + 1 < CT_MAX_NETS; i++) {
		struct sockaddr_in g;
		int rx = -1, tx = -1;
		group_of(m, c->networks[i].network, &g);
		if (taps[i + 1] < 0)
			r = diag_fail(d, "the init made no eth%zu", i + 1);
		else if (group_sockets(&g, &rx, &tx, d) < 0)
			r = -1;
		fds[FIRST_FD + 3 * n] = taps[i + 1];
		fds[FIRST_FD + 3 * n + 1] = rx;
		fds[FIRST_FD + 3 * n + 2] = tx;
		n++;
	}
	pid_t pid;
	const char *argv[] = {"corral", "__ctrelay", NULL};
	struct proc_spawn s = {.argv = argv, .exe = "/proc/self/exe", .fds = fds,
			       .nfds = FIRST_FD + 3 * n, .setsid = true};
	if (r == 0 && n && proc_spawn(&s, &pid, d) == 0)
		machine_set_proc(m, MP_RELAY, pid);
	else if (r == 0 && n)
		r = -1;
	for (size_t i = 0; i < 3 * n; i++)
		if (fds[FIRST_FD + i] >= 0)
			close(fds[FIRST_FD + i]);
	return r < 0 ? diag_wrap(d, "%s: private networks", c->name) : 0;
}

void ct_relay_stop(struct machine *m) { machine_stop_proc(m, MP_RELAY); }

/* ---- the relay ---- */

static unsigned short own_port(int tx)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);
	return getsockname(tx, (struct sockaddr *)&a, &len) == 0 ? a.sin_port : 0;
}

/* One frame from fd `from` on its way: tap -> group, group -> tap (a
 * frame the tap does not take — its link still down — is dropped, as a
 * wire would). false: the tap is gone. */
static bool pass(int from, bool from_tap, int tap, int tx, unsigned short port, char *buf)
{
	if (from_tap) {
		ssize_t n = read(from, buf, FRAME_MAX);
		if (n > 0)
			send(tx, buf, (size_t)n, 0);
		return n > 0 || (n < 0 && (errno == EINTR || errno == EAGAIN));
	}
	struct sockaddr_in src;
	socklen_t len = sizeof(src);
	ssize_t n = recvfrom(from, buf, FRAME_MAX, 0, (struct sockaddr *)&src, &len);
	if (n > 0 && src.sin_port != port && write(tap, buf, (size_t)n) < 0)
		errno = 0; /* dropped */
	return true;
}

int ct_relay_main(int argc, char **argv)
{
	(void)argc, (void)argv;
	struct pollfd p[2 * CT_MAX_NETS];
	unsigned short port[CT_MAX_NETS];
	size_t n = 0;
	static char buf[FRAME_MAX];
	for (int fd = FIRST_FD; n < CT_MAX_NETS && fcntl(fd, F_GETFD) >= 0; fd += 3, n++) {
		p[2 * n] = (struct pollfd){.fd = fd, .events = POLLIN};
		p[2 * n + 1] = (struct pollfd){.fd = fd + 1, .events = POLLIN};
		port[n] = own_port(fd + 2);
	}
	for (;;) {
		if (poll(p, 2 * n, -1) < 0 && errno != EINTR)
			return 1;
		for (size_t i = 0; i < 2 * n; i++) {
			if (p[i].revents & (POLLERR | POLLHUP | POLLNVAL))
				return 0; /* the machine is gone */
			size_t k = i / 2;
			if ((p[i].revents & POLLIN) &&
			    !pass(p[i].fd, i % 2 == 0, p[2 * k].fd, p[2 * k].fd + 2, port[k], buf))
				return 0;
		}
	}
}
