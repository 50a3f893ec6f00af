/* The built-in container runtime, split by concern like systemd-nspawn:
 *   rootfs.c   the per-machine upper layer, written before boot
 *   passwd.c   the guest's /etc/passwd, parsed as untrusted input
 *   userns.c   the machine's range of host user ids (subuid, pool)
 *   rootless.c what an ordinary user's host must give (subuid, uidmap, sysctls)
 *   spawn.c    namespaces, clone and the hand-off to the init
 *   isolate.c  the init's user namespace, idmapped mounts, capabilities,
 *              seccomp filter and masked /proc and /sys
 *   init.c     the built-in init (corral re-executed as the container's PID 1)
 *   cgroup.c   cpu, memory, pids and device limits (cgroup v2, or v1 controllers)
 *   disk.c     the upper layer on a size-bounded image (`disk:`)
 *   portfwd.c  host ports forwarded to the guest by a detached process
 *   sshbundle.c the host's sshd packed for trees without one (OCI images)
 *   package.c  `corral package`: box tree and upper layer merged into a .box
 *   snapshot.c snapshots (copies of the upper layer) and suspend/resume (freezer)
 *   container.c the provider vtable over these
 * and, for an ordinary user (docs/providers.md, "Without root"):
 *   unshare.c  the user's id map (newuidmap), work in it, the box's copy
 *   pasta.c    the network through pasta, SSH and ports on the host
 *   relay.c    private networks as loopback multicast segments
 * Runs as root, or as the user. Internal to providers/container/. */
#ifndef CORRAL_CONTAINER_H
#define CORRAL_CONTAINER_H
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/base/diag.h"
#include "core/base/strv.h"
#include "core/host/machine.h"
#include "core/host/mstate.h"
#include "core/host/net.h"

#define CT_MAX_NETS 8
#define CT_MAX_BINDS 16
#define CT_IDMAP_SIZE 65536u /* host ids per machine: guest ids 0..65535 */

/* Everything the init needs to boot the machine, passed as argv. */
struct ct_boot {
	const char *lower, *upper, *work, *root; /* root: the overlay's mount point */
	const char *hostname;
	const char *init; /* "builtin" | "systemd" */
	const char *user; /* the SSH user: owns the synced folders */
	const char *sshd_dir; /* the host's sshd packed (sshbundle.c), or NULL: the box's own */
	/* command: image — the image's process: argv, NAME=VALUE, working
	 * directory, user ("name", "uid", "uid:gid", "name:gid"); nsvc 0: none */
	const char *const *svc_argv, *const *svc_env;
	size_t nsvc, nsvc_env;
	const char *svc_dir, *svc_user;
	const char *id;   /* machine_id() */
	uint32_t idmap;   /* the host id guest id 0 maps to */
	const char *console;
	struct net_lease nets[CT_MAX_NETS]; /* eth0, eth1, ... */
	unsigned nnets;
	const struct synced_folder *binds; /* host directories mounted read-write in the guest */
	size_t nbinds;
	/* Without root (unshare.c): the init is spawned in a user namespace of
	 * the user's map, idmap is 0 (ids in the init are the guest's), and the
	 * init writes the machine's files itself (ct_rootfs_write) with these. */
	bool rootless;
	const char *user_pub, *host_key, *name;
};

/* rootfs.c: writes hostname, hosts, resolv.conf, the SSH user's
 * authorized_keys and (once) the machine's SSH host key into the upper
 * layer, with the owners and modes of the box. *host_pub gets the host
 * key's "ssh-ed25519 AAAA..." (caller frees) when it was generated now,
 * NULL when it already existed. */
int ct_rootfs_prepare(const struct machine *m, const struct ct_boot *b, const char *user_pub,
		      char **host_pub, struct diag *d);

/* rootfs.c: ct_rootfs_prepare in two halves: the machine's host key
 * (*host_key: its path; *host_pub set when made now; caller frees both),
 * and the writes into the upper layer (by the init without root, in the
 * machine's user namespace, as only ids mapped there may own them). */
int ct_host_key(const struct machine *m, char **host_key, char **host_pub, struct diag *d);
int ct_rootfs_write(const struct ct_boot *b, const char *user_pub, const char *host_key,
		    const char *name, struct diag *d);
/* Without root the guest's resolv.conf names this address, which pasta
 * forwards to the host's resolver. */
#define CT_PASTA_DNS "10.0.2.3"

/* rootfs.c: rel under the tree dirfd (a layer, or a running guest's
 * /proc/PID/root), read as the guest's untrusted file: no symlink is
 * followed and nothing outside the tree reached. -1 with errno ENOENT and
 * d untouched when it is missing. */
