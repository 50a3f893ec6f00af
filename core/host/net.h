/* Host networking for local machines, shared by providers (container
 * veths, KVM taps): a host bridge per subnet with the gateway address on it,
 * outbound NAT, the clash check against host routes, and an address pool.
 *
 * The bridge is host-wide, so its pool is too: leases live beside it in
 * $CORRAL_RUN_DIR (default /run/corral)/net/BRIDGE.json under a lock, keyed
 * by the owning machine's state directory (a lease whose directory is gone
 * is free again), plus the address each owner had last, so that it gets
 * it back after destroy. Each machine records its own address in its
 * state.json. A bridge goes when its last lease is released.
 *
 * Bridges: machines on no `networks:` entry share corral0 (10.213.0.0/24,
 * or the first 10.213.N.0/24 no host route overlaps); each envfile
 * network's subnet gets its own bridge, corral-<8 hex of sha256(subnet)>,
 * so envfiles that name the same subnet share it. */
#ifndef CORRAL_NET_H
#define CORRAL_NET_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include <jansson.h>

#include "core/base/diag.h"

#define NET_DEFAULT_BRIDGE "corral0"
#define NET_DEFAULT_SUBNET "10.213.0.0/24"

struct subnet {
	uint32_t net;    /* host byte order, host bits zero */
	unsigned prefix; /* 8..30 */
};

struct net_lease {
	char bridge[16];  /* IFNAMSIZ */
	char subnet[20];  /* "10.213.0.0/24" */
	char ip[16];      /* the machine's address */
	char gateway[16]; /* the bridge's address: the first host of the subnet */
	unsigned prefix;
};

/* "10.20.0.0/24" -> subnet; host bits set or a prefix outside 8..30 is an error. */
int net_subnet_parse(const char *cidr, struct subnet *s, struct diag *d);
void net_subnet_format(const struct subnet *s, char *out, size_t n);
bool net_subnet_contains(const struct subnet *s, uint32_t ip);

/* Given /proc/net/route text, the first route (other than default routes
 * and routes through `own_dev`) overlapping s, as "10.0.0.0/8 dev eth0" in
 * clash; false when none. */
bool net_route_clash(const char *routes, const struct subnet *s, const char *own_dev,
		     char *clash, size_t n);

/* Addresses automatic allocation passes over: those the envfile gives
 * other machines by `ip:` (env_fixed_ips), which may not be up yet. */
struct net_skip {
	const uint32_t *ip; /* host order */
	size_t n;
};
bool net_skips(const struct net_skip *skip, uint32_t ip); /* skip may be NULL */

/* The pool logic, on the pool's JSON object {"leases": {ip: owner},
 * "seen": {ip: owner}}: `want`, else (want NULL) the address owner had
 * last when it is free (leases go on destroy, "seen" stays), else the
 * first free one from an address derived from owner's name, passing over
 * those in skip and, while others are free, those other owners had last.
 * So a machine gets the same address on every up, whatever the boot order.
 * Errors name the owner holding a wanted address. */
int net_pool_pick(json_t *pool, const struct subnet *s, const char *owner, const char *want,
		  const struct net_skip *skip, char *ip, size_t n, struct diag *d);

/* Leases an address for owner (a machine directory) on the bridge of
 * `subnet` (NULL: the default network, corral0, 10.213.0.0/24 or the next
 * free 10.213.N.0/24), creating the bridge when missing. */
int net_lease(const char *subnet, const char *owner, const char *want, const struct net_skip *skip,
	      struct net_lease *out, struct diag *d);
int net_release(const char *bridge, const char *owner, struct diag *d);
/* The same on every bridge's pool, for an owner whose bridges are unknown. */
int net_release_everywhere(const char *owner, struct diag *d);

/* Runs `ip -batch -` with these lines (each built from validated names and
 * addresses only). */
int net_ip_batch(const char *lines, struct diag *d);
/* Deletes a host link; absent is fine. */
void net_link_delete(const char *dev);

/* Without root, an envfile network is one Ethernet segment: a multicast
 * group on the host's loopback that every machine of the network joins
 * (kvm: QEMU's socket netdev; container: corral's tap relay), the frames
 * in UDP datagrams. The group (239.255.X.Y) and port (40000-59999) come
 * from the user, the envfile's machines directory and the network's name,
 * so the same subnet in another envfile, or of another user, is another
 * segment; hex names the segment (16 hex digits) for its lease files. */
struct net_segment {
	struct in_addr group;
	unsigned port;
	char hex[17];
};
void net_segment_of(const char *machines_dir, const char *network, struct net_segment *s);

#endif
