/* The container provider's vtable: a machine is an overlay root over the
 * box's rootfs/, booted by spawn.c in its own namespaces, wired to a host
 * bridge by a veth pair, limited by cgroups, reached over SSH on its
 * bridge address. Without root (host_rootless()): over the user's copy of
 * the box in its mapped ids, networked by pasta (SSH on a forwarded port)
 * and relay.c, limited only in a delegated cgroup. Everything needed to
 * find it again is in state.json. */
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/host/mstate.h"
#include "core/host/paths.h"
#include "core/host/proc.h"
#include "core/host/state.h"
#include "core/ssh/ssh.h"
#include "providers/container/container.h"
#include "providers/provider.h"

#define INIT_REPORT_TIMEOUT_MS 120000 /* the built-in init runs rc2.d first */
#define KILL_WAIT_MS 5000
#define CHECKPOINT PROVIDER_CHECKPOINT /* the upper layer's copy, beside it */

extern const struct provider provider_container;

/* Not root: what the host lacks for rootless machines, each with its fix
 * (docs/providers.md, "Without root"). */
static int rootless_usable(struct diag *why)
{
	struct ct_subid range[2];
	if (ct_rootless_ranges(range, why) < 0)
		return -1;
	return ct_pasta_usable(why);
}

static int ct_usable(struct diag *why)
{
	char *fs;
	size_t len;
	if (host_rootless() && rootless_usable(why) < 0)
		return -1;
	if (!host_rootless() && !proc_have("ip"))
		return diag_fail(why, "the container provider needs `ip` (install iproute2)");
	if (!host_rootless() && !proc_have("nft"))
		return diag_fail(why, "the container provider needs `nft` for its firewall "
				      "(install nftables)");
	if (read_file("/proc/filesystems", 1 << 16, &fs, &len, why) < 0)
		return -1;
	bool ovl = strstr(fs, "\toverlay\n") != NULL;
	free(fs);
	return ovl ? 0 : diag_fail(why, "the kernel has no overlay file system (modprobe overlay)");
}

static int ct_state(struct machine *m, enum mstate *s, struct diag *d)
{
	(void)d;
	if (!machine_flag(m, MK_CREATED))
		*s = MS_NOT_CREATED;
	else
		*s = !machine_proc_alive(m, MP_MACHINE) ? MS_STOPPED
		     : machine_flag(m, MK_SUSPENDED) ? MS_SAVED : MS_RUNNING;
	return 0;
}

/* overlayfs options are comma- and colon-separated: such paths can't be passed. */
static int check_mount_path(const char *p, struct diag *d)
{
	if (!strpbrk(p, ",:\\"))
		return 0;
	diag_fail(d, "path %s holds a character (, : or \\) overlayfs cannot take", p);
	return diag_hint(d, "move the project (or $CORRAL_HOME) to a path without them");
}

