#include "core/host/net.h"

#include <glob.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/host/lock.h"
#include "core/host/paths.h"
#include "core/base/log.h"
#include "core/host/proc.h"
#include "core/host/state.h"
#include "core/base/util.h"

static uint32_t mask_of(unsigned prefix) { return prefix ? ~0u << (32 - prefix) : 0; }

int net_subnet_parse(const char *cidr, struct subnet *s, struct diag *d)
{
	char addr[32];
	const char *slash = strchr(cidr, '/');
	char *end;
	if (!slash || (size_t)(slash - cidr) >= sizeof(addr))
		goto bad;
	memcpy(addr, cidr, (size_t)(slash - cidr));
	addr[slash - cidr] = '\0';
	struct in_addr a;
	long p = strtol(slash + 1, &end, 10);
	if (inet_pton(AF_INET, addr, &a) != 1 || *end || end == slash + 1 || p < 8 || p > 30)
		goto bad;
	s->net = ntohl(a.s_addr);
	s->prefix = (unsigned)p;
	if (s->net & ~mask_of(s->prefix)) {
		diag_fail(d, "subnet %s has host bits set", cidr);
		return diag_hint(d, "write the network address, e.g. a /24 ends in .0");
	}
	return 0;
bad:
	diag_fail(d, "`%s` is not an IPv4 subnet", cidr);
	return diag_hint(d, "write it as ADDRESS/PREFIX with a prefix from 8 to 30, e.g. 10.20.0.0/24");
}

static void ip_format(uint32_t ip, char *out, size_t n)
{
	struct in_addr a = {.s_addr = htonl(ip)};
	inet_ntop(AF_INET, &a, out, (socklen_t)n);
}

void net_subnet_format(const struct subnet *s, char *out, size_t n)
{
	char a[16];
	ip_format(s->net, a, sizeof(a));
	snprintf(out, n, "%s/%u", a, s->prefix);
}

bool net_subnet_contains(const struct subnet *s, uint32_t ip)
{
	return (ip & mask_of(s->prefix)) == s->net;
}

static bool overlaps(const struct subnet *a, uint32_t net, unsigned prefix)
{
	uint32_t m = mask_of(a->prefix < prefix ? a->prefix : prefix);
	return (a->net & m) == (net & m);
}

bool net_route_clash(const char *routes, const struct subnet *s, const char *own_dev,
		     char *clash, size_t n)
{
	const char *line = strchr(routes, '\n'); /* the header */
	while (line && *++line) {
		char dev[32];
		unsigned dst, gw, flags, refcnt, use, metric, mask;
		if (sscanf(line, "%31s %x %x %x %u %u %u %x", dev, &dst, &gw, &flags, &refcnt, &use,
			   &metric, &mask) == 8 && mask && strcmp(dev, own_dev ? own_dev : "") != 0) {
			/* /proc/net/route prints addresses in network byte order as host integers. */
			uint32_t net = ntohl(dst), m = ntohl(mask);
			unsigned prefix = (unsigned)__builtin_popcount(m);
			if (overlaps(s, net & m, prefix)) {
				char a[16];
				ip_format(net & m, a, sizeof(a));
				snprintf(clash, n, "%s/%u dev %s", a, prefix, dev);
				return true;
			}
		}
		line = strchr(line, '\n');
	}
	return false;
}

static uint32_t parse_ip(const char *s)
{
	struct in_addr a;
	return inet_pton(AF_INET, s, &a) == 1 ? ntohl(a.s_addr) : 0;
}

static const char *holder_of(json_t *leases, const char *ip)
{
	return state_str(leases, ip, NULL);
}

