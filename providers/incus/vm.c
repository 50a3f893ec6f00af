/* Virtual-machine instances (provider_options.incus.type:
 * virtual-machine): the image is the kvm box's disk (image.c); the
 * create body is a container's made into a VM's here. A VM's disk is not
 * mounted on the host before its first boot, so the file API cannot write
 * keys: cloud-init does, from `cloud-init.user-data` (`user.user-data` on
 * a server without the cloud_init API extension) — the SSH user with sudo
 * and the machine's key, corral's ed25519 host key (pinned in known_hosts
 * before first contact), the hostname — and `cloud-init.network-config`
 * brings every NIC up with DHCP, matched by a MAC corral sets. The
 * managed bridge's DHCP hands each NIC the address its `ipv4.address`
 * reserves; after start the address is read back from the instance's
 * state. Proxy devices of a VM need NAT mode (connect to its address).
 * With the migration_stateful API extension a VM gets migration.stateful
 * (and room for its memory on the root disk) and `suspend` is a stateful
 * stop; a container is frozen (servers do not say whether CRIU works). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/digest.h"
#include "core/host/mstate.h"
#include "providers/incus/incus.h"

#define ADDRESS_WAIT_MS 30000 /* how long the address may take to show */

bool incus_is_vm(const struct machine_cfg *cfg)
{
	return cfg && cfg->incus.type && strcmp(cfg->incus.type, "virtual-machine") == 0;
}

/* What the server can do: its driver runs VMs (qemu); its API extensions. */
struct server {
	bool qemu, cloud_init, stateful;
};

static bool has_ext(const json_t *info, const char *name)
{
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(info, "api_extensions"), i, x)
		if (json_string_value(x) && strcmp(json_string_value(x), name) == 0)
			return true;
	return false;
}

static int server_of(struct incus_client *c, struct server *s, struct diag *d)
{
	json_t *info = NULL;
	if (incus_call(c, "GET", "/1.0", NULL, &info, NULL, d) < 0)
		return -1;
	const char *drv = json_string_value(
		json_object_get(json_object_get(info, "environment"), "driver"));
	*s = (struct server){.qemu = drv && strstr(drv, "qemu"),
			     .cloud_init = has_ext(info, "cloud_init"),
			     .stateful = has_ext(info, "migration_stateful")};
	json_decref(info);
	return 0;
}

int incus_vm_usable(struct incus_client *c, struct diag *d)
{
	struct server s;
	if (server_of(c, &s, d) < 0)
		return -1;
	if (s.qemu)
		return 0;
	diag_fail(d, "incus: the server cannot run virtual machines (no QEMU driver)");
	return diag_hint(d, "run it where /dev/kvm and QEMU are, or use type: container");
}

/* A MAC of the 00:16:3e block LXD uses, fixed by instance and device. */
static void mac_of(const char *name, const char *dev, char mac[18])
{
	unsigned char raw[32];
	char hex[65];
	_cleanup_free_ char *key = xasprintf("%s\n%s", name, dev);
	hash_str(key, raw, hex);
	snprintf(mac, 18, "00:16:3e:%02x:%02x:%02x", raw[0] & 0x7f, raw[1], raw[2]);
}

void incus_vm_proxies(json_t *devices, const char *ip)
{
	const char *key;
	json_t *dev;
	json_object_foreach(devices, key, dev) {
		const char *type = json_string_value(json_object_get(dev, "type"));
		const char *conn = json_string_value(json_object_get(dev, "connect"));
		if (!type || strcmp(type, "proxy") != 0 || !conn || !strrchr(conn, ':'))
			continue;
		_cleanup_free_ char *to = xasprintf("%.3s:%s%s", conn, ip, strrchr(conn, ':'));
		json_object_set_new(dev, "connect", json_string(to));
		json_object_set_new(dev, "nat", json_string("true"));
	}
}

/* MACs on the NICs; the network-config that matches them. */
static json_t *nics(const char *name, json_t *devices)
{
	json_t *eths = json_object();
	const char *key;
	json_t *dev;
	json_object_foreach(devices, key, dev) {
		const char *type = json_string_value(json_object_get(dev, "type"));
		if (!type || strcmp(type, "nic") != 0)
			continue;
		char mac[18];
		mac_of(name, key, mac);
		json_object_set_new(dev, "hwaddr", json_string(mac));
		json_object_set_new(eths, key, json_pack("{s:{s:s}, s:s, s:b}", "match", "macaddress",
							 mac, "set-name", key, "dhcp4", 1));
	}
	return json_pack("{s:i, s:o}", "version", 2, "ethernets", eths);
}

static char *yaml_doc(const char *head, json_t *o)
{
	_cleanup_free_ char *text = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	return xasprintf("%s%s\n", head, text);
}

