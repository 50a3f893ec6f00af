/* The incus provider's vtable: a machine is an instance named
 * "crl-<8 hex of the envfile's directory>-<machine>" (so envfiles sharing
 * a server never clash), made from the box's image, on a managed bridge
 * with a static address corral picks from the bridge's subnet (liblxc sets
 * it inside the container before init runs, so no DHCP client is needed)
 * and reaches SSH at that address (or through a proxy device on the cluster
 * member it runs on, place.c). cpus and memory become limits.cpu and
 * limits.memory, disk the root disk's size, forwarded ports proxy devices
 * listening on the host's 127.0.0.1 (or host_ip). The state API says
 * whether it runs; the instance's name, image alias, server (with an https
 * remote's certificate files) and project are kept in state.json so
 * `destroy` and `global-status` work without the envfile. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/host/mstate.h"
#include "core/host/net.h"
#include "core/host/ports.h"
#include "providers/incus/incus.h"
#include "providers/provider.h"

#define STOP_FORCE_S 30     /* a forced stop */
#define BUSY_RETRY_MS 15000 /* how long an instance may stay busy (busy_call) */

/* One pick-and-create at a time (the address is reserved by the create),
 * and one delete-and-release (see in_destroy). */
static pthread_mutex_t create_mu = PTHREAD_MUTEX_INITIALIZER;

static const struct {
	const char *status;
	enum mstate s;
} statuses[] = {
	{"Running", MS_RUNNING}, {"Frozen", MS_SAVED}, {"Stopped", MS_STOPPED},
	{"Starting", MS_RUNNING}, {"Stopping", MS_RUNNING}, {"Freezing", MS_RUNNING},
	{"Thawed", MS_RUNNING},
};

static const char *mname(const struct machine *m)
{
	return m->cfg ? m->cfg->name : "the machine";
}

/* An https remote's TLS files, kept so that a machine opened without its
 * envfile (global-status, destroy) still reaches its server. */
static char **tls_files(struct incus_client *c, size_t i)
{
	char **f[] = {&c->cert, &c->key, &c->server_cert};
	return f[i];
}
#define TLS_FILES 3

static void tls_record(struct machine *m, struct incus_client *c)
{
	machine_del(m, MK_INCUS_TLS);
	for (size_t i = 0; c->url && i < TLS_FILES; i++)
		machine_list_add(m, MK_INCUS_TLS, *tls_files(c, i) ? *tls_files(c, i) : "");
}

static void tls_recall(struct machine *m, struct incus_client *c)
{
	if (!c->url || c->cert)
		return;
	for (size_t i = 0; i < TLS_FILES; i++) {
		const char *f = machine_list_get(m, MK_INCUS_TLS, i);
		if (f && *f)
			*tls_files(c, i) = xstrdup(f);
	}
}

/* The client for m: its config, at the server and in the project it was
 * created in. */
static int client(struct machine *m, struct incus_client *c, struct diag *d)
{
	const char *rec = machine_str(m, MK_INCUS_REMOTE);
	if (incus_client_open(c, m->cfg, d) < 0 && !rec)
		return -1;
	if (rec)
		incus_client_set_remote(c, rec);
	tls_recall(m, c);
	if (machine_str(m, MK_INCUS_PROJECT)) {
		free(c->project);
		c->project = xstrdup(machine_str(m, MK_INCUS_PROJECT));
	}
	return 0;
}

static char *instance_name(const struct machine *m)
{
	unsigned char raw[32];
	char hex[65];
	hash_str(m->env->dir, raw, hex);
	return xasprintf("crl-%.8s-%.50s", hex, m->cfg->name);
}

/* The instance was removed outside corral: the machine is not created
 * any more, and what it shared with others (its image, its bridges) goes
 * now if nothing else uses it (the engine has nothing to destroy later). */
