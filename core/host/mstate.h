/* The keys of a machine's state.json, each named once in one table (its
 * JSON name, its type, and who writes it), read and written only through
 * the accessors below, as the envfile has one key table. A key that is
 * missing, or holds another type than the table says (a hand-edited
 * file), reads as its default: 0, false, NULL, an empty list.
 *
 * Whose keys are whose:
 *   engine        provider, box, box_version, box_dir, ssh_key_installed,
 *                 synced (engine/guest.c), checkpoint, checkpoint_steps
 *   provisioners  provisioned, provision_pending
 *   core          machine_id (machine_id() in core/host/machine.c)
 *   providers     created, ip, ports, ssh_port, bridges, pid, pid_start:
 *                 the same meaning for each provider that has them
 *   container     lower, init, init_services, portfwd_pid, portfwd_start, mode,
 *                 relay_pid, relay_start
 *   kvm           net_addrs, accel_fallback, suspended (container too), accel
 *   virtualbox    id (the VM's uuid), vm_name
 *   incus         instance, image_alias, incus_remote, incus_tls,
 *                 incus_project, location, ssh_host
 * A container created before machine_id existed has its 12-digit id in
 * "id"; machine_id() keeps using it. */
#ifndef CORRAL_MSTATE_H
#define CORRAL_MSTATE_H
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/host/machine.h"

enum mkey {
	MK_PROVIDER,          /* str: the provider that created the machine */
	MK_BOX,               /* str: its box's name */
	MK_BOX_VERSION,       /* str */
	MK_BOX_DIR,           /* str: the unpacked box in the store */
	MK_SSH_KEY_INSTALLED, /* flag: the machine's own login key is in the guest */
	MK_SYNCED,            /* map: synced folder guest path -> the type it got */
	MK_PROVISIONED,       /* list: ids of the steps that ran */
	MK_PROVISION_PENDING, /* flag: the first provisioning plan is not complete */
	MK_MACHINE_ID,        /* str: see machine_id() */
	MK_CREATED,           /* flag (container, kvm) */
	MK_IP,                /* str: the address on its first network */
	MK_PORTS,             /* ports: the forwards of the last up, SSH's first */
	MK_SSH_PORT,          /* int: the host port SSH is forwarded from (kvm, virtualbox) */
	MK_BRIDGES,           /* list: host bridges it holds leases on */
	MK_PID,               /* int: the machine's process (container init, QEMU) */
	MK_PID_START,         /* int: its start time (core/host/proc.h) */
	MK_LOWER,             /* str, container: the overlay's lower dir */
	MK_INIT,              /* str, container: "builtin" | "systemd" */
	MK_INIT_SERVICES,     /* list, container: "NAME RESULT" per rc2.d script the built-in init ran */
	MK_IDMAP_BASE,        /* int, container: the host id its uid/gid 0 maps to */
	MK_PORTFWD_PID,       /* int, container: the port forwarder */
	MK_PORTFWD_START,     /* int, container */
	MK_NET_ADDRS,         /* list, kvm: "10.20.0.5/24" per network */
	MK_ACCEL_FALLBACK,    /* str, kvm: why auto fell back to TCG */
	MK_SUSPENDED,         /* flag, kvm, container: suspended (container: frozen) */
	MK_ID,                /* str, virtualbox: the VM's uuid (see above) */
	MK_VM_NAME,           /* str, virtualbox */
	MK_CHECKPOINT,        /* flag, engine: the `provisioned` checkpoint was taken (reset) */
	MK_CHECKPOINT_STEPS,  /* list, engine: "provisioned" as it was then, for reset */
	MK_CLOUD_INIT,        /* flag: the guest runs cloud-init from corral's seed; up waits for it */
	MK_INSTANCE,          /* str, incus: the instance's name on the server */
	MK_IMAGE_ALIAS,       /* str, incus: the alias of the image it was made from */
	MK_INCUS_REMOTE,      /* str, incus: the server: unix:///PATH or https://HOST:PORT */
	MK_ACCEL,             /* str, kvm: "kvm" | "tcg", the accelerator of its last boot */
	MK_LOCATION,          /* str, incus: the cluster member the instance runs on */
	MK_SSH_HOST,          /* str, incus: the host ssh_port is forwarded on (a remote server's) */
	MK_INCUS_TLS,         /* list, incus: an https remote's client cert, key, server cert ("": none) */
	MK_INCUS_PROJECT,     /* str, incus: the project the instance is in (none: "default") */
	MK_CHECKPOINT_DISK,   /* flag, kvm: the checkpoint holds the disk only (9p folders block savevm) */
	MK_MODE,              /* str, container, kvm: "root" | "rootless", as its last up ran */
	MK_RELAY_PID,         /* int, container without root: its private networks' relay */
	MK_RELAY_START,       /* int, container */
	MK_CGROUP,            /* str, container without root: the delegated cgroup its corral/<id> is in */
	MK_AUTOFWD_PID,       /* int, container without root: the `ports: auto` forwarder (pasta is portfwd) */
	MK_AUTOFWD_START,     /* int, container */
	MK_COUNT
};

