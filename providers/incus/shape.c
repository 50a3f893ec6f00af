/* What of an instance the envfile shapes after its creation: synced
 * folders as `disk` devices "corral-sync-N" (source the host directory,
 * path the guest's; only on a local server, whose host is ours). A VM's
 * the server shares over virtiofs (9p where virtiofsd is missing) and its
 * lxd-agent mounts; `auto` is rsync for a VM seen running without an
 * agent (its state's process count -1), which the engine asks after
 * boot. A container's ids: `shift: true` when the server has shiftfs;
 * else raw.idmap maps the first folder's host owner to the SSH user's ids in the guest
 * (the server shifts the instance's files for it at the next start),
 * which the host must allow root (/etc/subuid and /etc/subgid: liblxc
 * writes the map with newuidmap). `auto` is a disk device when every
 * folder's owner is such an id (not root), else rsync. Not idmapped
 * mounts: LXD 5.0.2 reports `idmapped_mounts` and still refuses `shift`
 * for a folder on a file system its own probe fails on (ext4 on Debian 12
 * here), which the API does not say before the start.
 * On `up` of a stopped instance the envfile again: limits
 * (cpus, memory), the root disk's size, the proxy devices of forwarded
 * ports and the folders, and its envfile networks (NICs eth1... made
 * again, each keeping its address unless the envfile gives one; a bridge
 * left by all goes): a container's raw.lxc lines rewritten, a VM's NICs
 * with the MACs they were made with and its cloud-init network-config
 * rewritten. One PUT of the instance writes it all (devices corral named
 * are replaced, everything else kept). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/host/mstate.h"
#include "core/host/ports.h"
#include "providers/incus/incus.h"

#define PORTS_SETTLE_MS 3000 /* a stopped instance's proxies may linger */

static const char *const ours[] = {"corral-port-", "corral-sync-", "corral-auto-", NULL};

static bool local(const struct machine *m)
{
	const char *rec = machine_str(m, MK_INCUS_REMOTE);
	const char *r = rec ? rec : m->cfg ? m->cfg->incus.remote : NULL;
	return !r || strncmp(r, "unix://", 7) == 0;
}

/* Whether file (subuid(5) text) gives root the host id. */
static bool root_may(const char *file, unsigned id)
{
	_cleanup_free_ char *text = NULL;
	size_t n;
	struct diag ignored = {0};
	if (read_file(file, 1 << 20, &text, &n, &ignored) < 0)
		return false;
	char *save = NULL;
	for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[64];
		unsigned long start, count;
		if (sscanf(line, "%63[^:]:%lu:%lu", name, &start, &count) == 3 &&
		    (strcmp(name, "root") == 0 || strcmp(name, "0") == 0) && id >= start &&
		    id - start < count)
			return true;
	}
	return false;
}

/* Whether raw.idmap can give the guest user folder host's owner. */
static bool mappable(const char *host)
{
	struct stat st;
	return stat(host, &st) == 0 && st.st_uid != 0 && root_may("/etc/subuid", st.st_uid) &&
	       root_may("/etc/subgid", st.st_gid);
}

/* Whether the VM's lxd-agent is known to be missing: it runs and its
 * state counts no processes (-1: the agent did not answer). Not known
 * before it runs: its folders are made disk devices, which an agent mounts. */
static bool agentless(const struct machine *m)
{
	const char *name = machine_str(m, MK_INSTANCE), *rec = machine_str(m, MK_INCUS_REMOTE);
	struct incus_client c;
	struct diag ignored = {0};
	json_t *st = NULL;
	if (!name || incus_client_open(&c, m->cfg, &ignored) < 0)
		return false;
	if (rec)
		incus_client_set_remote(&c, rec);
	bool none = false;
	if (incus_state_get(&c, name, &st, NULL, &ignored) == 0) {
		const char *v = json_string_value(json_object_get(st, "status"));
		json_t *procs = json_object_get(st, "processes");
		none = v && strcmp(v, "Running") == 0 && json_is_integer(procs) &&
		       json_integer_value(procs) < 0;
	}
	json_decref(st);
	incus_client_close(&c);
	return none;
}

enum sync_type incus_sync_auto(const struct machine *m)
{
	if (!local(m))
		return SYNC_RSYNC;
	if (incus_is_vm(m->cfg))
		return agentless(m) ? SYNC_RSYNC : SYNC_BIND;
	for (size_t i = 0; i < m->cfg->nsynced; i++) {
		const struct synced_folder *sf = &m->cfg->synced[i];
		if ((sf->type == SYNC_AUTO || sf->type == SYNC_BIND) && !mappable(sf->host))
			return SYNC_RSYNC;
	}
	return SYNC_BIND;
}