static void forget(struct incus_client *c, struct machine *m)
{
	struct diag ignored = {0};
	struct strv nets = {0};
	incus_nets_of(m, &nets);
	if (machine_str(m, MK_IMAGE_ALIAS))
		incus_image_release(c, machine_str(m, MK_IMAGE_ALIAS), &ignored);
	incus_nets_release(c, &nets, &ignored);
	strv_free(&nets);
	machine_state_clear(m);
}

/* A stopped instance with its running state saved (a stateful stop) is
 * suspended. */
static int stopped_stateful(struct incus_client *c, const char *name, enum mstate *s,
			    struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s", name);
	json_t *inst = NULL;
	if (incus_call(c, "GET", p, NULL, &inst, NULL, d) < 0)
		return -1;
	if (json_is_true(json_object_get(inst, "stateful")))
		*s = MS_SAVED;
	json_decref(inst);
	return 0;
}

static int inst_state(struct incus_client *c, struct machine *m, enum mstate *s, struct diag *d)
{
	const char *name = machine_str(m, MK_INSTANCE);
	*s = MS_NOT_CREATED;
	if (!name)
		return 0;
	json_t *st = NULL;
	long code = 0;
	if (incus_state_get(c, name, &st, &code, d) < 0) {
		if (code != 404)
			return -1;
		forget(c, m);
		return path_is_dir(m->dir) ? machine_save(m, d) : 0;
	}
	const char *v = json_string_value(json_object_get(st, "status"));
	if (v && strcmp(v, "Error") == 0) { /* not a state: neither running nor stopped */
		json_decref(st);
		diag_fail(d, "incus: %s: the server reports its state as \"Error\" for %us", name,
			  INCUS_STATE_ERROR_MS / 1000);
		return diag_hint(d, "the server's log may say why (lxc info --show-log %s)", name);
	}
	*s = MS_STOPPED;
	for (size_t i = 0; v && i < sizeof(statuses) / sizeof(statuses[0]); i++)
		if (strcmp(v, statuses[i].status) == 0)
			*s = statuses[i].s;
	json_decref(st);
	return *s == MS_STOPPED ? stopped_stateful(c, name, s, d) : 0;
}

static int in_state(struct machine *m, enum mstate *s, struct diag *d)
{
	struct incus_client c;
	*s = machine_str(m, MK_INSTANCE) ? MS_STOPPED : MS_NOT_CREATED;
	if (!machine_str(m, MK_INSTANCE))
		return 0;
	if (client(m, &c, d) < 0)
		return -1;
	int rc = inst_state(&c, m, s, d);
	incus_client_close(&c);
	return rc;
}

/* A call on an instance, again while the server refuses it with 400 for a
 * while: an instance whose init died is "busy" with its own stop for a
 * moment (LXD's cleanup), and a state change or delete then is refused.
 * A refusal that lasts is the error. */
static int busy_call(struct incus_client *c, const char *method, const char *path, json_t *body,
		     struct diag *d)
{
	uint64_t end = now_ms() + BUSY_RETRY_MS;
	unsigned pause = 100;
	for (;;) {
		long st;
		struct diag e = {0};
		if (incus_call(c, method, path, body, NULL, &st, &e) == 0)
			return 0;
		if (st != 400 || now_ms() >= end) {
			*d = e;
			return -1;
		}
		sleep_ms(pause);
		pause = pause < 1000 ? pause * 2 : pause;
	}
}

static int action(struct incus_client *c, struct machine *m, const char *act, bool force,
		  unsigned timeout_s, struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s/state", machine_str(m, MK_INSTANCE));
	json_t *body = json_pack("{s:s, s:i, s:b}", "action", act, "timeout", (int)timeout_s,
				 "force", force);
	int rc = busy_call(c, "PUT", p, body, d);
	json_decref(body);
	return rc;
}

/* ---- the network and the address ---- */

