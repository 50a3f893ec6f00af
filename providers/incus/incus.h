/* The incus provider: machines are instances of an Incus (or LXD: the same
 * REST API) server, driven over its API with libcurl and jansson, never
 * through the `incus`/`lxc` client. Split by concern:
 *   api.c    the REST client: requests over the unix socket or HTTPS, background
 *            operations followed to completion, the server's errors
 *   files.c  files written into a created instance before its first start
 *            (the machine key, the pinned host key, an sshd init)
 *   image.c  the machine's box uploaded once as an image, under an alias
 *            keyed by the box's digest
 *   vm.c     virtual-machine instances: cloud-init, MACs, the address
 *   shape.c  devices and limits from the envfile, re-applied to a stopped
 *            instance on `up`; synced folders as disk devices
 *   autoports.c  `ports: auto`: the shared watcher adding proxy devices
 *   net.c    envfile networks as managed networks, a NIC per network
 *   ovn.c    whether those are bridges or OVN networks, over which uplink
 *   remote.c `remote: NAME` from the user's incus/lxc client configuration
 *   place.c  clusters: members, where an instance runs, SSH through a
 *            proxy device on that member when its address is not routable
 *   incus.c  the provider vtable: names, addresses, lifecycle
 * Internal to providers/incus/. */
#ifndef CORRAL_INCUS_H
#define CORRAL_INCUS_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"
#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/host/machine.h"

/* ---- api.c ---- */

/* Where the server is: a unix socket, or an https:// URL with a TLS
 * client certificate and the server's certificate. */
struct incus_client {
	char *socket;  /* unix socket path, or NULL */
	char *url;     /* "https://HOST:PORT", or NULL */
	char *cert, *key, *server_cert; /* PEM files (https) */
	char *project; /* NULL: "default" */
	char *target;  /* cluster member for new instances, or NULL */
};

/* The server of cfg's remote (see docs/envfile.md), or an error naming
 * what was looked for. */
int incus_client_open(struct incus_client *c, const struct machine_cfg *cfg, struct diag *d);
/* The local daemon's socket ($INCUS_DIR, $LXD_DIR, the usual paths), or
 * NULL; caller frees. */
char *incus_default_socket(void);
/* Points c at remote ("unix:///PATH" or an https:// URL) instead. */
void incus_client_set_remote(struct incus_client *c, const char *remote);
/* c's server as a remote string; caller frees. */
char *incus_client_remote(const struct incus_client *c);
void incus_client_close(struct incus_client *c);

/* One API call: METHOD path (from "/1.0"), a JSON body or none. A sync
 * answer's metadata, or an async one's operation followed to its end (at
 * most timeout_ms) and that operation's metadata, goes to *meta when meta
 * is not NULL (caller decrefs; may be NULL). Errors carry the server's
 * message; *status (may be NULL) gets the HTTP or operation status code:
 * 404 when what the path names does not exist. */
int incus_call(struct incus_client *c, const char *method, const char *path, json_t *body,
	       json_t **meta, long *status, struct diag *d);
/* The same with a raw body from a file (image upload) or a buffer (file
 * push), and extra "Name: value" headers (NULL-ended). Exactly one of
 * file and data is set. */
struct incus_raw {
	const char *file;
	const char *data;
	size_t len;
	const char *const *headers;
};
int incus_call_raw(struct incus_client *c, const char *method, const char *path,
		   const struct incus_raw *raw, json_t **meta, long *status, struct diag *d);
/* GET of a file inside an instance: its bytes (not JSON) into out. The
 * file calls are made again, up to INCUS_FILE_TRIES in all over about a
 * second and a half, while the server answers 500 (its file helper
 * failed to start). */
#define INCUS_FILE_TRIES 4
int incus_file_get(struct incus_client *c, const char *instance, const char *path,
		   struct buf *out, long *status, struct diag *d);
/* POST of a file into an instance: data[0..len) with the extra
 * "Name: value" headers (NULL-ended: owner, mode, type). */
int incus_file_put(struct incus_client *c, const char *instance, const char *path,
		   const char *const *headers, const char *data, size_t len, struct diag *d);

/* An instance's state (GET /1.0/instances/NAME/state) into *st (caller
 * decrefs), asked again for up to INCUS_STATE_ERROR_MS while its status
 * is "Error" (a monitor slow to answer, not a verdict); *status as for
 * incus_call (may be NULL). */
