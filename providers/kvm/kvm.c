/* The kvm provider's vtable: a machine is a daemonized QEMU (argv from
 * qemu_argv.c) over a qcow2 overlay of its box, reached over SSH through a
 * user-mode hostfwd on 127.0.0.1, controlled over QMP. What finds it again
 * (pid + start time, ports, taps, accelerator) is in state.json. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/base/util.h"
#include "core/host/mstate.h"
#include "core/host/net.h"
#include "core/host/paths.h"
#include "core/host/ports.h"
#include "core/host/proc.h"
#include "core/ssh/ssh.h"
#include "providers/kvm/kvm.h"

#define KILL_WAIT_MS 5000
#define QUIT_WAIT_MS 5000
#define KVM_SILENT_MS 10000 /* a KVM guest silent this long is taken as hung */
#define START_TRIES 3       /* a picked port taken before QEMU bound it */


extern const struct provider provider_kvm;

struct boot {
	struct kvm_box box;
	struct qemu_host host;
	struct qemu_net nets[16];
	struct port_plan ports;
	bool auto_accel;
};

static int kvm_usable(struct diag *why)
{
	static const char *const progs[] = {KVM_QEMU, "qemu-img"};
	for (size_t i = 0; i < 2; i++)
		if (!proc_have(progs[i])) {
			diag_fail(why, "the kvm provider needs %s", progs[i]);
			return diag_hint(why, "apt-get install qemu-system-x86 qemu-utils");
		}
	return 0;
}

bool kvm_running(struct machine *m) { return machine_proc_alive(m, MP_MACHINE); }

/* SIGKILL to QEMU, waiting for it to go. */
static void kill_qemu(struct machine *m)
{
	struct proc_ident q = machine_proc(m, MP_MACHINE);
	proc_stop(q.pid, q.start, SIGKILL, KILL_WAIT_MS);
}

static int kvm_state(struct machine *m, enum mstate *s, struct diag *d)
{
	(void)d;
	if (!machine_flag(m, MK_CREATED))
		*s = MS_NOT_CREATED;
	else if (kvm_running(m))
		*s = MS_RUNNING;
	else
		*s = machine_flag(m, MK_SUSPENDED) ? MS_SAVED : MS_STOPPED;
	return 0;
}

static void tap_name(struct machine *m, size_t i, char out[16])
{
	snprintf(out, 16, "ck%.10s%zu", machine_id(m), i);
}

/* Taps, pidfile and socket: what a QEMU leaves on the host once it is gone. */
static void release_runtime(struct machine *m)
{
	for (size_t i = 0; i < machine_list_len(m, MK_BRIDGES); i++) {
		char tap[16];
		tap_name(m, i, tap);
		net_link_delete(tap);
	}
	static const char *const leaves[] = {"qemu.pid", "qmp.sock"};
	for (size_t i = 0; i < 2; i++) {
		_cleanup_free_ char *p = machine_path(m, leaves[i]);
		unlink(p);
	}
	machine_clear_proc(m, MP_MACHINE);
	kvm_ports_stop(m);
}

/* Without root: the envfile network's multicast segment on loopback
 * (net_segment_of, the same one container machines join). The address
 * must be given. */
static int socket_net(struct machine *m, const struct net_attach *a,
		      const struct network_cfg *nc, struct qemu_net *q, struct diag *d)
{
	struct net_segment seg;
	_cleanup_free_ char *machines = path_dirname(m->dir);
	net_segment_of(machines, nc->name, &seg);
	char group[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &seg.group, group, sizeof(group));
	snprintf(q->mcast, sizeof(q->mcast), "%s:%u", group, seg.port);
	if (!a->ip) {
		diag_fail(d, "%s: network %s needs an `ip:` when corral does not run as root",
			  m->cfg->name, a->network);
		return diag_hint(d, "addresses are leased on the corral bridge only as root");
	}
	struct subnet s;
	if (net_subnet_parse(nc->subnet, &s, d) < 0)
		return -1;
	snprintf(q->ip, sizeof(q->ip), "%s/%u", a->ip, s.prefix);
	return 0;
}

