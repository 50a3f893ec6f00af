/* The VM's settings, applied while it is powered off, every `up` (so an
 * edited envfile takes effect), in Vagrant's order. Each step is one
 * VBoxManage call at most, so `up` makes few of them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/host/lock.h"
#include "core/base/log.h"
#include "core/host/mstate.h"
#include "providers/virtualbox/vbox.h"

#define PORTS_LOCK_MS 60000

struct cfgrun {
	struct machine *m;
	const char *id;
	struct vbox_kvs info; /* showvminfo before any change */
	const struct vbox_hostif *ifs;
	size_t nifs;
};

static void modifyvm(struct strv *a, const char *id)
{
	strv_push(a, "modifyvm");
	strv_push(a, id);
}

static int run_free(const char *doing, struct strv *a, struct diag *d)
{
	int rc = vbox_run(doing, a, NULL, d);
	strv_free(a);
	return rc;
}

static int identity(struct cfgrun *c, struct diag *d)
{
	_cleanup_free_ char *name = vbox_vm_name(c->m);
	if (vbox_runv("set the MAC address", NULL, d, "modifyvm", c->id, "--macaddress1", "auto",
		      NULL) < 0)
		return -1;
	return vbox_runv("name the VM", NULL, d, "modifyvm", c->id, "--name", name, NULL);
}

static int clear_forwards(struct cfgrun *c, struct diag *d)
{
	struct vbox_natpf *f;
	size_t n = vbox_forwards(&c->info, &f);
	struct strv a = {0};
	modifyvm(&a, c->id);
	for (size_t i = 0; i < n; i++) {
		strv_push(&a, "--natpf1");
		strv_push(&a, "delete");
		strv_push(&a, f[i].name);
	}
	free(f);
	if (n == 0)
		return strv_free(&a), 0;
	return run_free("clear the NAT port forwards", &a, d);
}

char *vbox_share_name(const struct machine *m, size_t i)
{
	const char *guest = m->cfg->synced[i].guest;
	while (*guest == '/')
		guest++;
	char *s = xstrdup(*guest ? guest : "root");
	for (char *p = s; *p; p++)
		if (*p == '/')
			*p = '_';
	return s;
}

static int shared_folders(struct cfgrun *c, struct diag *d)
{
	const struct machine_cfg *mc = c->m->cfg;
	for (unsigned i = 1;; i++) {
		char key[64];
		snprintf(key, sizeof(key), "SharedFolderNameMachineMapping%u", i);
		const char *old = vbox_kv_get(&c->info, key);
		if (!old)
			break;
		if (vbox_runv("remove a shared folder", NULL, d, "sharedfolder", "remove", c->id,
			      "--name", old, NULL) < 0)
			return -1;
	}
	for (size_t i = 0; i < mc->nsynced; i++) {
		const struct synced_folder *sf = &mc->synced[i];
		if (sf->type != SYNC_VBOXSF)
			continue; /* rsync (and auto): copied over SSH by engine/guest.c */
		_cleanup_free_ char *name = vbox_share_name(c->m, i);
		if (vbox_runv("add a shared folder", NULL, d, "sharedfolder", "add", c->id, "--name",
			      name, "--hostpath", sf->host, NULL) < 0)
			return -1;
	}
	return 0;
}

static int clear_nics(struct cfgrun *c, struct diag *d)
{
	struct strv a = {0};
	modifyvm(&a, c->id);
	for (int i = 2; i <= VBOX_MAX_NICS; i++) {
		strv_pushf(&a, "--nic%d", i);
		strv_push(&a, "none");
	}
	return run_free("clear the network adapters", &a, d);
}

static int networks(struct cfgrun *c, struct diag *d)
{
	const struct machine_cfg *mc = c->m->cfg;
	if (mc->nnetworks == 0)
		return 0;
	if (mc->nnetworks > VBOX_MAX_NICS - 1)
		return diag_fail(d, "%s: at most %d private networks per VirtualBox VM", mc->name,
				 VBOX_MAX_NICS - 1);
	struct strv a = {0};
	modifyvm(&a, c->id);
	strv_push(&a, "--nic1");
	strv_push(&a, "nat");
	for (size_t i = 0; i < mc->nnetworks; i++) {
		const struct net_attach *na = &mc->networks[i];
		const struct network_cfg *nc = env_network(c->m->env, na->network);
		char ifname[64], ip[16];
		if (!nc)
			return strv_free(&a), diag_fail(d, "%s: no network `%s`", mc->name, na->network);
		if (vbox_hostif_for(nc, c->ifs, c->nifs, ifname, sizeof(ifname), d) < 0 ||
		    vbox_guest_ip(c->m, na, ip, sizeof(ip), d) < 0)
			return strv_free(&a), -1;
		if (i == 0)
			machine_set_str(c->m, MK_IP, ip);
		strv_pushf(&a, "--nic%zu", i + 2);
		strv_push(&a, "hostonly");
		strv_pushf(&a, "--hostonlyadapter%zu", i + 2);
		strv_push(&a, ifname);
		strv_pushf(&a, "--cableconnected%zu", i + 2);
		strv_push(&a, "on");
	}
	return run_free("attach the private networks", &a, d);
}