/* The network of the default profile's first NIC. */
static int profile_network(struct incus_client *c, char **net, struct diag *d)
{
	json_t *prof = NULL;
	if (incus_call(c, "GET", "/1.0/profiles/default", NULL, &prof, NULL, d) < 0)
		return -1;
	const char *key;
	json_t *dev;
	json_object_foreach(json_object_get(prof, "devices"), key, dev) {
		const char *n = json_string_value(json_object_get(dev, "network"));
		const char *t = json_string_value(json_object_get(dev, "type"));
		if (!*net && n && t && strcmp(t, "nic") == 0)
			*net = xstrdup(n);
	}
	json_decref(prof);
	if (*net)
		return 0;
	diag_fail(d, "incus: the default profile has no NIC on a managed network");
	return diag_hint(d, "set provider_options.incus.network to a managed bridge");
}

/* The bridge's subnet and gateway ("10.219.7.1/24"). */
static int bridge_of(struct incus_client *c, const char *net, struct subnet *s, char *gw,
		     struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/networks/%s", net);
	json_t *n = NULL;
	if (incus_call(c, "GET", p, NULL, &n, NULL, d) < 0)
		return -1;
	const char *a = json_string_value(json_object_get(json_object_get(n, "config"), "ipv4.address"));
	char cidr[64] = "";
	if (a && strchr(a, '/') && strlen(a) < sizeof(cidr)) {
		snprintf(gw, 16, "%.*s", (int)(strchr(a, '/') - a), a);
		struct in_addr ia;
		unsigned prefix = (unsigned)atoi(strchr(a, '/') + 1);
		if (inet_pton(AF_INET, gw, &ia) == 1 && prefix >= 8 && prefix <= 30) {
			uint32_t mask = ~0u << (32 - prefix);
			struct in_addr na = {htonl(ntohl(ia.s_addr) & mask)};
			snprintf(cidr, sizeof(cidr), "%s/%u", inet_ntoa(na), prefix);
		}
	}
	json_decref(n);
	if (!cidr[0]) {
		diag_fail(d, "incus: network %s has no IPv4 subnet corral can use", net);
		return diag_hint(d, "give it one: ipv4.address 10.219.7.1/24, say");
	}
	return net_subnet_parse(cidr, s, d);
}

/* The addresses instances of every project hold on net: the leases of
 * one project do not list another's, but a bridge of the default project
 * is shared by projects without features.networks. A server that does
 * not let this client list all projects leaves it to the leases. */
static void other_projects(struct incus_client *c, const char *net, json_t *taken)
{
	char *project = c->project;
	json_t *list = NULL;
	struct diag ignored = {0};
	c->project = NULL; /* all-projects takes no project */
	int rc = incus_call(c, "GET", "/1.0/instances?all-projects=true&recursion=1", NULL, &list,
			    NULL, &ignored);
	c->project = project;
	size_t i;
	json_t *inst, *dev;
	const char *key;
	json_array_foreach(rc == 0 ? list : NULL, i, inst) {
		json_object_foreach(json_object_get(inst, "expanded_devices"), key, dev) {
			const char *n = json_string_value(json_object_get(dev, "network"));
			const char *a = json_string_value(json_object_get(dev, "ipv4.address"));
			if (n && a && strcmp(n, net) == 0)
				json_object_set_new(taken, a, json_string("server"));
		}
	}
	json_decref(list);
}

/* A free address on net: the server's leases (its dynamic and every
 * instance's static one), those of other projects' instances and the
 * gateway are taken. */
int incus_pick_address(struct incus_client *c, const char *net, const char *owner, char *ip,
		       char *gw, unsigned *prefix, struct diag *d)
{
	struct subnet s;
	if (bridge_of(c, net, &s, gw, d) < 0)
		return -1;
	_cleanup_free_ char *p = xasprintf("/1.0/networks/%s/leases", net);
	json_t *leases = NULL;
	if (incus_call(c, "GET", p, NULL, &leases, NULL, d) < 0)
		return -1;
	json_t *pool = json_pack("{s:{}, s:{}}", "leases", "seen");
	json_t *taken = json_object_get(pool, "leases");
	json_object_set_new(taken, gw, json_string("gateway"));
	size_t i;
	json_t *l;
	json_array_foreach(leases, i, l) {
		const char *a = json_string_value(json_object_get(l, "address"));
		if (a && strchr(a, '.'))
			json_object_set_new(taken, a, json_string("server"));
	}
	json_decref(leases);
	other_projects(c, net, taken);
	int rc = net_pool_pick(pool, &s, owner, NULL, NULL, ip, 16, d);
	json_decref(pool);
	*prefix = s.prefix;
	return rc;
}

