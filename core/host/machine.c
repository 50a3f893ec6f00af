#include "core/host/machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/digest.h"
#include "core/base/util.h"
#include "core/host/mstate.h"
#include "core/host/state.h"

const char *mstate_name(enum mstate s)
{
	static const char *const names[] = {
		[MS_NOT_CREATED] = "not created",
		[MS_STOPPED] = "stopped",
		[MS_RUNNING] = "running",
		[MS_SAVED] = "saved",
	};
	return names[s];
}

/* state.json into m->state; on failure m is closed. */
static int load(struct machine *m, struct diag *d)
{
	_cleanup_free_ char *sp = machine_path(m, "state.json");
	if (state_load(sp, &m->state, d) < 0) {
		machine_close(m);
		return -1;
	}
	return 0;
}

int machine_open(struct machine *m, const struct env *e, const struct machine_cfg *c,
		 struct diag *d)
{
	*m = (struct machine){.env = e, .cfg = c};
	_cleanup_free_ char *rel = xasprintf("machines/%s", c->name);
	m->dir = path_join(e->state_dir, rel);
	return load(m, d);
}

void machine_open_blank(struct machine *m, const struct env *e, const struct machine_cfg *c)
{
	*m = (struct machine){.env = e, .cfg = c, .state = json_object()};
	_cleanup_free_ char *rel = xasprintf("machines/%s", c->name);
	m->dir = path_join(e->state_dir, rel);
}

int machine_open_dir(struct machine *m, const char *dir, struct diag *d)
{
	*m = (struct machine){.dir = xstrdup(dir)};
	return load(m, d);
}

int machine_save(struct machine *m, struct diag *d)
{
	if (mkdir_p(m->dir, 0700, d) < 0)
		return -1;
	_cleanup_free_ char *sp = machine_path(m, "state.json");
	return state_save(sp, m->state, d);
}

void machine_close(struct machine *m)
{
	free(m->dir);
	free(m->box_dir);
	json_decref(m->state);
	m->dir = m->box_dir = NULL;
	m->state = NULL;
}

char *machine_path(const struct machine *m, const char *leaf)
{
	return path_join(m->dir, leaf);
}

/* The rule before machine_id: the container recorded 12 hex digits in "id"
 * (which VirtualBox uses for its VM's uuid). */
static bool legacy_id(const char *id)
{
	return id && strlen(id) == 12 && strspn(id, "0123456789abcdef") == 12;
}

const char *machine_id(struct machine *m)
{
	const char *id = machine_str(m, MK_MACHINE_ID), *old = machine_str(m, MK_ID);
	if (id)
		return id;
	if (legacy_id(old))
		return old;
	char hex[HASH_HEX_MAX];
	hash_str(m->dir, NULL, hex);
	hex[MACHINE_ID_LEN] = '\0';
	machine_set_str(m, MK_MACHINE_ID, hex);
	return machine_str(m, MK_MACHINE_ID);
}

int machine_ssh_endpoint(struct machine *m, struct endpoint *ep, struct diag *d)
{
	unsigned fwd = (unsigned)machine_int(m, MK_SSH_PORT);
	const char *ip = machine_str(m, MK_IP);
	if (!fwd && !ip)
		return diag_fail(d, "%s: not created", m->cfg ? m->cfg->name : m->dir);
	_cleanup_free_ char *key = machine_path(m, "id_ed25519");
	_cleanup_free_ char *kh = machine_path(m, "known_hosts");
	*ep = (struct endpoint){.port = fwd ? fwd : mcfg_ssh_port(m->cfg)};
	const char *at = machine_str(m, MK_SSH_HOST); /* a forward on another host (incus) */
	snprintf(ep->host, sizeof(ep->host), "%s", fwd ? (at ? at : "127.0.0.1") : ip);
	snprintf(ep->user, sizeof(ep->user), "%s", mcfg_ssh_user(m->cfg));
	snprintf(ep->key_path, sizeof(ep->key_path), "%s", key);
	snprintf(ep->known_hosts, sizeof(ep->known_hosts), "%s", kh);
	ep->forward_agent = m->cfg && m->cfg->ssh.forward_agent;
	return 0;
}
