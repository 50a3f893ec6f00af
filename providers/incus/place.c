/* Where an instance runs and how SSH reaches it there. On a cluster the
 * server places an instance on a member (or on `target`, see create in
 * incus.c); that member (the instance's `location`) is recorded as the
 * machine's "location" after every start, for status and global-status.
 *
 * SSH goes to the instance's address when the host running corral routes
 * to the server's bridge (a local daemon). A remote server's bridge, or an
 * OVN network (its addresses live inside OVN), is not routable from here,
 * so there (provider_options.incus.ssh: forward, or auto with an https
 * remote that is not on this host or eth0 on an OVN network) a proxy device
 * "corral-ssh" listens on the member's address (the host of its cluster
 * URL, or of the remote when not clustered) at a port picked from
 * SSH_PORT_FIRST.. by the instance's name (tried for being free when the
 * member is this host), and forwards to the guest's sshd; the address and
 * port are recorded as "ssh_host" and "ssh_port". The device is made
 * again when the instance moved to another member. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/digest.h"
#include "core/host/mstate.h"
#include "core/host/ports.h"
#include "providers/incus/incus.h"

#define SSH_DEVICE "corral-ssh"
#define SSH_PORT_FIRST 40000u
#define SSH_PORT_SPAN 20000u
#define SSH_PORT_TRIES 200u

static const char *const loopbacks[] = {"localhost", "::1", NULL};

int incus_members(struct incus_client *c, struct strv *names, struct diag *d)
{
	json_t *cl = NULL, *list = NULL;
	if (incus_call(c, "GET", "/1.0/cluster", NULL, &cl, NULL, d) < 0)
		return -1;
	bool on = json_is_true(json_object_get(cl, "enabled"));
	json_decref(cl);
	if (!on)
		return 0;
	if (incus_call(c, "GET", "/1.0/cluster/members?recursion=1", NULL, &list, NULL, d) < 0)
		return -1;
	size_t i;
	json_t *mb;
	json_array_foreach(list, i, mb) {
		const char *n = json_string_value(json_object_get(mb, "server_name"));
		if (n)
			strv_push(names, n);
	}
	json_decref(list);
	return 0;
}

/* The host of "https://HOST:PORT" or "https://[V6]:PORT". */
static char *url_host(const char *url)
{
	const char *h = strstr(url, "://");
	h = h ? h + 3 : url;
	if (*h == '[')
		return xstrndup(h + 1, strcspn(h + 1, "]"));
	return xstrndup(h, strcspn(h, ":/"));
}

static bool loopback(const char *host)
{
	return strncmp(host, "127.", 4) == 0 || str_in_list(host, loopbacks);
}

/* Where the member's host is reached: its cluster URL's host, else the
 * remote's, else (the local socket) this host. */
static char *member_host(struct incus_client *c, const char *member, struct diag *d)
{
	if (!member)
		return c->url ? url_host(c->url) : xstrdup("127.0.0.1");
	_cleanup_free_ char *p = xasprintf("/1.0/cluster/members/%s", member);
	json_t *mb = NULL;
	if (incus_call(c, "GET", p, NULL, &mb, NULL, d) < 0)
		return NULL;
	const char *url = json_string_value(json_object_get(mb, "url"));
	char *host = url && *url ? url_host(url) : NULL;
	json_decref(mb);
	if (!host)
		diag_fail(d, "incus: cluster member %s has no address", member);
	return host;
}

/* The network of the instance's eth0 (the one SSH goes to), or NULL. */
static const char *eth0_network(json_t *inst)
{
	json_t *eth0 = json_object_get(json_object_get(inst, "devices"), "eth0");
	return json_string_value(json_object_get(eth0, "network"));
}

static bool forward_wanted(struct incus_client *c, const struct machine *m, json_t *inst)
{
	const char *mode = m->cfg && m->cfg->incus.ssh ? m->cfg->incus.ssh : "auto";
	if (strcmp(mode, "auto") != 0)
		return strcmp(mode, "forward") == 0;
	_cleanup_free_ char *host = c->url ? url_host(c->url) : NULL;
	if (host && !loopback(host))
		return true;
	const char *net = eth0_network(inst);
	return net && incus_net_is_ovn(c, net);
}

/* A port for the instance's SSH on host, the same one each time for the
 * same name unless it is taken on this host. */
static unsigned pick_port(const char *name, const char *host)
{
	unsigned char raw[32];
	char hex[65];
	hash_str(name, raw, hex);
	unsigned base = ((unsigned)raw[0] << 8 | raw[1]) % SSH_PORT_SPAN;
	for (unsigned i = 0; loopback(host) && i < SSH_PORT_TRIES; i++) {
		unsigned p = SSH_PORT_FIRST + (base + i) % SSH_PORT_SPAN;
		if (port_try(host, p, false) == 1)
			return p;
	}
	return SSH_PORT_FIRST + base;
}

/* The proxy device on host, unless the instance has it there already. */
static int ssh_forward(struct incus_client *c, struct machine *m, const char *path,
		       json_t *inst, const char *host, struct diag *d)
{
	json_t *devices = json_object_get(inst, "devices");
	const char *rec = machine_str(m, MK_SSH_HOST);
	if (json_object_get(devices, SSH_DEVICE) && rec && strcmp(rec, host) == 0)
		return 0;
	unsigned port = pick_port(path, host);
	_cleanup_free_ char *listen = xasprintf(strchr(host, ':') ? "tcp:[%s]:%u" : "tcp:%s:%u",
						host, port);
	_cleanup_free_ char *connect = xasprintf("tcp:127.0.0.1:%u", mcfg_ssh_port(m->cfg));
	json_t *all = json_deep_copy(devices ? devices : json_object());
	json_object_set_new(all, SSH_DEVICE, json_pack("{s:s, s:s, s:s}", "type", "proxy",
						      "listen", listen, "connect", connect));
	json_t *patch = json_pack("{s:o}", "devices", all);
	int rc = incus_call(c, "PATCH", path, patch, NULL, NULL, d);
	json_decref(patch);
	if (rc < 0)
		return diag_wrap(d, "SSH forward on %s:%u", host, port);
	machine_set_str(m, MK_SSH_HOST, host);
	machine_set_int(m, MK_SSH_PORT, port);
	return 0;
}

int incus_place(struct incus_client *c, struct machine *m, const char *name, struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s", name);
	json_t *inst = NULL;
	if (incus_call(c, "GET", p, NULL, &inst, NULL, d) < 0)
		return -1;
	const char *loc = json_string_value(json_object_get(inst, "location"));
	bool clustered = loc && *loc && strcmp(loc, "none") != 0;
	machine_set_str(m, MK_LOCATION, clustered ? loc : NULL);
	int rc = 0;
	if (forward_wanted(c, m, inst)) {
		_cleanup_free_ char *host = member_host(c, clustered ? loc : NULL, d);
		rc = host ? ssh_forward(c, m, p, inst, host, d) : -1;
	}
	json_decref(inst);
	return rc < 0 ? -1 : machine_save(m, d);
}
