#include "engine/lifecycle.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/cancel.h"
#include "core/base/event.h"
#include "core/box/store.h"
#include "engine/guest.h"
#include "engine/probe.h"
#include "engine/triggers.h"
#include "core/host/index.h"
#include "core/host/ports.h"
#include "core/base/log.h"
#include "core/ssh/ssh.h"
#include "core/host/mstate.h"
#include "core/base/util.h"

enum job_state { J_WAITING, J_RUNNING, J_DONE, J_FAILED, J_SKIPPED };

struct job {
	const struct machine_cfg *cfg;
	struct prov_target t; /* t.m points at m */
	struct machine m;
	enum job_state st; /* under r->mu */
	struct diag d;
	pthread_t th;
	bool threaded;
	uint64_t ms, boot_ms, provision_ms; /* all, to SSH ready, provisioning */
	const struct step *failed_step;
	const char *blocked_by;
	struct run *r;
};

struct run {
	const struct env *e;
	const struct lc_opts *o;
	struct job *jobs;
	size_t n;
	int (*fn)(struct run *r, struct job *j, struct diag *d);
	const char *action; /* "up", "halt", "reload", "destroy": for triggers */
	bool ordered;  /* wait for depends_on */
	struct env_failure envf; /* what the top-level steps did */
	size_t limit;  /* machines at once */
	size_t active; /* under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

const struct provider *lifecycle_state(struct machine *m, enum mstate *s)
{
	const char *rec = machine_str(m, MK_PROVIDER);
	const struct provider *p = rec ? provider_find(rec) : NULL;
	struct diag d = {0};
	*s = MS_NOT_CREATED;
	if (p && p->state(m, s, &d) < 0)
		*s = MS_NOT_CREATED;
	return p;
}

int lifecycle_endpoint(struct machine *m, struct endpoint *ep, struct diag *d)
{
	enum mstate s;
	const struct provider *p = lifecycle_state(m, &s);
	if (s != MS_RUNNING) {
		diag_fail(d, "%s is %s", m->cfg->name, mstate_name(s));
		diag_hint(d, "start it with `corral up %s`", m->cfg->name);
		return 1;
	}
	return lifecycle_provider_endpoint(p, m, ep, d);
}

int lifecycle_provider_endpoint(const struct provider *p, struct machine *m, struct endpoint *ep,
				struct diag *d)
{
	if (p->ssh_endpoint(m, ep, d) < 0)
		return -1;
	ep->on_host = p->guests_on_host;
	return 0;
}

int lifecycle_connect(const struct machine *m, const struct endpoint *ep,
		      struct ssh_conn **conn, struct diag *d)
{
	if (ssh_wait_ready(ep, LIFECYCLE_CONNECT_MS, NULL, NULL, conn, d) < 0)
		return diag_wrap(d, "%s: connect", m->cfg->name);
	return 0;
}

int lifecycle_entry_run(int argc, char **argv) { return provider_entry_run(argc, argv); }

/* The recorded provider of a created machine; else --provider, the
 * envfile's, or the first usable one for "auto". */
static const struct provider *pick_provider(struct run *r, struct machine *m, struct diag *d)
{
	const char *rec = machine_str(m, MK_PROVIDER);
	const char *want = r->o->provider ? r->o->provider : m->cfg->provider;
	if (rec && r->o->provider && strcmp(rec, r->o->provider) != 0) {
		diag_fail(d, "%s was created with the %s provider", m->cfg->name, rec);
		diag_hint(d, "`corral destroy %s` first to move it to %s", m->cfg->name, r->o->provider);
		return NULL;
	}
	if (!rec && (!want || strcmp(want, "auto") == 0))
		return provider_auto(d);
	const struct provider *p = provider_find(rec ? rec : want);
	if (!p) {
		diag_fail(d, "%s: no provider `%s` in this build", m->cfg->name, rec ? rec : want);
		diag_hint(d, "use container, kvm, virtualbox or auto");
		return NULL;
	}
	if (p->usable(d) < 0) {
		diag_wrap(d, "%s: provider %s", m->cfg->name, p->name);
		return NULL;
	}
	return p;
}

/* One box fetch at a time: machines sharing a box find it added by the
 * first instead of each fetching it (or failing where only one names its URL). */
static pthread_mutex_t box_mu = PTHREAD_MUTEX_INITIALIZER;

/* The lock's entry for mc when it still fits the envfile, else NULL. */
static const struct boxlock_entry *pinned(const struct boxlock *l, const struct machine_cfg *mc)
{
	const struct boxlock_entry *le = l ? boxlock_find(l, mc->name) : NULL;
	return le && boxlock_fits(le, mc) ? le : NULL;
}

/* The box providers a machine of p boots. */
static const char *const *box_providers(const struct provider *p, const struct machine_cfg *mc)
{
	return p->box_providers_for ? p->box_providers_for(mc) : p->box_provider;
}

/* Under box_mu: the box from the lock's pin, else resolved; the lock
 * learns what a machine without a fitting entry got. */
static int resolve_box(struct boxlock *l, const char *const *providers,
		       const struct machine_cfg *mc, struct box_ref *ref, struct diag *d, bool update)
{
	const struct boxlock_entry *le = update ? NULL : pinned(l, mc);
	struct box_pin pin = {0};
	if (le)
		pin = (struct box_pin){le->version, le->provider, le->arch, le->digest};
	int rc = le       ? boxstore_ensure_pinned(mc, providers, &pin, ref, d)
		 : update ? boxstore_resolve_latest(mc, providers, ref, d)
			  : boxstore_ensure(mc, providers, ref, d);
	if (rc == 0 && l && !le) {
		struct boxlock_entry e;
		boxlock_entry_from_box(mc, ref, &e);
		boxlock_set(l, &e);
		boxlock_entry_free(&e);
	}
	return rc;
}

/* A machine created before there was a lock (or before its entry fitted):
 * the lock records the box it runs. */
static void pin_running(struct boxlock *l, struct machine *m)
{
	if (!l || pinned(l, m->cfg) || !machine_str(m, MK_BOX) || !machine_str(m, MK_BOX_DIR))
		return;
	struct box_ref ref = {(char *)machine_str(m, MK_BOX), (char *)machine_str(m, MK_BOX_VERSION),
			      NULL, NULL, (char *)machine_str(m, MK_BOX_DIR), false};
	_cleanup_free_ char *prov = NULL, *arch = NULL;
	/* provider and arch: the store path's last two parts (…/ARCH/PROVIDER) */
	_cleanup_free_ char *parent = path_dirname(ref.dir);
	prov = xstrdup(strrchr(ref.dir, '/') ? strrchr(ref.dir, '/') + 1 : ref.dir);
	arch = xstrdup(strrchr(parent, '/') ? strrchr(parent, '/') + 1 : parent);
	ref.provider = prov;
	ref.arch = arch;
	struct boxlock_entry e;
	pthread_mutex_lock(&box_mu);
	boxlock_entry_from_box(m->cfg, &ref, &e);
	boxlock_set(l, &e);
	pthread_mutex_unlock(&box_mu);
	boxlock_entry_free(&e);
}

static int ensure_box(struct run *r, const struct provider *p, struct machine *m,
		      struct diag *d)
{
	struct box_ref ref = {0};
	pthread_mutex_lock(&box_mu);
	int rc = resolve_box(r->o->lock, box_providers(p, m->cfg), m->cfg, &ref, d, false);
	pthread_mutex_unlock(&box_mu);
	if (rc < 0)
		return diag_wrap(d, "%s", m->cfg->name);
	m->box_dir = xstrdup(ref.dir);
	machine_set_str(m, MK_PROVIDER, p->name);
	machine_set_str(m, MK_BOX, ref.name);
	machine_set_str(m, MK_BOX_VERSION, ref.version);
	machine_set_str(m, MK_BOX_DIR, ref.dir);
	box_ref_free(&ref);
	if (machine_save(m, d) < 0 || index_record(m, p->name, d) < 0)
		return diag_wrap(d, "%s", m->cfg->name);
	return 0;
}

static int connect_ssh(const struct provider *p, struct job *j, struct diag *d)
{
	struct machine *m = &j->m;
	if (lifecycle_provider_endpoint(p, m, &j->t.ep, d) < 0)
		return -1;
	_cleanup_free_ char *console = machine_path(m, "console.log");
	uint64_t timeout = m->cfg->ssh.boot_timeout_ms;
	if (machine_flag(m, MK_SSH_KEY_INSTALLED))
		return ssh_wait_ready(&j->t.ep, timeout, console, NULL, &j->t.conn, d);
	if (ssh_wait_ready_first_boot(&j->t.ep, m->cfg->ssh.private_key, timeout, console, NULL,
				      &j->t.conn, d) < 0)
		return -1;
	machine_set_flag(m, MK_SSH_KEY_INSTALLED, true);
	return machine_save(m, d);
}

/* The machines already up (this one included), for Ansible inventories. */
static int provision(struct run *r, struct job *j, struct diag *d)
{
	struct prov_target *peers = xcalloc(r->n, sizeof(*peers));
	size_t np = 0;
	pthread_mutex_lock(&r->mu);
	for (size_t i = 0; i < r->n; i++)
		if (&r->jobs[i] == j || r->jobs[i].st == J_DONE)
			peers[np++] = r->jobs[i].t;
	pthread_mutex_unlock(&r->mu);
	struct prov_ctx pc = {.m = &j->m, .conn = j->t.conn, .ep = &j->t.ep,
			      .prefix = r->n > 1 ? j->cfg->name : NULL, .peers = peers, .npeers = np};
	int rc = provision_machine(&pc, r->o->provision, j->t.created, r->o->only, d);
	j->failed_step = pc.failed;
	free(peers);
	return rc;
}

/* A machine directory whose state names no provider (damaged, or moved
 * aside): every provider removes what it finds of the machine without it,
 * so that "destroyed" is never said while any of it runs. */
static int reap_unknown(struct machine *m, struct diag *d)
{
	size_t n;
	const struct provider *const *all = provider_all(&n);
	for (size_t i = 0; i < n; i++) {
		bool f = false;
		if (all[i]->reap && all[i]->reap(m, &f, d) < 0)
			return -1;
		if (f)
			log_machine(m->cfg->name, "found and stopped what its %s machine left",
				    all[i]->name);
	}
	return 0;
}

static int destroy_one(struct run *r, struct job *j, struct diag *d)
{
	(void)r;
	struct machine *m = &j->m;
	enum mstate s;
	const struct provider *p = lifecycle_state(m, &s);
	if (!p && !path_is_dir(m->dir)) {
		log_machine(j->cfg->name, "not created");
		return 0;
	}
	if (!p && reap_unknown(m, d) < 0)
		return diag_wrap(d, "%s: destroy", j->cfg->name);
	uint64_t t0 = now_ms();
	event_start(EV_DESTROY, j->cfg->name, "destroy");
	int rc = 0;
	if ((p && p->destroy(m, d) < 0) || rm_rf(m->dir, d) < 0 || index_forget(m->dir, d) < 0)
		rc = diag_wrap(d, "%s: destroy", j->cfg->name);
	event_end(EV_DESTROY, j->cfg->name, "destroy", rc == 0, now_ms() - t0, rc ? d->msg : NULL);
	if (rc < 0)
		return -1;
	log_machine(j->cfg->name, "destroyed");
	event_state(j->cfg->name, "not created");
	return 0;
}

/* A machine whose first up failed before the provider created anything
 * uses no box: its index entry goes, so that `box remove` is not refused. */
static void forget_if_never_created(const struct provider *p, struct machine *m)
{
	enum mstate s;
	struct diag d = {0};
	if (p->state(m, &s, &d) == 0 && s == MS_NOT_CREATED && index_forget(m->dir, &d) < 0)
		log_warn("%s", d.msg);
}

/* Provider up (unless running) and the SSH wait: the machine is reachable. */
static int boot(const struct provider *p, struct job *j, enum mstate s, struct diag *d)
{
	struct machine *m = &j->m;
	const char *name = j->cfg->name;
	uint64_t t0 = now_ms();
	log_machine(name, s == MS_RUNNING ? "already running" : "booting");
	event_state(name, s == MS_RUNNING ? "running" : "booting");
	event_start(EV_BOOT, name, "boot");
	j->boot_ms = 0;
	_cleanup_free_ char *waiting = xasprintf("%s: waiting for ssh", name);
	struct progress *timer = progress_timer_start(waiting);
	int rc = s == MS_RUNNING ? 0 : guest_check_folders(p, m, d);
	if (rc == 0 && s != MS_RUNNING && (rc = cancel_check(name, d)) == 0)
		rc = p->up(m, d);
	if (rc == 0 && (rc = cancel_check(name, d)) == 0)
		rc = connect_ssh(p, j, d);
	progress_timer_end(timer);
	j->boot_ms = now_ms() - t0;
	if (rc == 0)
		log_machine(name, "ssh ready (%.2fs)", (double)j->boot_ms / 1000.0);
	event_end(EV_BOOT, name, "boot", rc == 0, j->boot_ms, rc ? d->msg : NULL);
	if (rc == 0)
		event_state(name, "running");
	return rc;
}

/* ports: auto: what the provider's watcher forwards by now (it goes on
 * watching after up returns; `corral port` lists the current ones). */
static void auto_ports_note(const struct provider *p, struct machine *m)
{
	if (!m->cfg->ports_auto.on)
		return;
	if (!p->auto_ports) {
		log_warn("%s: `ports: auto` is not supported by the %s provider yet: ignored",
			 m->cfg->name, p->name);
		return;
	}
	struct mport *v;
	size_t n = ports_auto_load(m, &v);
	for (size_t i = 0; i < n; i++) {
		log_machine(m->cfg->name, "forwarding %s:%u -> %u", v[i].host_ip, v[i].host,
			    v[i].guest);
		event_port(m->cfg->name, "forwarded", v[i].host_ip, v[i].host, v[i].guest);
	}
	free(v);
}

static void copy_list(struct machine *m, enum mkey from, enum mkey to)
{
	struct strv v = {0};
	for (size_t i = 0; i < machine_list_len(m, from); i++)
		if (machine_list_get(m, from, i))
			strv_push(&v, machine_list_get(m, from, i));
	machine_list_clear(m, to);
	for (size_t i = 0; i < v.n; i++)
		machine_list_add(m, to, v.v[i]);
	strv_free(&v);
}

/* The `provisioned` checkpoint `reset` returns to, once: after the first
 * complete provisioning. */
static int checkpoint(const struct provider *p, struct job *j, struct diag *d)
{
	struct machine *m = &j->m;
	if (machine_flag(m, MK_CHECKPOINT) || machine_flag(m, MK_PROVISION_PENDING) ||
	    (!p->checkpoint && !p->snapshot_save))
		return 0;
	uint64_t t0 = now_ms();
	int rc = p->checkpoint ? p->checkpoint(m, d) : p->snapshot_save(m, PROVIDER_CHECKPOINT, d);
	if (rc < 0)
		return diag_wrap(d, "%s: the `provisioned` checkpoint", j->cfg->name);
	machine_set_flag(m, MK_CHECKPOINT, true);
	copy_list(m, MK_PROVISIONED, MK_CHECKPOINT_STEPS);
	log_machine(j->cfg->name, "checkpoint `provisioned` taken (%.2fs)",
		    (double)(now_ms() - t0) / 1000);
	return machine_save(m, d);
}

static int reset_one(struct run *r, struct job *j, struct diag *d)
{
	(void)r;
	struct machine *m = &j->m;
	const char *name = j->cfg->name;
	enum mstate s;
	const struct provider *p = lifecycle_state(m, &s);
	if (!p || s == MS_NOT_CREATED) {
		diag_fail(d, "%s is not created", name);
		return diag_hint(d, "`corral up %s` first", name);
	}
	if (!machine_flag(m, MK_CHECKPOINT)) {
		diag_fail(d, "%s has no `provisioned` checkpoint to reset to", name);
		return diag_hint(d, p->reset || p->snapshot_restore
				    ? "it is taken when `up` completes the first provisioning"
				    : "its provider does not support reset");
	}
	m->box_dir = xstrdup(machine_str(m, MK_BOX_DIR));
	uint64_t t0 = now_ms();
	log_machine(name, "resetting");
	event_state(name, "resetting");
	event_start(EV_RESET, name, "reset");
	int rc = p->reset ? p->reset(m, d) : p->snapshot_restore(m, PROVIDER_CHECKPOINT, d);
	if (rc == 0 && !p->reset && p->state(m, &s, d) == 0 && s != MS_RUNNING)
		rc = p->up(m, d);
	if (rc == 0)
		rc = connect_ssh(p, j, d);
	j->boot_ms = now_ms() - t0;
	if (rc == 0) { /* the steps that ran since are undone: they are due again */
		copy_list(m, MK_CHECKPOINT_STEPS, MK_PROVISIONED);
		rc = machine_save(m, d);
	}
	if (rc < 0)
		diag_wrap(d, "%s: reset", name);
	event_end(EV_RESET, name, "reset", rc == 0, j->boot_ms, rc ? d->msg : NULL);
	if (rc < 0)
		return -1;
	log_machine(name, "reset to `provisioned` (%.2fs)", (double)j->boot_ms / 1000);
	event_state(name, "running");
	return probes_wait(m, j->t.conn, d);
}

/* A stop requested (Ctrl-C) ends it at the next step, as a failure. */
static int up_one(struct run *r, struct job *j, struct diag *d)
{
	struct machine *m = &j->m;
	const char *name = j->cfg->name;
	const struct provider *p = pick_provider(r, m, d);
	enum mstate s;
	if (!p || p->state(m, &s, d) < 0)
		return -1;
	j->t.created = s == MS_NOT_CREATED;
	if (j->t.created) {
		log_machine(name, "creating");
		event_state(name, "creating");
	}
	if (!j->t.created) {
		m->box_dir = xstrdup(machine_str(m, MK_BOX_DIR));
		pin_running(r->o->lock, m);
	} else if (ensure_box(r, p, m, d) < 0) {
		return -1;
	}
	int rc = boot(p, j, s, d);
	if (rc == 0 && (rc = cancel_check(name, d)) == 0)
		rc = guest_setup(p, m, j->t.conn, &j->t.ep, d);
	uint64_t t0 = now_ms();
	if (rc == 0 && (rc = cancel_check(name, d)) == 0)
		rc = provision(r, j, d);
	j->provision_ms = now_ms() - t0;
	if (rc == 0)
		rc = checkpoint(p, j, d);
	if (rc == 0)
		rc = probes_wait(m, j->t.conn, d);
	if (rc == 0)
		auto_ports_note(p, m);
	if (rc < 0 && r->o->destroy_on_error && j->t.created) {
		struct diag dd = {0};
		log_machine(name, "failed; destroying it (--destroy-on-error)");
		if (destroy_one(r, j, &dd) < 0)
			log_warn("%s", dd.msg);
	} else if (rc < 0 && j->t.created) {
		forget_if_never_created(p, m);
	}
	return rc;
}

static int halt_one(struct run *r, struct job *j, struct diag *d)
{
	struct machine *m = &j->m;
	enum mstate s;
	const struct provider *p = lifecycle_state(m, &s);
	if (!p || s == MS_NOT_CREATED) {
		log_machine(j->cfg->name, "not created");
		return 0;
	}
	if (s == MS_RUNNING)
		log_machine(j->cfg->name, r->o->force ? "stopping (forced)" : "stopping");
	uint64_t t0 = now_ms();
	event_start(EV_HALT, j->cfg->name, "halt");
	/* Also for a stopped machine: whatever a killed one left behind goes. */
	int rc = p->halt(m, r->o->force, d) < 0 ? diag_wrap(d, "%s: halt", j->cfg->name) : 0;
	event_end(EV_HALT, j->cfg->name, "halt", rc == 0, now_ms() - t0, rc ? d->msg : NULL);
	if (rc < 0)
		return -1;
	log_machine(j->cfg->name, s == MS_RUNNING ? "stopped" : "already stopped");
	event_state(j->cfg->name, "stopped");
	return 0;
}

static int reload_one(struct run *r, struct job *j, struct diag *d)
{
	return halt_one(r, j, d) < 0 ? -1 : up_one(r, j, d);
}

static struct job *job_named(struct run *r, const char *name)
{
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->jobs[i].cfg->name, name) == 0)
			return &r->jobs[i];
	return NULL;
}