static int tap_net(struct machine *m, size_t i, const struct net_attach *a,
		   const struct network_cfg *nc, struct qemu_net *q, struct diag *d)
{
	struct net_lease l;
	size_t nfixed;
	_cleanup_free_ uint32_t *fixed = env_fixed_ips(m->env, a->network, &nfixed);
	struct net_skip skip = {fixed, nfixed};
	if (net_lease(nc->subnet, m->dir, a->ip, &skip, &l, d) < 0)
		return diag_wrap(d, "%s: network %s", m->cfg->name, a->network);
	machine_list_add(m, MK_BRIDGES, l.bridge);
	tap_name(m, i, q->tap);
	snprintf(q->ip, sizeof(q->ip), "%s/%u", l.ip, l.prefix);
	net_link_delete(q->tap); /* left by a QEMU that was killed */
	_cleanup_free_ char *batch = xasprintf("tuntap add dev %s mode tap\n"
					       "link set %s master %s up\n", q->tap, q->tap, l.bridge);
	if (net_ip_batch(batch, d) < 0)
		return diag_wrap(d, "%s: tap %s on %s", m->cfg->name, q->tap, l.bridge);
	if (i == 0)
		machine_set_str(m, MK_IP, l.ip);
	return 0;
}

static int setup_nets(struct machine *m, struct boot *b, struct diag *d)
{
	const struct machine_cfg *c = m->cfg;
	if (c->nnetworks > sizeof(b->nets) / sizeof(b->nets[0]))
		return diag_fail(d, "%s: at most %zu networks per machine", c->name,
				 sizeof(b->nets) / sizeof(b->nets[0]));
	machine_list_clear(m, MK_BRIDGES);
	machine_list_clear(m, MK_NET_ADDRS); /* for kvm_guest_nics */
	bool root = !host_rootless();
	/* for `status -v` and probes: a rootless machine's envfile networks
	 * are not the host's, it is reached only through forwarded ports */
	machine_set_str(m, MK_MODE, root ? "root" : "rootless");
	machine_del(m, MK_IP); /* the first network's address, for `status` */
	for (size_t i = 0; i < c->nnetworks; i++) {
		const struct net_attach *a = &c->networks[i];
		const struct network_cfg *nc = env_network(m->env, a->network);
		if (!nc)
			return diag_fail(d, "%s: no network `%s` in the envfile", c->name, a->network);
		if ((root ? tap_net(m, i, a, nc, &b->nets[i], d)
			  : socket_net(m, a, nc, &b->nets[i], d)) < 0)
			return -1;
		if (!root && i == 0)
			machine_set_str(m, MK_IP, a->ip);
		machine_list_add(m, MK_NET_ADDRS, b->nets[i].ip);
	}
	return 0;
}

static int pick_accel(struct machine *m, struct boot *b, struct diag *d)
{
	const char *want = m->cfg->kvm.accel;
	const char *fell_back = machine_str(m, MK_ACCEL_FALLBACK);
	b->auto_accel = !want || strcmp(want, "auto") == 0;
	if (b->auto_accel && fell_back) {
		b->host.kvm = false;
		log_warn("%s: using TCG: %s", m->cfg->name, fell_back);
		return 0;
	}
	struct accel_facts f;
	char why[256];
	accel_probe(&f);
	if (accel_pick(want, &f, &b->host.kvm, why, sizeof(why), d) < 0)
		return diag_wrap(d, "%s", m->cfg->name);
	if (why[0])
		log_warn("%s: %s", m->cfg->name, why);
	return 0;
}

/* The machine's own UEFI variable store, as qcow2 so that savevm can
 * snapshot it with the disk. */
