/* Envfile networks as managed networks of the server: network NAME of an
 * envfile is "crl<12 hex of sha256(envfile dir, NAME)>" (15 characters, the
 * longest interface name), made with the envfile's subnet, the gateway on
 * its first address, no IPv6, the first time a machine of the envfile
 * joins it, and deleted by the destroy that leaves no instance on it. The
 * machine's NIC i+1 (eth1...) joins it with the envfile's address (or one
 * picked from the subnet), reserved by the NIC's ipv4.address and set
 * inside the container by liblxc (raw.lxc), like eth0's.
 *
 * What kind of network (ovn.c): a bridge, without NAT, defined on every
 * member of a cluster first (each member has its own: machines on
 * different members do not share it); or, where the server has OVN, an
 * OVN network over the uplink (`network: UPLINK`), with NAT to it, one
 * for the whole cluster. The first machine to make the network decides;
 * an existing one is used as it is. `up` warns when it finds a machine's
 * peers on a bridge network on another member than the machine: they do
 * not reach each other over that network. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/host/mstate.h"
#include "core/host/net.h"
#include "providers/incus/incus.h"

static char *bridge_name(const struct env *e, const char *net)
{
	unsigned char raw[32];
	char hex[65];
	_cleanup_free_ char *key = xasprintf("%s\n%s", e->dir, net);
	hash_str(key, raw, hex);
	return xasprintf("crl%.12s", hex);
}

/* On a cluster a network is first defined on each member (no config: a
 * bridge has no per-member keys corral sets), then made with its config. */
static int pending_on_members(struct incus_client *c, const char *name, struct diag *d)
{
	struct strv members = {0};
	int rc = incus_members(c, &members, d);
	for (size_t i = 0; rc == 0 && i < members.n; i++) {
		_cleanup_free_ char *p = xasprintf("/1.0/networks?target=%s", members.v[i]);
		json_t *body = json_pack("{s:s, s:s}", "name", name, "type", "bridge");
		rc = incus_call(c, "POST", p, body, NULL, NULL, d);
		json_decref(body);
	}
	strv_free(&members);
	return rc;
}

/* The body of POST /1.0/networks: a bridge, or (uplink set) an OVN
 * network over uplink; gw is the gateway with the prefix. */
static json_t *net_body(const char *name, const char *gw, const char *uplink)
{
	json_t *config = json_pack("{s:s, s:s, s:s}", "ipv4.address", gw, "ipv4.nat",
				   uplink ? "true" : "false", "ipv6.address", "none");
	if (uplink)
		json_object_set_new(config, "network", json_string(uplink));
	return json_pack("{s:s, s:s, s:s, s:o}", "name", name, "type", uplink ? "ovn" : "bridge",
			 "description", "corral network", "config", config);
}

/* The network for subnet cidr, made when missing. */
static int ensure(struct incus_client *c, const struct incus_opts *o, const char *name,
		  const char *cidr, struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/networks/%s", name), *uplink = NULL;
	long st;
	struct diag e = {0};
	if (incus_call(c, "GET", p, NULL, NULL, &st, &e) == 0)
		return 0;
	if (st != 404) {
		*d = e;
		return -1;
	}
	struct subnet s;
	if (net_subnet_parse(cidr, &s, d) < 0 || incus_net_uplink(c, o, &uplink, d) < 0)
		return -1;
	char gw[64];
	struct subnet g = {s.net + 1, s.prefix};
	net_subnet_format(&g, gw, sizeof(gw));
	json_t *body = net_body(name, gw, uplink);
	/* An OVN network has no per-member part (LXD refuses ?target=). */
	int rc = uplink ? 0 : pending_on_members(c, name, d);
	if (rc == 0)
		rc = incus_call(c, "POST", "/1.0/networks", body, NULL, NULL, d);
	json_decref(body);
	return rc;
}

/* The address NIC dev of devices has on bridge (an instance's NIC made
 * again on `up`: it keeps it), or NULL. */
static const char *kept(json_t *devices, const char *dev, const char *bridge)
{
	json_t *nic = json_object_get(devices, dev);
	const char *net = json_string_value(json_object_get(nic, "network"));
	const char *ip = json_string_value(json_object_get(nic, "ipv4.address"));
	return net && strcmp(net, bridge) == 0 && ip && strlen(ip) < 16 ? ip : NULL;
}

