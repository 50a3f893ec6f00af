/* The QEMU command line, built as an argv from the machine's config, its
 * box and facts about the host. Pure: no file is read, nothing runs, so
 * tests/golden/kvm/ can hold the expected argv of every option. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/digest.h"
#include "core/base/util.h"
#include "providers/kvm/kvm.h"

#define MIB (1024ull * 1024ull)
#define DEFAULT_MEMORY (512 * MIB)
#define SUN_PATH_MAX 107 /* sizeof(sockaddr_un.sun_path) - 1 */

struct args {
	struct strv *a;
	bool microvm;
	const char *dir;
};

static void add(struct args *x, const char *s) { strv_push(x->a, s); }

static void add2(struct args *x, const char *opt, const char *val)
{
	add(x, opt);
	add(x, val);
}

/* QEMU option strings split on commas; a literal comma is written twice. */
static char *esc(const char *s)
{
	struct buf b = {0};
	for (; *s; s++) {
		buf_add(&b, s, 1);
		if (*s == ',')
			buf_add(&b, ",", 1);
	}
	return b.s ? b.s : xstrdup("");
}

/* An option string naming a file of the machine directory. */
static char *in_dir(const struct args *x, const char *leaf)
{
	_cleanup_free_ char *p = path_join(x->dir, leaf);
	return esc(p);
}

/* virtio devices: on PCI for q35, on virtio-mmio for microvm. */
static const char *bus(const struct args *x) { return x->microvm ? "device" : "pci"; }

void qemu_mac(const char *dir, unsigned nic, char out[18])
{
	unsigned char md[HASH_MAX];
	hash_str(dir, md, NULL);
	snprintf(out, 18, "52:54:00:%02x:%02x:%02x", md[0], md[1], (md[2] + nic) & 0xff);
}

static void machine_opts(struct args *x, const struct machine_cfg *mc, const struct qemu_host *h)
{
	add2(x, "-name", mc->name);
	add(x, "-nodefaults");
	add(x, "-no-user-config");
	add2(x, "-machine", x->microvm ? "microvm" : "q35");
	if (h->kvm) {
		add2(x, "-accel", "kvm");
		add2(x, "-cpu", "host");
	} else {
		add2(x, "-accel", "tcg");
	}
	add(x, "-smp");
	strv_pushf(x->a, "%u", mc->cpus ? mc->cpus : 1);
	uint64_t mem = mc->memory ? mc->memory : DEFAULT_MEMORY;
	add(x, "-m");
	strv_pushf(x->a, "%lluM", (unsigned long long)((mem + MIB - 1) / MIB));
}

static int control_opts(struct args *x, const struct qemu_run *r, struct diag *d)
{
	_cleanup_free_ char *sock = path_join(r->dir, "qmp.sock");
	if (strlen(sock) > SUN_PATH_MAX) {
		diag_fail(d, "the QMP socket path %s is longer than a unix socket allows (%d)", sock,
			  SUN_PATH_MAX);
		return diag_hint(d, "move the project to a shorter path");
	}
	_cleanup_free_ char *esock = esc(sock), *pid = path_join(r->dir, "qemu.pid");
	_cleanup_free_ char *console = in_dir(x, "console.log");
	add2(x, "-display", "none");
	add(x, "-daemonize");
	add2(x, "-pidfile", pid);
	add(x, "-chardev");
	strv_pushf(x->a, "socket,id=qmp,path=%s,server=on,wait=off", esock);
	add2(x, "-mon", "chardev=qmp,mode=control");
	add(x, "-chardev");
	strv_pushf(x->a, "file,id=console,path=%s", console);
	add2(x, "-serial", "chardev:console");
	return 0;
}

/* Private networks' addresses and the hostname for the box's init
 * (corral.ethN=IP/PREFIX, corral.hostname=NAME); other kernels ignore them.
 *
 * microvm under TCG: its only TSC reference is the PIT (no HPET, no ACPI PM
 * timer), and Linux's PIT calibration is a timing loop that fails whenever
 * the host preempts or slows the vCPU thread; the kernel then waits for a
 * PIT tick that microvm's reduced-hardware ACPI never routes, and hangs
 * before printing anything (with `quiet`) — often on a loaded host, seldom
 * on an idle one. A TCG guest's TSC runs at the host's rate, so that rate,
 * as tsc_early_khz, makes the calibration unnecessary. */
static void kernel_opts(struct args *x, const struct machine_cfg *mc, const struct kvm_box *b,
			const struct qemu_host *h, const struct qemu_run *r)
{
	add2(x, "-kernel", b->kernel);
	if (b->initrd)
		add2(x, "-initrd", b->initrd);
	struct buf app = {0};
	buf_puts(&app, b->cmdline ? b->cmdline : "console=ttyS0");
	buf_printf(&app, " corral.hostname=%s", mc->hostname ? mc->hostname : mc->name);
	for (size_t i = 0; i < mc->nnetworks; i++)
		if (r->nets[i].ip[0])
			buf_printf(&app, " corral.eth%zu=%s", i + 1, r->nets[i].ip);
	if (x->microvm && !h->kvm && h->tsc_khz)
		buf_printf(&app, " tsc_early_khz=%u", h->tsc_khz);
	add2(x, "-append", app.s);
	buf_free(&app);
}

static void drive(struct args *x, const char *id, const char *leaf, const char *fmt_opts)
{
	_cleanup_free_ char *f = in_dir(x, leaf);
	add(x, "-drive");
	strv_pushf(x->a, "file=%s,if=none,id=%s,%s", f, id, fmt_opts);
	add(x, "-device");
	strv_pushf(x->a, "virtio-blk-%s,drive=%s", bus(x), id);
}

