/* The state.json key table and its typed accessors (the table's order is
 * enum mkey's). An accessor used on a key of another type is a bug in
 * corral and stops it (assert); a value of another type in the file reads
 * as the default. */
#include "core/host/mstate.h"

#include <assert.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "core/host/proc.h"
#include "core/host/state.h"
#include "core/base/util.h"

enum mtype { T_STR, T_INT, T_FLAG, T_LIST, T_MAP, T_PORTS };

static const struct {
	const char *name;
	enum mtype type;
} keys[MK_COUNT] = {
	[MK_PROVIDER] = {"provider", T_STR},
	[MK_BOX] = {"box", T_STR},
	[MK_BOX_VERSION] = {"box_version", T_STR},
	[MK_BOX_DIR] = {"box_dir", T_STR},
	[MK_SSH_KEY_INSTALLED] = {"ssh_key_installed", T_FLAG},
	[MK_SYNCED] = {"synced", T_MAP},
	[MK_PROVISIONED] = {"provisioned", T_LIST},
	[MK_PROVISION_PENDING] = {"provision_pending", T_FLAG},
	[MK_MACHINE_ID] = {"machine_id", T_STR},
	[MK_CREATED] = {"created", T_FLAG},
	[MK_IP] = {"ip", T_STR},
	[MK_PORTS] = {"ports", T_PORTS},
	[MK_SSH_PORT] = {"ssh_port", T_INT},
	[MK_BRIDGES] = {"bridges", T_LIST},
	[MK_PID] = {"pid", T_INT},
	[MK_PID_START] = {"pid_start", T_INT},
	[MK_LOWER] = {"lower", T_STR},
	[MK_INIT] = {"init", T_STR},
	[MK_INIT_SERVICES] = {"init_services", T_LIST},
	[MK_IDMAP_BASE] = {"idmap_base", T_INT},
	[MK_PORTFWD_PID] = {"portfwd_pid", T_INT},
	[MK_PORTFWD_START] = {"portfwd_start", T_INT},
	[MK_NET_ADDRS] = {"net_addrs", T_LIST},
	[MK_ACCEL_FALLBACK] = {"accel_fallback", T_STR},
	[MK_SUSPENDED] = {"suspended", T_FLAG},
	[MK_ID] = {"id", T_STR},
	[MK_VM_NAME] = {"vm_name", T_STR},
	[MK_CHECKPOINT] = {"checkpoint", T_FLAG},
	[MK_CHECKPOINT_STEPS] = {"checkpoint_steps", T_LIST},
	[MK_CLOUD_INIT] = {"cloud_init", T_FLAG},
	[MK_INSTANCE] = {"instance", T_STR},
	[MK_IMAGE_ALIAS] = {"image_alias", T_STR},
	[MK_INCUS_REMOTE] = {"incus_remote", T_STR},
	[MK_ACCEL] = {"accel", T_STR},
	[MK_LOCATION] = {"location", T_STR},
	[MK_SSH_HOST] = {"ssh_host", T_STR},
	[MK_INCUS_TLS] = {"incus_tls", T_LIST},
	[MK_INCUS_PROJECT] = {"incus_project", T_STR},
	[MK_CHECKPOINT_DISK] = {"checkpoint_disk_only", T_FLAG},
	[MK_MODE] = {"mode", T_STR},
	[MK_RELAY_PID] = {"relay_pid", T_INT},
	[MK_RELAY_START] = {"relay_start", T_INT},
	[MK_CGROUP] = {"cgroup", T_STR},
	[MK_AUTOFWD_PID] = {"autofwd_pid", T_INT},
	[MK_AUTOFWD_START] = {"autofwd_start", T_INT},
};

static const struct {
	enum mkey pid, start;
} procs[] = {
	[MP_MACHINE] = {MK_PID, MK_PID_START},
	[MP_PORTFWD] = {MK_PORTFWD_PID, MK_PORTFWD_START},
	[MP_RELAY] = {MK_RELAY_PID, MK_RELAY_START},
	[MP_AUTOFWD] = {MK_AUTOFWD_PID, MK_AUTOFWD_START},
};

const char *mkey_name(enum mkey k) { return keys[k].name; }

/* The key's value, checked to be of the accessor's type t. */
static json_t *get(const struct machine *m, enum mkey k, enum mtype t)
{
	assert(k < MK_COUNT && keys[k].type == t);
	return json_object_get(m->state, keys[k].name);
}

static void set(struct machine *m, enum mkey k, enum mtype t, json_t *v)
{
	assert(k < MK_COUNT && keys[k].type == t);
	if (!m->state)
		m->state = json_object();
	json_object_set_new(m->state, keys[k].name, v);
}

const char *machine_str(const struct machine *m, enum mkey k)
{
	return json_string_value(get(m, k, T_STR)); /* NULL for another type */
}

const char *machine_host_ip(const struct machine *m)
{
	const char *ip = machine_str(m, MK_IP), *mode = machine_str(m, MK_MODE);
	return mode && strcmp(mode, "rootless") == 0 ? NULL : ip;
}

long long machine_int(const struct machine *m, enum mkey k)
{
	json_t *v = get(m, k, T_INT);
	return json_is_integer(v) ? json_integer_value(v) : 0;
}

bool machine_flag(const struct machine *m, enum mkey k)
{
	return json_is_true(get(m, k, T_FLAG));
}

