/* The ansible provisioner: ansible-playbook on the host, run by argv
 * (proc_cmd_run, never a shell), output streamed line by line. */
#include "provisioners/ansible.h"

#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/host/proc.h"
#include "core/ssh/ssh.h"
#include "provisioners/step.h"

static char *state_file(const struct env *e, const char *leaf)
{
	_cleanup_free_ char *rel = xasprintf("provisioners/ansible/%s", leaf);
	return path_join(e->state_dir, rel);
}

char *ansible_inventory_path(const struct ansible_job *j)
{
	_cleanup_free_ char *leaf = j->machine
		? xasprintf("inventory/%s-step%u.json", j->machine, j->step->index)
		: xasprintf("inventory/provision-step%u.json", j->step->index);
	return state_file(j->env, leaf);
}

static char *limit_of(const struct ansible_job *j)
{
	const struct ansible_step *a = &j->step->ansible;
	if (a->limit)
		return xstrdup(a->limit);
	return j->machine ? xstrdup(j->machine) : strv_join(&a->targets, ",");
}

void ansible_command(const struct ansible_job *j, struct strv *argv)
{
	const struct ansible_step *a = &j->step->ansible;
	*argv = (struct strv){0};
	strv_push(argv, "ansible-playbook");
	strv_push(argv, "-i");
	strv_take(argv, a->inventory ? xstrdup(a->inventory) : ansible_inventory_path(j));
	strv_push(argv, "--limit");
	strv_take(argv, limit_of(j));
	if (a->extra_vars) {
		strv_push(argv, "--extra-vars");
		strv_take(argv, json_dumps(a->extra_vars, JSON_COMPACT));
	}
	if (a->become)
		strv_push(argv, "--become");
	if (a->tags.n) {
		strv_push(argv, "--tags");
		strv_take(argv, strv_join(&a->tags, ","));
	}
	if (a->skip_tags.n) {
		strv_push(argv, "--skip-tags");
		strv_take(argv, strv_join(&a->skip_tags, ","));
	}
	if (a->verbose > 0)
		strv_pushf(argv, "-%.*s", a->verbose > 4 ? 4 : a->verbose, "vvvv");
	for (size_t i = 0; i < a->raw_arguments.n; i++)
		strv_push(argv, a->raw_arguments.v[i]);
	strv_push(argv, a->playbook);
}

/* What ansible-playbook gets besides our environment. Host key checking
 * is forced on: a user's ANSIBLE_HOST_KEY_CHECKING=false would put
 * StrictHostKeyChecking=no ahead of our options. A user's
 * ANSIBLE_FORCE_COLOR goes, so colour follows our own output.
 * Pipelining: ansible_pipelining_env. */
static void child_env(const struct ansible_step *a, const char *known_hosts, struct strv *env)
{
	_cleanup_free_ char *args = ansible_ssh_args(known_hosts);
	ansible_pipelining_env(a, env);
	strv_push(env, "ANSIBLE_HOST_KEY_CHECKING=True");
	strv_push(env, "PYTHONUNBUFFERED=1");
	strv_pushf(env, "ANSIBLE_SSH_COMMON_ARGS=%s", args);
	if (log_opts()->color && isatty(STDOUT_FILENO))
		strv_push(env, "ANSIBLE_FORCE_COLOR=1");
}

enum { CAUSE_LINES = 12, CAUSE_LINE_MAX = 300 };

struct stream {
	const char *prefix;
	struct buf *tail;
	char task[160];     /* the task running now, from "TASK [name] ***" */
	struct buf causes;  /* "TASK [x]: fatal: [host]: ..." lines, the first few */
	unsigned ncauses;
	struct strv *failed; /* hosts with a fatal/failed line or a failing recap */
};

/* "[host]" right after the prefix, as Ansible writes it; NULL if not. */
static char *bracketed_host(const char *after)
{
	if (after[0] != '[')
		return NULL;
	size_t n = strcspn(after + 1, "]");
	return after[1 + n] == ']' ? xstrndup(after + 1, n) : NULL;
}

