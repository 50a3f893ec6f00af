/* The event sink: one function pointer set by cmd/, called under a mutex
 * so that events from parallel machines arrive whole and one at a time. */
#include "core/base/event.h"

#include <pthread.h>
#include <stddef.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static event_sink sink;
static void *sink_ctx;

void event_set_sink(event_sink fn, void *ctx)
{
	pthread_mutex_lock(&mu);
	sink = fn;
	sink_ctx = ctx;
	pthread_mutex_unlock(&mu);
}

bool event_wanted(void)
{
	pthread_mutex_lock(&mu);
	bool w = sink != NULL;
	pthread_mutex_unlock(&mu);
	return w;
}

void event_emit(const struct corral_event *ev)
{
	pthread_mutex_lock(&mu);
	if (sink)
		sink(ev, sink_ctx);
	pthread_mutex_unlock(&mu);
}

void event_state(const char *machine, const char *state)
{
	event_emit(&(struct corral_event){.kind = EV_STATE, .machine = machine, .state = state,
					  .exit_status = -1});
}

void event_port(const char *machine, const char *state, const char *host_ip, unsigned host,
		unsigned guest)
{
	event_emit(&(struct corral_event){.kind = EV_PORT, .machine = machine, .state = state,
					  .host_ip = host_ip, .host = host, .guest = guest,
					  .exit_status = -1});
}

void event_start(enum event_kind kind, const char *machine, const char *name)
{
	event_emit(&(struct corral_event){.kind = kind, .phase = EV_START, .machine = machine,
					  .name = name, .exit_status = -1});
}

void event_end(enum event_kind kind, const char *machine, const char *name, bool ok,
	       uint64_t ms, const char *output)
{
	event_emit(&(struct corral_event){.kind = kind, .phase = EV_END, .machine = machine,
					  .name = name, .status = ok ? EV_OK : EV_FAILED,
					  .exit_status = -1, .ms = ms, .output = output});
}

const char *event_kind_name(enum event_kind kind)
{
	static const char *const names[EV__KINDS] = {
		[EV_STATE] = "state",     [EV_BOOT] = "boot",       [EV_STEP] = "step",
		[EV_PROBE] = "probe",     [EV_TRIGGER] = "trigger", [EV_RESET] = "reset",
		[EV_HALT] = "halt",       [EV_DESTROY] = "destroy", [EV_DOWNLOAD] = "download",
		[EV_PORT] = "port",
	};
	return (unsigned)kind < EV__KINDS ? names[kind] : "unknown";
}

const char *event_status_name(enum event_status st)
{
	static const char *const names[] = {[EV_NONE] = "none", [EV_OK] = "ok",
					    [EV_FAILED] = "failed", [EV_SKIPPED] = "skipped"};
	return names[st];
}