bool kvm_uefi(const struct machine_cfg *mc, const struct kvm_box *b)
{
	const char *fw = mc->kvm.firmware ? mc->kvm.firmware : b->firmware;
	return fw && strcmp(fw, "uefi") == 0;
}

static void disk_opts(struct args *x, const struct machine_cfg *mc, const struct kvm_box *b,
		      const struct qemu_host *h, const struct qemu_run *r)
{
	if (kvm_uefi(mc, b)) {
		_cleanup_free_ char *code = esc(h->ovmf_code), *vars = in_dir(x, KVM_VARS);
		add(x, "-drive");
		strv_pushf(x->a, "if=pflash,format=raw,unit=0,readonly=on,file=%s", code);
		add(x, "-drive");
		strv_pushf(x->a, "if=pflash,format=qcow2,unit=1,file=%s", vars);
	}
	drive(x, "disk0", "disk.qcow2", "format=qcow2,discard=unmap");
	if (r->cidata)
		drive(x, "cidata", "cidata.iso", "format=raw,readonly=on");
}

static void nic(struct args *x, unsigned i)
{
	char mac[18];
	qemu_mac(x->dir, i, mac);
	add(x, "-device");
	strv_pushf(x->a, "virtio-net-%s,netdev=net%u,mac=%s%s", bus(x), i, mac,
	     x->microvm ? "" : ",romfile=");
}

static void net_opts(struct args *x, const struct machine_cfg *mc, const struct qemu_run *r)
{
	struct buf u = {0};
	buf_printf(&u, "user,id=net0,hostfwd=tcp:127.0.0.1:%u-:%u", r->ssh_port,
		   mcfg_ssh_port(mc));
	for (size_t i = 0; i < mc->nports; i++) {
		const struct port_fwd *p = &mc->ports[i];
		buf_printf(&u, ",hostfwd=%s:%s:%u-:%u", p->udp ? "udp" : "tcp",
			   p->host_ip ? p->host_ip : "127.0.0.1", r->host_ports[i], p->guest);
	}
	add2(x, "-netdev", u.s);
	buf_free(&u);
	nic(x, 0);
	for (unsigned i = 1; i <= mc->nnetworks; i++) {
		const struct qemu_net *n = &r->nets[i - 1];
		add(x, "-netdev");
		if (n->tap[0])
			strv_pushf(x->a, "tap,id=net%u,ifname=%s,script=no,downscript=no", i, n->tap);
		else
			strv_pushf(x->a, "socket,id=net%u,mcast=%s,localaddr=127.0.0.1", i, n->mcast);
		nic(x, i);
	}
}

/* An entropy source. A guest blocks in getrandom() (sshd's first host
 * key, systemd's random seed) until its pool is seeded, which its
 * jitter loop takes seconds of busy CPU to do under TCG; virtio-rng
 * seeds it from the host's /dev/urandom at once (libvirt and Lima add
 * one by default too). */
static void rng_opts(struct args *x)
{
	add2(x, "-object", "rng-random,id=rng0,filename=/dev/urandom");
	add(x, "-device");
	strv_pushf(x->a, "virtio-rng-%s,rng=rng0", bus(x));
}

/* 9p for `9p` and `auto` folders; rsync ones are copied over SSH instead. */
static void share_opts(struct args *x, const struct machine_cfg *mc)
{
	for (size_t i = 0; i < mc->nsynced; i++) {
		const struct synced_folder *s = &mc->synced[i];
		if (!kvm_folder_9p(s))
			continue;
		_cleanup_free_ char *p = esc(s->host);
		if (x->microvm) {
			add(x, "-fsdev");
			strv_pushf(x->a, "local,id=fs%zu,path=%s,security_model=mapped-xattr", i, p);
			add(x, "-device");
			strv_pushf(x->a, "virtio-9p-device,fsdev=fs%zu,mount_tag=corral%zu", i, i);
		} else {
			add(x, "-virtfs");
			strv_pushf(x->a, "local,path=%s,mount_tag=corral%zu,security_model=mapped-xattr,id=fs%zu",
			     p, i, i);
		}
	}
}

int qemu_argv(const struct machine_cfg *mc, const struct kvm_box *b, const struct qemu_host *h,
	      const struct qemu_run *r, struct strv *argv, struct diag *d)
{
	*argv = (struct strv){0};
	struct args x = {.a = argv, .dir = r->dir,
			 .microvm = mc->kvm.machine && strcmp(mc->kvm.machine, "microvm") == 0};
	bool uefi = kvm_uefi(mc, b);
	if (x.microvm && (!b->kernel || uefi)) {
		diag_fail(d, "%s: machine microvm needs a box with a kernel (direct kernel boot) "
			  "and firmware bios", mc->name);
		return diag_hint(d, "use `provider_options: { kvm: { machine: q35 } }` for this box");
	}
	add(&x, h->binary);
	machine_opts(&x, mc, h);
	if (control_opts(&x, r, d) < 0) {
		strv_free(argv);
		return -1;
	}
	if (b->kernel)
		kernel_opts(&x, mc, b, h, r);
	disk_opts(&x, mc, b, h, r);
	net_opts(&x, mc, r);
	rng_opts(&x);
	share_opts(&x, mc);
	if (r->loadvm)
		add2(&x, "-loadvm", r->loadvm);
	return 0;
}