static int pick_wanted(json_t *leases, const struct subnet *s, const char *owner,
		       const char *want, char *ip, size_t n, struct diag *d)
{
	char sn[20];
	net_subnet_format(s, sn, sizeof(sn));
	uint32_t w = parse_ip(want), host = w & ~mask_of(s->prefix);
	if (!w || !net_subnet_contains(s, w) || host < 2 || host == ~mask_of(s->prefix)) {
		diag_fail(d, "address %s is not a usable machine address in %s", want, sn);
		return diag_hint(d, "pick one from .2 up to the last host address (.1 is the "
				    "gateway on the host bridge)");
	}
	const char *h = holder_of(leases, want);
	if (h && strcmp(h, owner) != 0) {
		diag_fail(d, "address %s is already used by the machine in %s", want, h);
		return diag_hint(d, "choose another `ip:`, or destroy that machine");
	}
	snprintf(ip, n, "%s", want);
	return 0;
}

bool net_skips(const struct net_skip *skip, uint32_t ip)
{
	for (size_t i = 0; skip && i < skip->n; i++)
		if (skip->ip[i] == ip)
			return true;
	return false;
}

/* The object `key` of the pool, made when missing. */
static json_t *pool_obj(json_t *pool, const char *key)
{
	json_t *o = json_object_get(pool, key);
	if (!json_is_object(o)) {
		o = json_object();
		json_object_set_new(pool, key, o);
	}
	return o;
}

/* Drops owner's entries from an {ip: owner} object, except `keep`. */
static void forget_owner(json_t *o, const char *owner, const char *keep)
{
	const char *k;
	json_t *v;
	void *tmp;
	json_object_foreach_safe(o, tmp, k, v) {
		if (json_is_string(v) && strcmp(json_string_value(v), owner) == 0 &&
		    (!keep || strcmp(k, keep) != 0))
			json_object_del(o, k);
	}
}

struct pick {
	json_t *leases, *seen; /* {ip: owner}: held now; {ip: owner's tag}: last held */
	const struct subnet *s;
	const char *owner, *tag;
	const struct net_skip *skip;
};

/* "seen" outlives the machine: it names it by a digest of its directory,
 * not the path, so nothing of a destroyed project stays readable here. */
static void owner_tag(const char *owner, char *tag)
{
	char hex[HASH_HEX_MAX];
	hash_str(owner, NULL, hex);
	snprintf(tag, 17, "%.16s", hex);
}

/* The address owner prefers before any lease: from the digest of its
 * directory (the envfile's place and the machine's name), so it is the
 * same on every run whatever order machines come up in. */
static uint32_t preferred(const struct subnet *s, const char *tag)
{
	char first[9];
	snprintf(first, sizeof(first), "%.8s", tag);
	uint32_t hosts = ~mask_of(s->prefix) - 2; /* .2 up to the last before broadcast */
	return s->net + 2 + (uint32_t)strtoul(first, NULL, 16) % hosts;
}

/* Free for owner: not leased to another machine nor given by `ip:`; with
 * `strict`, also not the address another machine had last. */
static bool usable(const struct pick *p, uint32_t a, char *ip, size_t n, bool strict)
{
	ip_format(a, ip, n);
	const char *h = holder_of(p->leases, ip), *was = holder_of(p->seen, ip);
	return (!h || strcmp(h, p->owner) == 0) && !net_skips(p->skip, a) &&
	       (!strict || !was || strcmp(was, p->tag) == 0);
}

/* The owner's last address when free, else from its preferred address up
 * (wrapping), first passing over addresses other machines had last. */
static bool pick_auto(const struct pick *p, char *ip, size_t n)
{
	const char *k;
	json_t *v;
	json_object_foreach(p->seen, k, v) {
		uint32_t a = parse_ip(k);
		const char *t = json_string_value(v);
		if (t && strcmp(t, p->tag) == 0 && a && net_subnet_contains(p->s, a) &&
		    usable(p, a, ip, n, false))
			return true;
	}
	uint32_t hosts = ~mask_of(p->s->prefix) - 2, start = preferred(p->s, p->tag) - p->s->net - 2;
	for (int strict = 1; strict >= 0; strict--)
		for (uint32_t i = 0; i < hosts; i++)
			if (usable(p, p->s->net + 2 + (start + i) % hosts, ip, n, strict))
				return true;
	return false;
}