static int uefi_vars(struct machine *m, struct diag *d)
{
	_cleanup_free_ char *vars = machine_path(m, KVM_VARS);
	if (path_exists(vars))
		return 0;
	if (!path_exists(KVM_OVMF_VARS)) {
		diag_fail(d, "%s: firmware uefi needs %s", m->cfg->name, KVM_OVMF_VARS);
		return diag_hint(d, "apt-get install ovmf");
	}
	const char *argv[] = {"qemu-img", "convert", "-q", "-f", "raw", "-O", "qcow2",
			      KVM_OVMF_VARS, vars, NULL};
	return proc_run(argv, NULL, d);
}

/* The envfile's user-data: inline text, or the file it names. */
static int user_data(const struct machine_cfg *c, char **out, struct diag *d)
{
	const char *u = c->cloud_init.user_data;
	*out = NULL;
	if (!u || u[0] == '#') {
		*out = xstrdup(u);
		return 0;
	}
	if (read_file_flags(u, 0, 1 << 20, out, NULL, d) < 0)
		return diag_wrap(d, "%s: cloud_init.user_data", c->name);
	return 0;
}

/* The guest's SSH host key, made here and pinned before the guest first
 * answers: cloud-init installs it, so first contact is verified. */
static int host_key(struct machine *m, char **priv, char **pub, struct diag *d)
{
	_cleanup_free_ char *path = machine_path(m, "ssh_host_ed25519_key");
	_cleanup_free_ char *kh = machine_path(m, "known_hosts");
	unlink(path); /* a key from a first boot that failed */
	if (ssh_host_key_generate(path, pub, d) < 0 ||
	    read_file_flags(path, O_NOFOLLOW, 1 << 16, priv, NULL, d) < 0 ||
	    ssh_known_hosts_pin(kh, *pub, d) < 0)
		return diag_wrap(d, "%s: the guest's host key", m->cfg->name);
	return 0;
}

/* The NoCloud seed: user, keys, host name, addresses, mounts, user-data. */
static int seed(struct machine *m, struct boot *b, const char *pub, struct diag *d)
{
	_cleanup_free_ char *iso = machine_path(m, "cidata.iso"), *ud = NULL;
	_cleanup_free_ char *hpriv = NULL, *hpub = NULL;
	if (user_data(m->cfg, &ud, d) < 0 || host_key(m, &hpriv, &hpub, d) < 0)
		return -1;
	struct cidata c = {.user = mcfg_ssh_user(m->cfg), .pubkey = pub,
			   .hostname = m->cfg->hostname ? m->cfg->hostname : m->cfg->name,
			   .instance_id = machine_id(m), .host_key = hpriv, .host_pub = hpub,
			   .user_data = ud, .synced = m->cfg->synced, .nsynced = m->cfg->nsynced,
			   .nets = b->nets, .nnets = m->cfg->nnetworks, .dir = m->dir};
	int rc = cidata_write(iso, &c, d);
	explicit_bzero(hpriv, strlen(hpriv));
	if (rc < 0)
		return -1;
	machine_set_flag(m, MK_SSH_KEY_INSTALLED, true);
	machine_set_flag(m, MK_CLOUD_INIT, true);
	return 0;
}

/* First boot: the overlay, the UEFI variables, the machine's SSH key and
 * the cloud-init seed. */
static int create_files(struct machine *m, struct boot *b, struct diag *d)
{
	_cleanup_free_ char *disk = machine_path(m, "disk.qcow2");
	if (!path_exists(disk) &&
	    img_overlay(b->box.disk, b->box.format, disk, m->cfg->disk, d) < 0)
		return diag_wrap(d, "%s", m->cfg->name);
	if (kvm_uefi(m->cfg, &b->box) && uefi_vars(m, d) < 0)
		return -1;
	_cleanup_free_ char *iso = machine_path(m, "cidata.iso"), *pub = NULL;
	if (ssh_machine_key(m->dir, &pub, d) < 0)
		return -1;
	if (!b->box.cloud_init || path_exists(iso))
		return 0;
	return seed(m, b, pub, d);
}