/* ---- creation ---- */

/* The forwards as proxy devices, and recorded as the machine's ports: host
 * ports by the common rule (core/host/ports.h: `host: 0` or a taken port
 * with auto_correct gets a free one of 2200-2999). */
json_t *incus_proxy_device(const char *proto, const char *listen_ip, unsigned listen_port,
			   const char *connect_ip, unsigned connect_port)
{
	_cleanup_free_ char *listen = xasprintf(strchr(listen_ip, ':') ? "%s:[%s]:%u" : "%s:%s:%u",
						proto, listen_ip, listen_port);
	_cleanup_free_ char *connect = xasprintf("%s:%s:%u", proto, connect_ip, connect_port);
	return json_pack("{s:s, s:s, s:s}", "type", "proxy", "listen", listen, "connect", connect);
}

static int add_ports(struct machine *m, json_t *devices, struct diag *d)
{
	const struct machine_cfg *cfg = m->cfg;
	struct port_plan plan;
	if (ports_pick(m, false, NULL, NULL, &plan, d) < 0)
		return -1;
	for (size_t i = 0; i < cfg->nports; i++) {
		const struct port_fwd *f = &cfg->ports[i];
		const char *proto = f->udp ? "udp" : "tcp";
		_cleanup_free_ char *dev = xasprintf("corral-port-%s-%u", proto, plan.host[i]);
		json_object_set_new(devices, dev,
				    incus_proxy_device(proto, f->host_ip ? f->host_ip : "127.0.0.1",
						       plan.host[i], "127.0.0.1", f->guest));
	}
	ports_record(m, &plan);
	port_plan_free(&plan);
	return 0;
}

int incus_ports_attach(struct machine *m, json_t *devices, struct diag *d)
{
	return add_ports(m, devices, d);
}

/* eth0 on net at ip, the envfile's networks, ports, limits. */
static json_t *create_body(struct incus_client *c, struct machine *m, const char *name,
			   const char *image, const char *net, struct diag *d)
{
	const struct machine_cfg *cfg = m->cfg;
	char ip[16], gw[16];
	unsigned prefix;
	if (incus_pick_address(c, net, name, ip, gw, &prefix, d) < 0)
		return NULL;
	struct buf raw = {0};
	buf_printf(&raw, "lxc.net.0.ipv4.address = %s/%u\nlxc.net.0.ipv4.gateway = %s\n", ip,
		   prefix, gw);
	json_t *devices = json_pack("{s:{s:s, s:s, s:s, s:s}}", "eth0", "type", "nic", "name",
				    "eth0", "network", net, "ipv4.address", ip);
	if (incus_nets_attach(c, m, name, devices, &raw, d) < 0) {
		json_decref(devices);
		buf_free(&raw);
		return NULL;
	}
	if (add_ports(m, devices, d) < 0) {
		json_decref(devices);
		buf_free(&raw);
		return NULL;
	}
	if (cfg->disk) {
		_cleanup_free_ char *size = xasprintf("%lluMiB", (unsigned long long)(cfg->disk >> 20));
		json_object_set_new(devices, "root", json_pack("{s:s, s:s, s:s, s:s}", "type", "disk",
							       "path", "/", "pool", "default",
							       "size", size));
	}
	_cleanup_free_ char *cpus = xasprintf("%u", cfg->cpus);
	_cleanup_free_ char *mem = xasprintf("%lluMiB", (unsigned long long)(cfg->memory >> 20));
	json_t *body = json_pack("{s:s, s:s, s:{s:s, s:s}, s:[s], s:{s:s, s:s, s:s, s:s}, s:o}",
				 "name", name, "type", "container", "source", "type", "image",
				 "alias", image, "profiles", "default", "config", "limits.cpu", cpus,
				 "limits.memory", mem, "raw.lxc", raw.s, "user.corral.machine", m->dir,
				 "devices", devices);
	machine_set_str(m, MK_IP, ip);
	buf_free(&raw);
	if (incus_folders_attach(c, m, devices, d) < 0 ||
	    (incus_is_vm(cfg) && incus_vm_shape(c, m, name, body, d) < 0)) {
		json_decref(body);
		return NULL;
	}
	return body;
}