int net_pool_pick(json_t *pool, const struct subnet *s, const char *owner, const char *want,
		  const struct net_skip *skip, char *ip, size_t n, struct diag *d)
{
	char tag[17];
	owner_tag(owner, tag);
	struct pick p = {pool_obj(pool, "leases"), pool_obj(pool, "seen"), s, owner, tag, skip};
	forget_owner(p.leases, owner, want); /* an old lease of this machine */
	if (want) {
		if (pick_wanted(p.leases, s, owner, want, ip, n, d) < 0)
			return -1;
	} else if (!pick_auto(&p, ip, n)) {
		char sn[20];
		net_subnet_format(s, sn, sizeof(sn));
		diag_fail(d, "no free address left in %s", sn);
		return diag_hint(d, "destroy unused machines (corral global-status) or use a "
				    "larger subnet");
	}
	forget_owner(p.leases, owner, ip);
	json_object_set_new(p.leases, ip, json_string(owner));
	forget_owner(p.seen, tag, ip);
	json_object_set_new(p.seen, ip, json_string(tag));
	return 0;
}

int net_ip_batch(const char *lines, struct diag *d)
{
	const char *argv[] = {"ip", "-batch", "-", NULL};
	return proc_run(argv, lines, d);
}

static bool link_exists(const char *dev)
{
	char sys[64];
	snprintf(sys, sizeof(sys), "/sys/class/net/%s", dev);
	return path_exists(sys);
}

void net_link_delete(const char *dev)
{
	if (!link_exists(dev))
		return;
	const char *argv[] = {"ip", "link", "del", dev, NULL};
	struct diag d = {0};
	/* A veth also goes away by itself when its namespace dies: a race, not an error. */
	if (proc_run(argv, NULL, &d) < 0 && link_exists(dev))
		log_warn("could not remove network link %s: %s", dev, d.msg);
}

static char *run_dir(const char *leaf)
{
	_cleanup_free_ char *r = host_run_dir();
	_cleanup_free_ char *net = path_join(r, "net");
	return path_join(net, leaf);
}

/* Outbound NAT and the firewall live in a table of corral's own, so no
 * other rule is ever touched. Each bridge adds itself to the sets.
 *   postrouting: traffic from any corral subnet leaving through anything
 *     but a corral bridge is masqueraded (machines on two corral networks
 *     see each other's real addresses).
 *   forward: replies pass; within one bridge (only seen with br_netfilter)
 *     too; anything new routed to a bridge is dropped: a LAN host routing
 *     a machine subnet through this host, or a machine on another corral
 *     network. New traffic from a bridge out to elsewhere passes.
 *   input: from a bridge to the host itself only replies (the host's SSH
 *     sessions and port forwards connect out to the guests) and ping pass:
 *     guests do not reach services the host listens on. corral serves
 *     guests no DHCP or DNS (addresses are static; resolv.conf is the
 *     host's).
 * The script is one transaction and changes nothing when run again; its
 * values come from net_subnet_format() and bridge_name() only. */
static const char nft_script[] =
	"table inet corral {\n"
	" set subnets { type ipv4_addr; flags interval; }\n"
	" set bridges { type ifname; }\n"
	" set same { type ifname . ifname; }\n"
	" chain postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
	" chain forward { type filter hook forward priority filter; policy accept; }\n"
	" chain input { type filter hook input priority filter; policy accept; }\n"
	"}\n"
	"flush chain inet corral postrouting\n"
	"flush chain inet corral forward\n"
	"flush chain inet corral input\n"
	"add rule inet corral postrouting ip saddr @subnets oifname != @bridges masquerade\n"
	"add rule inet corral forward ct state established,related accept\n"
	"add rule inet corral forward iifname . oifname @same accept\n"
	"add rule inet corral forward oifname @bridges drop\n"
	"add rule inet corral input iifname != @bridges accept\n"
	"add rule inet corral input ct state established,related accept\n"
	"add rule inet corral input icmp type echo-request accept\n"
	"add rule inet corral input drop\n"
	"add element inet corral subnets { %s }\n"
	"add element inet corral bridges { \"%s\" }\n"
	"add element inet corral same { \"%s\" . \"%s\" }\n";

