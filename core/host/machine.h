/* A machine at run time: its envfile config, its state directory
 * (.corral/machines/NAME/) and its state.json, shared by providers,
 * provisioners and commands. */
#ifndef CORRAL_MACHINE_H
#define CORRAL_MACHINE_H
#include <jansson.h>

#include "core/base/diag.h"
#include "core/config/envfile.h"

enum mstate { MS_NOT_CREATED, MS_STOPPED, MS_RUNNING, MS_SAVED };
const char *mstate_name(enum mstate s); /* "not created", "stopped", "running", "saved" */

/* How to reach a machine's sshd from the host. */
struct endpoint {
	char host[256];
	unsigned port;
	char user[64];
	char key_path[4096];         /* private key to log in with */
	char known_hosts[4096];      /* pinned host key file ("" before first contact) */
	bool forward_agent;          /* ssh.forward_agent: the host's agent goes along */
	bool on_host;                /* the guest runs on this host (provider's guests_on_host) */
};

struct machine {
	const struct env *env;
	const struct machine_cfg *cfg;
	char *dir;     /* <env state_dir>/machines/<name>, absolute */
	json_t *state; /* state.json: provider, id, pid, ip, ports, box, host key, ran steps */
	char *box_dir; /* the unpacked box in the store, set before provider up */
	void *priv;    /* the provider's own per-machine data */
};

/* Loads state.json (absent: empty). Creates nothing on disk. */
int machine_open(struct machine *m, const struct env *e, const struct machine_cfg *c,
		 struct diag *d);
/* A machine known only by its directory (from the global index): no
 * envfile, m->env and m->cfg NULL. */
/* The machine with an empty state, state.json not read: for destroying a
 * machine whose state.json is damaged, from what survives elsewhere. */
void machine_open_blank(struct machine *m, const struct env *e, const struct machine_cfg *c);
int machine_open_dir(struct machine *m, const char *dir, struct diag *d);
/* Writes state.json atomically, creating the machine directory. */
int machine_save(struct machine *m, struct diag *d);
void machine_close(struct machine *m);
char *machine_path(const struct machine *m, const char *leaf); /* dir/leaf, caller frees */

/* The machine's short id, in the host-side names of what it holds (veth
 * and tap links, cgroups, VirtualBox VM names, the cloud-init instance
 * id): the first MACHINE_ID_LEN hex digits of the sha256 of its directory,
 * recorded in state the first time. An id a machine recorded before keeps
 * serving it unchanged (a container's 12 digits in "id"). */
#define MACHINE_ID_LEN 10
const char *machine_id(struct machine *m);

/* How SSH reaches the machine, for every provider: 127.0.0.1 (or the
 * recorded "ssh_host": incus, a remote member's address) at the host port
 * SSH is forwarded from ("ssh_port": kvm, virtualbox, incus), else its
 * address ("ip": container) at the guest's SSH port; the configured user,
 * the machine's own key and pinned host key. An error when neither is
 * recorded (not created). */
int machine_ssh_endpoint(struct machine *m, struct endpoint *ep, struct diag *d);

#endif
