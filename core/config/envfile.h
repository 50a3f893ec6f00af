/* The envfile (corral.yaml): parsed with libyaml into the typed structs
 * below and validated as a whole. After envfile_load() nothing looks a key
 * up by string: every value has a field. Reference: docs/envfile.md. */
#ifndef CORRAL_ENVFILE_H
#define CORRAL_ENVFILE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/diag.h"
#include "core/base/strv.h"

struct srcpos {
	int line, col; /* 1-based; 0 = not from the file (a default) */
};

struct kv {
	char *key, *value;
};

enum run_when { RUN_ONCE, RUN_ALWAYS, RUN_NEVER };
enum step_kind { STEP_SHELL, STEP_FILE, STEP_ANSIBLE };

struct shell_step {
	char *inline_script; /* exactly one of inline_script and path */
	char *path;          /* absolute host path */
	struct strv args; /* each quoted when the command line is built */
	struct kv *env;
	size_t nenv;
	bool privileged; /* default true: sudo, keeping env */
	bool binary;     /* default false: CRLF converted to LF, as Vagrant does */
	bool sensitive;  /* hide command and env from logs */
};

struct file_step {
	char *source;      /* absolute host path (file or directory); exists */
	char *destination; /* absolute, or starting with "~" */
};

/* Vagrant's groups map: "g: [hosts]", "g:children: [groups]", "g:vars: {k: v}". */
struct ansible_group {
	char *name;
	struct strv hosts;
	struct strv children;
	json_t *vars;      /* "g:vars": an object of any YAML values, or NULL */
	struct srcpos pos; /* the group's key */
};

/* A bool the user may leave out, the default then decided elsewhere. */
enum opt_bool { OPT_UNSET, OPT_FALSE, OPT_TRUE };

struct ansible_step {
	char *playbook;  /* absolute host path */
	char *inventory; /* absolute host path, or NULL: corral generates one */
	struct ansible_group *groups;
	size_t ngroups;
	json_t *extra_vars; /* a JSON object, or NULL */
	char *limit;        /* NULL: the machine itself (machine step) or its targets (top level) */
	bool become;
	struct strv tags, skip_tags, raw_arguments;
	int verbose; /* 0..4: -v... */
	/* ANSIBLE_PIPELINING; OPT_UNSET: on unless the user's own Ansible
	 * config chose (provisioners/ansible_cfg.c). */
	enum opt_bool pipelining;
	/* Top-level steps only: every machine the step targets, in envfile
	 * order — the hosts of its groups, or every machine when it has none. */
	struct strv targets;
};

struct step {
	enum step_kind kind;
	char *name;     /* the user's `name`, else "shell", "file" or "ansible" */
	unsigned index; /* 1-based position in its provision list */
	enum run_when run;
	/* What "ran" records: sha256 hex of the step's config as sorted-key JSON
	 * (what it does: not name, run, sensitive or verbose) plus the content
	 * hash of each file it reads (script, source, playbook, inventory;
	 * a directory source counts by path). Editing a script makes a new
	 * step; repeats of one step in a list get distinct ids. */
	char id[65];
	struct srcpos pos;
	union {
		struct shell_step shell;
		struct file_step file;
		struct ansible_step ansible;
	};
};

/* A trigger (Vagrant's config.trigger): a command run on the host or in
 * the guest before or after an action on a machine (or, at envfile level,
 * before the action starts on any machine / after it ended on all). */
struct trigger_cfg {
	char *name;         /* default "trigger N" */
	struct strv before; /* actions: up, halt, reload, destroy, provision */
	struct strv after;
	struct strv run;    /* host argv; an inline string is ["/bin/sh", "-c", s]; empty: none */
	char *run_remote;   /* a shell command line in the guest; NULL: none */
	bool on_error_continue; /* on_error: continue — a failing `before` does not stop the action */
	struct srcpos pos;
};

struct port_fwd {
	unsigned guest, host; /* host 0: pick a free port */
	char *host_ip;        /* default "127.0.0.1" */
	bool udp;             /* protocol: tcp (default) | udp */
	bool auto_correct;
	struct srcpos pos;
};

/* A readiness probe (`ready:`): exactly one of tcp, http and command.
 * tcp and http are checked from the host (a forwarded port, else the
 * machine's address), command over SSH; each is retried every interval
 * until it passes or timeout has passed since the first try. */
enum probe_kind { PROBE_TCP, PROBE_HTTP, PROBE_COMMAND };
#define ENV_PROBE_TIMEOUT_MS 60000u  /* ready[].timeout */
#define ENV_PROBE_INTERVAL_MS 1000u  /* ready[].interval */
#define ENV_PROBE_STATUS 200u        /* ready[].status */
struct probe {
	enum probe_kind kind; /* set by the check from the key given */
	unsigned tcp;         /* guest port */
	char *http;           /* URL; its port is the guest's */
	unsigned status;      /* http: the status that passes, default ENV_PROBE_STATUS */
	char *command;        /* a shell command line run as the SSH user */
	uint64_t timeout_ms, interval_ms;
	struct srcpos pos;
};