/* What a bridge added, removed with the bridge, in one transaction:
 * deleting an absent element would fail all of it, so each element is
 * added first (adding one that is there changes nothing), then deleted. */
static void nft_forget(const char *bridge, const char *subnet)
{
	static const char *const what[] = {"subnets { %s }", "bridges { \"%s\" }",
					   "same { \"%s\" . \"%s\" }"};
	const char *val[] = {subnet, bridge, bridge};
	if (!proc_have("nft"))
		return;
	struct buf cmd = {0};
	for (int op = 0; op < 2; op++)
		for (size_t i = 0; i < 3; i++) {
			_cleanup_free_ char *el = xasprintf(what[i], val[i], bridge);
			buf_printf(&cmd, "%s element inet corral %s\n", op ? "delete" : "add", el);
		}
	const char *argv[] = {"nft", "-f", "-", NULL};
	struct diag ignored = {0};
	proc_run(argv, cmd.s, &ignored);
	buf_free(&cmd);
}

static void forwarding_on(void)
{
	static const char path[] = "/proc/sys/net/ipv4/ip_forward";
	char v[4] = "";
	FILE *f = fopen(path, "r");
	bool on = f && fgets(v, sizeof(v), f) && v[0] == '1';
	if (f)
		fclose(f);
	if (on)
		return;
	f = fopen(path, "w");
	on = f && fputs("1\n", f) >= 0;
	if (f && fclose(f) != 0)
		on = false;
	if (!on)
		log_warn("could not enable IPv4 forwarding: machines have no outbound access");
}

/* Run on every lease, not only when the bridge is made: a firewall reload,
 * or nft installed after the bridge, must not leave a bridge without NAT
 * and filter. Forwarding is only switched on once the filter is in place:
 * without it the host would route anyone's traffic to the machines. */
static int nft_setup(const char *bridge, const char *subnet, struct diag *d)
{
	if (!proc_have("nft")) {
		diag_fail(d, "nft is not installed: machines on %s cannot be fenced off from the "
			     "network", subnet);
		return diag_hint(d, "install nftables");
	}
	_cleanup_free_ char *script = xasprintf(nft_script, subnet, bridge, bridge, bridge);
	const char *argv[] = {"nft", "-f", "-", NULL};
	if (proc_run(argv, script, d) < 0)
		return diag_wrap(d, "firewall and outbound NAT for %s", subnet);
	forwarding_on();
	return 0;
}

/* A bridge without a set address takes its lowest port's, so it changes as
 * machines come and go, and the guests' cached gateway MAC goes stale for
 * seconds. A fixed, locally administered one (02:00 + the gateway address)
 * avoids that. */
static char *bridge_mac_line(const char *bridge, const struct subnet *s)
{
	uint32_t gw = s->net + 1;
	return xasprintf("link set %s address 02:00:%02x:%02x:%02x:%02x\n", bridge, gw >> 24,
			 (gw >> 16) & 0xff, (gw >> 8) & 0xff, gw & 0xff);
}

/* Bridges made before their address was fixed get it now (type 3: set). */
static int bridge_pin_mac(const char *bridge, const struct subnet *s, struct diag *d)
{
	char sys[80], type[8] = "";
	snprintf(sys, sizeof(sys), "/sys/class/net/%s/addr_assign_type", bridge);
	FILE *f = fopen(sys, "r"); /* sysfs: stat says 4096 bytes, so no read_file */
	if (!f)
		return diag_errno(d, "open %s", sys);
	bool set = fgets(type, sizeof(type), f) && atoi(type) == 3;
	fclose(f);
	if (set)
		return 0;
	_cleanup_free_ char *line = bridge_mac_line(bridge, s);
	return net_ip_batch(line, d);
}