static bool valid_hostname(const char *h)
{
	size_t n = strlen(h);
	return n && n < 64 && strspn(h, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-.") == n;
}

/* "auto": builtin for a box that runs the host's sshd (only the built-in
 * init starts it), else the box's metadata decides ("init": "systemd"),
 * else its tree (systemd when its /sbin/init is systemd), else builtin.
 * Without root systemd needs a cgroup of its own, below one delegated to
 * the user: without one, the built-in init, said once. */
static const char *init_mode(const struct machine *m, const char *box_dir, const char *lower)
{
	const char *want = m->cfg->container.init;
	if (want && strcmp(want, "auto") != 0)
		return want;
	if (ct_needs_host_sshd(box_dir, lower))
		return "builtin";
	_cleanup_free_ char *meta = path_join(box_dir, "metadata.json");
	json_t *o;
	struct diag d = {0};
	bool sd = false;
	if (state_load(meta, &o, &d) == 0) {
		sd = strcmp(state_str(o, "init", ""), "systemd") == 0;
		json_decref(o);
	}
	const char *mode = sd ? "systemd" : ct_box_init(lower);
	if (strcmp(mode, "systemd") != 0 || !host_rootless() || ct_cgroup_delegated())
		return mode;
	log_info("%s: corral's built-in init, not the box's systemd: without root systemd needs "
		 "a delegated cgroup (e.g. `systemd-run --user --scope corral up`)", m->cfg->name);
	return "builtin";
}

/* systemd as PID 1 without root: checked at every boot, as the cgroup
 * corral runs in may differ from the last one's. */
static int check_systemd_cgroup(const struct machine *m, const struct ct_boot *b,
				struct diag *d)
{
	if (!b->rootless || strcmp(b->init, "systemd") != 0 || ct_cgroup_delegated())
		return 0;
	diag_code(d, DIAG_NO_DELEGATION, "%s: `init: systemd` without root needs a cgroup (v2) "
		  "delegated to the user, and corral's is not", m->cfg->name);
	return diag_hint(d, "run it in one: `systemd-run --user --scope corral up` (a systemd "
			    "login session delegates one), or set `provider_options: { container: "
			    "{ init: builtin } }`");
}

/* Without root: eth0 is pasta's (pasta.c); eth1... the envfile's
 * networks, each a segment of relay.c, at the address the envfile gives,
 * else one from the segment's pool. */
static int lease_rootless(struct machine *m, struct ct_boot *b, struct diag *d)
{
	const struct machine_cfg *c = m->cfg;
	if (c->nnetworks + 1 > CT_MAX_NETS)
		return diag_fail(d, "%s: at most %d networks per container", c->name, CT_MAX_NETS - 1);
	struct net_lease *l = &b->nets[0];
	snprintf(l->ip, sizeof(l->ip), "%s", CT_PASTA_IP);
	snprintf(l->gateway, sizeof(l->gateway), "%s", CT_PASTA_GW);
	l->prefix = CT_PASTA_PREFIX;
	for (size_t i = 0; i < c->nnetworks; i++) {
		const struct net_attach *a = &c->networks[i];
		const struct network_cfg *nc = env_network(m->env, a->network);
		struct subnet sn;
		if (!nc)
			return diag_fail(d, "%s: no network `%s` in the envfile", c->name, a->network);
		size_t nfixed = 0;
		_cleanup_free_ uint32_t *fixed = env_fixed_ips(m->env, a->network, &nfixed);
		struct net_skip skip = {fixed, nfixed};
		char *ip = b->nets[i + 1].ip;
		if (net_subnet_parse(nc->subnet, &sn, d) < 0)
			return -1;
		if (a->ip)
			snprintf(ip, sizeof(b->nets[i + 1].ip), "%s", a->ip);
		else if (ct_segment_ip(m, a->network, nc->subnet, &skip, ip, d) < 0)
			return diag_wrap(d, "%s: network %s", c->name, a->network);
		/* (no gateway on eth1...: the field is filled for init's parser) */
		snprintf(b->nets[i + 1].gateway, sizeof(b->nets[i + 1].gateway), "%s", ip);
		b->nets[i + 1].prefix = sn.prefix;
	}
	b->nnets = (unsigned)c->nnetworks + 1;
	/* for `status`: the host reaches it only through forwarded ports */
	if (c->nnetworks)
		machine_set_str(m, MK_IP, b->nets[1].ip);
	else
		machine_del(m, MK_IP);
	return 0;
}

static int lease_all(struct machine *m, struct ct_boot *b, struct diag *d)
{
	const struct machine_cfg *c = m->cfg;
	if (b->rootless)
		return lease_rootless(m, b, d);
	size_t n = c->nnetworks ? c->nnetworks : 1;
	if (n > CT_MAX_NETS)
		return diag_fail(d, "%s: at most %d networks per container", c->name, CT_MAX_NETS);
	machine_list_clear(m, MK_BRIDGES);
	for (size_t i = 0; i < n; i++) {
		const struct net_attach *a = c->nnetworks ? &c->networks[i] : NULL;
		const struct network_cfg *nc = a ? env_network(m->env, a->network) : NULL;
		if (a && !nc)
			return diag_fail(d, "%s: no network `%s` in the envfile", c->name, a->network);
		size_t nfixed = 0;
		_cleanup_free_ uint32_t *fixed = a ? env_fixed_ips(m->env, a->network, &nfixed) : NULL;
		struct net_skip skip = {fixed, nfixed};
		if (net_lease(nc ? nc->subnet : NULL, m->dir, a ? a->ip : NULL, &skip, &b->nets[i], d) < 0)
			return diag_wrap(d, "%s: network %s", c->name, a ? a->network : "default");
		machine_list_add(m, MK_BRIDGES, b->nets[i].bridge);
	}
	b->nnets = (unsigned)n;
	machine_set_str(m, MK_IP, b->nets[0].ip);
	return 0;
}

void ct_veth_name(const char *id, unsigned i, char *out, size_t n)
{
	snprintf(out, n, "cr-%.10s%u", id, i);
}

/* The guest's ethI MAC, the same at every boot (a locally administered
 * address from the machine's id): after a restart or reset, the other
 * machines' neighbour caches still point at it. */
static void guest_mac(const char *id, unsigned i, char out[18])
{
	unsigned char md[HASH_MAX];
	_cleanup_free_ char *s = xasprintf("%s/%u", id, i);
	hash_str(s, md, NULL);
	snprintf(out, 18, "02:%02x:%02x:%02x:%02x:%02x", md[0], md[1], md[2], md[3], md[4]);
}

static int wire(const struct ct_boot *b, const char *id, pid_t pid, struct diag *d)
{
	struct buf batch = {0};
	for (unsigned i = 0; i < b->nnets; i++) {
		char veth[16], mac[18];
		ct_veth_name(id, i, veth, sizeof(veth));
		guest_mac(id, i, mac);
		net_link_delete(veth); /* left by a container that was killed */
		/* The address may have belonged to another machine a moment ago: a
		 * cached neighbour entry would send its frames to the old MAC. */
		buf_printf(&batch, "neigh flush to %s dev %s\n"
				   "link add %s type veth peer name eth%u address %s netns %d\n"
				   "link set %s master %s up\n",
			   b->nets[i].ip, b->nets[i].bridge, veth, i, mac, (int)pid, veth,
			   b->nets[i].bridge);
	}
	int r = net_ip_batch(batch.s, d);
	buf_free(&batch);
	return r < 0 ? diag_wrap(d, "connect the container to its bridge") : 0;
}

void ct_release_host(struct machine *m, unsigned nlinks)
{
	const char *id = machine_id(m);
	ct_cgroup_remove(id, machine_str(m, MK_CGROUP));
	machine_set_str(m, MK_CGROUP, NULL);
	ct_disk_close(m);
	for (unsigned i = 0; i < nlinks; i++) {
		char veth[16];
		ct_veth_name(id, i, veth, sizeof(veth));
		net_link_delete(veth);
	}
}

/* Everything a running machine holds on the host besides its processes. */
static void release_runtime(struct machine *m)
{
	ct_ports_stop(m);
	ct_relay_stop(m);
	ct_release_host(m, machine_list_len(m, MK_BRIDGES));
	machine_clear_proc(m, MP_MACHINE);
	machine_del(m, MK_SUSPENDED); /* also of one killed while suspended */
}

/* Without root the init writes the machine's files (ct_rootfs_write): it
 * gets the login key and the host key's path. */
static int prepare_files(struct machine *m, struct ct_boot *b, char **pub, char **host_key,
			 char **host_pub, struct diag *d)
{
	if (ssh_machine_key(m->dir, pub, d) < 0)
		return -1;
	if (!b->rootless)
		return ct_idmap_acquire(m, b, &b->idmap, d) < 0 || ct_idmap_upper(b, d) < 0 ||
				       ct_rootfs_prepare(m, b, *pub, host_pub, d) < 0
			       ? -1 : 0;
	b->user_pub = *pub, b->name = m->cfg->name;
	if (ct_host_key(m, host_key, host_pub, d) < 0)
		return diag_wrap(d, "%s: SSH host key", m->cfg->name);
	b->host_key = *host_key;
	return 0;
}

static int prepare(struct machine *m, struct ct_boot *b, char **pub, char **host_key,
		   struct diag *d)
{
	_cleanup_free_ char *host_pub = NULL;
	const char *dirs[] = {b->upper, b->work, b->root};
	for (size_t i = 0; i < 3; i++)
		if (mkdir_p(dirs[i], 0755, d) < 0 || check_mount_path(dirs[i], d) < 0)
			return -1;
	if (check_mount_path(b->lower, d) < 0 || lease_all(m, b, d) < 0 ||
	    prepare_files(m, b, pub, host_key, &host_pub, d) < 0)
		return -1;
	_cleanup_free_ char *kh = machine_path(m, "known_hosts");
	if (host_pub && ssh_known_hosts_pin(kh, host_pub, d) < 0)
		return -1;
	machine_set_flag(m, MK_SSH_KEY_INSTALLED, true);
	return 0;
}

static struct ct_limits limits_of(const struct machine_cfg *c)
{
	return (struct ct_limits){
		.cpus = c->cpus, .memory = c->memory,
		.pids = c->container.pids ? c->container.pids : ENV_CT_PIDS,
		.fuse = c->container.fuse,
		.best_effort = ct_best_effort(c),
	};
}

/* What the built-in init started from /etc/rc2.d, as it listed it in the
 * guest's /run: untrusted text, kept to printable lines. */
static void note_services(struct machine *m, pid_t pid)
{
	machine_list_clear(m, MK_INIT_SERVICES);
	_cleanup_free_ char *proot = xasprintf("/proc/%d/root", (int)pid);
	_cleanup_close_ int root = open(proot, O_PATH | O_DIRECTORY | O_CLOEXEC);
	char *text = NULL;
	struct diag ignored = {0};
	if (root < 0 || ct_tree_read(root, "run/corral-init.status", 1 << 16, &text, &ignored) < 0)
		return;
	char *save = NULL;
	for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		for (char *c = l; *c; c++)
			if (*c < 0x20 || *c == 0x7f)
				*c = '?';
		machine_list_add(m, MK_INIT_SERVICES, l);
	}
	free(text);
}

