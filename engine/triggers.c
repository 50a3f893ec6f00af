/* Trigger runs: host commands through proc_cmd_run (never a shell built
 * from values: an inline string is the user's own text for /bin/sh -c),
 * guest ones through ssh_exec, both with their output streamed and its
 * tail kept for the error and the event. */
#include "engine/triggers.h"

#include <stdlib.h>
#include <string.h>

#include "core/base/event.h"
#include "core/base/log.h"
#include "core/base/util.h"
#include "core/host/proc.h"
#include "core/ssh/ssh.h"
#include "provisioners/step.h"

static const char *const when_words[] = {[TRIG_BEFORE] = "before", [TRIG_AFTER] = "after"};

static void list_of(const struct env *e, const struct machine_cfg *mc,
		    const struct trigger_cfg **v, size_t *n)
{
	*v = mc ? mc->triggers : e->triggers;
	*n = mc ? mc->ntriggers : e->ntriggers;
}

static bool fires(const struct trigger_cfg *t, enum trig_when when, const char *action)
{
	const struct strv *l = when == TRIG_BEFORE ? &t->before : &t->after;
	return str_in_list(action, (const char *const *)l->v);
}

bool triggers_remote(const struct env *e, const struct machine_cfg *mc, enum trig_when when,
		     const char *action)
{
	const struct trigger_cfg *v;
	size_t n;
	list_of(e, mc, &v, &n);
	for (size_t i = 0; i < n; i++)
		if (v[i].run_remote && fires(&v[i], when, action))
			return true;
	return false;
}

struct host_out {
	const char *prefix;
	struct buf *tail;
};

static void host_line(const char *line, void *arg)
{
	struct host_out *o = arg;
	log_stream(o->prefix, line, false);
	step_tail_push(o->tail, line, STEP_TAIL_LINES);
}

/* A relative program path ("./hook.sh") is the envfile directory's. */
static int run_host(const struct env *e, const struct machine_cfg *mc, const struct trigger_cfg *t,
		    enum trig_when when, const char *action, const char *prefix, int *status,
		    struct buf *tail, struct diag *d)
{
	struct strv argv = {0}, env = {0};
	for (size_t i = 0; i < t->run.n; i++)
		strv_take(&argv, i == 0 && strchr(t->run.v[0], '/') && t->run.v[0][0] != '/'
					 ? path_join(e->dir, t->run.v[0])
					 : xstrdup(t->run.v[i]));
	strv_pushf(&env, "CORRAL_MACHINE=%s", mc ? mc->name : "");
	strv_pushf(&env, "CORRAL_ACTION=%s", action);
	strv_pushf(&env, "CORRAL_WHEN=%s", when_words[when]);
	strv_pushf(&env, "CORRAL_TRIGGER=%s", t->name ? t->name : "");
	strv_pushf(&env, "CORRAL_ENVFILE=%s", e->path);
	struct host_out out = {prefix, tail};
	struct proc_cmd c = {.argv = (const char *const *)argv.v,
			     .env = (const char *const *)env.v, .cwd = e->dir,
			     .line = host_line, .arg = &out};
	int rc = proc_cmd_run(&c, d);
	*status = c.status;
	proc_cmd_free(&c);
	strv_free(&argv);
	strv_free(&env);
	return rc;
}

static int run_one(const struct env *e, const struct machine_cfg *mc, const struct trigger_cfg *t,
		   size_t index, enum trig_when when, const char *action, struct ssh_conn *conn,
		   struct diag *d)
{
	_cleanup_free_ char *name = t->name ? xstrdup(t->name)
					    : xasprintf("%s %s #%zu", when_words[when], action, index + 1);
	_cleanup_free_ char *prefix = xasprintf("%s:trigger %s", mc ? mc->name : "corral", name);
	if (t->run_remote && !conn) {
		log_info("%s: not run: the machine is not running", prefix);
		return 0;
	}
	log_info("%s: %s %s", prefix, when_words[when], action);
	event_start(EV_TRIGGER, mc ? mc->name : NULL, name);
	uint64_t t0 = now_ms();
	struct buf tail = {0};
	int status = 0;
	int rc = t->run_remote ? ssh_exec(conn, t->run_remote, prefix, &status, &tail,
					  STEP_TAIL_LINES, d)
			       : run_host(e, mc, t, when, action, prefix, &status, &tail, d);
	if (rc == 0 && status != 0)
		rc = step_exit_fail(d, status, &tail);
	if (rc < 0)
		diag_wrap(d, "%s: trigger `%s` (%s %s)", mc ? mc->name : e->path, name,
			  when_words[when], action);
	event_end(EV_TRIGGER, mc ? mc->name : NULL, name, rc == 0, now_ms() - t0,
		  rc < 0 ? d->msg : (tail.len ? tail.s : NULL));
	buf_free(&tail);
	if (rc < 0 && t->on_error_continue) {
		log_warn("%s (on_error: continue)", d->msg);
		*d = (struct diag){0};
		return 0;
	}
	return rc;
}

int triggers_fire(const struct env *e, const struct machine_cfg *mc, enum trig_when when,
		  const char *action, struct ssh_conn *conn, struct diag *d)
{
	const struct trigger_cfg *v;
	size_t n;
	list_of(e, mc, &v, &n);
	for (size_t i = 0; i < n; i++)
		if (fires(&v[i], when, action) &&
		    run_one(e, mc, &v[i], i, when, action, conn, d) < 0)
			return -1;
	return 0;
}
