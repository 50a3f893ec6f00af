#include "core/host/machine.h"

#include <stdlib.h>
#include <string.h>

#include "core/host/state.h"
#include "core/base/util.h"

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

int machine_open(struct machine *m, const struct env *e, const struct machine_cfg *c,
		 struct diag *d)
{
	*m = (struct machine){.env = e, .cfg = c};
	_cleanup_free_ char *rel = xasprintf("machines/%s", c->name);
	m->dir = path_join(e->state_dir, rel);
	_cleanup_free_ char *sp = machine_path(m, "state.json");
	if (state_load(sp, &m->state, d) < 0) {
		machine_close(m);
		return -1;
	}
	return 0;
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

unsigned machine_previous_port(const json_t *ports, unsigned guest, bool udp)
{
	size_t i;
	json_t *p;
	json_array_foreach(ports, i, p)
		if (state_int(p, "guest", 0) == guest &&
		    strcmp(state_str(p, "protocol", "tcp"), udp ? "udp" : "tcp") == 0)
			return (unsigned)state_int(p, "host", 0);
	return 0;
}
