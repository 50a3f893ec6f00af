/* `ports: auto` on incus: the shared watcher (providers/autoports.h),
 * `corral __incus-ports`, with proxy devices "corral-auto-tcp-HOST"
 * (listen tcp:127.0.0.1:HOST, connect to the guest's port) added with a
 * PATCH of the instance and removed with a PUT of it without the device,
 * ending when the instance no longer runs. On a cluster member that is
 * not this host (place.c) they listen on the member's address (listen=),
 * where the member binds them when the PATCH lands: a port taken there
 * fails the PATCH and the watcher tries the next one. A VM's proxies are
 * in NAT mode, connecting to its address (vm_ip=). The next `up` of the stopped
 * instance drops them with corral's other devices (shape.c). The watcher
 * reaches the server as the machine did: remote=, and for HTTPS cert=,
 * client_key= (key= is the SSH key's), server_cert=; project=. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/host/mstate.h"
#include "providers/autoports.h"
#include "providers/incus/incus.h"

#define ENTRY "__incus-ports"

struct incus_watch {
	const char *remote, *cert, *key, *server_cert, *project, *instance;
	const char *listen, *vm_ip; /* a remote member's address; a VM's */
};

static void open_client(const struct incus_watch *w, struct incus_client *c)
{
	*c = (struct incus_client){0};
	incus_client_set_remote(c, w->remote);
	c->cert = w->cert ? xstrdup(w->cert) : NULL;
	c->key = w->key ? xstrdup(w->key) : NULL;
	c->server_cert = w->server_cert ? xstrdup(w->server_cert) : NULL;
	c->project = w->project ? xstrdup(w->project) : NULL;
}

static char *device(unsigned host) { return xasprintf("corral-auto-tcp-%u", host); }

static int add(void *ctx, unsigned host, unsigned guest, struct diag *d)
{
	const struct incus_watch *w = ctx;
	struct incus_client c;
	open_client(w, &c);
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s", w->instance);
	_cleanup_free_ char *dev = device(host);
	const char *on = w->listen ? w->listen : "127.0.0.1", *to = w->vm_ip ? w->vm_ip : "127.0.0.1";
	json_t *proxy = incus_proxy_device("tcp", on, host, to, guest);
	if (w->vm_ip)
		json_object_set_new(proxy, "nat", json_string("true"));
	json_t *body = json_pack("{s:{s:o}}", "devices", dev, proxy);
	int rc = incus_call(&c, "PATCH", p, body, NULL, NULL, d);
	json_decref(body);
	incus_client_close(&c);
	return rc;
}

static int remove_fwd(void *ctx, unsigned host, unsigned guest, struct diag *d)
{
	(void)guest;
	const struct incus_watch *w = ctx;
	struct incus_client c;
	open_client(w, &c);
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s", w->instance);
	_cleanup_free_ char *dev = device(host);
	json_t *inst = NULL;
	int rc = incus_call(&c, "GET", p, NULL, &inst, NULL, d);
	if (rc == 0) {
		json_object_del(json_object_get(inst, "devices"), dev);
		rc = incus_instance_put(&c, w->instance, inst, d);
	}
	json_decref(inst);
	incus_client_close(&c);
	return rc;
}

static bool alive(void *ctx)
{
	const struct incus_watch *w = ctx;
	struct incus_client c;
	open_client(w, &c);
	json_t *st = NULL;
	struct diag ignored = {0};
	bool on = false;
	if (incus_state_get(&c, w->instance, &st, NULL, &ignored) == 0) {
		const char *v = json_string_value(json_object_get(st, "status"));
		on = v && (strcmp(v, "Running") == 0 || strcmp(v, "Frozen") == 0);
	}
	json_decref(st);
	incus_client_close(&c);
	return on;
}

static const struct {
	const char *key;
	size_t off;
} args[] = {
	{"remote", offsetof(struct incus_watch, remote)},
	{"cert", offsetof(struct incus_watch, cert)},
	{"client_key", offsetof(struct incus_watch, key)}, /* key= is the SSH key's */
	{"server_cert", offsetof(struct incus_watch, server_cert)},
	{"project", offsetof(struct incus_watch, project)},
	{"instance", offsetof(struct incus_watch, instance)},
	{"listen", offsetof(struct incus_watch, listen)},
	{"vm_ip", offsetof(struct incus_watch, vm_ip)},
};

static bool arg(void *ctx, const char *key, size_t k, const char *v)
{
	for (size_t i = 0; i < sizeof(args) / sizeof(args[0]); i++)
		if (strlen(args[i].key) == k && strncmp(key, args[i].key, k) == 0) {
			*(const char **)((char *)ctx + args[i].off) = v;
			return true;
		}
	return false;
}

static bool ready(const void *ctx)
{
	const struct incus_watch *w = ctx;
	return w->remote && w->instance;
}

static const char *host_ip(const void *ctx)
{
	return ((const struct incus_watch *)ctx)->listen;
}

int incus_ports_main(int argc, char **argv)
{
	static const struct autoports_ops ops = {.arg = arg, .ready = ready, .add = add,
						 .remove = remove_fwd, .alive = alive,
						 .host_ip = host_ip};
	struct incus_watch w = {0};
	return autoports_main(argc, argv, &ops, &w);
}

int incus_ports_start(struct machine *m, struct incus_client *c, struct diag *d)
{
	autoports_stop(m); /* one left by an instance stopped outside corral */
	if (!m->cfg || !m->cfg->ports_auto.on)
		return 0;
	_cleanup_free_ char *member = NULL;
	if (incus_member_away(c, m, &member, d) < 0)
		return -1;
	struct strv extra = {0};
	if (member)
		strv_pushf(&extra, "listen=%s", member);
	if (incus_is_vm(m->cfg) && machine_str(m, MK_IP))
		strv_pushf(&extra, "vm_ip=%s", machine_str(m, MK_IP));
	_cleanup_free_ char *remote = incus_client_remote(c);
	strv_pushf(&extra, "remote=%s", remote);
	strv_pushf(&extra, "instance=%s", machine_str(m, MK_INSTANCE));
	const char *opt[][2] = {{"cert", c->cert}, {"client_key", c->key},
				{"server_cert", c->server_cert}, {"project", c->project}};
	for (size_t i = 0; i < sizeof(opt) / sizeof(opt[0]); i++)
		if (opt[i][1])
			strv_pushf(&extra, "%s=%s", opt[i][0], opt[i][1]);
	int rc = autoports_start(m, ENTRY, &extra, d);
	strv_free(&extra);
	return rc < 0 ? -1 : machine_save(m, d); /* its pid */
}

/* (the engine saves no state after halt: the watcher's end is saved here) */
void incus_ports_stop(struct machine *m)
{
	if (!machine_proc(m, MP_PORTFWD).pid)
		return;
	autoports_stop(m);
	struct diag ignored = {0};
	if (path_is_dir(m->dir))
		machine_save(m, &ignored);
}
