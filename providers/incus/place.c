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
 * URL, or of the remote when not clustered) and forwards to the guest's
 * sshd; the address and port are recorded as "ssh_host" and "ssh_port".
 * Its port is drawn from SSH_PORT_FIRST.. by the instance's name and
 * tried: checked free first when the member is this host, and on any
 * member the device is added to the running instance (the member binds it
 * then), the next port tried when that fails (taken there), up to
 * SSH_PORT_REMOTE_TRIES. The device is made again when the instance moved
 * to another member.
 *
 * A member that is not this host (its address is none of this host's)
 * also listens for the forwarded `ports:`: their proxy devices, made on
 * 127.0.0.1 (the member's own loopback there), are moved to the member's
 * address, and the machine's ports record that address, which `corral
 * port` shows and ready probes connect to. A host_ip the envfile gives
 * stays (0.0.0.0 is recorded as the member's address). `ports: auto`
 * forwards listen there too (incus_member_away, autoports.c).
 *
 * A server that places a new instance on no member because none is online
 * refuses the create (400). A member counts as offline once its last
 * heartbeat is older than cluster.offline_threshold: a busy or briefly
 * paused member, or a clock that jumped, is offline until the leader's
 * next heartbeat round (every half threshold). Then (incus_member_wait)
 * corral watches the members' statuses for up to one threshold and creates
 * again once one is Online; members that are all Evacuated, or Offline
 * for the whole threshold, make a plain error naming each member's status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/cancel.h"
#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/host/mstate.h"
#include "core/host/ports.h"
#include "providers/incus/incus.h"

#define SSH_DEVICE "corral-ssh"
#define SSH_PORT_FIRST 40000u
#define SSH_PORT_SPAN 20000u
#define SSH_PORT_TRIES 200u
#define SSH_PORT_REMOTE_TRIES 8u /* device adds: the member binds, or refuses */
#define PORT_DEVICE "corral-port-"
#define OFFLINE_THRESHOLD_S 20u /* the server's default cluster.offline_threshold */
#define MEMBER_POLL_MS 1000u
#define MEMBERS_PATH "/1.0/cluster/members?recursion=1"

static const char *const loopbacks[] = {"localhost", "::1", NULL};

/* The cluster's members (GET MEMBERS_PATH) into *list
 * (caller decrefs), NULL when the server is not clustered. */
static int members_json(struct incus_client *c, json_t **list, struct diag *d)
{
	json_t *cl = NULL;
	*list = NULL;
	if (incus_call(c, "GET", "/1.0/cluster", NULL, &cl, NULL, d) < 0)
		return -1;
	bool on = json_is_true(json_object_get(cl, "enabled"));
	json_decref(cl);
	return on ? incus_call(c, "GET", MEMBERS_PATH, NULL, list, NULL, d) : 0;
}

int incus_members(struct incus_client *c, struct strv *names, struct diag *d)
{
	json_t *list, *mb;
	if (members_json(c, &list, d) < 0)
		return -1;
	size_t i;
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

/* Whether host is this host's: a loopback, or an address it can bind. */
static bool member_is_here(const char *host)
{
	return loopback(host) || port_try(host, 0, false) >= 0;
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

/* The try-th port for the instance's SSH on host (the same ones each time
 * for the same name), skipping those taken when host is this host's. */
static unsigned pick_port(const char *name, const char *host, unsigned try)
{
	unsigned char raw[32];
	char hex[65];
	hash_str(name, raw, hex);
	unsigned base = ((unsigned)raw[0] << 8 | raw[1]) % SSH_PORT_SPAN + try;
	bool here = member_is_here(host);
	for (unsigned i = 0; here && i < SSH_PORT_TRIES; i++) {
		unsigned p = SSH_PORT_FIRST + (base + i) % SSH_PORT_SPAN;
		if (port_try(host, p, false) == 1)
			return p;
	}
	return SSH_PORT_FIRST + base % SSH_PORT_SPAN;
}

/* The SSH proxy device on host:port. */
static json_t *ssh_device(const struct machine *m, const char *host, unsigned port)
{
	return incus_proxy_device("tcp", host, port, "127.0.0.1", mcfg_ssh_port(m->cfg));
}

static int patch_devices(struct incus_client *c, const char *path, json_t *all, struct diag *d)
{
	json_t *patch = json_pack("{s:o}", "devices", all);
	int rc = incus_call(c, "PATCH", path, patch, NULL, NULL, d);
	json_decref(patch);
	return rc;
}

/* The proxy device on host, unless the instance has it there already:
 * each port tried in turn until the member takes one. */
static int ssh_forward(struct incus_client *c, struct machine *m, const char *path,
		       json_t *inst, const char *host, struct diag *d)
{
	json_t *devices = json_object_get(inst, "devices");
	const char *rec = machine_str(m, MK_SSH_HOST);
	if (json_object_get(devices, SSH_DEVICE) && rec && strcmp(rec, host) == 0)
		return 0;
	unsigned port = 0;
	int rc = -1;
	json_t *dev = NULL;
	for (unsigned t = 0; rc < 0 && t < SSH_PORT_REMOTE_TRIES; t++) {
		port = pick_port(path, host, t);
		*d = (struct diag){0};
		json_decref(dev);
		dev = ssh_device(m, host, port);
		json_t *all = devices ? json_deep_copy(devices) : json_object();
		json_object_set(all, SSH_DEVICE, dev);
		rc = patch_devices(c, path, all, d);
		if (rc < 0)
			log_debug("%s: SSH forward on %s:%u: %s", path, host, port, d->msg);
	}
	if (rc < 0) {
		json_decref(dev);
		return diag_wrap(d, "SSH forward on %s (%u ports tried)", host,
				 SSH_PORT_REMOTE_TRIES);
	}
	machine_set_str(m, MK_SSH_HOST, host);
	machine_set_int(m, MK_SSH_PORT, port);
	/* The device is in the instance now: its config as the server has it. */
	if (!devices)
		json_object_set_new(inst, "devices", devices = json_object());
	json_object_set_new(devices, SSH_DEVICE, dev);
	return 0;
}

/* "PROTO:127.0.0.1:PORT" of a forwarded port's device as "PROTO:host:PORT",
 * or NULL when it listens elsewhere (a host_ip of the envfile). */
static char *moved_listen(const char *listen, const char *host)
{
	const char *rest = listen ? strstr(listen, ":127.0.0.1:") : NULL;
	if (!rest)
		return NULL;
	return xasprintf(strchr(host, ':') ? "%.*s:[%s]%s" : "%.*s:%s%s", (int)(rest - listen),
			 listen, host, rest + 10);
}

/* The forwarded ports' devices on a member that is not this host: on the
 * member's address, and recorded there. */
static int ports_to_member(struct incus_client *c, struct machine *m, const char *path,
			   json_t *inst, const char *host, struct diag *d)
{
	json_t *devices = json_deep_copy(json_object_get(inst, "devices")), *dev;
	const char *key;
	bool moved = false;
	json_object_foreach(devices, key, dev) {
		char *l = strncmp(key, PORT_DEVICE, strlen(PORT_DEVICE)) == 0
				  ? moved_listen(json_string_value(json_object_get(dev, "listen")), host)
				  : NULL;
		if (l)
			json_object_set_new(dev, "listen", json_string(l));
		moved |= l != NULL;
		free(l);
	}
	if (moved && patch_devices(c, path, devices, d) < 0)
		return diag_wrap(d, "forwarded ports on %s", host);
	if (!moved)
		json_decref(devices);
	struct mport *v;
	size_t n = machine_ports(m, &v);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].host_ip, "127.0.0.1") == 0 || strcmp(v[i].host_ip, "0.0.0.0") == 0)
			snprintf(v[i].host_ip, sizeof(v[i].host_ip), "%s", host);
	machine_set_ports(m, v, n);
	free(v);
	return 0;
}

int incus_member_away(struct incus_client *c, const struct machine *m, char **host,
		      struct diag *d)
{
	const char *loc = machine_str(m, MK_LOCATION);
	*host = NULL;
	if (!loc && !c->url)
		return 0;
	char *h = member_host(c, loc, d);
	if (!h)
		return -1;
	if (member_is_here(h))
		free(h);
	else
		*host = h;
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
	bool forward = forward_wanted(c, m, inst), ask = forward || c->url || clustered;
	_cleanup_free_ char *host = ask ? member_host(c, clustered ? loc : NULL, d) : NULL;
	int rc = ask && !host ? -1 : 0;
	if (rc == 0 && forward)
		rc = ssh_forward(c, m, p, inst, host, d);
	if (rc == 0 && host && !member_is_here(host))
		rc = ports_to_member(c, m, p, inst, host, d);
	if (rc == 0 && clustered)
		incus_nets_check(c, m, name, loc);
	json_decref(inst);
	return rc < 0 ? -1 : machine_save(m, d);
}

/* Members' statuses (a GET MEMBERS_PATH list, taken): whether one is
 * "Online", whether one is "Offline" (as opposed to "Evacuated",
 * "Blocked"), and "NAME is Status" for each in list. */
struct member_states {
	bool online, offline;
	struct buf list;
};

static void member_states(json_t *list, struct member_states *s)
{
	json_t *mb;
	size_t i;
	buf_free(&s->list);
	s->online = s->offline = false;
	json_array_foreach(list, i, mb) {
		const char *n = json_string_value(json_object_get(mb, "server_name"));
		const char *st = json_string_value(json_object_get(mb, "status"));
		st = st ? st : "unknown";
		s->online |= strcmp(st, "Online") == 0;
		s->offline |= strcmp(st, "Offline") == 0;
		buf_printf(&s->list, "%s%s is %s", i ? ", " : "", n ? n : "?", st);
	}
	if (!s->list.s)
		buf_puts(&s->list, "no members");
	json_decref(list);
}

/* The server's cluster.offline_threshold in seconds (its default when
 * unset or unreadable). */
static unsigned offline_threshold(struct incus_client *c)
{
	json_t *srv = NULL;
	struct diag ignored = {0};
	unsigned t = OFFLINE_THRESHOLD_S;
	if (incus_call(c, "GET", "/1.0", NULL, &srv, NULL, &ignored) == 0) {
		const char *v = json_string_value(
			json_object_get(json_object_get(srv, "config"), "cluster.offline_threshold"));
		if (v && atoi(v) > 0)
			t = (unsigned)atoi(v);
	}
	json_decref(srv);
	return t;
}

int incus_member_wait(struct incus_client *c, const char *machine, struct diag *d)
{
	struct member_states s = {0};
	struct diag unknown = {0};
	json_t *list;
	int rc = 0;
	if (members_json(c, &list, &unknown) < 0 || !list)
		return 0; /* not clustered (or not known): the refusal stands */
	member_states(list, &s);
	if (s.online)
		goto out; /* a refusal for another reason: it stands */
	if (!s.offline) {
		rc = diag_fail(d, "no cluster member takes instances (%s)", s.list.s);
		diag_hint(d, "an evacuated member takes instances again once restored: "
			     "`incus cluster restore NAME` (`lxc` for LXD)");
		goto out;
	}
	unsigned limit = offline_threshold(c);
	log_machine(machine, "no cluster member is online (%s); waiting up to %us for one",
		    s.list.s, limit);
	uint64_t end = now_ms() + limit * 1000ull;
	while (now_ms() < end) {
		if ((rc = cancel_check("waiting for a cluster member", d)) < 0)
			goto out;
		sleep_ms(MEMBER_POLL_MS);
		if ((rc = incus_call(c, "GET", MEMBERS_PATH, NULL, &list, NULL, d)) < 0)
			goto out;
		member_states(list, &s);
		if (s.online) {
			rc = 1;
			goto out;
		}
	}
	rc = diag_fail(d, "no cluster member came online within %us (%s)", limit, s.list.s);
	diag_hint(d, "a member is offline when its heartbeat is older than cluster.offline_threshold: "
		     "check that its daemon runs and reaches the others");
out:
	buf_free(&s.list);
	return rc;
}