/* 1: every depends_on machine among the selected ones is up; 0: one is yet
 * to be; -1: one failed or was skipped (j->blocked_by). */
static int deps_ready(struct run *r, struct job *j)
{
	int ready = 1;
	for (size_t i = 0; r->ordered && i < j->cfg->depends_on.n; i++) {
		struct job *dep = job_named(r, j->cfg->depends_on.v[i]);
		if (dep && (dep->st == J_FAILED || dep->st == J_SKIPPED)) {
			j->blocked_by = dep->cfg->name;
			return -1;
		}
		if (dep && dep->st != J_DONE)
			ready = 0;
	}
	return ready;
}

/* The machine's triggers at `when` of the run's action; guest ones get an
 * SSH connection when the machine is running. */
static int fire(struct run *r, struct job *j, enum trig_when when, struct diag *d)
{
	enum mstate s;
	const struct provider *p;
	if (!j->t.conn && triggers_remote(r->e, j->cfg, when, r->action) &&
	    (p = lifecycle_state(&j->m, &s)) && s == MS_RUNNING &&
	    (lifecycle_provider_endpoint(p, &j->m, &j->t.ep, d) < 0 ||
	     lifecycle_connect(&j->m, &j->t.ep, &j->t.conn, d) < 0))
		return -1;
	return triggers_fire(r->e, j->cfg, when, r->action, j->t.conn, d);
}