int ct_tree_read(int dirfd, const char *rel, size_t max, char **data, struct diag *d);
/* rootfs.c: what "auto" boots for the box at lower: "systemd" when its
 * /sbin/init is systemd, else "builtin". */
const char *ct_box_init(const char *lower);
/* rootfs.c: a regular file at rel under the tree dirfd, symlinks resolved
 * inside the tree. */
bool ct_tree_has(int dirfd, const char *rel);

/* sshbundle.c: the host's sshd with its loader and libraries, packed once
 * per host binary in corral's cache; *dir (caller frees) is mounted
 * read-only at CT_SSHD_DIR in machines that use it. */
#define CT_SSHD_DIR "/.corral/sshd"
int ct_sshd_bundle(char **dir, struct diag *d);
/* The box's metadata.json says "format": "oci". */
bool ct_box_is_oci(const char *box_dir);
/* The machine runs the host's sshd: an OCI image, or a tree without
 * /usr/sbin/sshd. */
bool ct_needs_host_sshd(const char *box_dir, const char *lower);

/* The console log's cap: past it, console.log moves to console.log.1 (by
 * the init while it runs, by the provider at up). */
#define CT_CONSOLE_MAX (1u << 20)

/* userns.c: the machine's id range, taken once (recorded in its state)
 * and kept until ct_idmap_release at destroy; ct_idmap_upper gives the
 * upper layer's root the box root's owner, moved into the range. */
int ct_idmap_acquire(struct machine *m, const struct ct_boot *b, uint32_t *base, struct diag *d);
void ct_idmap_release(struct machine *m);
int ct_idmap_upper(const struct ct_boot *b, struct diag *d);

/* rootless.c: the checks before a machine boots without root. The files
 * and the program lookup are parameters (unit tests give their own);
 * ct_rootless_host_real names the host's. On success range[0] and
 * range[1] are the user's subuid and subgid ranges. */
struct ct_rootless_host {
	const char *subid[2]; /* subuid, subgid */
	const char *userns_clone, *max_userns, *apparmor; /* sysctl files; absent: not set */
	bool (*have)(const char *prog);
};
struct ct_subid {
	uint32_t start, count;
};
extern const struct ct_rootless_host ct_rootless_host_real;
int ct_rootless_check(const struct ct_rootless_host *h, const char *user, uid_t uid,
		      struct ct_subid range[2], struct diag *d);
/* One line of subuid(5): NAME:START:COUNT. */
bool ct_subid_line(const char *line, char name[64], uint64_t *start, uint64_t *count);
/* The first range of at least CT_IDMAP_SIZE - 1 ids for user (by name) or
 * uid in a whole subuid/subgid file's text; -1 when there is none. */
int ct_subid_find(const char *text, const char *user, uid_t uid, struct ct_subid *out);

/* unshare.c: without root. ct_rootless_ranges: the user's subuid and
 * subgid ranges (ct_rootless_check on the host's files). ct_userns_map
 * writes the map of the process pid (spawned with CLONE_NEWUSER) with
 * newuidmap/newgidmap: guest 0 the user's own id, guest 1..65535 its
 * range; ct_userns_release does that and then says "m" on ctl (the
 * child waits for it). ct_unshare_run runs `corral __ctns ARGS` in such a
 * namespace and waits: "rm PATH", "copy FROM TO". ct_box_mapped gives the
 * rootfs/ of the user's copy of the box in box_dir with the box's owners
 * in the map (made once per box; *lower caller frees). */
int ct_rootless_ranges(struct ct_subid range[2], struct diag *d);
int ct_userns_map(pid_t pid, struct diag *d);
int ct_userns_release(pid_t pid, int ctl, struct diag *d);
int ct_unshare_run(const char *const *args, struct diag *d);
int ct_unshare_rm(const char *path, struct diag *d);
int ct_box_mapped(const char *box_dir, char **lower, struct diag *d);
int ct_ns_main(int argc, char **argv);
/* In a process spawned so (its argv as its entry got it): waits for "m"
 * on fd and runs itself again, now root of the namespace with its
 * capabilities; in that second run, 0 at once. */
int ct_userns_enter(int fd, int argc, char **argv);

/* pasta.c: the machine's network without root: pasta attached to the
 * namespaces of pid, the guest at ip (CT_PASTA_IP) on eth0, SSH and the
 * envfile's ports forwarded from the host (picked by core/host/ports.c,
 * recorded in state); pasta's identity is state MP_PORTFWD (stopped by
 * ct_ports_stop). */