static int bridge_create(const char *bridge, const struct subnet *s, struct diag *d)
{
	char sn[20], gw[16];
	net_subnet_format(s, sn, sizeof(sn));
	ip_format(s->net + 1, gw, sizeof(gw));
	_cleanup_free_ char *mac = bridge_mac_line(bridge, s);
	_cleanup_free_ char *batch = xasprintf("link add %s type bridge\n%saddr add %s/%u dev %s\n"
					       "link set %s up\n",
					       bridge, mac, gw, s->prefix, bridge, bridge);
	if (net_ip_batch(batch, d) < 0) {
		net_link_delete(bridge);
		return diag_wrap(d, "create bridge %s for %s", bridge, sn);
	}
	return 0;
}

static int check_clash(const struct subnet *s, const char *bridge, char *clash, size_t n,
		       struct diag *d)
{
	char *routes;
	size_t len;
	if (read_file("/proc/net/route", 1 << 20, &routes, &len, d) < 0)
		return -1;
	bool c = net_route_clash(routes, s, bridge, clash, n);
	free(routes);
	return c ? 1 : 0;
}

/* The default network: the subnet recorded with corral0, else the first
 * 10.213.N.0/24 that no host route overlaps. */
static int default_subnet(json_t *pool, struct subnet *s, struct diag *d)
{
	const char *rec = state_str(pool, "subnet", NULL);
	if (rec && link_exists(NET_DEFAULT_BRIDGE))
		return net_subnet_parse(rec, s, d);
	char clash[64], first[64] = "";
	for (unsigned n = 0; n < 256; n++) {
		*s = (struct subnet){.net = (10u << 24) | (213u << 16) | (n << 8), .prefix = 24};
		int c = check_clash(s, NET_DEFAULT_BRIDGE, clash, sizeof(clash), d);
		if (c <= 0) {
			if (c == 0 && first[0])
				log_warn("%s clashes with host route %s; using 10.213.%u.0/24",
					 NET_DEFAULT_SUBNET, first, n);
			return c;
		}
		if (!first[0])
			snprintf(first, sizeof(first), "%s", clash);
	}
	diag_fail(d, "every 10.213.N.0/24 clashes with a host route (first: %s)", first);
	return diag_hint(d, "attach the machines to a `networks:` entry with a free subnet");
}

static void bridge_name(const char *subnet, char *out, size_t n)
{
	if (!subnet) {
		snprintf(out, n, "%s", NET_DEFAULT_BRIDGE);
		return;
	}
	char hex[HASH_HEX_MAX];
	hash_str(subnet, NULL, hex);
	snprintf(out, n, "corral-%.8s", hex);
}

static int lease_locked(const char *subnet, json_t *pool, const char *owner, const char *want,
			const struct net_skip *skip, struct net_lease *out, struct diag *d)
{
	struct subnet s;
	if ((subnet ? net_subnet_parse(subnet, &s, d) : default_subnet(pool, &s, d)) < 0)
		return -1;
	net_subnet_format(&s, out->subnet, sizeof(out->subnet));
	if (!link_exists(out->bridge)) {
		char clash[64];
		int c = subnet ? check_clash(&s, out->bridge, clash, sizeof(clash), d) : 0;
		if (c < 0)
			return -1;
		if (c > 0) {
			diag_fail(d, "subnet %s clashes with host route %s", subnet, clash);
			return diag_hint(d, "pick a subnet no host route covers for this network");
		}
		if (bridge_create(out->bridge, &s, d) < 0)
			return -1;
	} else if (bridge_pin_mac(out->bridge, &s, d) < 0) {
		return diag_wrap(d, "bridge %s", out->bridge);
	}
	if (nft_setup(out->bridge, out->subnet, d) < 0)
		return -1;
	json_object_set_new(pool, "subnet", json_string(out->subnet));
	if (net_pool_pick(pool, &s, owner, want, skip, out->ip, sizeof(out->ip), d) < 0)
		return -1;
	ip_format(s.net + 1, out->gateway, sizeof(out->gateway));
	out->prefix = s.prefix;
	return 0;
}