static void add_failed(struct strv *failed, const char *host)
{
	for (size_t i = 0; failed && i < failed->n; i++)
		if (strcmp(failed->v[i], host) == 0)
			return;
	if (failed)
		strv_push(failed, host);
}

/* "host : ok=1 changed=0 unreachable=0 failed=1 ...", from PLAY RECAP. */
static void recap_line(struct stream *s, const char *line)
{
	unsigned unreachable = 0, failed = 0;
	const char *u = strstr(line, " unreachable="), *f = strstr(line, " failed=");
	const char *colon = strstr(line, " : ok=");
	if (!u || !f || !colon || sscanf(u, " unreachable=%u", &unreachable) != 1 ||
	    sscanf(f, " failed=%u", &failed) != 1 || !(unreachable || failed))
		return;
	_cleanup_free_ char *host = xstrndup(line, (size_t)(colon - line));
	char *end = host + strlen(host);
	while (end > host && end[-1] == ' ')
		*--end = '\0';
	add_failed(s->failed, host);
}

/* The cause of a failure: fatal:/failed: lines per host, with their task. */
static void watch_line(struct stream *s, const char *line)
{
	static const char *const marks[] = {"fatal: ", "failed: "};
	if (strncmp(line, "TASK [", 6) == 0) {
		size_t n = strcspn(line + 6, "]");
		snprintf(s->task, sizeof(s->task), "%.*s", (int)n, line + 6);
		return;
	}
	for (size_t i = 0; i < sizeof(marks) / sizeof(marks[0]); i++) {
		size_t ml = strlen(marks[i]);
		_cleanup_free_ char *host = strncmp(line, marks[i], ml) ? NULL : bracketed_host(line + ml);
		if (!host)
			continue;
		add_failed(s->failed, host);
		if (s->ncauses++ < CAUSE_LINES)
			buf_printf(&s->causes, "\n    task `%s`: %.*s", s->task, CAUSE_LINE_MAX, line);
		return;
	}
	recap_line(s, line);
}

/* Each line of its output, as it comes: shown, and kept for the error. */
static void on_line(const char *line, void *arg)
{
	struct stream *s = arg;
	log_stream(s->prefix, line, false);
	step_tail_push(s->tail, line, STEP_TAIL_LINES);
	watch_line(s, line);
}

/* Ansible's own words for why it failed, where it said them; else the
 * last lines, as for any step. */
static int fail_with_cause(struct diag *d, int status, struct stream *s)
{
	if (!s->causes.len)
		return step_exit_fail(d, status, s->tail);
	_cleanup_free_ char *causes = log_redact(s->causes.s);
	diag_fail(d, "exit code %d; failed:%s", status, causes);
	if (s->ncauses > CAUSE_LINES)
		diag_hint(d, "%u more failures: see the output above", s->ncauses - CAUSE_LINES);
	return -1;
}

static int write_state(const char *path, const struct buf *b, struct diag *d)
{
	_cleanup_free_ char *dir = path_dirname(path);
	if (mkdir_p(dir, 0700, d) < 0 || write_file_atomic(path, b->s, b->len, 0600, d) < 0)
		return -1;
	return 0;
}

/* Read, merge and replace as one step among this process's threads (other
 * processes are kept out by the envfile's lock). */
static int write_known_hosts(const struct ansible_job *j, const char *path, struct diag *d)
{
	static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
	struct buf kh = {0};
	char *old = NULL;
	pthread_mutex_lock(&mu);
	int rc = path_exists(path) ? read_file(path, ANSIBLE_KNOWN_HOSTS_MAX, &old, NULL, d) : 0;
	if (rc == 0)
		rc = ansible_known_hosts(j->hosts, j->nhosts, old, &kh, d);
	if (rc == 0)
		rc = write_state(path, &kh, d);
	pthread_mutex_unlock(&mu);
	free(old);
	buf_free(&kh);
	return rc;
}