/* Starts QEMU (it daemonizes once its devices are set up). A port picked
 * for it that another program took before QEMU bound it makes QEMU fail:
 * then the ports are picked again. */
static int start_qemu(struct machine *m, struct boot *b, const char *loadvm, struct diag *d)
{
	int rc = -1;
	for (int tries = 0; tries < START_TRIES; tries++) {
		port_plan_free(&b->ports);
		if (ports_pick(m, true, NULL, NULL, &b->ports, d) < 0)
			return diag_wrap(d, "%s", m->cfg->name);
		struct qemu_run r = {.dir = m->dir, .ssh_port = b->ports.ssh,
				     .host_ports = b->ports.host, .nets = b->nets, .loadvm = loadvm};
		_cleanup_free_ char *iso = machine_path(m, "cidata.iso");
		r.cidata = path_exists(iso);
		struct strv argv;
		if (qemu_argv(m->cfg, &b->box, &b->host, &r, &argv, d) < 0)
			return -1;
		rc = proc_run((const char *const *)argv.v, NULL, d);
		strv_free(&argv);
		if (rc == 0 || !ports_lost(m, &b->ports))
			break;
	}
	if (rc < 0)
		return diag_wrap(d, "%s: start QEMU", m->cfg->name);
	ports_record(m, &b->ports);
	return 0;
}

static int read_pid(struct machine *m, struct diag *d)
{
	_cleanup_free_ char *pf = machine_path(m, "qemu.pid"), *s = NULL;
	if (read_file(pf, 64, &s, NULL, d) < 0)
		return diag_wrap(d, "%s: QEMU wrote no pidfile", m->cfg->name);
	pid_t pid = (pid_t)atoi(s);
	if (pid <= 0 || !machine_set_proc(m, MP_MACHINE, pid))
		return diag_fail(d, "%s: QEMU (pid %d) exited right after starting", m->cfg->name,
				 (int)pid);
	return 0;
}

/* Under an `auto` KVM: a guest that prints nothing at all is taken as one
 * this host's KVM cannot run; the caller boots it again under TCG. */
static bool kvm_silent(struct machine *m)
{
	_cleanup_free_ char *console = machine_path(m, "console.log");
	uint64_t deadline = now_ms() + KVM_SILENT_MS;
	struct stat st;
	while (now_ms() < deadline && kvm_running(m)) {
		if (stat(console, &st) == 0 && st.st_size > 0)
			return false;
		sleep_ms(50);
	}
	return kvm_running(m);
}

static void kill_and_release(struct machine *m)
{
	kill_qemu(m);
	if (!kvm_running(m))
		release_runtime(m);
}

static int launch(struct machine *m, struct boot *b, const char *loadvm, struct diag *d)
{
	log_machine(m->cfg->name, "starting QEMU (%s)", b->host.kvm ? "KVM" : "TCG");
	machine_set_str(m, MK_ACCEL, b->host.kvm ? "kvm" : "tcg");
	if (start_qemu(m, b, loadvm, d) < 0 || read_pid(m, d) < 0)
		return -1;
	if (!b->host.kvm || !b->auto_accel || loadvm || !kvm_silent(m))
		return 0;
	const char *why = "a KVM guest printed nothing on its console within 10s";
	log_warn("%s: %s; booting it again under TCG", m->cfg->name, why);
	kill_qemu(m); /* its taps stay for the next */
	machine_set_str(m, MK_ACCEL_FALLBACK, why);
	machine_set_str(m, MK_ACCEL, "tcg");
	b->host.kvm = false;
	log_machine(m->cfg->name, "starting QEMU (TCG)");
	return start_qemu(m, b, NULL, d) < 0 ? -1 : read_pid(m, d);
}

