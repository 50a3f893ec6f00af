/* corral ssh: OpenSSH to a machine with the options corral connects with
 * (its key, its pinned host key), and corral ssh-config: the same options
 * as Host blocks for ssh -F, scp, rsync and Ansible. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "engine/lifecycle.h"
#include "core/host/machine.h"
#include "core/host/proc.h"
#include "core/ssh/ssh.h"
#include "core/host/state.h"
#include "core/base/strv.h"
#include "core/base/util.h"

enum { VERIFY_TIMEOUT_MS = 5000 };

static void machine_names(const struct env *e, struct buf *b)
{
	for (size_t i = 0; i < e->nmachines; i++)
		buf_printf(b, "%s%s", i ? ", " : "", e->machines[i].name);
}

/* NAME, else the primary or only machine. */
static const struct machine_cfg *pick(struct ctx *c, const char *name)
{
	const struct machine_cfg *mc = name ? env_machine(c->env, name) : env_primary(c->env);
	if (mc)
		return mc;
	struct buf names = {0};
	machine_names(c->env, &names);
	if (name)
		usage_error(command_find(c->argv[0]), "no machine `%s` in %s (machines: %s)", name,
			    c->env->path, names.s ? names.s : "none");
	else
		usage_error(command_find(c->argv[0]), "which machine? %s has %s", c->env->path,
			    names.s ? names.s : "none");
	buf_free(&names);
	return NULL;
}

static bool pinned(const struct endpoint *ep)
{
	struct stat st;
	return stat(ep->known_hosts, &st) == 0 && st.st_size > 0;
}

/* One login through libssh: pins the host key on first contact, and
 * explains a mismatch better than OpenSSH can. */
static int verify(const struct machine *m, const struct endpoint *ep, struct diag *d)
{
	_cleanup_free_ char *hint = xasprintf("corral ssh --reset-host-key %s", m->cfg->name);
	struct ssh_conn *conn = NULL;
	int rc = ssh_wait_ready(ep, VERIFY_TIMEOUT_MS, NULL, hint, &conn, d);
	ssh_close(conn);
	return rc;
}

static int reset_host_key(const struct machine *m, const struct endpoint *ep, struct diag *d)
{
	if (unlink(ep->known_hosts) < 0 && errno != ENOENT)
		return diag_errno(d, "%s", ep->known_hosts);
	if (verify(m, ep, d) < 0)
		return -1;
	fprintf(stderr, "%s: forgot the old host key; pinned the one it has now in %s\n",
		m->cfg->name, ep->known_hosts);
	return 0;
}

struct ssh_args {
	const char *name, *command;
	bool reset;
	char **raw; /* after `--` */
	int nraw;
};

static int parse_ssh(struct ctx *c, struct ssh_args *a)
{
	const struct command *cmd = command_find("ssh");
	for (int i = 1; i < c->argc; i++) {
		const char *s = c->argv[i];
		if (strcmp(s, "--") == 0) {
			a->raw = c->argv + i + 1;
			a->nraw = c->argc - i - 1;
			break;
		}
		if (strcmp(s, "-c") == 0 || strcmp(s, "--command") == 0) {
			if (++i >= c->argc)
				return usage_error(cmd, "%s needs a command", s);
			a->command = c->argv[i];
		} else if (strcmp(s, "--reset-host-key") == 0) {
			a->reset = true;
		} else if (s[0] == '-') {
			return usage_error(cmd, "unknown option `%s` (ssh's own go after `--`)", s);
		} else if (a->name) {
			return usage_error(cmd, "one machine at a time (`%s` and `%s`)", a->name, s);
		} else {
			a->name = s;
		}
	}
	return EXIT_OK;
}

/* ssh -o OPTION... [-t] [RAW...] HOST [COMMAND]; the address as the
 * destination, so no Host block of the user's config matches by name. */
static void ssh_argv(const struct endpoint *ep, const struct strv *opts,
		     const struct ssh_args *a, struct strv *argv)
{
	strv_push(argv, "ssh");
	for (size_t i = 0; i < opts->n; i++) {
		strv_push(argv, "-o");
		strv_push(argv, opts->v[i]);
	}
	if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
		strv_push(argv, "-t");
	for (int i = 0; i < a->nraw; i++)
		strv_push(argv, a->raw[i]);
	strv_push(argv, ep->host);
	if (a->command)
		strv_push(argv, a->command);
}

enum { SSH_FAILED = 255 }; /* OpenSSH's own exit status for its errors */

static void on_terminal_signal(int sig) { (void)sig; }

/* OpenSSH with argv, stdio inherited, its exit status returned (128+N for
 * signal N). While it runs, the terminal's SIGINT and SIGQUIT are the
 * session's: corral catches them with a handler that does nothing (a
 * handler, unlike SIG_IGN, is not inherited across exec). */
static int run_ssh(char **argv)
{
	fflush(NULL);
	struct sigaction quiet = {.sa_handler = on_terminal_signal}, old_int, old_quit;
	sigaction(SIGINT, &quiet, &old_int);
	sigaction(SIGQUIT, &quiet, &old_quit);
	struct proc_spawn sp = {.argv = (const char *const *)argv, .exe = "/usr/bin/ssh"};
	struct diag d = {0};
	pid_t pid;
	int sig = 0, rc = proc_spawn(&sp, &pid, &d);
	int status = rc == 0 ? proc_wait(pid, &sig) : EXIT_FAIL;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGQUIT, &old_quit, NULL);
	if (rc < 0)
		report(&d);
	return status;
}