/* Whether the server shifts a bind mount's ids on any file system. */
static int can_shift(struct incus_client *c, bool *yes, struct diag *d)
{
	json_t *info = NULL;
	if (incus_call(c, "GET", "/1.0", NULL, &info, NULL, d) < 0)
		return -1;
	json_t *k = json_object_get(json_object_get(info, "environment"), "kernel_features");
	const char *sfs = json_string_value(json_object_get(k, "shiftfs"));
	*yes = sfs && strcmp(sfs, "true") == 0;
	json_decref(info);
	return 0;
}

static bool is_bind(const struct machine *m, const struct synced_folder *sf)
{
	return (sf->type == SYNC_AUTO ? incus_sync_auto(m) : sf->type) == SYNC_BIND;
}

int incus_folders_idmap(struct incus_client *c, struct machine *m, json_t *config,
			struct diag *d)
{
	json_object_del(config, "raw.idmap");
	if (incus_is_vm(m->cfg)) /* virtiofs/9p: no id map */
		return 0;
	const struct synced_folder *first = NULL;
	for (size_t i = 0; !first && i < m->cfg->nsynced; i++)
		if (is_bind(m, &m->cfg->synced[i]))
			first = &m->cfg->synced[i];
	bool shift = false;
	struct stat st;
	if (!first || can_shift(c, &shift, d) < 0 || shift)
		return shift || !first ? 0 : -1;
	if (stat(first->host, &st) < 0)
		return diag_errno(d, "synced folder %s", first->host);
	unsigned uid, gid;
	if (incus_user_ids(c, m, machine_str(m, MK_INSTANCE), &uid, &gid, d) < 0)
		return -1;
	_cleanup_free_ char *map = xasprintf("uid %u %u\ngid %u %u", (unsigned)st.st_uid, uid,
					     (unsigned)st.st_gid, gid);
	json_object_set_new(config, "raw.idmap", json_string(map));
	return 0;
}

int incus_folders_attach(struct incus_client *c, const struct machine *m, json_t *devices,
			 struct diag *d)
{
	const struct machine_cfg *cfg = m->cfg;
	bool shift = false, asked = false;
	bool vm = incus_is_vm(cfg);
	for (size_t i = 0; i < cfg->nsynced; i++) {
		const struct synced_folder *sf = &cfg->synced[i];
		if (!is_bind(m, sf))
			continue;
		if (!local(m)) {
			diag_fail(d, "incus: synced folder %s: type bind needs a local server",
				  sf->guest);
			return diag_hint(d, "use type: rsync (or auto)");
		}
		if (!vm && !asked && can_shift(c, &shift, d) < 0)
			return -1;
		asked = true;
		if (!vm && !shift && !mappable(sf->host)) {
			diag_fail(d, "incus: synced folder %s: the server cannot shift ids, and root "
				     "may not map %s's owner", sf->guest, sf->host);
			return diag_hint(d, "use type: rsync, or let root map the owner: a line "
					    "root:UID:1 in /etc/subuid and root:GID:1 in /etc/subgid");
		}
		_cleanup_free_ char *dev = xasprintf("corral-sync-%zu", i);
		json_t *disk = json_pack("{s:s, s:s, s:s}", "type", "disk", "source", sf->host, "path",
					 sf->guest);
		if (shift)
			json_object_set_new(disk, "shift", json_string("true"));
		json_object_set_new(devices, dev, disk);
	}
	return 0;
}

static bool corral_device(const char *name)
{
	for (size_t i = 0; ours[i]; i++)
		if (strncmp(name, ours[i], strlen(ours[i])) == 0)
			return true;
	return false;
}

/* inst's devices without corral's ports and folders, then the
 * envfile's; raw.idmap for the folders. */
static int devices_again(struct incus_client *c, struct machine *m, json_t *inst,
			 struct diag *d)
{
	json_t *devices = json_object_get(inst, "devices");
	const char *key;
	json_t *dev;
	void *tmp;
	json_object_foreach_safe(devices, tmp, key, dev) {
		if (corral_device(key))
			json_object_del(devices, key);
	}
	if (incus_ports_attach(m, devices, d) < 0)
		return -1;
	if (incus_is_vm(m->cfg)) {
		const char *ip = machine_str(m, MK_IP);
		incus_vm_proxies(devices, ip ? ip : "127.0.0.1");
	}
	json_t *root = json_object_get(devices, "root");
	if (m->cfg->disk && root) {
		_cleanup_free_ char *size =
			xasprintf("%lluMiB", (unsigned long long)(m->cfg->disk >> 20));
		json_object_set_new(root, "size", json_string(size));
	}
	return incus_folders_attach(c, m, devices, d) < 0 ||
			       incus_folders_idmap(c, m, json_object_get(inst, "config"), d) < 0
		       ? -1 : 0;
}

