/* Private networks: a host-only interface per subnet (vboxnetN, its address
 * the subnet's first host, created when no interface has it; the subnet
 * checked first against the ranges VirtualBox allows) and the
 * machine's address in it. Addresses not given in the envfile are handed
 * out in envfile order, skipping those other machines claim, so every
 * corral run computes the same ones without shared state. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/host/lock.h"
#include "core/host/net.h"
#include "core/host/mstate.h"
#include "providers/virtualbox/vbox.h"

#define HOSTIF_LOCK_MS 60000
#define NETWORKS_CONF "/etc/vbox/networks.conf"
#define DEFAULT_RANGE "192.168.56.0/21" /* VirtualBox's, without networks.conf */
#define MAX_RANGES 64

static void ip_str(uint32_t ip, char *out, size_t n)
{
	struct in_addr a = {.s_addr = htonl(ip)};
	inet_ntop(AF_INET, &a, out, (socklen_t)n);
}

int vbox_guest_ip(const struct machine *m, const struct net_attach *a, char *out, size_t n,
		  struct diag *d)
{
	if (a->ip)
		return snprintf(out, n, "%s", a->ip), 0;
	const struct env *e = m->env;
	const struct network_cfg *nc = env_network(e, a->network);
	uint32_t net, next;
	unsigned prefix;
	if (!nc || parse_cidr(nc->subnet, &net, &prefix) < 0)
		return diag_fail(d, "%s: no network `%s` in the envfile", m->cfg->name, a->network);
	uint32_t last = net + (prefix >= 31 ? 1 : (1u << (32 - prefix)) - 2);
	next = net + 2; /* .1 is the host's interface */
	size_t nfixed;
	_cleanup_free_ uint32_t *fixed = env_fixed_ips(e, a->network, &nfixed);
	const struct net_skip claimed = {fixed, nfixed};
	for (size_t i = 0; i < e->nmachines; i++)
		for (size_t j = 0; j < e->machines[i].nnetworks; j++) {
			const struct net_attach *o = &e->machines[i].networks[j];
			if (o->ip || strcmp(o->network, a->network) != 0)
				continue;
			while (next <= last && net_skips(&claimed, next))
				next++;
			if (next > last)
				return diag_fail(d, "%s: network %s (%s) has no free address left",
						 m->cfg->name, a->network, nc->subnet);
			if (o == a) {
				ip_str(next, out, n);
				return 0;
			}
			next++;
		}
	return diag_fail(d, "%s: not attached to network %s", m->cfg->name, a->network);
}

/* The host-only ranges VirtualBox allows (6.1.28+ on Linux and macOS):
 * networks.conf's "* RANGE..." lines, or 192.168.56.0/21 without the file.
 * CORRAL_VBOX_NETWORKS_CONF names another file: a test hook (the fake
 * VBoxManage reads it too), so tests never depend on the host's /etc/vbox. */
static const char *networks_conf(void)
{
	const char *env = getenv("CORRAL_VBOX_NETWORKS_CONF");
	return env && *env ? env : NETWORKS_CONF;
}

static int allowed_ranges(struct vbox_range *v, size_t *n, struct diag *d)
{
	const char *conf = networks_conf();
	_cleanup_free_ char *text = NULL;
	size_t len;
	if (!path_exists(conf)) {
		*n = vbox_parse_ranges("* " DEFAULT_RANGE "\n", v, MAX_RANGES);
		return 0;
	}
	if (read_file(conf, 1 << 20, &text, &len, d) < 0)
		return diag_wrap(d, "read VirtualBox's host-only ranges");
	*n = vbox_parse_ranges(text, v, MAX_RANGES);
	return 0;
}

static void ranges_text(const struct vbox_range *v, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	out[0] = '\0';
	for (size_t i = 0; i < n && o < cap; i++) {
		char ip[16];
		ip_str(v[i].net, ip, sizeof(ip));
		o += (size_t)snprintf(out + o, cap - o, "%s%s/%u", i ? ", " : "", ip, v[i].prefix);
	}
	if (!n)
		snprintf(out, cap, "none");
}

static int range_refused(const struct network_cfg *nc, const struct vbox_range *v, size_t n,
			 struct diag *d)
{
	char allowed[512];
	ranges_text(v, n, allowed, sizeof(allowed));
	bool have = path_exists(networks_conf());
	diag_fail(d, "network %s (%s) is outside the host-only ranges VirtualBox allows: %s (%s)",
		  nc->name, nc->subnet, allowed,
		  have ? networks_conf() : "VirtualBox's default: there is no " NETWORKS_CONF);
	return diag_hint(d, "use a subnet inside them, or allow this one with a line `* %s` in %s "
			    "(as root)", nc->subnet, networks_conf());
}

int vbox_check_ranges(const struct machine *m, struct diag *d)
{
	struct vbox_range v[MAX_RANGES];
	size_t n = 0;
	if (m->cfg->nnetworks == 0 || !vbox_hostonly_limited())
		return 0;
	if (allowed_ranges(v, &n, d) < 0)
		return -1;
	for (size_t i = 0; i < m->cfg->nnetworks; i++) {
		const struct network_cfg *nc = env_network(m->env, m->cfg->networks[i].network);
		uint32_t net;
		unsigned prefix;
		if (nc && parse_cidr(nc->subnet, &net, &prefix) == 0 &&
		    !vbox_ranges_allow(v, n, net, prefix))
			return range_refused(nc, v, n, d);
	}
	return 0;
}