/* `ports: auto` or `ports: { auto: true, exclude: [...] }`: every TCP
 * port the guest listens on is forwarded while it listens. */
struct auto_ports {
	bool on;
	struct strv exclude; /* "22", "6000-6100" (checked) */
};

struct net_attach {
	char *network; /* name in env.networks */
	char *ip;      /* NULL: allocated from the network's subnet */
	struct srcpos pos;
};

enum sync_type { SYNC_AUTO, SYNC_BIND, SYNC_9P, SYNC_RSYNC, SYNC_VBOXSF };

struct synced_folder {
	char *host; /* absolute host path */
	char *guest;
	enum sync_type type;
	struct srcpos pos;
};

/* The defaults a machine gets for what its envfile leaves out, stated
 * once: envkeys.c fills them in, and the mcfg_ helpers below fall back on
 * them where there is no envfile (a machine found from the global index). */
#define ENV_SSH_USER "vagrant"
#define ENV_SSH_PORT 22                  /* the guest's sshd */
#define ENV_BOOT_TIMEOUT_MS 300000u      /* ssh.boot_timeout */
#define ENV_HALT_TIMEOUT_MS 60000u       /* graceful_halt_timeout */
#define ENV_CT_PIDS 4096u                /* provider_options.container.pids */
#define ENV_CT_MAX_CONNECTIONS 256u      /* provider_options.container.max_connections */

struct ssh_cfg {
	char *user;        /* default ENV_SSH_USER */
	char *private_key; /* absolute path of the first-boot key, or NULL */
	bool forward_agent;
	unsigned port;            /* guest port, default ENV_SSH_PORT */
	uint64_t boot_timeout_ms; /* default ENV_BOOT_TIMEOUT_MS */
};

struct kvm_opts {
	char *machine;  /* "q35" (default) | "microvm" */
	char *accel;    /* "auto" (default) | "kvm" | "tcg" */
	char *firmware; /* "bios" | "uefi"; NULL: the box's metadata says (else bios) */
};

struct vbox_opts {
	bool linked_clone; /* default true */
	bool gui;
};

/* provider_options.incus: which Incus/LXD server and how. remote is
 * "unix:///path/unix.socket", an https:// URL with the TLS files, or the
 * name of a remote of the user's incus/lxc client configuration; NULL:
 * the local daemon's socket. */
struct incus_opts {
	char *remote, *project, *target;
	char *type;      /* "container" (default) | "virtual-machine" */
	char *network;   /* managed network the machine's NIC joins; NULL: the default profile's */
	char *image;     /* an image alias on the server instead of the box; NULL: the box */
	char *client_cert, *client_key, *server_cert; /* PEM files for an https remote */
	char *ssh;       /* "auto" (default) | "address" | "forward": how SSH reaches it */
	char *network_type; /* envfile networks: "auto" (default) | "bridge" | "ovn" */
	char *uplink;    /* the uplink network OVN networks go over; NULL: found */
};

struct container_opts {
	char *init;   /* "auto" (default) | "systemd" | "builtin" */
	unsigned pids; /* at most this many tasks; default ENV_CT_PIDS */
	char *limits; /* "strict" (default: a limit not applied fails up) | "best-effort" */
	bool fuse;    /* /dev/fuse allowed by the device controller */
	unsigned max_connections; /* open TCP connections per forwarded port */
	char *command; /* NULL | "image": the OCI image's entrypoint/cmd as main service */
};

/* cloud_init: what the machine's NoCloud seed adds (cloud images on kvm). */
struct cloud_init_cfg {
	/* user_data: the text itself when it starts with `#` (#cloud-config,
	 * #!, ...), else the absolute path of a file holding it */
	char *user_data;
};

struct machine_cfg {
	char *name;      /* after count expansion: "web-2" */
	char *base_name; /* "web" */
	unsigned index;  /* 1..count, 0 without count */
	unsigned count;  /* the machine's `count`, 0 without one */
	struct srcpos pos;
	char *box, *box_version, *box_url, *box_checksum;
	char *box_checksum_file, *box_checksum_signature; /* a publisher's checksum file and its signature */
	char *hostname; /* default: name */
	char *provider; /* "container" | "kvm" | "virtualbox" | "incus" | "auto" */
	unsigned cpus;  /* default 1 */
	uint64_t memory, disk; /* bytes; disk 0 = the box's size */
	bool primary, autostart; /* autostart default true */
	struct strv depends_on; /* machine names after count expansion */
	struct net_attach *networks;
	size_t nnetworks;
	struct port_fwd *ports;
	size_t nports;
	struct auto_ports ports_auto; /* ports: auto (then nports is 0) */
	struct synced_folder *synced;
	size_t nsynced;
	struct ssh_cfg ssh;
	struct probe *ready; /* `ready:` probes, in order */
	size_t nready;
	struct step *steps;
	size_t nsteps;
	struct trigger_cfg *triggers;
	size_t ntriggers;
	struct kvm_opts kvm;
	struct vbox_opts vbox;
	struct container_opts container;
	struct cloud_init_cfg cloud_init;
	struct incus_opts incus;
	uint64_t graceful_halt_timeout_ms; /* default ENV_HALT_TIMEOUT_MS */
};