#define CT_PASTA_IP "10.0.2.15"
#define CT_PASTA_GW "10.0.2.2"
#define CT_PASTA_PREFIX 24
int ct_pasta_start(struct machine *m, pid_t pid, struct diag *d);
/* What this user lacks for pasta (the program, /dev/net/tun), with the fix. */
int ct_pasta_usable(struct diag *why);

/* relay.c: private networks without root: taps[i] is the init's tap for
 * eth<i> (i >= 1, one per envfile network of the machine), relayed by a
 * detached `corral __ctrelay` to the network's loopback multicast group
 * (state MP_RELAY; ct_relay_stop ends it). */
int ct_relay_start(struct machine *m, const int *taps, struct diag *d);
/* An address on the network's segment for a machine without `ip:`. */
int ct_segment_ip(const struct machine *m, const char *network, const char *subnet,
		  const struct net_skip *skip, char ip[16], struct diag *d);
void ct_relay_stop(struct machine *m);
int ct_relay_main(int argc, char **argv);

/* passwd.c: one line of passwd(5), split in place (fields point into
 * line); false for a line that is not seven fields with numeric ids. */
struct passwd_entry {
	const char *name, *home, *shell;
	unsigned uid, gid;
};
bool passwd_parse_line(char *line, struct passwd_entry *e);
/* The first entry for user in a whole file's text (changed in place);
 * -1 when there is none. */
int passwd_lookup(char *data, const char *user, struct passwd_entry *out);
/* The lowest id in [from, to) that no uid or gid of passwd and no gid of
 * group (texts of passwd(5) and group(5), NULL as empty) uses; 0 when
 * every one is taken. */
unsigned passwd_free_id(const char *passwd, const char *group, unsigned from, unsigned to);

/* spawn.c: clones the init in new mount, pid, uts, ipc and net namespaces,
 * in its own session, and returns once it runs; *ctl is the control socket
 * for ct_spawn_finish; taps[0..CT_MAX_NETS) the tap fds the init sent
 * (without root, private networks), -1 for none. */
int ct_spawn(const struct ct_boot *b, pid_t *pid, int *ctl, int *taps, struct diag *d);
/* Tells the init that its cgroup and links are ready, then waits until it
 * reports the root file system mounted and its services started (or the error). */
int ct_spawn_finish(int ctl, uint64_t timeout_ms, struct diag *d);

/* isolate.c, run by the init as host root. iso_namespaces makes the user
 * namespace (guest ids at base) with the net, UTS and IPC namespaces it
 * owns, joins the latter and gives back the former, for the idmapped
 * mounts and iso_enter. iso_idmap_lower mounts the box's tree idmapped at
 * stage; iso_idmap_bind idmaps a detached synced folder so its host owner
 * is user's uid/gid in the guest. iso_protect masks /proc and /sys as
 * runc does; iso_cgroup_own moves the init into a cgroup v2 group of the
 * machine's on a v1 host, iso_cgroup mounts that group, delegated. iso_enter
 * becomes root of the user namespace in a mount namespace of its own, with
 * a new keyring, the seccomp filter and the kept capabilities only. */
int iso_namespaces(uint32_t base, int *userns, struct diag *d);
int iso_idmap_lower(const char *lower, const char *stage, int userns, struct diag *d);
int iso_idmap_bind(int tree, const char *src, const char *root, const char *user, uint32_t base,
		   struct diag *d);
int iso_protect(const char *root, struct diag *d);
int iso_cgroup_own(const char *root, const char *id, struct diag *d);
int iso_cgroup(const char *root, uint32_t base, struct diag *d);
int iso_enter(int userns, bool systemd, struct diag *d);

/* init.c: `corral __init KEY=VALUE...` — never returns on success. */
int ct_init_main(int argc, char **argv);

/* cgroup.c: limits for the machine's processes, out of the guest's reach
 * (they sit above the cgroup its namespace is rooted in). A limit that
 * cannot be applied is an error naming it, unless best_effort. */
struct ct_limits {
	unsigned cpus, pids;
	uint64_t memory;
	bool fuse, best_effort;
};
int ct_cgroup_apply(const char *id, pid_t pid, const struct ct_limits *l, struct diag *d);
/* The cgroup corral/<id> goes in, to be recorded at up: without root the
 * delegated cgroup this process runs in (NULL when none), which `destroy`
 * may not run in. */
char *ct_cgroup_where(void);
/* Removes corral/<id> from under `where` (ct_cgroup_where() of the up;
 * NULL: this process's). */
void ct_cgroup_remove(const char *id, const char *where);
/* Freezes (on) or thaws the machine's processes through its v2 group's
 * cgroup.freeze (under `where`, as for ct_cgroup_remove), waiting until
 * they are; an error naming the fix when it has no such group (without
 * root: no delegated cgroup). */
