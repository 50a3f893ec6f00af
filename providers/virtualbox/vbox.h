/* The VirtualBox provider, driving VBoxManage (the contract is in
 * providers/virtualbox/README.md), split by concern:
 *   vboxmanage.c  finding and running VBoxManage, its version, its error lines
 *   parse.c       parsers of VBoxManage output (pure; unit-tested)
 *   import.c      boxes into VMs: master VM per box, linked clones, full import
 *   configure.c   the pre-boot modifyvm / natpf / sharedfolder sequence
 *   network.c     host-only interfaces for private networks, guest addresses
 *   ports.c       host ports other VMs' NAT rules hold
 *   autoports.c   `ports: auto`: NAT rules for what the guest listens on
 *   virtualbox.c  the provider vtable over these
 * Internal to providers/virtualbox/. */
#ifndef CORRAL_VBOX_H
#define CORRAL_VBOX_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/diag.h"
#include "core/base/strv.h"
#include "core/config/envfile.h"
#include "core/base/util.h"
#include "core/host/machine.h"
#include "core/host/ports.h"
#include "providers/provider.h"

#define VBOX_MAX_NICS 8

/* ---- vboxmanage.c ---- */

/* One finished VBoxManage run. */
struct vbox_res {
	struct buf out, err;
	int status;    /* exit status; 0 ok, 1 API failure, 2 syntax, 3 init */
	char code[64]; /* "VBOX_E_OBJECT_NOT_FOUND" when the error lines carry one */
};
void vbox_res_free(struct vbox_res *r);

/* $CORRAL_VBOXMANAGE, else VBoxManage on PATH; caller frees. */
int vbox_locate(char **path, struct diag *d);
/* --version: 7.x (but 7.0.0) and 6.1 accepted, anything else is a clear error. */
int vbox_check_version(struct diag *d);
/* Whether host-only addresses are limited to networks.conf's ranges: from
 * 6.1.28 on (and when the version was not checked). */
bool vbox_hostonly_limited(void);

/* Runs VBoxManage ARGS (a: the arguments after VBoxManage) with LANG=C/LC_ALL=C, capturing both streams. A
 * non-zero exit is an error "DOING: VBoxManage: MESSAGE (CODE)"; transient
 * VBOX_E_INVALID_OBJECT_STATE failures are retried a few times first. res
 * may be NULL; when given it is filled (also on failure) and caller frees. */
int vbox_run(const char *doing, const struct strv *a, struct vbox_res *res, struct diag *d);
/* The same, from a NULL-ended list of literal arguments. */
int vbox_runv(const char *doing, struct vbox_res *res, struct diag *d, ...)
	__attribute__((sentinel));
bool vbox_not_found(const struct vbox_res *r);

/* ---- parse.c ---- */

/* `--version`: "7.0.14r161095" after any WARNING: blocks (a "WARNING:" line
 * and its indented or blank continuation lines); -1 if none. */
struct vbox_version {
	int major, minor, patch;
	char text[64];
};
int vbox_parse_version(const char *out, struct vbox_version *v);
/* stderr -> every "VBoxManage: error:" message line but Details/Context,
 * joined by "; ", and the code of its "Details: code X" (or, without
 * details, "Code X (0x...) - ...") line ("" when absent). */
void vbox_parse_error(const char *err, char *msg, size_t msgn, char *code, size_t coden);

/* --machinereadable text: key="value" / key=number lines, keys and values
 * unquoted (\" and \\ unescaped). */
struct vbox_kv {
	char *key, *value;
};
struct vbox_kvs {
	struct vbox_kv *v;
	size_t n;
};
void vbox_kv_parse(const char *text, struct vbox_kvs *out);
const char *vbox_kv_get(const struct vbox_kvs *k, const char *key);
void vbox_kv_free(struct vbox_kvs *k);

/* A NAT rule "name,proto,hostip,hostport,guestip,guestport". */
struct vbox_natpf {
	char name[64], proto[8], host_ip[64], guest_ip[64];
	unsigned host_port, guest_port;
};
int vbox_parse_natpf(const char *rule, struct vbox_natpf *out);
/* Every Forwarding(N) rule of showvminfo; caller frees *v. */
size_t vbox_forwards(const struct vbox_kvs *k, struct vbox_natpf **v);

/* `import -n` output. */
struct vbox_disk {
	unsigned unit;
	char *target;
};
struct vbox_import {
	char *name, *settings_file;
	struct vbox_disk *disks;
	size_t ndisks;
};
int vbox_parse_import(const char *out, struct vbox_import *imp, struct diag *d);
void vbox_import_free(struct vbox_import *imp);
/* Where disk i goes, as Vagrant puts it: the folder of the suggested
 * settings file and the disk's file name (VirtualBox 6.0+ prints only the
 * name; a relative --disk would land in the current directory), the last
 * "/SUGGESTED_NAME/" in it replaced by "/name/". NULL without a settings file. */
char *vbox_disk_target(const struct vbox_import *imp, size_t i, const char *name);

/* `list vms` lines `"name" {uuid}`: the uuid of `name`, or NULL. Caller frees. */
char *vbox_vms_find(const char *out, const char *name);
/* Every uuid of `list vms`, NULL-ended; caller frees each and the array. */
char **vbox_vms_uuids(const char *out);