struct network_cfg {
	char *name;
	char *subnet; /* CIDR, validated */
	struct srcpos pos;
};

struct env {
	char *path;      /* absolute path of the envfile */
	char *dir;       /* its directory: relative paths resolve from here */
	char *state_dir; /* dir/.corral */
	int version;
	struct network_cfg *networks;
	size_t nnetworks;
	struct machine_cfg *machines; /* envfile order, count expanded in place */
	size_t nmachines;
	struct step *steps; /* top-level `provision:` (ansible), run once all targets are up */
	size_t nsteps;
	struct trigger_cfg *triggers; /* envfile-level: once per command, around all machines */
	size_t ntriggers;
	struct diag_list warnings; /* valid, but probably not meant (file:line:col each) */
};

/* Parses and validates. Every problem found is appended to errs (each with
 * file, line, column, the key path in msg, and a fix in hint). Returns 0 and
 * sets *out only when there were none.
 *
 * Rules across keys (docs/envfile.md, "General rules"): a missing `version`
 * reads as 1. `defaults` apply to every machine and the machine's own keys
 * win; mappings (ssh, provider_options) merge key by key, lists (provision,
 * ports, networks, synced_folders) are replaced whole. `count: N` makes
 * NAME-1 .. NAME-N, and NAME in depends_on or ansible groups means all of
 * them; `primary` on a counted machine marks NAME-1. ${VAR},
 * ${VAR:-default} and $$ expand in values, not keys; other `$` stay as
 * written (shell scripts keep $HOME). Relative host paths resolve from the
 * envfile's directory, "~/" from $HOME. The file is at most 4 MiB, checked
 * before it is read. */
int envfile_load(const char *path, struct env **out, struct diag_list *errs);
/* The same for text already in memory; `name` stands for its path (diags,
 * and the directory relative paths resolve from). */
enum {
	ENVFILE_NO_FS = 1, /* touch no file: no existence checks, no content hashes (fuzzing) */
};
int envfile_load_buffer(const char *name, const char *data, size_t len, unsigned flags,
			struct env **out, struct diag_list *errs);
void env_free(struct env *e);

/* The envfile for a command: `explicit` when given (-f), else corral.yaml in
 * start_dir or the nearest parent directory that has one, like git. Not
 * finding one is a DIAG_USAGE error. */
int envfile_find(const char *explicit, const char *start_dir, char **path, struct diag *d);

const struct machine_cfg *env_machine(const struct env *e, const char *name);
const struct network_cfg *env_network(const struct env *e, const char *name); /* NULL: none */
/* The `primary: true` machine, else the only machine, else NULL. */
const struct machine_cfg *env_primary(const struct env *e);
/* The addresses machines are given on `network` by `ip:` (host order,
 * envfile order; *n of them, caller frees): automatic allocation passes
 * over them even while their machines are not up. */
uint32_t *env_fixed_ips(const struct env *e, const char *network, size_t *n);

/* Whether guest port `port` is in one of the `exclude` ranges. */
bool auto_ports_excluded(const struct auto_ports *a, unsigned port);

/* A machine's SSH user, guest SSH port and graceful-halt time; mc may be
 * NULL (or not from an envfile): then the defaults above. */
const char *mcfg_ssh_user(const struct machine_cfg *mc);
unsigned mcfg_ssh_port(const struct machine_cfg *mc);
uint64_t mcfg_halt_timeout_ms(const struct machine_cfg *mc);

/* Every key the schema knows, for completion and suggestions: each name
 * once ("memory", "inline", "shell", ...), from the loader's key table. */
const char *const *envfile_keys(size_t *n);
/* Every key path the schema knows, from the same table, each once and in
 * table order: "version", "machines.NAME.ports[].host_ip",
 * "provision[].ansible.playbook" (NAME: a map's own names, []: a list's
 * elements; `defaults` takes the machines.NAME keys). docs/envfile.md has a
 * row for each; tests/unit/test_envdoc.c checks that it does. */
void envfile_key_paths(void (*fn)(const char *path, void *arg), void *arg);

/* "512M" -> bytes; "30s", "5m" -> ms. Exposed for tests and the CLI. */
int parse_size(const char *s, uint64_t *bytes);
int parse_duration(const char *s, uint64_t *ms);
/* "10.20.0.5" -> host-order address; "10.20.0.0/24" -> network and prefix
 * length (host bits must be zero). For the address allocator and tests. */
int parse_ipv4(const char *s, uint32_t *addr);
int parse_cidr(const char *s, uint32_t *net, unsigned *prefix);

#endif