static int write_files(const struct ansible_job *j, const char *known_hosts, struct diag *d)
{
	struct buf inv = {0};
	int rc = write_known_hosts(j, known_hosts, d);
	if (rc == 0 && !j->step->ansible.inventory) {
		_cleanup_free_ char *path = ansible_inventory_path(j);
		rc = ansible_inventory(&j->step->ansible, j->hosts, j->nhosts, known_hosts, &inv, d);
		if (rc == 0)
			rc = write_state(path, &inv, d);
	}
	buf_free(&inv);
	return rc;
}

/* Whether the play runs on host: the machine's own step, or one of the
 * step's targets (a custom `limit` is Ansible's to match: not checked). */
static bool in_play(const struct ansible_job *j, const char *host)
{
	const struct ansible_step *a = &j->step->ansible;
	if (a->limit)
		return false;
	return j->machine ? strcmp(host, j->machine) == 0
			  : str_in_list(host, (const char *const *)a->targets.v);
}

/* Ansible's modules run with the guest's Python: a guest without one (an
 * OCI image of a service, busybox) fails here, saying so, rather than
 * deep inside the play. */
static int check_python(const struct ansible_job *j, struct diag *d)
{
	static const char probe[] = "command -v python3 >/dev/null 2>&1 || "
				    "command -v python >/dev/null 2>&1";
	for (size_t i = 0; i < j->nhosts; i++) {
		const struct prov_target *h = &j->hosts[i];
		int status = 0;
		if (!h->conn || !in_play(j, h->m->cfg->name))
			continue;
		if (ssh_exec(h->conn, probe, NULL, &status, NULL, 0, d) < 0)
			return diag_wrap(d, "%s: look for python3", h->m->cfg->name);
		if (status != 0) {
			diag_fail(d, "%s: the image has no python3; ansible needs it", h->m->cfg->name);
			return diag_hint(d, "use an image with python3, or a shell provisioner "
					    "to install it first");
		}
	}
	return 0;
}

int ansible_run(const struct ansible_job *j, struct strv *failed_hosts, struct diag *d)
{
	if (!proc_have("ansible-playbook")) {
		diag_fail(d, "ansible-playbook is not installed on this host");
		return diag_hint(d, "install it (Debian: apt-get install ansible-core)");
	}
	_cleanup_free_ char *known_hosts = state_file(j->env, "known_hosts");
	if (check_python(j, d) < 0 || write_files(j, known_hosts, d) < 0)
		return -1;
	static const char *const drop[] = {"ANSIBLE_FORCE_COLOR=", NULL};
	struct strv argv, env = {0};
	struct buf tail = {0};
	ansible_command(j, &argv);
	child_env(&j->step->ansible, known_hosts, &env);
	_cleanup_free_ char *limit = limit_of(j);
	log_info("%s: ansible-playbook %s (limit %s)", j->prefix, j->step->ansible.playbook, limit);
	struct stream st = {.prefix = j->prefix, .tail = &tail, .failed = failed_hosts};
	struct proc_cmd c = {.argv = (const char *const *)argv.v, .env = (const char *const *)env.v,
			     .env_drop = drop, .line = on_line, .arg = &st};
	int rc = proc_cmd_run(&c, d);
	if (rc == 0 && c.status != 0) /* step_exit_fail: above 255, a signal */
		rc = fail_with_cause(d, c.sig ? 255 + c.sig : c.status, &st);
	proc_cmd_free(&c);
	buf_free(&st.causes);
	strv_free(&argv);
	strv_free(&env);
	buf_free(&tail);
	return rc;
}

static int ansible_step_run(struct prov_ctx *pc, const struct step *s, struct diag *d)
{
	struct prov_target self = {.m = pc->m, .conn = pc->conn, .ep = *pc->ep};
	_cleanup_free_ char *prefix = step_prefix(pc->m->cfg->name, s);
	struct ansible_job j = {
		.env = pc->m->env,
		.step = s,
		.machine = pc->m->cfg->name,
		.hosts = pc->npeers ? pc->peers : &self,
		.nhosts = pc->npeers ? pc->npeers : 1,
		.prefix = prefix,
	};
	return ansible_run(&j, NULL, d);
}

const struct provisioner ansible_provisioner = {
	.name = "ansible",
	.kind = STEP_ANSIBLE,
	.run = ansible_step_run,
};