int incus_state_get(struct incus_client *c, const char *instance, json_t **st, long *status,
		    struct diag *d);

#define INCUS_OP_TIMEOUT_MS 600000u /* a background operation (image upload, create) */
#define INCUS_STATE_ERROR_MS 30000u  /* how long a state of "Error" is asked again */

/* ---- remote.c ---- */

/* c at o->remote, a remote's name in the user's incus/lxc client
 * configuration, with that configuration's certificates (o's own files
 * win), or an error saying where it looked. */
int incus_remote_named(struct incus_client *c, const struct incus_opts *o, struct diag *d);

/* ---- place.c ---- */

/* The cluster's members (none when the server is not clustered). */
int incus_members(struct incus_client *c, struct strv *names, struct diag *d);
/* After create and each start: the member instance `name` is on (the
 * machine's "location", none when not clustered) and, when SSH goes
 * through a proxy device (provider_options.incus.ssh), that device on the
 * member's address, recorded as "ssh_host" and "ssh_port". */
int incus_place(struct incus_client *c, struct machine *m, const char *name, struct diag *d);
/* The address of the member the machine runs on (its "location") when
 * that member is not this host, into *host (caller frees), else NULL. */
int incus_member_away(struct incus_client *c, const struct machine *m, char **host,
		      struct diag *d);

/* After the server refused to create an instance (400, no target): when
 * it is clustered and no member is online but one is offline, waits up to
 * cluster.offline_threshold for one to come online (a line for machine
 * says so): 1 when one did (create again). 0 when there is nothing to
 * wait for (the refusal stands); -1 with d set when none came or every
 * member is evacuated. */
int incus_member_wait(struct incus_client *c, const char *machine, struct diag *d);

/* ---- image.c ---- */

/* The image the machine's box became on the server (uploaded the first
 * time: one per box, shared by every machine, envfile and host using the
 * box): its alias ("corral-<64 hex of the box's digest>") in *alias
 * (caller frees). vm: a virtual-machine image from a kvm box. */
int incus_image_ensure(struct incus_client *c, struct machine *m, bool vm, char **alias,
		       struct diag *d);
/* The box's sha256 (64 hex) from its store record, else the hash of its
 * path; caller frees. */
char *incus_box_digest(const char *box_dir);
/* Removes the image under alias unless an instance still uses it. */
int incus_image_release(struct incus_client *c, const char *alias, struct diag *d);

/* ---- net.c ---- */

/* The machine's envfile networks: each bridge made when missing (and
 * recorded in the machine's "bridges"), a NIC eth1... per network added to
 * devices (one there already on the same bridge keeps its address unless
 * the envfile gives one) and its address line to raw (raw.lxc). owner:
 * the instance name. */
int incus_nets_attach(struct incus_client *c, struct machine *m, const char *owner,
		      json_t *devices, struct buf *raw, struct diag *d);
/* The machine's bridges (its "bridges"), pushed onto names. */
void incus_nets_of(const struct machine *m, struct strv *names);
/* On a cluster, after instance self started on member loc: a warning for
 * each instance on one of the machine's envfile networks (a bridge: one
 * per member) that runs on another member (they do not reach each other). */
void incus_nets_check(struct incus_client *c, const struct machine *m, const char *self,
		      const char *loc);
/* Deletes those of names no instance is on any more. */
int incus_nets_release(struct incus_client *c, const struct strv *names, struct diag *d);

/* ---- ovn.c ---- */

/* The uplink an envfile network made on c's server goes over as an OVN
 * network (*uplink, caller frees), or NULL for a bridge: o's network_type
 * and uplink, else whether the server has OVN and an uplink network with
 * ipv4.ovn.ranges. network_type: ovn without them is an error. */
int incus_net_uplink(struct incus_client *c, const struct incus_opts *o, char **uplink,
		     struct diag *d);
/* Whether managed network net is an OVN network (false when unknown). */
bool incus_net_is_ovn(struct incus_client *c, const char *net);

/* ---- incus.c ---- */

/* A free address on managed network net (the server's leases and the
 * gateway are taken), the gateway and the prefix; ip and gw hold 16. */
int incus_pick_address(struct incus_client *c, const char *net, const char *owner, char *ip,
		       char *gw, unsigned *prefix, struct diag *d);