/* `list hostonlyifs`: blocks of "Key: value" lines. */
struct vbox_hostif {
	char name[64], ip[16], mask[16];
};
size_t vbox_parse_hostifs(const char *out, struct vbox_hostif *v, size_t max);

/* networks.conf: the IPv4 ranges of its "* RANGE RANGE..." lines. */
struct vbox_range {
	uint32_t net; /* host order, host bits zero */
	unsigned prefix;
};
size_t vbox_parse_ranges(const char *text, struct vbox_range *v, size_t max);
/* Whether subnet net/prefix lies wholly inside one of the ranges. */
bool vbox_ranges_allow(const struct vbox_range *v, size_t n, uint32_t net, unsigned prefix);
/* resolv.conf text names 127.0.0.1 or 127.0.1.1 (Vagrant's test for a
 * local resolver, with which the NAT DNS proxy and host resolver break). */
bool vbox_resolver_local(const char *resolv);
/* A VM's VBox.log says its NAT could not bind host port `port` (taken by
 * another program when the VM powered up: VirtualBox runs the VM without
 * that forward). */
bool vbox_log_redirect_failed(const char *log, unsigned port, bool udp);

/* `snapshot list --machinereadable` output: every SnapshotName value, as
 * printed (raw: quotes and backslashes are not escaped). Caller frees. */
void vbox_snapshot_names(const char *out, struct strv *names);

/* ---- import.c ---- */

/* The machine's VM, created from m->box_dir: a linked clone of the box's
 * master VM (imported once, shared, snapshot "base"), or a full import
 * when linked_clone is false. Sets state "id" and "vm_name". */
int vbox_create_vm(struct machine *m, struct diag *d);
/* "corral_<machine>_<machine_id()>": unique per machine dir. */
char *vbox_vm_name(struct machine *m);
/* The uuid of the VM named `name` (*uuid NULL when there is none). */
int vbox_find_vm(const char *name, char **uuid, struct diag *d);
/* Every snapshot name of VM id (none is not an error); caller frees. */
int vbox_snapshot_list(const char *id, struct strv *names, struct diag *d);
int vbox_has_snapshot(const char *id, const char *name, bool *has, struct diag *d);

/* ---- ports.c ---- */

/* Host ports any VM but `self` has NAT rules for, so a new rule does not
 * collide with a VM that is merely powered off. */
int vbox_used_ports(const char *self, struct port_set *u, struct diag *d);
/* *lost: the VM just started could not bind a host port of the machine's
 * recorded forwards (its VBox.log of this power-up says so; a log corral
 * cannot read counts as nothing lost). */
int vbox_ports_lost(struct machine *m, const char *id, bool *lost, struct diag *d);

/* ---- autoports.c ---- */

/* `ports: auto` (when the machine asks for it): the watcher of the VM just
 * started, replacing any earlier one; its entry point `corral __vbox-ports`. */
int vbox_ports_start(struct machine *m, struct diag *d);
int vbox_ports_main(int argc, char **argv);
/* Stops it (halt, suspend, destroy) and saves the state it leaves. */
void vbox_ports_stop(struct machine *m);

/* ---- network.c ---- */

/* The machine's address on network a: a->ip, else the next one the
 * envfile leaves free (.1 is the host's). */
int vbox_guest_ip(const struct machine *m, const struct net_attach *a, char *out, size_t n,
		  struct diag *d);
/* Every private network of m inside the host-only ranges VirtualBox allows
 * ($CORRAL_VBOX_NETWORKS_CONF, else /etc/vbox/networks.conf, else
 * 192.168.56.0/21), else an error naming them and the file to edit. */
int vbox_check_ranges(const struct machine *m, struct diag *d);
int vbox_list_hostifs(struct vbox_hostif *v, size_t max, size_t *n, struct diag *d);
/* The host-only interface holding nc's first address (one of `known`, or
 * created now and given it); its name into `name`. */
int vbox_hostif_for(const struct network_cfg *nc, const struct vbox_hostif *known, size_t nknown,
		    char *name, size_t n, struct diag *d);

/* The machine's NICs on its private networks: MACs from showvminfo. */
int vbox_guest_nics(struct machine *m, struct guest_nic **nics, size_t *n, struct diag *d);

/* ---- configure.c ---- */

/* Vagrant's share name of synced folder i: its guest path, slashes as underscores. */
char *vbox_share_name(const struct machine *m, size_t i);

/* Everything set while the VM is powered off, in Vagrant's order: (fresh
 * VMs: MAC, name), NAT forwards cleared, shared folders, NICs 2..8 cleared,
 * networks, NAT forwards (SSH on an allocated 127.0.0.1 port), defaults,
 * memory/cpus. Records "ssh_port", "ports" and "ip" in state. */
int vbox_configure(struct machine *m, bool fresh, const struct vbox_hostif *ifs, size_t nifs,
		   struct diag *d);

/* ---- virtualbox.c ---- */

/* Whether a VMState value means running for corral (as in Vagrant). */
bool vbox_running_state(const char *raw);
/* showvminfo of the machine's VM; *gone when VirtualBox no longer has it. */
int vbox_showvminfo(const char *id, struct vbox_kvs *k, bool *gone, struct diag *d);

/* ---- package.c ---- */

/* `corral package`: the powered-off VM exported to OVF, as a .box at out. */
int vbox_package(struct machine *m, const char *out, struct diag *d);

#endif