static int image_of(struct incus_client *c, struct machine *m, char **image, bool *ours,
		    struct diag *d)
{
	*ours = !m->cfg->incus.image;
	if (!*ours) {
		*image = xstrdup(m->cfg->incus.image);
		return 0;
	}
	return incus_image_ensure(c, m, incus_is_vm(m->cfg), image, d);
}

/* POST of a new instance; refused while no cluster member was online, once
 * more when one came back (incus_member_wait). Called under create_mu: the
 * other machines' creates wait behind the wait (they would be refused too). */
static int post_instance(struct incus_client *c, struct machine *m, const char *path,
			 json_t *body, struct diag *d)
{
	long st = 0;
	if (incus_call(c, "POST", path, body, NULL, &st, d) == 0)
		return 0;
	if (st != 400 || c->target)
		return -1;
	struct diag e = {0};
	int back = incus_member_wait(c, mname(m), &e);
	if (back < 0)
		*d = e;
	if (back <= 0)
		return -1;
	*d = (struct diag){0};
	return incus_call(c, "POST", path, body, NULL, NULL, d);
}

static int create(struct incus_client *c, struct machine *m, struct diag *d)
{
	_cleanup_free_ char *name = instance_name(m), *image = NULL, *net = NULL;
	_cleanup_free_ char *path = NULL;
	bool ours;
	if ((incus_is_vm(m->cfg) && incus_vm_usable(c, d) < 0) || image_of(c, m, &image, &ours, d) < 0)
		return -1;
	net = xstrdup(m->cfg->incus.network);
	if (!net && profile_network(c, &net, d) < 0)
		return -1;
	path = c->target ? xasprintf("/1.0/instances?target=%s", c->target)
			 : xstrdup("/1.0/instances");
	pthread_mutex_lock(&create_mu);
	json_t *body = create_body(c, m, name, image, net, d);
	int rc = body ? post_instance(c, m, path, body, d) : -1;
	pthread_mutex_unlock(&create_mu);
	json_decref(body);
	_cleanup_free_ char *remote = incus_client_remote(c);
	machine_set_str(m, MK_INCUS_REMOTE, remote);
	tls_record(m, c);
	machine_set_str(m, MK_INCUS_PROJECT, c->project);
	if (rc < 0) {
		/* A bridge it made for nobody goes again. */
		struct diag ignored = {0};
		struct strv nets = {0};
		incus_nets_of(m, &nets);
		incus_nets_release(c, &nets, &ignored);
		strv_free(&nets);
		machine_del(m, MK_IP);
		if (ours) /* an image it uploaded for nobody too */
			incus_image_release(c, image, &ignored);
		return -1;
	}
	machine_set_str(m, MK_INSTANCE, name);
	if (ours)
		machine_set_str(m, MK_IMAGE_ALIAS, image);
	machine_set_flag(m, MK_CREATED, true);
	return machine_save(m, d);
}

/* Before the first start: keys and init, busybox's halt signal (it
 * powers off on SIGUSR2; LXD's default SIGPWR it ignores), the synced
 * folders' id map. */
