/* The KVM/QEMU provider's modules and what they share. A machine is a
 * daemonized qemu-system-x86_64 whose files live in .corral/machines/NAME/:
 *   disk.qcow2    overlay whose backing file is the box's box.img
 *   qemu.pid      QEMU's pidfile      qmp.sock   its QMP socket
 *   console.log   the serial console  cidata.iso NoCloud seed (cloud-init boxes)
 *   OVMF_VARS.qcow2 the UEFI variable store (firmware: uefi), qcow2 for savevm
 *   ssh_host_ed25519_key  the guest's host key, made here (cloud-init boxes)
 *
 *   qemu_argv.c  machine + box + host facts -> QEMU argv (pure, golden-tested)
 *   accel.c      KVM or TCG, seeing through nested-PVM hosts
 *   qmp.c        a QMP client over the unix socket
 *   cidata.c     the NoCloud ISO9660 image, written by libarchive
 *   img.c        qemu-img (overlay, snapshots while stopped), box metadata
 *   snap.c       snapshots and suspend/resume
 *   autoports.c  `ports: auto`: the shared watcher (providers/autoports.h)
 *                adding QEMU hostfwd rules
 *   kvm.c        the vtable: up, halt, state, destroy
 * Host ports come from core/host/ports.c, state keys from core/host/mstate.h. */
#ifndef CORRAL_KVM_H
#define CORRAL_KVM_H
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "core/base/diag.h"
#include "core/config/envfile.h"
#include "core/host/machine.h"
#include "providers/provider.h"

#define KVM_QEMU "qemu-system-x86_64"
#define KVM_OVMF_CODE "/usr/share/OVMF/OVMF_CODE_4M.fd"
#define KVM_OVMF_VARS "/usr/share/OVMF/OVMF_VARS_4M.fd"
#define KVM_SUSPEND_TAG "corral-suspend"
#define KVM_VARS "OVMF_VARS.qcow2" /* the machine's copy of KVM_OVMF_VARS */

/* A box's metadata.json, file names made absolute in the box directory. */
struct kvm_box {
	char *disk;        /* box.img */
	char *format;      /* box.img's format: "qcow2" | "raw" (a cloud image kept as published) */
	char *firmware;    /* "bios" | "uefi": how the image boots unless the envfile says */
	char *kernel, *initrd, *cmdline; /* direct kernel boot, or NULL */
	bool cloud_init;   /* "cloud_init": true — seed it with a cidata image */
};
int kvm_box_load(const char *box_dir, struct kvm_box *b, struct diag *d);
void kvm_box_free(struct kvm_box *b);

/* Facts about the host the argv depends on. */
struct qemu_host {
	const char *binary;    /* KVM_QEMU */
	bool kvm;              /* the accelerator accel.c chose */
	const char *ovmf_code; /* KVM_OVMF_CODE */
	unsigned tsc_khz;      /* the host's TSC rate, which a TCG guest's TSC runs at; 0: unknown */
};

/* A private network as the argv sees it: a tap on a corral bridge (root),
 * else a multicast socket segment shared by the machines of the network. */
struct qemu_net {
	char tap[16];       /* "" : socket networking */
	char mcast[32];     /* "230.0.X.Y:PORT" when no tap */
	char ip[20];        /* "10.213.0.5/24", "" when unknown */
};

/* What `up` allocated for this boot. */
struct qemu_run {
	const char *dir;            /* the machine directory */
	unsigned ssh_port;          /* on 127.0.0.1 */
	const unsigned *host_ports; /* cfg->ports[i]'s host port, resolved */
	const struct qemu_net *nets; /* one per cfg->networks[i] */
	bool cidata;                /* dir/cidata.iso exists */
	const char *loadvm;         /* resume from this snapshot, or NULL */
};

/* Whether the machine boots through UEFI: provider_options.kvm.firmware,
 * else the box's metadata, else BIOS. */
bool kvm_uefi(const struct machine_cfg *mc, const struct kvm_box *b);

/* The whole argv, NULL-terminated; every value is one element, paths in
 * QEMU option strings have their commas doubled. Errors: microvm without
 * a kernel, a unix socket path too long. */
int qemu_argv(const struct machine_cfg *mc, const struct kvm_box *b, const struct qemu_host *h,
	      const struct qemu_run *r, struct strv *argv, struct diag *d);
/* 52:54:00:xx:xx:xx from the machine directory and NIC index. */
void qemu_mac(const char *dir, unsigned nic, char out[18]);