/* Runs fn on the bridge's pool under its lock, saving when fn succeeds. */
static int with_pool(const char *bridge, int (*fn)(json_t *pool, void *arg, struct diag *d),
		     void *arg, struct diag *d)
{
	char leaf[32];
	snprintf(leaf, sizeof(leaf), "%s.lock", bridge);
	_cleanup_free_ char *lp = run_dir(leaf);
	snprintf(leaf, sizeof(leaf), "%s.json", bridge);
	_cleanup_free_ char *pp = run_dir(leaf);
	struct lock l;
	if (lock_acquire(lp, 30000, &l, d) < 0)
		return diag_wrap(d, "address pool of %s", bridge);
	json_t *pool;
	int r = state_load(pp, &pool, d);
	if (r == 0) {
		json_t *leases = json_object_get(pool, "leases");
		const char *k;
		json_t *v;
		void *tmp;
		json_object_foreach_safe(leases, tmp, k, v) {
			if (!path_is_dir(json_string_value(v)))
				json_object_del(leases, k); /* its machine is gone */
		}
		r = fn(pool, arg, d);
		if (r == 0)
			r = state_save(pp, pool, d);
		json_decref(pool);
	}
	lock_release(&l);
	return r;
}

struct lease_arg {
	const char *subnet, *owner, *want;
	const struct net_skip *skip;
	struct net_lease *out;
};

static int do_lease(json_t *pool, void *arg, struct diag *d)
{
	struct lease_arg *a = arg;
	return lease_locked(a->subnet, pool, a->owner, a->want, a->skip, a->out, d);
}

int net_lease(const char *subnet, const char *owner, const char *want, const struct net_skip *skip,
	      struct net_lease *out, struct diag *d)
{
	*out = (struct net_lease){0};
	bridge_name(subnet, out->bridge, sizeof(out->bridge));
	struct lease_arg a = {subnet, owner, want, skip, out};
	return with_pool(out->bridge, do_lease, &a, d);
}

/* The last lease gone, the bridge and its firewall elements go too (under
 * the pool's lock, so no machine is leasing on it meanwhile). */
static int do_release(json_t *pool, void *arg, struct diag *d)
{
	(void)d;
	const char *const *a = arg; /* bridge, owner */
	json_t *leases = json_object_get(pool, "leases");
	forget_owner(leases, a[1], NULL);
	const char *subnet = state_str(pool, "subnet", NULL);
	if (json_object_size(leases) || !subnet)
		return 0;
	net_link_delete(a[0]); /* warns when it cannot */
	nft_forget(a[0], subnet);
	return 0;
}

int net_release(const char *bridge, const char *owner, struct diag *d)
{
	const char *a[] = {bridge, owner};
	return with_pool(bridge, do_release, a, d);
}

int net_release_everywhere(const char *owner, struct diag *d)
{
	_cleanup_free_ char *pat = run_dir("*.json");
	glob_t g;
	int rc = 0;
	if (glob(pat, 0, NULL, &g) != 0)
		return 0;
	for (size_t i = 0; i < g.gl_pathc && rc == 0; i++) {
		const char *leaf = strrchr(g.gl_pathv[i], '/') + 1;
		_cleanup_free_ char *bridge = xstrndup(leaf, strlen(leaf) - strlen(".json"));
		rc = net_release(bridge, owner, d);
	}
	globfree(&g);
	return rc;
}

void net_segment_of(const char *machines_dir, const char *network, struct net_segment *s)
{
	unsigned char md[HASH_MAX];
	char hex[HASH_HEX_MAX];
	_cleanup_free_ char *key = xasprintf("%u/%s/%s", (unsigned)geteuid(), machines_dir, network);
	hash_str(key, md, hex);
	s->group.s_addr = htonl(0xefff0000u | (uint32_t)md[0] << 8 | md[1]);
	s->port = 40000u + ((unsigned)md[2] << 8 | md[3]) % 20000u;
	snprintf(s->hex, sizeof(s->hex), "%.16s", hex);
}