static int first_boot(struct incus_client *c, struct machine *m, struct diag *d)
{
	const char *name = machine_str(m, MK_INSTANCE);
	bool busybox = false;
	if (incus_is_vm(m->cfg)) { /* its keys are in its cloud-init */
		machine_set_flag(m, MK_SSH_KEY_INSTALLED, true);
		return machine_save(m, d);
	}
	if (incus_files_prepare(c, m, name, &busybox, d) < 0)
		return -1;
	machine_set_flag(m, MK_SSH_KEY_INSTALLED, true);
	json_t *ids = json_object();
	if (incus_folders_idmap(c, m, ids, d) < 0) {
		json_decref(ids);
		return -1;
	}
	if (!busybox && !json_object_size(ids)) {
		json_decref(ids);
		return machine_save(m, d);
	}
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s", name);
	json_t *inst = NULL;
	if (incus_call(c, "GET", p, NULL, &inst, NULL, d) < 0) {
		json_decref(ids);
		return -1;
	}
	json_t *cfg = json_object_get(inst, "config");
	const char *raw = json_string_value(json_object_get(cfg, "raw.lxc"));
	_cleanup_free_ char *more = xasprintf("%slxc.signal.halt = SIGUSR2\n", raw ? raw : "");
	if (busybox)
		json_object_set_new(ids, "raw.lxc", json_string(more));
	json_t *patch = json_pack("{s:o}", "config", ids);
	int rc = incus_call(c, "PATCH", p, patch, NULL, NULL, d);
	json_decref(patch);
	json_decref(inst);
	return rc < 0 ? -1 : machine_save(m, d);
}

/* A suspended instance back: thawed, or started from its saved state
 * (a start with "stateful": true; a plain start discards the state). With
 * keep false, a stopped one's state is discarded instead: started plain
 * and stopped again (halt). */
static int wake(struct incus_client *c, struct machine *m, bool keep, struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s/state", machine_str(m, MK_INSTANCE));
	json_t *st = NULL;
	if (incus_state_get(c, machine_str(m, MK_INSTANCE), &st, NULL, d) < 0)
		return -1;
	const char *v = json_string_value(json_object_get(st, "status"));
	bool frozen = v && strcmp(v, "Frozen") == 0;
	json_decref(st);
	if (frozen)
		return action(c, m, "unfreeze", false, 0, d);
	json_t *body = json_pack("{s:s, s:i, s:b}", "action", "start", "timeout", 0, "stateful", keep);
	int rc = busy_call(c, "PUT", p, body, d);
	json_decref(body);
	return rc;
}

static int in_up(struct machine *m, struct diag *d)
{
	struct incus_client c;
	enum mstate s;
	if (client(m, &c, d) < 0)
		return diag_wrap(d, "%s", mname(m));
	int rc = inst_state(&c, m, &s, d);
	if (rc == 0 && s == MS_NOT_CREATED)
		rc = create(&c, m, d) < 0 || first_boot(&c, m, d) < 0 ? -1 : 0;
	else if (rc == 0 && s == MS_STOPPED)
		rc = incus_reapply(&c, m, d);
	if (rc == 0 && s == MS_SAVED)
		rc = wake(&c, m, true, d);
	else if (rc == 0 && s != MS_RUNNING)
		rc = action(&c, m, "start", false, 0, d);
	if (rc == 0 && s != MS_RUNNING && incus_is_vm(m->cfg))
		rc = incus_vm_address(&c, m, d);
	if (rc == 0) /* first: the watcher SSHes as placed, listens where placed */
		rc = incus_place(&c, m, machine_str(m, MK_INSTANCE), d);
	if (rc == 0 && s != MS_RUNNING)
		rc = incus_ports_start(m, &c, d);
	incus_client_close(&c);
	return rc < 0 ? diag_wrap(d, "%s", mname(m)) : 0;
}

