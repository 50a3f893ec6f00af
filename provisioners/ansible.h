/* Ansible on the host, like Vagrant's ansible provisioner: the inventory and
 * known_hosts corral generates under <state_dir>/provisioners/ansible/,
 * ansible-playbook's argv, and a run of it with its output streamed.
 * Host keys are always checked, against the keys corral pinned. */
#ifndef CORRAL_PROV_ANSIBLE_H
#define CORRAL_PROV_ANSIBLE_H
#include "core/base/util.h"
#include "provisioners/provisioner.h"

#define ANSIBLE_KNOWN_HOSTS_MAX (1u << 20)

struct ansible_job {
	const struct env *env;
	const struct step *step;          /* an ansible step */
	const char *machine;              /* a machine's step: its name; NULL: top level */
	const struct prov_target *hosts;  /* the running machines, for the inventory */
	size_t nhosts;
	const char *prefix;               /* output prefix */
};

/* ansible-playbook's argv (argv->v NULL-terminated): -i, --limit (default:
 * the machine, or the step's targets), --extra-vars JSON, --become, --tags,
 * --skip-tags, -v..., raw_arguments, the playbook. Free with strv_free. */
void ansible_command(const struct ansible_job *j, struct strv *argv);

/* The generated inventory's path for the job (also when the step names its own). */
char *ansible_inventory_path(const struct ansible_job *j);
/* The value of ansible_ssh_common_args / ANSIBLE_SSH_COMMON_ARGS: the pinned
 * known_hosts file, strict checking, this key only. Caller frees. */
char *ansible_ssh_args(const char *known_hosts);

/* The inventory as JSON for Ansible's YAML inventory plugin: `all` with
 * every host and its connection variables, the step's groups as its
 * children (members, children, vars; a group named `all` is `all`), and
 * ansible_ssh_common_args in all's vars. */
int ansible_inventory(const struct ansible_step *a, const struct prov_target *hosts, size_t n,
		      const char *known_hosts, struct buf *out, struct diag *d);
/* Every host's pinned keys under its inventory address, after the lines of
 * `old` (the file's current text, or NULL) that are for other addresses. */
int ansible_known_hosts(const struct prov_target *hosts, size_t n, const char *old,
			struct buf *out, struct diag *d);

/* Ansible's pipelining for the step: "True"/"False" when the envfile sets
 * `pipelining`; else NULL when the user chose (ANSIBLE_PIPELINING or
 * ANSIBLE_SSH_PIPELINING in our environment, or `pipelining` in the
 * ansible.cfg ansible-playbook reads), "True" when nobody did. */
const char *ansible_pipelining(const struct ansible_step *a);
/* Its variables for ansible-playbook's environment (none when NULL). */
void ansible_pipelining_env(const struct ansible_step *a, struct strv *env);
/* The ansible.cfg ansible-playbook, run in our working directory, reads
 * (Ansible's order: $ANSIBLE_CONFIG, ./ansible.cfg unless the directory is
 * world-writable, ~/.ansible.cfg, /etc/ansible/ansible.cfg), or NULL. */
char *ansible_cfg_path(void);

/* Writes known_hosts and the inventory (atomically), runs ansible-playbook
 * and streams its output. A failure quotes Ansible's `fatal:`/`failed:`
 * lines with their task (else the last lines) and, when failed_hosts is
 * not NULL, appends the hosts that failed or were unreachable to it. */
int ansible_run(const struct ansible_job *j, struct strv *failed_hosts, struct diag *d);

#endif