static void *job_main(void *arg)
{
	struct job *j = arg;
	struct run *r = j->r;
	uint64_t t0 = now_ms();
	int rc = machine_open(&j->m, r->e, j->cfg, &j->d);
	if (rc < 0 && r->fn == destroy_one && j->d.code == DIAG_BAD_STATE) {
		log_warn("%s: %s; destroying it from what survives", j->cfg->name, j->d.msg);
		machine_open_blank(&j->m, r->e, j->cfg);
		j->d = (struct diag){0};
		rc = 0;
	}
	if (rc == 0) {
		j->t.m = &j->m;
		rc = fire(r, j, TRIG_BEFORE, &j->d);
	}
	if (rc == 0)
		rc = r->fn(r, j, &j->d);
	if (rc == 0)
		rc = fire(r, j, TRIG_AFTER, &j->d);
	if (rc < 0)
		event_state(j->cfg->name, "failed");
	pthread_mutex_lock(&r->mu);
	j->ms = now_ms() - t0;
	j->st = rc == 0 ? J_DONE : J_FAILED;
	r->active--;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

/* Not started: a dependency did not come up, or (blocked_by NULL) a stop
 * was requested. */
static void skip(struct job *j)
{
	const struct job *dep = j->blocked_by ? job_named(j->r, j->blocked_by) : NULL;
	j->st = J_SKIPPED;
	event_state(j->cfg->name, "skipped");
	if (!dep)
		diag_fail(&j->d, "%s: not started: interrupted", j->cfg->name);
	else
		diag_fail(&j->d, "%s: not started: depends on %s, which %s", j->cfg->name,
			  j->blocked_by, dep->st == J_FAILED ? "failed" : "was not started");
}

/* For a waiting machine: 1 start it, 0 not yet, -1 skip it. */
static int startable(struct run *r, struct job *j)
{
	if (j->st != J_WAITING)
		return 0;
	return cancel_requested() ? -1 : deps_ready(r, j);
}

/* Called with r->mu held; a machine without a thread runs here, unlocked. */
static void start(struct run *r, struct job *j)
{
	j->st = J_RUNNING;
	r->active++;
	j->threaded = pthread_create(&j->th, NULL, job_main, j) == 0;
	if (!j->threaded) {
		pthread_mutex_unlock(&r->mu);
		job_main(j);
		pthread_mutex_lock(&r->mu);
	}
}

/* Starts each machine, in envfile order, once its dependencies are up and
 * fewer than r->limit run; skips those whose dependency did not come up,
 * and every one not yet started once a stop is requested (each machine
 * that ends wakes it). Returns when every machine has started or been
 * skipped. */
static void schedule(struct run *r)
{
	size_t left = r->n;
	pthread_mutex_lock(&r->mu);
	while (left) {
		size_t before = left;
		for (size_t i = 0; i < r->n; i++) {
			struct job *j = &r->jobs[i];
			int ready = startable(r, j);
			if (ready < 0)
				skip(j);
			else if (ready > 0 && r->active < r->limit)
				start(r, j);
			else
				continue;
			left--;
		}
		if (left == before)
			pthread_cond_wait(&r->cv, &r->mu);
	}
	pthread_mutex_unlock(&r->mu);
}

static void fill_results(const struct run *r, struct lc_result *res)
{
	static const enum lc_outcome outcome[] = {
		[J_DONE] = LC_DONE, [J_FAILED] = LC_FAILED, [J_SKIPPED] = LC_SKIPPED,
	};
	for (size_t i = 0; res && i < r->n; i++) {
		const struct job *j = &r->jobs[i];
		res[i] = (struct lc_result){.machine = j->cfg->name, .outcome = outcome[j->st],
					    .ms = j->ms, .boot_ms = j->boot_ms,
					    .provision_ms = j->provision_ms,
					    .failed_step = j->failed_step,
					    .blocked_by = j->blocked_by};
	}
}

/* Top-level steps once every machine is up; none after a stop request. */
static void provision_all(struct run *r, struct diag_list *errs)
{
	if (cancel_requested())
		return;
	struct prov_target *t = xcalloc(r->n, sizeof(*t));
	size_t n = 0;
	for (size_t i = 0; i < r->n; i++)
		if (r->jobs[i].st == J_DONE)
			t[n++] = r->jobs[i].t;
	struct diag d = {0};
	if (n && provision_env(r->e, t, n, r->o->provision, r->o->only, &r->envf, &d) < 0)
		diag_list_add(errs, &d);
	free(t);
}

void lifecycle_add_env(struct lc_result *res, size_t n, const struct env_failure *f)
{
	for (size_t i = 0; res && i < n; i++) {
		if (res[i].outcome == LC_SKIPPED)
			continue;
		res[i].ms += f->ms;
		res[i].provision_ms += f->ms;
		for (size_t k = 0; f->step && k < f->machines.n; k++)
			if (strcmp(f->machines.v[k], res[i].machine) == 0) {
				res[i].failed_step = f->step;
				res[i].outcome = LC_FAILED;
			}
	}
}

/* The action's name, for triggers. */
static const char *action_of(int (*fn)(struct run *, struct job *, struct diag *))
{
	static const struct {
		int (*fn)(struct run *, struct job *, struct diag *);
		const char *action;
	} actions[] = {{up_one, "up"}, {halt_one, "halt"}, {reload_one, "reload"},
		       {destroy_one, "destroy"}};
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (actions[i].fn == fn)
			return actions[i].action;
	return "";
}

static int run_jobs(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		    const struct lc_opts *o, int (*fn)(struct run *, struct job *, struct diag *),
		    struct diag_list *errs, struct lc_result *res)
{
	bool ordered = fn == up_one || fn == reload_one;
	struct run r = {.e = e, .o = o, .n = n, .fn = fn, .ordered = ordered,
			.limit = ordered && o->parallel ? o->parallel : n,
			.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	r.action = action_of(fn);
	r.jobs = xcalloc(n, sizeof(*r.jobs));
	for (size_t i = 0; i < n; i++)
		r.jobs[i] = (struct job){.cfg = sel[i], .r = &r};
	struct diag td = {0};
	if (n && triggers_fire(e, NULL, TRIG_BEFORE, r.action, NULL, &td) < 0) {
		diag_list_add(errs, &td);
		for (size_t i = 0; i < n; i++)
			r.jobs[i].st = J_SKIPPED;
	} else {
		schedule(&r);
	}
	for (size_t i = 0; i < n; i++)
		if (r.jobs[i].threaded)
			pthread_join(r.jobs[i].th, NULL);
	size_t before = errs->n;
	for (size_t i = 0; i < n && !td.msg[0]; i++)
		if (r.jobs[i].st != J_DONE)
			diag_list_add(errs, &r.jobs[i].d);
	if (r.ordered && !td.msg[0])
		provision_all(&r, errs);
	if (n && !td.msg[0] && triggers_fire(e, NULL, TRIG_AFTER, r.action, NULL, &td) < 0)
		diag_list_add(errs, &td);
	fill_results(&r, res);
	lifecycle_add_env(res, n, &r.envf);
	strv_free(&r.envf.machines);
	for (size_t i = 0; i < n; i++) {
		ssh_close(r.jobs[i].t.conn);
		machine_close(&r.jobs[i].m);
	}
	free(r.jobs);
	return errs->n > before ? -1 : 0;
}

int lifecycle_up(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		 const struct lc_opts *o, struct diag_list *errs, struct lc_result *res)
{
	return run_jobs(e, sel, n, o, up_one, errs, res);
}

int lifecycle_halt(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		   const struct lc_opts *o, struct diag_list *errs, struct lc_result *res)
{
	return run_jobs(e, sel, n, o, halt_one, errs, res);
}

int lifecycle_reload(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		     const struct lc_opts *o, struct diag_list *errs, struct lc_result *res)
{
	return run_jobs(e, sel, n, o, reload_one, errs, res);
}

int lifecycle_destroy(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		      const struct lc_opts *o, struct diag_list *errs, struct lc_result *res)
{
	return run_jobs(e, sel, n, o, destroy_one, errs, res);
}

int lifecycle_reset(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		    const struct lc_opts *o, struct diag_list *errs, struct lc_result *res)
{
	return run_jobs(e, sel, n, o, reset_one, errs, res);
}

/* One machine for `corral lock`. */
static int lock_one(const struct env *e, const struct machine_cfg *mc, bool update,
		    struct boxlock *l, struct diag *d)
{
	struct machine m;
	if (!update && pinned(l, mc))
		return 0;
	if (machine_open(&m, e, mc, d) < 0)
		return -1;
	struct lc_opts o = {0};
	struct run r = {.e = e, .o = &o};
	int rc = 0;
	const struct provider *p = NULL;
	if (!update && machine_str(&m, MK_BOX_DIR))
		pin_running(l, &m);
	else if (!(p = pick_provider(&r, &m, d)))
		rc = -1;
	if (p) {
		struct box_ref ref = {0};
		pthread_mutex_lock(&box_mu);
		rc = resolve_box(l, box_providers(p, mc), mc, &ref, d, update);
		pthread_mutex_unlock(&box_mu);
		box_ref_free(&ref);
	}
	machine_close(&m);
	return rc < 0 ? diag_wrap(d, "%s", mc->name) : 0;
}

int lifecycle_lock(const struct env *e, const struct machine_cfg *const *sel, size_t n,
		   bool update, struct boxlock *lock, struct diag_list *errs)
{
	size_t before = errs->n;
	boxlock_retain(lock, e);
	for (size_t i = 0; i < n; i++) {
		struct diag d = {0};
		if (lock_one(e, sel[i], update, lock, &d) < 0)
			diag_list_add(errs, &d);
	}
	return errs->n > before ? -1 : 0;
}