static int in_halt(struct machine *m, bool force, struct diag *d)
{
	struct incus_client c;
	enum mstate s;
	if (client(m, &c, d) < 0)
		return -1;
	int rc = inst_state(&c, m, &s, d);
	if (rc == 0 && s != MS_NOT_CREATED && s != MS_STOPPED) {
		unsigned grace = (unsigned)(mcfg_halt_timeout_ms(m->cfg) / 1000);
		struct diag soft = {0};
		if (s == MS_SAVED)
			rc = wake(&c, m, false, d);
		if (rc == 0 &&
		    (force || s == MS_SAVED || action(&c, m, "stop", false, grace, &soft) < 0))
			rc = action(&c, m, "stop", true, STOP_FORCE_S, d);
	}
	incus_ports_stop(m);
	incus_client_close(&c);
	return rc;
}

static int in_destroy(struct machine *m, struct diag *d)
{
	struct incus_client c;
	enum mstate s;
	if (client(m, &c, d) < 0)
		return -1;
	/* Read first: an instance removed outside corral clears the state. */
	_cleanup_free_ char *alias = xstrdup(machine_str(m, MK_IMAGE_ALIAS));
	struct strv nets = {0};
	incus_nets_of(m, &nets);
	int rc = inst_state(&c, m, &s, d);
	incus_ports_stop(m);
	if (rc == 0 && s != MS_NOT_CREATED && s != MS_STOPPED)
		rc = action(&c, m, "stop", true, STOP_FORCE_S, d);
	/* Machines destroyed in parallel: each sees the others' instances
	 * gone or still there, never half (else a shared bridge could stay). */
	pthread_mutex_lock(&create_mu);
	if (rc == 0 && s != MS_NOT_CREATED) {
		_cleanup_free_ char *p = xasprintf("/1.0/instances/%s", machine_str(m, MK_INSTANCE));
		rc = busy_call(&c, "DELETE", p, NULL, d);
	}
	if (rc == 0 && alias)
		rc = incus_image_release(&c, alias, d);
	if (rc == 0)
		rc = incus_nets_release(&c, &nets, d);
	pthread_mutex_unlock(&create_mu);
	strv_free(&nets);
	incus_client_close(&c);
	if (rc < 0)
		return -1;
	machine_state_clear(m);
	_cleanup_free_ char *kh = machine_path(m, "known_hosts");
	_cleanup_free_ char *hk = machine_path(m, "ssh_host_ed25519_key");
	unlink(kh);
	unlink(hk);
	return path_is_dir(m->dir) ? machine_save(m, d) : 0;
}

/* ---- suspend, snapshots ---- */

/* One call on a created machine's instance: METHOD /1.0/instances/NAME+tail. */
static int on_instance(struct machine *m, const char *method, const char *tail, json_t *body,
		       json_t **meta, struct diag *d)
{
	struct incus_client c;
	const char *name = machine_str(m, MK_INSTANCE);
	if (!name) {
		diag_fail(d, "%s is not created", mname(m));
		return diag_hint(d, "create it with `corral up`");
	}
	if (client(m, &c, d) < 0)
		return -1;
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s%s", name, tail);
	int rc = incus_call(&c, method, p, body, meta, NULL, d);
	incus_client_close(&c);
	return rc;
}

static int state_action(struct machine *m, const char *act, struct diag *d)
{
	json_t *body = json_pack("{s:s, s:i}", "action", act, "timeout", 30);
	int rc = on_instance(m, "PUT", "/state", body, NULL, d);
	json_decref(body);
	return rc;
}

/* A VM made with migration.stateful is stopped with its state saved; a
 * container is frozen (its processes stopped where they are). */
static int in_suspend(struct machine *m, struct diag *d)
{
	struct incus_client c;
	bool stateful = false;
	if (!machine_str(m, MK_INSTANCE))
		return state_action(m, "freeze", d); /* says it is not created */
	if (client(m, &c, d) < 0)
		return -1;
	int rc = incus_stateful(&c, machine_str(m, MK_INSTANCE), &stateful, d);
	incus_client_close(&c);
	if (rc < 0 || !stateful)
		return rc < 0 ? -1 : state_action(m, "freeze", d);
	json_t *body = json_pack("{s:s, s:i, s:b}", "action", "stop", "timeout", 30, "stateful", 1);
	rc = on_instance(m, "PUT", "/state", body, NULL, d);
	json_decref(body);
	return rc;
}