/* console.log past its cap moves to console.log.1 before a boot. */
static void console_rotate(const char *console)
{
	struct stat st;
	_cleanup_free_ char *old = xasprintf("%s.1", console);
	if (lstat(console, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= CT_CONSOLE_MAX)
		rename(console, old);
}

static int boot(struct machine *m, struct ct_boot *b, const char *id, struct diag *d)
{
	pid_t pid;
	int ctl, taps[CT_MAX_NETS];
	if (ct_spawn(b, &pid, &ctl, taps, d) < 0)
		return -1;
	machine_set_proc(m, MP_MACHINE, pid);
	machine_set_flag(m, MK_CREATED, true);
	machine_set_str(m, MK_MODE, b->rootless ? "rootless" : "root");
	if (b->rootless) { /* where its cgroup goes, for a destroy from elsewhere */
		_cleanup_free_ char *cg = ct_cgroup_where();
		machine_set_str(m, MK_CGROUP, cg);
	}
	int r = machine_save(m, d);
	if (r == 0) {
		struct ct_limits l = limits_of(m->cfg);
		r = ct_cgroup_apply(id, pid, &l, d);
	}
	if (r == 0)
		r = b->rootless ? ct_pasta_start(m, pid, d) : wire(b, id, pid, d);
	if (r == 0 && b->rootless && b->nnets > 1)
		r = ct_relay_start(m, taps, d);
	for (unsigned i = 0; i < CT_MAX_NETS; i++)
		if (taps[i] >= 0)
			close(taps[i]);
	if (r == 0)
		r = ct_spawn_finish(ctl, INIT_REPORT_TIMEOUT_MS, d);
	close(ctl);
	if (r == 0 && strcmp(b->init, "builtin") == 0)
		note_services(m, pid);
	if (r == 0 && (!b->rootless || m->cfg->ports_auto.on)) /* else pasta forwards them */
		r = ct_ports_start(m, b->rootless ? CT_PASTA_IP : b->nets[0].ip, d);
	if (r < 0) {
		proc_stop(pid, machine_proc(m, MP_MACHINE).start, SIGKILL, KILL_WAIT_MS);
		release_runtime(m);
		diag_wrap(d, "%s", m->cfg->name);
	}
	struct diag ignored = {0};
	return machine_save(m, r < 0 ? &ignored : d) < 0 ? -1 : r;
}

/* Appends the strings of the array key of o to v; false when one is not a string. */
static bool json_strings(const json_t *o, const char *key, struct strv *v)
{
	const json_t *a = json_object_get(o, key), *it;
	size_t i;
	if (a && !json_is_array(a))
		return false;
	json_array_foreach(a, i, it) {
		if (!json_is_string(it))
			return false;
		strv_push(v, json_string_value(it));
	}
	return true;
}

/* An OCI image box's Env (for every machine: the host's sshd sets it in
 * its sessions) and, with `command: image`, its entrypoint + cmd,
 * WorkingDir and User, from metadata.json's "oci" object into b (argv and
 * env own the strings; dir and user point into them). */
static int image_command(const struct machine *m, const char *box_dir, struct ct_boot *b,
			 struct strv *argv, struct strv *env, struct diag *d)
{
	const char *cmd = m->cfg->container.command;
	bool run = cmd && strcmp(cmd, "image") == 0;
	if (!run && !ct_box_is_oci(box_dir))
		return 0;
	_cleanup_free_ char *meta = path_join(box_dir, "metadata.json");
	json_t *o;
	if (state_load(meta, &o, d) < 0)
		return diag_wrap(d, "%s: the image's config", m->cfg->name);
	const json_t *oci = json_object_get(o, "oci");
	bool ok = json_is_object(oci) && json_strings(oci, "entrypoint", argv) &&
		  json_strings(oci, "cmd", argv) && json_strings(oci, "env", env);
	strv_push(env, state_str(oci, "working_dir", ""));
	strv_push(env, state_str(oci, "user", ""));
	json_decref(o);
	if (run && (!ok || !argv->n)) {
		diag_fail(d, "%s: `command: image`, but the box records no image command "
			     "(metadata.json \"oci\": entrypoint, cmd)", m->cfg->name);
		return diag_hint(d, "use an OCI image box, or leave `command` out");
	}
	b->svc_env = (const char *const *)env->v, b->nsvc_env = env->n - 2;
	if (run) {
		b->svc_argv = (const char *const *)argv->v, b->nsvc = argv->n;
		b->svc_dir = env->v[env->n - 2], b->svc_user = env->v[env->n - 1];
	}
	return 0;
}

/* The host's sshd when the box has none of its own (or is an OCI image). */
static int sshd_choice(const char *box_dir, const char *lower, struct ct_boot *b, char **dir,
		       struct diag *d)
{
	*dir = NULL;
	if (!ct_needs_host_sshd(box_dir, lower))
		return 0;
	if (strcmp(b->init, "systemd") == 0) {
		diag_fail(d, "the box has no sshd of its own (or is an OCI image): only corral's "
			     "built-in init runs the host's sshd in it");
		return diag_hint(d, "set `provider_options: { container: { init: builtin } }`");
	}
	if (ct_sshd_bundle(dir, d) < 0)
		return -1;
	b->sshd_dir = *dir;
	return 0;
}

int ct_up(struct machine *m, struct diag *d)
{
	enum mstate s;
	ct_state(m, &s, d);
	if (s == MS_SAVED)
		return ct_resume(m, d);
	if (s == MS_RUNNING)
		return 0;
	if (s == MS_STOPPED)
		release_runtime(m); /* what a killed machine left: its forwarder, cgroups, links */
	const char *lower = machine_str(m, MK_LOWER);
	_cleanup_free_ char *box_lower = m->box_dir ? path_join(m->box_dir, "rootfs") : NULL;
	if (!lower && !box_lower)
		return diag_fail(d, "%s: no box to boot from", m->cfg->name);
	if (box_lower && host_rootless() && (!lower || s == MS_NOT_CREATED)) {
		char *mapped = NULL; /* the box's copy in the user's ids (unshare.c) */
		if (ct_box_mapped(m->box_dir, &mapped, d) < 0)
			return diag_wrap(d, "%s", m->cfg->name);
		free(box_lower);
		box_lower = mapped;
	}
	if (!lower || s == MS_NOT_CREATED) {
		machine_set_str(m, MK_LOWER, box_lower);
		machine_set_str(m, MK_INIT, init_mode(m, m->box_dir, box_lower));
		lower = box_lower;
	}
	const char *hostname = m->cfg->hostname ? m->cfg->hostname : m->cfg->name;
	if (m->cfg->nsynced > CT_MAX_BINDS)
		return diag_fail(d, "%s: at most %d synced folders per container", m->cfg->name,
				 CT_MAX_BINDS);
	if (!valid_hostname(hostname))
		return diag_fail(d, "%s: hostname `%s` is not a valid host name", m->cfg->name,
				 hostname);
	const char *id = machine_id(m);
	_cleanup_free_ char *upper = NULL, *work = NULL;
	if (ct_disk_open(m, s == MS_NOT_CREATED, &upper, &work, d) < 0)
		return -1;
	_cleanup_free_ char *root = machine_path(m, "root"), *console = machine_path(m, "console.log");
	struct ct_boot b = {
		.lower = lower, .upper = upper, .work = work, .root = root, .hostname = hostname,
		.init = machine_str(m, MK_INIT) ? machine_str(m, MK_INIT) : "builtin",
		.user = m->cfg->ssh.user, .id = id,
		.console = console,
		.binds = m->cfg->synced, .nbinds = m->cfg->nsynced,
		.rootless = host_rootless(),
	};
	_cleanup_free_ char *box_dir = path_dirname(lower), *sshd_dir = NULL;
	_cleanup_free_ char *pub = NULL, *host_key = NULL;
	struct strv svc = {0}, svc_env = {0};
	int r = check_systemd_cgroup(m, &b, d) < 0 ||
			sshd_choice(box_dir, lower, &b, &sshd_dir, d) < 0 ||
			image_command(m, box_dir, &b, &svc, &svc_env, d) < 0 ||
			prepare(m, &b, &pub, &host_key, d) < 0
		? -1 : 0;
	if (r == 0) {
		console_rotate(console);
		r = boot(m, &b, id, d);
	}
	strv_free(&svc);
	strv_free(&svc_env);
	return r;
}

/* A suspended machine is thawed first: its init would not see SIGTERM. */
int ct_stop(struct machine *m, bool force, struct diag *d)
{
	struct diag ignored = {0};
	if (machine_flag(m, MK_SUSPENDED) && machine_proc_alive(m, MP_MACHINE))
		ct_cgroup_freeze(machine_id(m), machine_str(m, MK_CGROUP), false, &ignored);
	struct proc_ident init = machine_proc(m, MP_MACHINE);
	pid_t pid = init.pid;
	unsigned long long start = init.start;
	const char *mode = machine_str(m, MK_INIT);
	int sig = mode && strcmp(mode, "systemd") == 0 ? SIGRTMIN + 3 : SIGTERM;
	uint64_t grace = mcfg_halt_timeout_ms(m->cfg);
	if (force || proc_stop(pid, start, sig, grace) == 1)
		proc_stop(pid, start, SIGKILL, KILL_WAIT_MS);
	if (proc_alive(pid, start))
		return diag_fail(d, "the container's init (pid %d) survived SIGKILL", (int)pid);
	release_runtime(m);
	return 0;
}

static int ct_halt(struct machine *m, bool force, struct diag *d)
{
	return ct_stop(m, force, d) < 0 ? -1 : machine_save(m, d);
}

/* A tree of the machine's; without root its files are the user's mapped
 * ids, removed in a user namespace of that map. */
int ct_rm_tree(const char *p, struct diag *d)
{
	return host_rootless() ? ct_unshare_rm(p, d) : rm_rf(p, d);
}

/* No state is saved: the lifecycle removes the machine's directory next. */
static int ct_destroy(struct machine *m, struct diag *d)
{
	if (ct_stop(m, true, d) < 0)
		return -1;
	for (size_t i = 0; i < machine_list_len(m, MK_BRIDGES); i++) {
		const char *br = machine_list_get(m, MK_BRIDGES, i);
		if (br && net_release(br, m->dir, d) < 0)
			return -1;
	}
	static const char *const leaves[] = {"upper", "work", "root", "layer", "disk.img",
					     CHECKPOINT, CT_SNAPSHOTS, CT_UPPER_NEW};
	for (size_t i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++) {
		_cleanup_free_ char *p = machine_path(m, leaves[i]);
		if (ct_rm_tree(p, d) < 0)
			return -1;
	}
	if (!host_rootless())
		ct_idmap_release(m);
	machine_del(m, MK_CREATED);
	return 0;
}

/* ---- the `provisioned` checkpoint: a copy of the upper layer ---- */

/* cp -a keeps owners, modes, times, xattrs (overlay's opaque marks) and
 * whiteouts; reflinks where the file system has them. */
int ct_cp_a(const char *from, const char *to, struct diag *d)
{
	const char *argv[] = {"cp", "-a", "--reflink=auto", "--", from, to, NULL};
	return proc_run(argv, NULL, d);
}

/* `to` replaced by a copy of `from`. */
int ct_copy_fresh(const char *from, const char *to, struct diag *d)
{
	return rm_rf(to, d) < 0 ? -1 : ct_cp_a(from, to, d);
}

int ct_copy_tree(const char *from, const char *to, struct diag *d)
{
	const char *in_ns[] = {"copy", from, to, NULL}; /* without root: in the user's ids */
	return host_rootless() ? ct_unshare_run(in_ns, d) : ct_copy_fresh(from, to, d);
}

/* Beside the upper layer: on the disk image when the machine has one. */
static char *checkpoint_dir(const char *upper)
{
	_cleanup_free_ char *parent = path_dirname(upper);
	return path_join(parent, CHECKPOINT);
}

/* Taken while the machine runs: it is quiet right after provisioning. */
static int ct_checkpoint(struct machine *m, struct diag *d)
{
	_cleanup_free_ char *upper = NULL, *work = NULL;
	if (ct_disk_open(m, false, &upper, &work, d) < 0)
		return -1;
	_cleanup_free_ char *cp = checkpoint_dir(upper), *tmp = xasprintf("%s.new", cp);
	if (ct_copy_tree(upper, tmp, d) < 0 || ct_rm_tree(cp, d) < 0)
		return diag_wrap(d, "%s: checkpoint", m->cfg->name);
	if (rename(tmp, cp) < 0)
		return diag_errno(d, "%s: checkpoint: rename %s", m->cfg->name, tmp);
	return 0;
}

/* Killed (what it holds is discarded anyway), upper layer replaced by the
 * checkpoint's copy, booted again. */
static int ct_reset(struct machine *m, struct diag *d)
{
	if (ct_stop(m, true, d) < 0 || machine_save(m, d) < 0)
		return -1;
	_cleanup_free_ char *upper = NULL, *work = NULL;
	if (ct_disk_open(m, false, &upper, &work, d) < 0)
		return -1;
	_cleanup_free_ char *cp = checkpoint_dir(upper);
	if (!path_is_dir(cp)) {
		diag_fail(d, "%s has no `provisioned` checkpoint", m->cfg->name);
		return diag_hint(d, "it is taken after the first complete provisioning");
	}
	if (ct_upper_replace(upper, work, cp, d) < 0)
		return diag_wrap(d, "%s: reset", m->cfg->name);
	return ct_up(m, d);
}

static const struct provider_entry entries[] = {
	{"__init", ct_init_main},
	{"__portfwd", ct_portfwd_main},
	{"__ctns", ct_ns_main},
	{"__ctrelay", ct_relay_main},
	{NULL, NULL},
};

const struct provider provider_container = {
	.name = "container",
	.box_provider = {"container", NULL},
	.usable = ct_usable,
	.up = ct_up,
	.halt = ct_halt,
	.destroy = ct_destroy,
	.state = ct_state,
	.ssh_endpoint = machine_ssh_endpoint,
	.guests_on_host = true,
	.configures_guest_network = true, /* rootfs.c and the init */
	.sync_types = 1u << SYNC_BIND,
	.sync_auto = SYNC_BIND,
	.entries = entries,
	.reap = ct_reap,
	.package = ct_package,
	.auto_ports = true, /* the port forwarder watches (portfwd.c) */
	.suspend = ct_suspend,
	.resume = ct_resume,
	.snapshot_save = ct_snapshot_save,
	.snapshot_restore = ct_snapshot_restore,
	.snapshot_delete = ct_snapshot_delete,
	.snapshot_list = ct_snapshot_list,
	.checkpoint = ct_checkpoint,
	.reset = ct_reset,
	.mode_root = "root (host bridge, nftables, cgroups)",
	.mode_rootless = "rootless (user namespace of the user's subuid range, pasta network)",
};