/* #cloud-config (as JSON, which is YAML): user, keys, host key, hostname. */
static char *user_data(struct machine *m, struct diag *d)
{
	_cleanup_free_ char *pub = NULL, *key = NULL, *host_pub = NULL;
	if (incus_keys_make(m, &pub, &key, &host_pub, d) < 0)
		return NULL;
	const char *host = m->cfg->hostname ? m->cfg->hostname : m->cfg->name;
	json_t *user = json_pack("{s:s, s:s, s:s, s:[s]}", "name", mcfg_ssh_user(m->cfg), "shell",
				 "/bin/bash", "sudo", "ALL=(ALL) NOPASSWD:ALL",
				 "ssh_authorized_keys", pub);
	json_t *cfg = json_pack("{s:[o], s:b, s:s, s:b, s:{s:s, s:s}, s:b, s:[s]}", "users", user,
				"ssh_pwauth", 0, "hostname", host, "manage_etc_hosts", 1,
				"ssh_keys", "ed25519_private", key, "ed25519_public", host_pub,
				"ssh_deletekeys", 1, "ssh_genkeytypes", "ed25519");
	return yaml_doc("#cloud-config\n", cfg);
}

/* The default profile's root disk, with room for the memory a stateful
 * stop writes (size.state), unless the body has its own root already. */
static int state_room(struct incus_client *c, json_t *body, struct diag *d)
{
	json_t *devices = json_object_get(body, "devices");
	json_t *root = json_object_get(devices, "root");
	if (!root) {
		json_t *prof = NULL;
		if (incus_call(c, "GET", "/1.0/profiles/default", NULL, &prof, NULL, d) < 0)
			return -1;
		json_t *r = json_object_get(json_object_get(prof, "devices"), "root");
		root = json_deep_copy(r ? r : json_pack("{s:s, s:s, s:s}", "type", "disk", "path",
							  "/", "pool", "default"));
		json_object_set_new(devices, "root", root);
		json_decref(prof);
	}
	json_t *cfg = json_object_get(body, "config");
	json_object_set(root, "size.state", json_object_get(cfg, "limits.memory"));
	json_object_set_new(cfg, "migration.stateful", json_string("true"));
	return 0;
}

int incus_vm_shape(struct incus_client *c, struct machine *m, const char *name, json_t *body,
		   struct diag *d)
{
	struct server s;
	if (server_of(c, &s, d) < 0)
		return -1;
	json_t *cfg = json_object_get(body, "config");
	json_t *devices = json_object_get(body, "devices");
	json_object_set_new(body, "type", json_string("virtual-machine"));
	json_object_del(cfg, "raw.lxc");
	const char *ip = machine_str(m, MK_IP);
	char *ud = user_data(m, d);
	if (!ud)
		return -1;
	incus_vm_proxies(devices, ip ? ip : "127.0.0.1");
	const char *pre = s.cloud_init ? "cloud-init." : "user.";
	_cleanup_free_ char *kud = xasprintf("%suser-data", pre);
	json_object_set_new(cfg, kud, json_string(ud));
	free(ud);
	incus_vm_nics(name, body);
	return s.stateful ? state_room(c, body, d) : 0;
}

void incus_vm_nics(const char *name, json_t *inst)
{
	json_t *cfg = json_object_get(inst, "config");
	const char *key = json_object_get(cfg, "user.user-data") ? "user.network-config"
								 : "cloud-init.network-config";
	char *nc = yaml_doc("", nics(name, json_object_get(inst, "devices")));
	json_object_set_new(cfg, key, json_string(nc));
	free(nc);
}

/* The inet address state reports for the NIC with MAC mac, into ip. */
static bool reported(const json_t *st, const char *mac, char ip[16])
{
	const char *key;
	json_t *nic;
	json_object_foreach(json_object_get(st, "network"), key, nic) {
		const char *hw = json_string_value(json_object_get(nic, "hwaddr"));
		if (!hw || strcasecmp(hw, mac) != 0)
			continue;
		size_t i;
		json_t *a;
		json_array_foreach(json_object_get(nic, "addresses"), i, a) {
			const char *fam = json_string_value(json_object_get(a, "family"));
			const char *addr = json_string_value(json_object_get(a, "address"));
			if (fam && addr && strcmp(fam, "inet") == 0 && strlen(addr) < 16) {
				snprintf(ip, 16, "%s", addr);
				return true;
			}
		}
	}
	return false;
}

int incus_vm_address(struct incus_client *c, struct machine *m, struct diag *d)
{
	const char *name = machine_str(m, MK_INSTANCE);
	char mac[18], ip[16];
	mac_of(name, "eth0", mac);
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s/state", name);
	uint64_t end = now_ms() + ADDRESS_WAIT_MS;
	for (;;) {
		json_t *st = NULL;
		if (incus_call(c, "GET", p, NULL, &st, NULL, d) < 0)
			return -1;
		bool found = reported(st, mac, ip);
		json_decref(st);
		if (found) {
			machine_set_str(m, MK_IP, ip);
			return machine_save(m, d);
		}
		if (now_ms() >= end)
			return 0;
		sleep_ms(500);
	}
}

int incus_stateful(struct incus_client *c, const char *name, bool *yes, struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s", name);
	json_t *inst = NULL;
	*yes = false;
	if (incus_call(c, "GET", p, NULL, &inst, NULL, d) < 0)
		return -1;
	const char *t = json_string_value(json_object_get(inst, "type"));
	const char *st = json_string_value(
		json_object_get(json_object_get(inst, "expanded_config"), "migration.stateful"));
	*yes = t && strcmp(t, "virtual-machine") == 0 && st && strcmp(st, "true") == 0;
	json_decref(inst);
	return 0;
}