static int in_resume(struct machine *m, struct diag *d)
{
	enum mstate s;
	if (in_state(m, &s, d) < 0)
		return -1;
	if (s == MS_SAVED) {
		struct incus_client c;
		if (client(m, &c, d) < 0)
			return -1;
		int rc = wake(&c, m, true, d);
		incus_client_close(&c);
		return rc;
	}
	return s == MS_RUNNING ? 0 : state_action(m, "start", d);
}

static int in_snapshot_save(struct machine *m, const char *name, struct diag *d)
{
	json_t *body = json_pack("{s:s, s:b}", "name", name, "stateful", false);
	int rc = on_instance(m, "POST", "/snapshots", body, NULL, d);
	json_decref(body);
	return rc;
}

/* The server restores a running container in place (stop, restore, start). */
static int in_snapshot_restore(struct machine *m, const char *name, struct diag *d)
{
	json_t *body = json_pack("{s:s}", "restore", name);
	int rc = on_instance(m, "PUT", "", body, NULL, d);
	json_decref(body);
	return rc;
}

static int in_snapshot_delete(struct machine *m, const char *name, struct diag *d)
{
	_cleanup_free_ char *tail = xasprintf("/snapshots/%s", name);
	return on_instance(m, "DELETE", tail, NULL, NULL, d);
}

/* GET .../snapshots: their URLs, "/1.0/instances/NAME/snapshots/SNAP". */
static int in_snapshot_list(struct machine *m, struct strv *out, struct diag *d)
{
	json_t *list = NULL;
	if (on_instance(m, "GET", "/snapshots", NULL, &list, d) < 0)
		return -1;
	size_t i;
	json_t *u;
	json_array_foreach(list, i, u) {
		const char *url = json_string_value(u);
		const char *slash = url ? strrchr(url, '/') : NULL;
		if (slash && slash[1])
			strv_push(out, slash + 1);
	}
	json_decref(list);
	return 0;
}

/* Usable when a daemon answers on the socket. */
static int in_usable(struct diag *why)
{
	struct incus_client c;
	if (incus_client_open(&c, NULL, why) < 0)
		return -1;
	int rc = incus_call(&c, "GET", "/1.0", NULL, NULL, NULL, why);
	incus_client_close(&c);
	return rc;
}

/* A virtual machine boots a kvm box (a cloud image), a container a
 * container box. */
static const char *const *box_providers(const struct machine_cfg *mc)
{
	static const char *const vm[] = {"kvm", "libvirt", "qemu", NULL};
	static const char *const ct[] = {"container", NULL};
	return incus_is_vm(mc) ? vm : ct;
}

static const struct provider_entry incus_entries[] = {
	{"__incus-ports", incus_ports_main},
	{NULL, NULL},
};

const struct provider provider_incus = {
	.name = "incus",
	.box_provider = {"container", NULL},
	.box_providers_for = box_providers,
	.usable = in_usable,
	.up = in_up,
	.halt = in_halt,
	.destroy = in_destroy,
	.state = in_state,
	.ssh_endpoint = machine_ssh_endpoint, /* ssh_host: the member's proxy device */
	.suspend = in_suspend,
	.resume = in_resume,
	.snapshot_save = in_snapshot_save,
	.snapshot_restore = in_snapshot_restore,
	.snapshot_delete = in_snapshot_delete,
	.snapshot_list = in_snapshot_list,
	/* The server names the instance and brings up eth0 with its address. */
	.configures_guest_network = true,
	.sync_types = 1u << SYNC_RSYNC | 1u << SYNC_BIND,
	.sync_auto = SYNC_RSYNC,
	.sync_auto_for = incus_sync_auto,
	.auto_ports = true,
	.entries = incus_entries,
};