void machine_set_str(struct machine *m, enum mkey k, const char *v)
{
	if (v)
		set(m, k, T_STR, json_string(v));
	else
		machine_del(m, k);
}

void machine_set_int(struct machine *m, enum mkey k, long long v)
{
	set(m, k, T_INT, json_integer(v));
}

void machine_set_flag(struct machine *m, enum mkey k, bool on)
{
	if (on)
		set(m, k, T_FLAG, json_true());
	else
		machine_del(m, k);
}

void machine_del(struct machine *m, enum mkey k)
{
	assert(k < MK_COUNT);
	json_object_del(m->state, keys[k].name);
}

void machine_state_clear(struct machine *m)
{
	json_object_clear(m->state);
}

size_t machine_list_len(const struct machine *m, enum mkey k)
{
	return json_array_size(get(m, k, T_LIST)); /* 0 for a non-array */
}

const char *machine_list_get(const struct machine *m, enum mkey k, size_t i)
{
	return json_string_value(json_array_get(get(m, k, T_LIST), i));
}

bool machine_list_has(const struct machine *m, enum mkey k, const char *v)
{
	for (size_t i = 0; i < machine_list_len(m, k); i++) {
		const char *s = machine_list_get(m, k, i);
		if (s && strcmp(s, v) == 0)
			return true;
	}
	return false;
}

void machine_list_add(struct machine *m, enum mkey k, const char *v)
{
	json_t *a = get(m, k, T_LIST);
	if (!json_is_array(a))
		set(m, k, T_LIST, a = json_array());
	json_array_append_new(a, json_string(v));
}

void machine_list_clear(struct machine *m, enum mkey k)
{
	set(m, k, T_LIST, json_array());
}

const char *machine_map_get(const struct machine *m, enum mkey k, const char *name)
{
	return json_string_value(json_object_get(get(m, k, T_MAP), name));
}

void machine_map_set(struct machine *m, enum mkey k, const char *name, const char *v)
{
	json_t *o = get(m, k, T_MAP);
	if (!json_is_object(o))
		set(m, k, T_MAP, o = json_object());
	json_object_set_new(o, name, json_string(v));
}

void machine_map_clear(struct machine *m, enum mkey k)
{
	set(m, k, T_MAP, json_object());
}

static bool port_entry(const json_t *p, struct mport *out)
{
	const json_t *g = json_object_get(p, "guest"), *h = json_object_get(p, "host");
	if (!json_is_integer(g) || !json_is_integer(h))
		return false;
	*out = (struct mport){.guest = (unsigned)json_integer_value(g),
			      .host = (unsigned)json_integer_value(h),
			      .udp = strcmp(state_str(p, "protocol", "tcp"), "udp") == 0};
	snprintf(out->host_ip, sizeof(out->host_ip), "%s", state_str(p, "host_ip", ""));
	return true;
}

size_t machine_ports(const struct machine *m, struct mport **v)
{
	json_t *a = get(m, MK_PORTS, T_PORTS);
	size_t n = 0;
	*v = xcalloc(json_array_size(a) + 1, sizeof(**v));
	for (size_t i = 0; i < json_array_size(a); i++)
		if (port_entry(json_array_get(a, i), &(*v)[n]))
			n++;
	return n;
}

void machine_set_ports(struct machine *m, const struct mport *v, size_t n)
{
	json_t *a = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:i, s:i, s:s, s:s}", "guest", (int)v[i].guest,
						   "host", (int)v[i].host, "host_ip", v[i].host_ip,
						   "protocol", v[i].udp ? "udp" : "tcp"));
	set(m, MK_PORTS, T_PORTS, a);
}

unsigned machine_previous_port(const struct machine *m, unsigned guest, bool udp)
{
	struct mport *v;
	size_t n = machine_ports(m, &v);
	unsigned ssh = (unsigned)machine_int(m, MK_SSH_PORT), host = 0;
	for (size_t i = 0; i < n && !host; i++)
		if (v[i].guest == guest && v[i].udp == udp && !(ssh && v[i].host == ssh && !udp))
			host = v[i].host;
	free(v);
	return host;
}

struct proc_ident machine_proc(const struct machine *m, enum mproc w)
{
	return (struct proc_ident){.pid = (pid_t)machine_int(m, procs[w].pid),
				   .start = (unsigned long long)machine_int(m, procs[w].start)};
}

bool machine_set_proc(struct machine *m, enum mproc w, pid_t pid)
{
	unsigned long long start = proc_start_time(pid);
	machine_set_int(m, procs[w].pid, pid);
	machine_set_int(m, procs[w].start, (long long)start);
	return start != 0;
}

void machine_clear_proc(struct machine *m, enum mproc w)
{
	machine_del(m, procs[w].pid);
	machine_del(m, procs[w].start);
}

void machine_stop_proc(struct machine *m, enum mproc w)
{
	struct proc_ident p = machine_proc(m, w);
	if (p.pid && proc_stop(p.pid, p.start, SIGTERM, 1000) == 1)
		proc_stop(p.pid, p.start, SIGKILL, 1000);
	machine_clear_proc(m, w);
}

bool machine_proc_alive(const struct machine *m, enum mproc w)
{
	struct proc_ident p = machine_proc(m, w);
	return proc_alive(p.pid, p.start);
}