/* The natpf1 rules of a plan: SSH's, then each forward's. */
static void rules(const struct machine_cfg *mc, const struct port_plan *p, struct strv *a)
{
	strv_push(a, "--natpf1");
	strv_pushf(a, "ssh,tcp,127.0.0.1,%u,,%u", p->ssh, mcfg_ssh_port(mc));
	for (size_t i = 0; i < mc->nports; i++) {
		const struct port_fwd *pf = &mc->ports[i];
		const char *ip = pf->host_ip ? pf->host_ip : "127.0.0.1", *proto = pf->udp ? "udp" : "tcp";
		strv_push(a, "--natpf1");
		strv_pushf(a, "%s%u,%s,%s,%u,,%u", proto, pf->guest, proto, ip, p->host[i], pf->guest);
	}
}

/* Chosen and set under a per-user lock, so parallel machines never pick
 * the same port: the rule is visible to the next chooser once set. */
static int forwards(struct cfgrun *c, struct diag *d)
{
	_cleanup_free_ char *dir = path_join(corral_home(), "virtualbox");
	_cleanup_free_ char *lockp = path_join(dir, "ports.lock");
	struct lock l;
	if (mkdir_p(dir, 0755, d) < 0 || lock_acquire(lockp, PORTS_LOCK_MS, &l, d) < 0)
		return diag_wrap(d, "lock the host port allocation");
	struct port_set used;
	struct port_plan plan = {0};
	struct strv a = {0};
	int rc = vbox_used_ports(c->id, &used, d);
	if (rc == 0) {
		rc = ports_pick(c->m, true, &used, NULL, &plan, d);
		port_set_free(&used);
	}
	if (rc == 0) {
		modifyvm(&a, c->id);
		rules(c->m->cfg, &plan, &a);
		rc = vbox_run("forward ports", &a, NULL, d);
	}
	lock_release(&l);
	strv_free(&a);
	if (rc == 0)
		ports_record(c->m, &plan);
	port_plan_free(&plan);
	return rc;
}

/* The host's resolver configuration; CORRAL_VBOX_RESOLV_CONF names another
 * file (a test hook, so call sequences do not depend on the test host). */
static bool resolver_local(void)
{
	const char *env = getenv("CORRAL_VBOX_RESOLV_CONF");
	_cleanup_free_ char *text = NULL;
	size_t len;
	struct diag ignored = {0};
	if (read_file(env && *env ? env : "/etc/resolv.conf", 1 << 16, &text, &len, &ignored) < 0)
		return false;
	return vbox_resolver_local(text);
}

/* Vagrant's sane defaults: the clock in UTC; the NAT DNS proxy on, unless
 * the host resolves through 127.0.0.1 or 127.0.1.1, where the proxy and the
 * host resolver both break name resolution, so both are turned off. */
static int defaults(struct cfgrun *c, struct diag *d)
{
	if (resolver_local())
		return vbox_runv("set defaults", NULL, d, "modifyvm", c->id, "--rtcuseutc", "on",
				 "--natdnsproxy1", "off", "--natdnshostresolver1", "off", NULL);
	return vbox_runv("set defaults", NULL, d, "modifyvm", c->id, "--rtcuseutc", "on",
			 "--natdnsproxy1", "on", NULL);
}

static int resources(struct cfgrun *c, struct diag *d)
{
	const struct machine_cfg *mc = c->m->cfg;
	struct strv a = {0};
	modifyvm(&a, c->id);
	if (mc->memory) {
		strv_push(&a, "--memory");
		strv_pushf(&a, "%llu", (unsigned long long)(mc->memory >> 20));
	}
	strv_push(&a, "--cpus");
	strv_pushf(&a, "%u", mc->cpus ? mc->cpus : 1);
	return run_free("set memory and CPUs", &a, d);
}

int vbox_configure(struct machine *m, bool fresh, const struct vbox_hostif *ifs, size_t nifs,
		   struct diag *d)
{
	static int (*const steps[])(struct cfgrun *, struct diag *) = {
		clear_forwards, shared_folders, clear_nics, networks, forwards, defaults, resources,
	};
	const char *id = machine_str(m, MK_ID);
	struct cfgrun c = {.m = m, .id = id ? id : "", .ifs = ifs, .nifs = nifs};
	bool gone;
	int rc = fresh ? identity(&c, d) : 0;
	if (rc == 0 && (rc = vbox_showvminfo(c.id, &c.info, &gone, d)) == 0 && gone)
		rc = diag_fail(d, "VM %s vanished from VirtualBox", c.id);
	for (size_t i = 0; rc == 0 && i < sizeof(steps) / sizeof(steps[0]); i++)
		rc = steps[i](&c, d);
	vbox_kv_free(&c.info);
	if (rc == 0)
		rc = machine_save(m, d);
	return rc < 0 ? diag_wrap(d, "%s: configure the VM", m->cfg->name) : 0;
}