/* ---- files.c ---- */

/* Before the first start of instance `name`: the machine's key in the SSH
 * user's authorized_keys, a host key corral made (pinned in the machine's
 * known_hosts), and, for a busybox-init box without /etc/inittab, one that
 * starts sshd. *busybox says whether that init is busybox's. */
int incus_files_prepare(struct incus_client *c, struct machine *m, const char *name,
			bool *busybox, struct diag *d);
/* The SSH user's uid and gid in instance name's /etc/passwd. */
int incus_user_ids(struct incus_client *c, const struct machine *m, const char *name,
		   unsigned *uid, unsigned *gid, struct diag *d);
/* The machine's public key, and a new host key (private, public) pinned
 * in its known_hosts; callers free all three. */
int incus_keys_make(struct machine *m, char **pub, char **host_key, char **host_pub,
		    struct diag *d);

/* ---- vm.c ---- */

bool incus_is_vm(const struct machine_cfg *cfg);
/* Whether the server runs virtual machines (its driver has QEMU). */
int incus_vm_usable(struct incus_client *c, struct diag *d);
/* Turns create body (a container's) into a virtual machine's: its type,
 * no raw.lxc, a MAC of corral's per NIC, cloud-init user-data (the SSH
 * user with the machine's key, the pinned host key, the hostname) and
 * network-config, proxy devices in NAT mode, stateful stop when the
 * server has it. */
int incus_vm_shape(struct incus_client *c, struct machine *m, const char *name, json_t *body,
		   struct diag *d);
/* Instance (or create body) inst's NICs given corral's MACs (fixed by
 * name and device: a NIC made again keeps its MAC), and the cloud-init
 * network-config (in the key its user-data is under) that matches them. */
void incus_vm_nics(const char *name, json_t *inst);
/* After start: the address the server reports for eth0 (its DHCP lease or
 * the agent's), recorded as the machine's ip; the one corral reserved
 * stays when none shows within a while. */
int incus_vm_address(struct incus_client *c, struct machine *m, struct diag *d);
/* The proxy devices in NAT mode, connecting to the VM's address ip. */
void incus_vm_proxies(json_t *devices, const char *ip);
/* Whether `suspend` is a stateful stop: a VM made with migration.stateful. */
int incus_stateful(struct incus_client *c, const char *name, bool *yes, struct diag *d);

/* ---- shape.c ---- */

/* The envfile's synced folders as disk devices (a local container),
 * shifted where the server has shiftfs. */
int incus_folders_attach(struct incus_client *c, const struct machine *m, json_t *devices,
			 struct diag *d);
/* raw.idmap in config for unshifted folder devices: the first folder's
 * host owner is the SSH user in the guest (no entry for a root-owned
 * folder); removed when there is none. */
int incus_folders_idmap(struct incus_client *c, struct machine *m, json_t *config,
			struct diag *d);
/* `type: auto` folders: disk devices on a local container, else rsync. */
enum sync_type incus_sync_auto(const struct machine *m);
/* PUT of instance name: inst (as GET gave it, changed) as InstancePut. */
int incus_instance_put(struct incus_client *c, const char *name, const json_t *inst,
		       struct diag *d);
/* A stopped instance made again to fit the envfile: limits, root disk
 * size, forwarded ports and synced folders (PUT of the instance). */
int incus_reapply(struct incus_client *c, struct machine *m, struct diag *d);
/* A proxy device from PROTO:listen_ip:listen_port (an IPv6 address in
 * brackets) to PROTO:connect_ip:connect_port. */
json_t *incus_proxy_device(const char *proto, const char *listen_ip, unsigned listen_port,
			   const char *connect_ip, unsigned connect_port);
/* The forwards as proxy devices "corral-port-PROTO-HOST", host ports
 * picked and recorded as the machine's ports. */
int incus_ports_attach(struct machine *m, json_t *devices, struct diag *d);

/* ---- autoports.c ---- */

/* `corral __incus-ports ...`: the watcher's entry point. */
int incus_ports_main(int argc, char **argv);
/* Starts the watcher for the running machine m (ports: auto) on c's
 * server, replacing one left running; nothing without ports: auto. */
int incus_ports_start(struct machine *m, struct incus_client *c, struct diag *d);
void incus_ports_stop(struct machine *m);

#endif