int incus_instance_put(struct incus_client *c, const char *name, const json_t *inst,
		       struct diag *d)
{
	static const char *const keep[] = {"architecture", "config", "devices", "ephemeral",
					   "profiles", "description", NULL};
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s", name);
	json_t *put = json_object();
	for (size_t i = 0; keep[i]; i++)
		if (json_object_get(inst, keep[i]))
			json_object_set(put, keep[i], json_object_get(inst, keep[i]));
	int rc = incus_call(c, "PUT", p, put, NULL, NULL, d);
	json_decref(put);
	return rc;
}

/* The ports of the last up, free again: the server's proxy processes of
 * an instance just stopped may hold them a moment (else the pick would
 * move a forward away from its own port). */
static void settle_ports(const struct machine *m)
{
	struct mport *v = NULL;
	size_t n = machine_ports(m, &v);
	uint64_t end = now_ms() + PORTS_SETTLE_MS;
	for (size_t i = 0; i < n; i++)
		while (port_try(v[i].host_ip, v[i].host, v[i].udp) == 0 && now_ms() < end)
			sleep_ms(100);
	free(v);
}

/* raw.lxc without the lines of NICs 1... */
static void raw_eth0(const char *old, struct buf *raw)
{
	_cleanup_free_ char *copy = xstrdup(old ? old : "");
	char *save = NULL;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		unsigned n;
		if (sscanf(l, "lxc.net.%u.", &n) != 1 || n == 0)
			buf_printf(raw, "%s\n", l);
	}
}

/* The NICs eth1... made again: a container's raw.lxc lines with them, a
 * VM's MACs and cloud-init network-config. */
static int nets_again(struct incus_client *c, struct machine *m, json_t *inst, struct diag *d)
{
	json_t *devices = json_object_get(inst, "devices");
	json_t *cfg = json_object_get(inst, "config");
	for (size_t i = m->cfg->nnetworks + 1;; i++) {
		_cleanup_free_ char *dev = xasprintf("eth%zu", i);
		if (!json_object_get(devices, dev))
			break;
		json_object_del(devices, dev);
	}
	struct buf raw = {0};
	raw_eth0(json_string_value(json_object_get(cfg, "raw.lxc")), &raw);
	machine_list_clear(m, MK_BRIDGES);
	int rc = incus_nets_attach(c, m, machine_str(m, MK_INSTANCE), devices, &raw, d);
	if (rc == 0 && incus_is_vm(m->cfg))
		incus_vm_nics(machine_str(m, MK_INSTANCE), inst);
	else if (rc == 0)
		json_object_set_new(cfg, "raw.lxc", json_string(raw.s ? raw.s : ""));
	buf_free(&raw);
	return rc;
}

int incus_reapply(struct incus_client *c, struct machine *m, struct diag *d)
{
	const char *name = machine_str(m, MK_INSTANCE);
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s", name);
	json_t *inst = NULL;
	if (incus_call(c, "GET", p, NULL, &inst, NULL, d) < 0)
		return -1;
	json_t *cfg = json_object_get(inst, "config");
	json_t *devices = json_object_get(inst, "devices");
	_cleanup_free_ char *cpus = xasprintf("%u", m->cfg->cpus);
	_cleanup_free_ char *mem =
		xasprintf("%lluMiB", (unsigned long long)(m->cfg->memory >> 20));
	json_object_set_new(cfg, "limits.cpu", json_string(cpus));
	json_object_set_new(cfg, "limits.memory", json_string(mem));
	json_t *root = json_object_get(devices, "root");
	if (root && json_object_get(root, "size.state"))
		json_object_set_new(root, "size.state", json_string(mem));
	settle_ports(m);
	struct strv old = {0};
	incus_nets_of(m, &old);
	int rc = devices_again(c, m, inst, d) < 0 || nets_again(c, m, inst, d) < 0 ? -1 : 0;
	if (rc == 0)
		rc = incus_instance_put(c, name, inst, d);
	struct diag ignored = {0};
	if (rc == 0) /* the bridges it left, unless others are on them */
		incus_nets_release(c, &old, &ignored);
	strv_free(&old);
	json_decref(inst);
	return rc < 0 ? diag_wrap(d, "apply the envfile to %s", name) : machine_save(m, d);
}