/* What a first boot makes in the machine directory. */
static int remove_created(struct machine *m, struct diag *d)
{
	static const char *const made[] = {"disk.qcow2", "cidata.iso", KVM_VARS,
					   "ssh_host_ed25519_key"};
	for (size_t i = 0; i < sizeof(made) / sizeof(made[0]); i++) {
		_cleanup_free_ char *p = machine_path(m, made[i]);
		if (unlink(p) < 0 && errno != ENOENT)
			return diag_errno(d, "remove %s", p);
	}
	return 0;
}

/* Everything up needs, then QEMU. A first boot that fails leaves no overlay. */
int kvm_boot(struct machine *m, const char *loadvm, struct diag *d)
{
	const char *box_dir = m->box_dir ? m->box_dir : machine_str(m, MK_BOX_DIR);
	if (!box_dir)
		return diag_fail(d, "%s: no box to boot from", m->cfg->name);
	_cleanup_free_ char *disk = machine_path(m, "disk.qcow2");
	bool first = !path_exists(disk);
	struct boot b = {.host = {.binary = KVM_QEMU, .ovmf_code = KVM_OVMF_CODE,
				  .tsc_khz = accel_tsc_khz()}};
	release_runtime(m); /* whatever a QEMU that died left behind */
	int rc = kvm_box_load(box_dir, &b.box, d);
	if (rc == 0 && (rc = mkdir_p(m->dir, 0700, d)) == 0 && (rc = setup_nets(m, &b, d)) == 0 &&
	    (rc = pick_accel(m, &b, d)) == 0 && (rc = create_files(m, &b, d)) == 0)
		rc = launch(m, &b, loadvm, d);
	if (rc == 0)
		machine_set_flag(m, MK_CREATED, true);
	if (rc == 0 && m->cfg->ports_auto.on)
		rc = kvm_ports_start(m, d);
	if (rc < 0 && kvm_running(m))
		kill_and_release(m);
	else if (rc < 0)
		release_runtime(m);
	struct diag ignored = {0};
	if (rc < 0 && first)
		remove_created(m, &ignored);
	kvm_box_free(&b.box);
	port_plan_free(&b.ports);
	return machine_save(m, rc < 0 ? &ignored : d) < 0 ? -1 : rc;
}

static int kvm_up(struct machine *m, struct diag *d)
{
	enum mstate s;
	kvm_state(m, &s, d);
	if (s == MS_RUNNING)
		return 0;
	return s == MS_SAVED ? kvm_resume(m, d) : kvm_boot(m, NULL, d);
}

static bool wait_exit(struct machine *m, uint64_t ms)
{
	uint64_t deadline = now_ms() + ms;
	while (kvm_running(m) && now_ms() < deadline)
		sleep_ms(50);
	return !kvm_running(m);
}

/* ACPI power button, then QMP quit after the grace time, then SIGKILL. */
int kvm_stop(struct machine *m, bool force, struct diag *d)
{
	_cleanup_free_ char *sock = machine_path(m, "qmp.sock");
	uint64_t grace = mcfg_halt_timeout_ms(m->cfg);
	struct diag ignored = {0};
	if (kvm_running(m) && !force &&
	    qmp_call(sock, "system_powerdown", NULL, NULL, &ignored) == 0)
		wait_exit(m, grace);
	if (kvm_running(m) && qmp_call(sock, "quit", NULL, NULL, &ignored) == 0)
		wait_exit(m, QUIT_WAIT_MS);
	if (kvm_running(m))
		kill_qemu(m);
	if (kvm_running(m))
		return diag_fail(d, "QEMU (pid %d) survived SIGKILL", (int)machine_proc(m, MP_MACHINE).pid);
	release_runtime(m);
	return 0;
}

static int kvm_halt(struct machine *m, bool force, struct diag *d)
{
	if (kvm_stop(m, force, d) < 0)
		return -1;
	if (machine_flag(m, MK_SUSPENDED)) {
		/* halting a suspended machine forgets its memory image */
		_cleanup_free_ char *disk = machine_path(m, "disk.qcow2");
		if (img_snapshot(disk, 'd', KVM_SUSPEND_TAG, d) < 0)
			return -1;
		machine_del(m, MK_SUSPENDED);
	}
	return machine_save(m, d);
}

