/* Which kind of managed network an envfile network becomes on this
 * server: a bridge (one per cluster member: machines on different members
 * do not share it) or an OVN network (one across the cluster) over an
 * uplink network.
 *
 * provider_options.incus.network_type says: `bridge`, `ovn`, or `auto`
 * (the default): OVN when the server has it, else a bridge. The server
 * has OVN when its config sets network.ovn.northbound_connection and an
 * uplink is there: provider_options.incus.uplink, else the managed
 * `bridge` or `physical` network of the default project whose config has
 * `ipv4.ovn.ranges` (the addresses LXD/Incus give OVN routers on the
 * uplink; without them an OVN network cannot be made over it), the first
 * by name when there are several. `ovn` where the server has no OVN or no
 * uplink is an error; `auto` then makes a bridge.
 *
 * Addresses on an OVN network live inside OVN: no host routes to them, so
 * SSH to a machine whose eth0 is on one goes through the proxy device
 * (place.c, `ssh: auto`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/incus/incus.h"

#define NB_KEY "network.ovn.northbound_connection"

static const char *const uplink_types[] = {"bridge", "physical", NULL};

/* Whether the server's config names an OVN northbound database. */
static int has_northbound(struct incus_client *c, bool *yes, struct diag *d)
{
	json_t *srv = NULL;
	if (incus_call(c, "GET", "/1.0", NULL, &srv, NULL, d) < 0)
		return -1;
	const char *nb = json_string_value(json_object_get(json_object_get(srv, "config"), NB_KEY));
	*yes = nb && *nb;
	json_decref(srv);
	return 0;
}

static bool uplink_usable(json_t *net)
{
	const char *type = json_string_value(json_object_get(net, "type"));
	json_t *ranges = json_object_get(json_object_get(net, "config"), "ipv4.ovn.ranges");
	return json_is_true(json_object_get(net, "managed")) && type &&
	       str_in_list(type, uplink_types) && json_string_length(ranges) > 0;
}

/* The first by name of the default project's uplink networks, or NULL.
 * Uplinks are the default project's even for a project with its own
 * networks (features.networks), so the list is asked without one. */
static int find_uplink(struct incus_client *c, char **uplink, struct diag *d)
{
	char *project = c->project;
	json_t *list = NULL;
	c->project = NULL;
	int rc = incus_call(c, "GET", "/1.0/networks?recursion=1", NULL, &list, NULL, d);
	c->project = project;
	size_t i;
	json_t *net;
	json_array_foreach(rc == 0 ? list : NULL, i, net) {
		const char *name = json_string_value(json_object_get(net, "name"));
		if (name && uplink_usable(net) && (!*uplink || strcmp(name, *uplink) < 0)) {
			free(*uplink);
			*uplink = xstrdup(name);
		}
	}
	json_decref(list);
	return rc;
}

/* What `network_type: ovn` lacks on this server, as the error. */
static int no_ovn(bool nb, struct diag *d)
{
	if (!nb) {
		diag_fail(d, "incus: network_type is ovn, but the server has no OVN (%s is not set)",
			  NB_KEY);
		return diag_hint(d, "set it (incus config set %s ...), or use network_type: bridge",
				 NB_KEY);
	}
	diag_fail(d, "incus: network_type is ovn, but the server has no uplink network for it");
	return diag_hint(d, "set provider_options.incus.uplink, or give a managed bridge "
			    "ipv4.ovn.ranges");
}

int incus_net_uplink(struct incus_client *c, const struct incus_opts *o, char **uplink,
		     struct diag *d)
{
	const char *kind = o->network_type ? o->network_type : "auto";
	bool nb = false;
	*uplink = NULL;
	if (strcmp(kind, "bridge") == 0)
		return 0;
	if (has_northbound(c, &nb, d) < 0)
		return -1;
	if (nb && o->uplink)
		*uplink = xstrdup(o->uplink);
	else if (nb && find_uplink(c, uplink, d) < 0)
		return -1;
	if (*uplink || strcmp(kind, "auto") == 0)
		return 0;
	return no_ovn(nb, d);
}

bool incus_net_is_ovn(struct incus_client *c, const char *net)
{
	_cleanup_free_ char *p = xasprintf("/1.0/networks/%s", net);
	json_t *n = NULL;
	struct diag ignored = {0};
	if (incus_call(c, "GET", p, NULL, &n, NULL, &ignored) < 0)
		return false;
	const char *type = json_string_value(json_object_get(n, "type"));
	bool yes = type && strcmp(type, "ovn") == 0;
	json_decref(n);
	return yes;
}
