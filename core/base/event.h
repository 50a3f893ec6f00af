/* Events: what happens while a command runs, as values, for programs that
 * follow along (`--json` prints one JSON line per event; `--report` turns
 * every finished boot, step, probe, trigger and reset into a test case).
 * Any layer emits with event_emit; cmd/ sets the one sink (global state,
 * like the logger). Without a sink, emitting costs a test and nothing else.
 * The JSON schema is docs/events.md. */
#ifndef CORRAL_EVENT_H
#define CORRAL_EVENT_H
#include <stdbool.h>
#include <stdint.h>

/* What the event is about; its JSON name is kind, or kind_start/kind_end. */
enum event_kind {
	EV_STATE,    /* a machine's state changed: state = "creating", "booting", "running", ... */
	EV_BOOT,     /* a machine's boot, provider up to SSH ready */
	EV_STEP,     /* a provisioning step (machine NULL: a top-level one) */
	EV_PROBE,    /* a readiness probe */
	EV_TRIGGER,  /* a before/after trigger */
	EV_RESET,    /* a machine reset to its provisioned checkpoint */
	EV_HALT,     /* a machine stopped */
	EV_DESTROY,  /* a machine destroyed */
	EV_DOWNLOAD, /* download progress: done/total bytes (phase EV_AT) */
	EV_PORT,     /* `ports: auto` forwarded a guest port, or removed its forward (EV_AT) */
	EV__KINDS
};
enum event_phase { EV_AT, EV_START, EV_END };
enum event_status { EV_NONE, EV_OK, EV_FAILED, EV_SKIPPED };

struct corral_event {
	enum event_kind kind;
	enum event_phase phase;
	const char *machine;  /* NULL: not about one machine */
	const char *name;     /* the step's, probe's, trigger's name, the download's label */
	const char *state;    /* EV_STATE: the new state word */
	enum event_status status; /* EV_END: how it went */
	int exit_status;      /* EV_END of a command: its exit status; -1 unknown */
	uint64_t ms;          /* EV_END: how long it took */
	const char *output;   /* EV_END: the tail of its output or the error, else NULL */
	uint64_t done, total; /* EV_DOWNLOAD: bytes so far, of total (0: unknown) */
	const char *host_ip;  /* EV_PORT: the forward (state: "forwarded" or "removed") */
	unsigned guest, host;
};

/* Called for each event, one at a time (emitters on several threads are
 * serialised); the event and its strings live only during the call. */
typedef void (*event_sink)(const struct corral_event *ev, void *ctx);
void event_set_sink(event_sink fn, void *ctx);
/* Whether a sink is set (to skip work done only for events). */
bool event_wanted(void);
void event_emit(const struct corral_event *ev);

/* Shorthands. */
void event_state(const char *machine, const char *state);
void event_start(enum event_kind kind, const char *machine, const char *name);
/* EV_PORT: state "forwarded" or "removed". */
void event_port(const char *machine, const char *state, const char *host_ip, unsigned host,
		unsigned guest);
void event_end(enum event_kind kind, const char *machine, const char *name, bool ok,
	       uint64_t ms, const char *output);

/* "step", "probe", ...; "step_start"... with the phase: the JSON "event". */
const char *event_kind_name(enum event_kind kind);
const char *event_status_name(enum event_status st);

#endif