/* accel.c. What decides "auto", probed once per up. */
struct accel_facts {
	bool dev_kvm;     /* /dev/kvm opens and KVM_CREATE_VM succeeds */
	bool dev_kvm_denied; /* /dev/kvm is there, but this user may not open it */
	bool pvm_module;  /* /sys/module/kvm_pvm exists */
	bool nested_pvm;  /* nested_pvm=1 on /proc/cmdline */
};
void accel_probe(struct accel_facts *f);
/* want: "auto" | "kvm" | "tcg" (NULL: auto). *kvm: the choice. why: the
 * one warning line to print ("" when nothing to say; a /dev/kvm the user
 * may not open is TCG with the fix named). Explicit "kvm" on a host
 * without a usable /dev/kvm is an error. */
int accel_pick(const char *want, const struct accel_facts *f, bool *kvm, char *why, size_t n,
	       struct diag *d);
/* The host's TSC rate in kHz, measured against CLOCK_MONOTONIC_RAW over
 * 5 ms; 0 on hosts that are not x86-64. */
unsigned accel_tsc_khz(void);

/* autoports.c: `ports: auto`, the watcher of a running machine (started
 * once QEMU runs; stopping it also removes its list of forwards) and its
 * entry point, `corral __kvm-ports`. */
int kvm_ports_start(struct machine *m, struct diag *d);
void kvm_ports_stop(struct machine *m);
int kvm_ports_main(int argc, char **argv);

/* qmp.c */
struct qmp;
int qmp_open(const char *sock_path, unsigned timeout_ms, struct qmp **out, struct diag *d);
/* Runs cmd with args (stolen; may be NULL); *ret (may be NULL) gets "return". */
int qmp_exec(struct qmp *q, const char *cmd, json_t *args, json_t **ret, struct diag *d);
/* A human monitor command (savevm, loadvm, delvm); its text output, if any,
 * is an error (those commands print only on failure). */
int qmp_hmp(struct qmp *q, const char *line, struct diag *d);
void qmp_close(struct qmp *q);
/* open, one command, close. */
int qmp_call(const char *sock_path, const char *cmd, json_t *args, json_t **ret,
	     struct diag *d);

/* cidata.c: user (with the machine's public key and sudo), hostname,
 * instance id, the SSH host key corral made (pinned before first contact),
 * 9p mounts of synced folders and, for private networks, a network-config
 * matching NICs by MAC; the envfile's user-data merged after corral's own
 * (a MIME multipart whose second part appends to lists). */
struct cidata {
	const char *user, *pubkey, *hostname, *instance_id;
	const char *host_key, *host_pub; /* OpenSSH private key text and public line, or NULL */
	const char *user_data;           /* the envfile's, or NULL */
	const struct synced_folder *synced;
	size_t nsynced;
	const struct qemu_net *nets;
	size_t nnets;
	const char *dir; /* for the MACs */
};
int cidata_write(const char *path, const struct cidata *c, struct diag *d);

/* img.c: qemu-img. */
/* A qcow2 overlay on backing (of format fmt), grown to size (0: as it is). */
int img_overlay(const char *backing, const char *fmt, const char *overlay, uint64_t size,
		struct diag *d);
/* op: 'c' create, 'a' apply, 'd' delete. */
int img_snapshot(const char *image, char op, const char *name, struct diag *d);
int img_snapshot_list(const char *image, struct strv *out, struct diag *d);

/* package.c: the stopped machine's disk flattened into a kvm .box at out. */
int kvm_package(struct machine *m, const char *out, struct diag *d);

/* snap.c: the optional vtable entries. */
int kvm_suspend(struct machine *m, struct diag *d);
int kvm_resume(struct machine *m, struct diag *d);
int kvm_snapshot_save(struct machine *m, const char *name, struct diag *d);
int kvm_snapshot_restore(struct machine *m, const char *name, struct diag *d);
int kvm_checkpoint(struct machine *m, struct diag *d);
/* Whether the guest has a 9p export mounted, so that the `provisioned`
 * checkpoint must be disk-only: from what the guest set-up did (each
 * folder's resolved type in MK_SYNCED: `auto` may have fallen back to
 * rsync); a folder with no record counts by its configured type. */
bool kvm_guest_9p(const struct machine *m);
/* A folder shared over 9p (`9p` and `auto`; rsync ones are copied). */
static inline bool kvm_folder_9p(const struct synced_folder *s)
{
	return s->type == SYNC_9P || s->type == SYNC_AUTO;
}
int kvm_snapshot_delete(struct machine *m, const char *name, struct diag *d);
int kvm_snapshot_list(struct machine *m, struct strv *out, struct diag *d);

/* kvm.c, for snap.c */
bool kvm_running(struct machine *m);
int kvm_boot(struct machine *m, const char *loadvm, struct diag *d);
int kvm_stop(struct machine *m, bool force, struct diag *d);

#endif