int ct_cgroup_freeze(const char *id, const char *where, bool on, struct diag *d);
/* Root, or a cgroup (v2) delegated to the user: a machine gets its own. */
bool ct_cgroup_delegated(void);
/* `limits: best-effort`: a limit that cannot be applied is a warning. */
bool ct_best_effort(const struct machine_cfg *c);
/* A limit that could not be applied, the reason in d: under best_effort
 * a warning "[NAME: ]the `SETTING` limit is not applied (limits:
 * best-effort): REASON", d cleared, 0; else -1 with d saying "[NAME: ]the
 * `SETTING` limit could not be applied: REASON" and `hint`. name may be
 * NULL. */
int ct_limit_missed(bool best_effort, const char *name, const char *setting, const char *hint,
		    struct diag *d);

/* container.c: the host side of eth<i>'s veth pair, from the machine id. */
void ct_veth_name(const char *id, unsigned i, char *out, size_t n);
/* container.c: its cgroups, disk image mount and first nlinks veths. */
void ct_release_host(struct machine *m, unsigned nlinks);
/* reap.c: the provider's `reap` (see providers/provider.h). */
int ct_reap(struct machine *m, bool *found, struct diag *d);

/* disk.c: the machine's upper and work directories (caller frees): on
 * its size-bounded image, mounted now, when it has one or is `creating`
 * with `disk:` set; else plain directories in its state directory. */
int ct_disk_open(const struct machine *m, bool creating, char **upper, char **work,
		 struct diag *d);
/* Unmounts the image (when mounted); the machine's processes are gone. */
void ct_disk_close(const struct machine *m);

/* container.c: the provider's up; ct_stop stops the machine's processes
 * (a suspended one thawed first) and releases what they held, the caller
 * saves; ct_copy_tree is cp -a (owners, modes, xattrs with overlay's
 * marks, whiteouts, hard links; reflinks where it can; `to` replaced) and
 * ct_rm_tree rm -rf, both in the user's ids without root. */
int ct_up(struct machine *m, struct diag *d);
int ct_stop(struct machine *m, bool force, struct diag *d);
int ct_copy_tree(const char *from, const char *to, struct diag *d);
/* cp -a from to (as this process); ct_copy_fresh replaces `to` first. */
int ct_cp_a(const char *from, const char *to, struct diag *d);
int ct_copy_fresh(const char *from, const char *to, struct diag *d);
int ct_rm_tree(const char *p, struct diag *d);

/* snapshot.c: the provider's snapshot and suspend entries (provider.h).
 * Snapshots are directories in the machine's CT_SNAPSHOTS/; a restore
 * copies one to CT_UPPER_NEW beside the upper layer, then swaps the two. */
#define CT_SNAPSHOTS "snapshots"
#define CT_UPPER_NEW "upper.restore"
/* The upper layer (the machine stopped, its disk open) replaced by a copy
 * of `from` (a snapshot, the `provisioned` checkpoint): copied to
 * CT_UPPER_NEW, the work dir emptied, the two swapped in one rename. */
int ct_upper_replace(const char *upper, const char *work, const char *from, struct diag *d);
int ct_snapshot_save(struct machine *m, const char *name, struct diag *d);
int ct_snapshot_restore(struct machine *m, const char *name, struct diag *d);
int ct_snapshot_delete(struct machine *m, const char *name, struct diag *d);
int ct_snapshot_list(struct machine *m, struct strv *out, struct diag *d);
int ct_suspend(struct machine *m, struct diag *d);
int ct_resume(struct machine *m, struct diag *d);

/* package.c: the stopped machine's merged tree as a container .box at out. */
int ct_package(struct machine *m, const char *out, struct diag *d);

/* portfwd.c: binds the machine's forwarded ports as core/host/ports.c
 * picks them, records them in state "ports", and starts the detached
 * forwarder (its identity: state MP_PORTFWD). Without root pasta has the
 * envfile's ports: the forwarder does `ports: auto` only, reaching the
 * guest at guest_ip (CT_PASTA_IP) from inside the machine's user and
 * network namespaces (state MP_AUTOFWD). */
int ct_ports_start(struct machine *m, const char *guest_ip, struct diag *d);
void ct_ports_stop(struct machine *m);
/* `corral __portfwd GUEST_IP MAX_CONNECTIONS FD:GUEST_PORT[/udp]...` (and
 * `userns`: connect from the namespaces of the init of `auto=PID`) — serves
 * until killed; at most MAX_CONNECTIONS open TCP connections per port, more
 * are closed as they come. */
int ct_portfwd_main(int argc, char **argv);

#endif