int incus_nets_attach(struct incus_client *c, struct machine *m, const char *owner,
		      json_t *devices, struct buf *raw, struct diag *d)
{
	const struct machine_cfg *cfg = m->cfg;
	for (size_t i = 0; i < cfg->nnetworks; i++) {
		const struct net_attach *a = &cfg->networks[i];
		const struct network_cfg *n = env_network(m->env, a->network);
		if (!n)
			return diag_fail(d, "incus: network %s is not in the envfile", a->network);
		_cleanup_free_ char *name = bridge_name(m->env, n->name);
		char ip[16], gw[16];
		unsigned prefix;
		_cleanup_free_ char *dev = xasprintf("eth%zu", i + 1);
		const char *had = kept(devices, dev, name);
		if (ensure(c, &cfg->incus, name, n->subnet, d) < 0)
			return diag_wrap(d, "network %s", n->name);
		if (!machine_list_has(m, MK_BRIDGES, name))
			machine_list_add(m, MK_BRIDGES, name);
		if (a->ip || had) {
			struct subnet s;
			if (net_subnet_parse(n->subnet, &s, d) < 0)
				return -1;
			snprintf(ip, sizeof(ip), "%s", a->ip ? a->ip : had);
			prefix = s.prefix;
		} else if (incus_pick_address(c, name, owner, ip, gw, &prefix, d) < 0) {
			return diag_wrap(d, "network %s", n->name);
		}
		json_object_set_new(devices, dev,
				    json_pack("{s:s, s:s, s:s, s:s}", "type", "nic", "name", dev,
					      "network", name, "ipv4.address", ip));
		buf_printf(raw, "lxc.net.%zu.ipv4.address = %s/%u\n", i + 1, ip, prefix);
	}
	return 0;
}

/* Whether any instance is on network name (profiles do not count). */
static int unused(struct incus_client *c, const char *name, bool *yes, bool *gone,
		  struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/networks/%s", name);
	json_t *n = NULL;
	long st;
	*yes = *gone = false;
	if (incus_call(c, "GET", p, NULL, &n, &st, d) < 0) {
		*gone = st == 404;
		return *gone ? 0 : -1;
	}
	size_t i;
	json_t *u;
	*yes = true;
	json_array_foreach(json_object_get(n, "used_by"), i, u) {
		const char *s = json_string_value(u);
		if (s && strncmp(s, "/1.0/instances/", 15) == 0)
			*yes = false;
	}
	json_decref(n);
	return 0;
}

void incus_nets_of(const struct machine *m, struct strv *names)
{
	for (size_t i = 0; i < machine_list_len(m, MK_BRIDGES); i++)
		strv_push(names, machine_list_get(m, MK_BRIDGES, i));
}

int incus_nets_release(struct incus_client *c, const struct strv *names, struct diag *d)
{
	for (size_t i = 0; i < names->n; i++) {
		const char *name = names->v[i];
		bool yes, gone;
		if (unused(c, name, &yes, &gone, d) < 0)
			return -1;
		_cleanup_free_ char *p = xasprintf("/1.0/networks/%s", name);
		long st;
		/* 404: a machine destroyed at the same time deleted it first. */
		if (yes && incus_call(c, "DELETE", p, NULL, NULL, &st, d) < 0 && st != 404)
			return -1;
	}
	return 0;
}

#define INSTANCES "/1.0/instances/"

/* Where the instance named by name[0..len) runs, from the project's
 * instances (one list for all of a machine's networks, fetched at the
 * first need), or NULL. */
static const char *member_of(struct incus_client *c, json_t **all, const char *name, size_t len)
{
	struct diag ignored = {0};
	if (!*all && incus_call(c, "GET", "/1.0/instances?recursion=1", NULL, all, NULL,
				&ignored) < 0)
		return NULL;
	size_t i;
	json_t *o;
	json_array_foreach(*all, i, o) {
		const char *n = json_string_value(json_object_get(o, "name"));
		if (n && strlen(n) == len && strncmp(n, name, len) == 0)
			return json_string_value(json_object_get(o, "location"));
	}
	return NULL;
}

/* Warns about each instance on bridge network `bridge` (envfile network
 * net) that runs on another member than loc. */
static void check_one(struct incus_client *c, const struct machine *m, json_t **all,
		      const char *bridge, const char *net, const char *self, const char *loc)
{
	_cleanup_free_ char *p = xasprintf("/1.0/networks/%s", bridge);
	json_t *n = NULL, *u;
	struct diag ignored = {0};
	if (incus_call(c, "GET", p, NULL, &n, NULL, &ignored) < 0)
		return;
	const char *type = json_string_value(json_object_get(n, "type"));
	size_t i;
	json_t *users = type && strcmp(type, "bridge") == 0 ? json_object_get(n, "used_by") : NULL;
	json_array_foreach(users, i, u) {
		const char *s = json_string_value(u);
		if (!s || strncmp(s, INSTANCES, strlen(INSTANCES)) != 0)
			continue;
		const char *name = s + strlen(INSTANCES);
		size_t len = strcspn(name, "?");
		if (len == strlen(self) && strncmp(name, self, len) == 0)
			continue;
		const char *other = member_of(c, all, name, len);
		if (other && strcmp(other, loc) != 0)
			log_warn("%s: network %s: this machine runs on cluster member %s, instance %.*s "
				 "on %s; a bridge network is one bridge per member, so they do not "
				 "reach each other over it (an OVN network would; pin both with "
				 "`target:` to one member)",
				 m->cfg->name, net, loc, (int)len, name, other);
	}
	json_decref(n);
}

void incus_nets_check(struct incus_client *c, const struct machine *m, const char *self,
		      const char *loc)
{
	const struct machine_cfg *cfg = m->cfg;
	json_t *all = NULL;
	for (size_t i = 0; i < cfg->nnetworks; i++) {
		_cleanup_free_ char *name = bridge_name(m->env, cfg->networks[i].network);
		check_one(c, m, &all, name, cfg->networks[i].network, self, loc);
	}
	json_decref(all);
}