/* The gateway and netmask of a network's subnet. */
static int host_side(const struct network_cfg *nc, char gw[16], char mask[16], struct diag *d)
{
	uint32_t net;
	unsigned prefix;
	if (parse_cidr(nc->subnet, &net, &prefix) < 0)
		return diag_fail(d, "network %s: bad subnet %s", nc->name, nc->subnet);
	ip_str(net + 1, gw, 16);
	ip_str(prefix ? ~0u << (32 - prefix) : 0, mask, 16);
	return 0;
}

static const char *find_hostif(const struct vbox_hostif *v, size_t n, const char *gw,
			       const char *mask)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].ip, gw) == 0 && strcmp(v[i].mask, mask) == 0)
			return v[i].name;
	return NULL;
}

int vbox_list_hostifs(struct vbox_hostif *v, size_t max, size_t *n, struct diag *d)
{
	struct vbox_res r;
	if (vbox_runv("list host-only interfaces", &r, d, "list", "hostonlyifs", NULL) < 0)
		return -1;
	*n = vbox_parse_hostifs(r.out.s, v, max);
	vbox_res_free(&r);
	return 0;
}

static int create_hostif(const char *gw, const char *mask, char *name, size_t n, struct diag *d)
{
	struct vbox_res r;
	if (vbox_runv("create a host-only interface", &r, d, "hostonlyif", "create", NULL) < 0)
		return -1;
	char created[64] = "";
	const char *q = strstr(r.out.s, "Interface '");
	if (q)
		sscanf(q, "Interface '%63[^']'", created);
	vbox_res_free(&r);
	if (!created[0])
		return diag_fail(d, "`VBoxManage hostonlyif create` named no interface");
	snprintf(name, n, "%s", created);
	return vbox_runv("configure the host-only interface", NULL, d, "hostonlyif", "ipconfig",
			 created, "--ip", gw, "--netmask", mask, NULL);
}

int vbox_hostif_for(const struct network_cfg *nc, const struct vbox_hostif *known, size_t nknown,
		    char *name, size_t n, struct diag *d)
{
	char gw[16], mask[16];
	if (host_side(nc, gw, mask, d) < 0)
		return -1;
	const char *have = find_hostif(known, nknown, gw, mask);
	if (have)
		return snprintf(name, n, "%s", have), 0;
	/* Re-checked under a lock: a parallel machine may be creating it. */
	_cleanup_free_ char *dir = path_join(corral_home(), "virtualbox");
	_cleanup_free_ char *lockp = path_join(dir, "hostonlyifs.lock");
	struct lock l;
	if (mkdir_p(dir, 0755, d) < 0 || lock_acquire(lockp, HOSTIF_LOCK_MS, &l, d) < 0)
		return diag_wrap(d, "network %s", nc->name);
	struct vbox_hostif v[32];
	size_t nv;
	int rc = vbox_list_hostifs(v, 32, &nv, d);
	if (rc == 0 && (have = find_hostif(v, nv, gw, mask)))
		snprintf(name, n, "%s", have);
	else if (rc == 0)
		rc = create_hostif(gw, mask, name, n, d);
	lock_release(&l);
	return rc < 0 ? diag_wrap(d, "network %s (%s)", nc->name, nc->subnet) : 0;
}

/* showvminfo's "080027AB12CD" as "08:00:27:ab:12:cd". */
static bool colon_mac(const char *hex, char out[18])
{
	if (!hex || strlen(hex) != 12 || strspn(hex, "0123456789abcdefABCDEF") != 12)
		return false;
	for (size_t i = 0, o = 0; i < 12; i += 2) {
		out[o++] = (char)tolower((unsigned char)hex[i]);
		out[o++] = (char)tolower((unsigned char)hex[i + 1]);
		out[o++] = i < 10 ? ':' : '\0';
	}
	return true;
}

static int nic_of(struct machine *m, const struct vbox_kvs *k, size_t i, struct guest_nic *g,
		  struct diag *d)
{
	const struct net_attach *a = &m->cfg->networks[i];
	const struct network_cfg *nc = env_network(m->env, a->network);
	char key[32], ip[16];
	uint32_t net;
	unsigned prefix;
	snprintf(key, sizeof(key), "macaddress%zu", i + 2);
	if (!colon_mac(vbox_kv_get(k, key), g->mac))
		return diag_fail(d, "NIC %zu (network %s) has no MAC address in showvminfo", i + 2,
				 a->network);
	if (!nc || parse_cidr(nc->subnet, &net, &prefix) < 0 ||
	    vbox_guest_ip(m, a, ip, sizeof(ip), d) < 0)
		return diag_fail(d, "no network `%s` in the envfile", a->network);
	snprintf(g->addr, sizeof(g->addr), "%s/%u", ip, prefix);
	return 0;
}

int vbox_guest_nics(struct machine *m, struct guest_nic **nics, size_t *n, struct diag *d)
{
	struct vbox_kvs k;
	bool gone;
	*nics = NULL;
	*n = 0;
	const char *id = machine_str(m, MK_ID);
	if (vbox_showvminfo(id ? id : "", &k, &gone, d) < 0)
		return -1;
	int rc = gone ? diag_fail(d, "the VM vanished from VirtualBox") : 0;
	*nics = xcalloc(m->cfg->nnetworks + 1, sizeof(**nics));
	for (; rc == 0 && *n < m->cfg->nnetworks; (*n)++)
		rc = nic_of(m, &k, *n, &(*nics)[*n], d);
	vbox_kv_free(&k);
	return rc;
}