/* `corral reset`: loadvm of the checkpoint (booted from it when the
 * machine is not running); a disk-only checkpoint (kvm_checkpoint, 9p
 * mounted) is restored into the stopped disk and booted anew. */
static int kvm_reset(struct machine *m, struct diag *d)
{
	if (!machine_flag(m, MK_CHECKPOINT_DISK)) {
		if (kvm_snapshot_restore(m, PROVIDER_CHECKPOINT, d) < 0)
			return -1;
		return kvm_up(m, d);
	}
	if (kvm_halt(m, true, d) < 0)
		return -1;
	_cleanup_free_ char *disk = machine_path(m, "disk.qcow2");
	if (img_snapshot(disk, 'a', PROVIDER_CHECKPOINT, d) < 0)
		return -1;
	return kvm_boot(m, NULL, d);
}

static int kvm_destroy(struct machine *m, struct diag *d)
{
	if (kvm_stop(m, true, d) < 0)
		return -1;
	for (size_t i = 0; i < machine_list_len(m, MK_BRIDGES); i++) {
		const char *br = machine_list_get(m, MK_BRIDGES, i);
		if (br && net_release(br, m->dir, d) < 0)
			return -1;
	}
	if (remove_created(m, d) < 0)
		return -1;
	machine_del(m, MK_CREATED);
	return 0;
}

/* Boxes whose init reads the kernel command line or cloud-init already have
 * these addresses; engine/guest.c then finds nothing to change. */
static int kvm_guest_nics(struct machine *m, struct guest_nic **nics, size_t *n, struct diag *d)
{
	*n = machine_list_len(m, MK_NET_ADDRS);
	if (*n != m->cfg->nnetworks)
		return diag_fail(d, "the machine was booted with other networks; `corral reload` it");
	*nics = xcalloc(*n + 1, sizeof(**nics));
	for (size_t i = 0; i < *n; i++) {
		qemu_mac(m->dir, (unsigned)i + 1, (*nics)[i].mac);
		snprintf((*nics)[i].addr, sizeof((*nics)[i].addr), "%s",
			 machine_list_get(m, MK_NET_ADDRS, i) ? machine_list_get(m, MK_NET_ADDRS, i) : "");
	}
	return 0;
}

/* The mount_tag qemu_argv.c's share_opts gives synced folder i. */
static char *kvm_sync_tag(const struct machine *m, size_t i)
{
	(void)m;
	return xasprintf("corral%zu", i);
}

static const struct provider_entry kvm_entries[] = {
	{"__kvm-ports", kvm_ports_main},
	{NULL, NULL},
};

const struct provider provider_kvm = {
	.name = "kvm",
	.box_provider = {"kvm", "libvirt", "qemu", NULL},
	.usable = kvm_usable,
	.up = kvm_up,
	.halt = kvm_halt,
	.destroy = kvm_destroy,
	.state = kvm_state,
	.ssh_endpoint = machine_ssh_endpoint,
	.guests_on_host = true,
	.suspend = kvm_suspend,
	.resume = kvm_resume,
	.snapshot_save = kvm_snapshot_save,
	.snapshot_restore = kvm_snapshot_restore,
	.snapshot_delete = kvm_snapshot_delete,
	.snapshot_list = kvm_snapshot_list,
	.checkpoint = kvm_checkpoint,
	.reset = kvm_reset,
	.sync_types = 1u << SYNC_9P | 1u << SYNC_RSYNC,
	.sync_auto = SYNC_9P, /* rsync when the guest cannot mount it */
	.guest_nics = kvm_guest_nics,
	.sync_tag = kvm_sync_tag,
	.package = kvm_package,
	.auto_ports = true,
	.entries = kvm_entries,
	.mode_root = "root (taps on the host bridge)",
	.mode_rootless = "rootless (QEMU user-mode network, envfile networks on a loopback "
			 "multicast segment)",
};