/* The key's name in state.json. */
const char *mkey_name(enum mkey k);

/* Scalars. Setting a string to NULL or a flag to false removes the key. */
const char *machine_str(const struct machine *m, enum mkey k);
/* Where the host reaches the machine: "ip", but NULL (as without one)
 * for a machine that ran rootless, whose envfile networks are not the
 * host's ("mode"). */
const char *machine_host_ip(const struct machine *m);
long long machine_int(const struct machine *m, enum mkey k);
bool machine_flag(const struct machine *m, enum mkey k);
void machine_set_str(struct machine *m, enum mkey k, const char *v);
void machine_set_int(struct machine *m, enum mkey k, long long v);
void machine_set_flag(struct machine *m, enum mkey k, bool on);
void machine_del(struct machine *m, enum mkey k);
/* Forgets every key (a VM removed behind corral's back). */
void machine_state_clear(struct machine *m);

/* Lists of strings; an element of another type reads as NULL. */
size_t machine_list_len(const struct machine *m, enum mkey k);
const char *machine_list_get(const struct machine *m, enum mkey k, size_t i);
bool machine_list_has(const struct machine *m, enum mkey k, const char *v);
void machine_list_add(struct machine *m, enum mkey k, const char *v);
void machine_list_clear(struct machine *m, enum mkey k); /* an empty list */

/* Maps of strings. */
const char *machine_map_get(const struct machine *m, enum mkey k, const char *name);
void machine_map_set(struct machine *m, enum mkey k, const char *name, const char *v);
void machine_map_clear(struct machine *m, enum mkey k); /* an empty map */

/* One forwarded port as `up` made it ({guest, host, host_ip, protocol}). */
struct mport {
	unsigned guest, host;
	char host_ip[64];
	bool udp;
};
/* The "ports" list (*v caller frees); entries without numbers are left out. */
size_t machine_ports(const struct machine *m, struct mport **v);
void machine_set_ports(struct machine *m, const struct mport *v, size_t n);
/* The host port the last `up` gave this forward, so halt and up keep it;
 * 0 when none. SSH's own forward (host port "ssh_port") does not count. */
unsigned machine_previous_port(const struct machine *m, unsigned guest, bool udp);

/* A process found again by another corral later: pid and start time. */
struct proc_ident {
	pid_t pid;
	unsigned long long start;
};
enum mproc { MP_MACHINE, MP_PORTFWD, MP_RELAY, MP_AUTOFWD }; /* pid/pid_start, portfwd_pid/_start, relay_pid/_start, autofwd_pid/_start */
struct proc_ident machine_proc(const struct machine *m, enum mproc w);
/* Records pid with its start time now; false when it is already gone. */
bool machine_set_proc(struct machine *m, enum mproc w, pid_t pid);
void machine_clear_proc(struct machine *m, enum mproc w);
/* Stops the recorded process (SIGTERM, SIGKILL after a second) when it is
 * still that process, then forgets it; the caller saves. */
void machine_stop_proc(struct machine *m, enum mproc w);
/* The recorded process is still that one and running. */
bool machine_proc_alive(const struct machine *m, enum mproc w);

#endif