/* ssh ended with 255, its own failure or the command's: one libssh login
 * finds out whether the machine answers with its pinned host key, and if
 * not says why with the fix (`--reset-host-key`), which OpenSSH cannot. */
static void explain_ssh_failure(struct ctx *c, const struct machine_cfg *mc)
{
	struct machine m;
	struct endpoint ep;
	struct diag d = {0};
	if (machine_open(&m, c->env, mc, &d) < 0)
		return;
	if (lifecycle_endpoint(&m, &ep, &d) == 0 && verify(&m, &ep, &d) < 0)
		report(&d);
	machine_close(&m);
}

/* How a command treats the pinned host key before it hands out options:
 * pin it if there is none yet (OpenSSH, with StrictHostKeyChecking, checks
 * a pinned one itself), or forget it and pin the machine's current one. */
enum pin { PIN_IF_NONE, PIN_RESET };

/* The OpenSSH options for a running machine, its host key pinned first. */
static int pinned_options(struct ctx *c, const struct machine_cfg *mc, enum pin pin,
			  struct endpoint *ep, struct strv *opts, struct diag *d)
{
	struct machine m;
	if (machine_open(&m, c->env, mc, d) < 0)
		return -1;
	int rc = lifecycle_endpoint(&m, ep, d) ? -1 : 0;
	if (rc == 0 && pin == PIN_RESET)
		rc = reset_host_key(&m, ep, d);
	else if (rc == 0 && !pinned(ep))
		rc = verify(&m, ep, d);
	if (rc == 0)
		rc = ssh_client_options(ep, opts, d);
	machine_close(&m);
	return rc;
}

static int machine_options(struct ctx *c, const struct machine_cfg *mc, enum pin pin,
			   struct endpoint *ep, struct strv *opts)
{
	struct diag d = {0};
	if (pinned_options(c, mc, pin, ep, opts, &d) == 0)
		return EXIT_OK;
	report(&d);
	return EXIT_FAIL;
}

static int ssh_to(struct ctx *c, const struct machine_cfg *mc, const struct ssh_args *a)
{
	struct endpoint ep;
	struct strv opts = {0};
	int rc = machine_options(c, mc, a->reset ? PIN_RESET : PIN_IF_NONE, &ep, &opts);
	if (rc || (a->reset && !a->command && !a->nraw)) {
		strv_free(&opts);
		return rc;
	}
	struct strv argv = {0};
	ssh_argv(&ep, &opts, a, &argv);
	int status = run_ssh(argv.v);
	strv_free(&argv);
	strv_free(&opts);
	if (status == SSH_FAILED)
		explain_ssh_failure(c, mc);
	return status;
}

int cmd_ssh(struct ctx *c)
{
	struct ssh_args a = {0};
	int rc = parse_ssh(c, &a);
	if (rc || (rc = ctx_load_env(c)))
		return rc;
	const struct machine_cfg *mc = pick(c, a.name);
	return mc ? ssh_to(c, mc, &a) : EXIT_USAGE;
}

/* Appends mc's Host block when rc is EXIT_OK; frees opts; returns rc. */
static int append_block(const struct machine_cfg *mc, struct strv *opts, int rc,
			struct buf *out)
{
	if (rc == EXIT_OK) {
		buf_printf(out, "%sHost %s\n", out->len ? "\n" : "", mc->name);
		for (size_t i = 0; i < opts->n; i++)
			buf_printf(out, "  %s\n", opts->v[i]);
	}
	strv_free(opts);
	return rc;
}

/* One Host block; the host key is pinned first if it is not yet. */
static int host_block(struct ctx *c, const struct machine_cfg *mc, struct buf *out)
{
	struct endpoint ep;
	struct strv opts = {0};
	int rc = machine_options(c, mc, PIN_IF_NONE, &ep, &opts);
	return append_block(mc, &opts, rc, out);
}

/* Every machine's Host block, as Vagrant prints them: one that is not
 * running is left out with a note; an error when none is running. */
static int all_blocks(struct ctx *c, struct buf *out)
{
	size_t shown = 0;
	for (size_t i = 0; i < c->env->nmachines; i++) {
		const struct machine_cfg *mc = &c->env->machines[i];
		struct endpoint ep;
		struct strv opts = {0};
		struct diag d = {0};
		if (pinned_options(c, mc, PIN_IF_NONE, &ep, &opts, &d) < 0) {
			fprintf(stderr, "corral: %s left out: %s\n", mc->name, d.msg);
			strv_free(&opts);
			continue;
		}
		append_block(mc, &opts, EXIT_OK, out);
		shown++;
	}
	if (shown || !c->env->nmachines)
		return EXIT_OK;
	fprintf(stderr, "corral: no machine of %s is running\n  hint: start them with `corral up`\n",
		c->env->path);
	return EXIT_FAIL;
}

int cmd_ssh_config(struct ctx *c)
{
	for (int i = 1; i < c->argc; i++)
		if (c->argv[i][0] == '-')
			return usage_error(command_find("ssh-config"), "unknown option `%s`",
					   c->argv[i]);
	int rc = ctx_load_env(c);
	if (rc)
		return rc;
	struct buf out = {0};
	if (c->argc == 1)
		rc = all_blocks(c, &out);
	for (int i = 1; i < c->argc && rc == EXIT_OK; i++) {
		const struct machine_cfg *mc = pick(c, c->argv[i]);
		rc = mc ? host_block(c, mc, &out) : EXIT_USAGE;
	}
	if (rc == EXIT_OK)
		fputs(out.s ? out.s : "", stdout);
	buf_free(&out);
	return rc;
}
