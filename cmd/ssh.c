/* corral ssh: OpenSSH to a machine with the options corral connects with
 * (its key, its pinned host key), and corral ssh-config: the same options
 * as Host blocks for ssh -F, scp, rsync and Ansible. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "engine/lifecycle.h"
#include "core/host/machine.h"
#include "core/ssh/ssh.h"
#include "core/host/state.h"
#include "core/base/util.h"
#include "providers/provider.h"

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

/* How a command treats the pinned host key before it hands out options. */
enum pin { PIN_CHECK, PIN_RESET, PIN_IF_NONE };

/* The OpenSSH options for a running machine, its host key checked first. */
static int machine_options(struct ctx *c, const struct machine_cfg *mc, enum pin pin,
			   struct endpoint *ep, struct strv *opts)
{
	struct machine m;
	struct diag d = {0};
	if (machine_open(&m, c->env, mc, &d) < 0) {
		report(&d);
		return EXIT_FAIL;
	}
	int rc = lifecycle_endpoint(&m, ep, &d) ? -1 : 0;
	if (rc == 0 && pin == PIN_RESET)
		rc = reset_host_key(&m, ep, &d);
	else if (rc == 0 && (pin == PIN_CHECK || !pinned(ep)))
		rc = verify(&m, ep, &d);
	if (rc == 0)
		rc = ssh_client_options(ep, opts, &d);
	machine_close(&m);
	if (rc < 0) {
		report(&d);
		return EXIT_FAIL;
	}
	return EXIT_OK;
}

static int ssh_to(struct ctx *c, const struct machine_cfg *mc, const struct ssh_args *a)
{
	struct endpoint ep;
	struct strv opts = {0};
	int rc = machine_options(c, mc, a->reset ? PIN_RESET : PIN_CHECK, &ep, &opts);
	if (rc || (a->reset && !a->command && !a->nraw)) {
		strv_free(&opts);
		return rc;
	}
	struct strv argv = {0};
	ssh_argv(&ep, &opts, a, &argv);
	fflush(NULL);
	execv("/usr/bin/ssh", argv.v);
	fprintf(stderr, "corral: cannot run /usr/bin/ssh: %s\n", strerror(errno));
	strv_free(&argv);
	strv_free(&opts);
	return EXIT_FAIL;
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

/* One Host block; the host key is pinned first if it is not yet. */
static int host_block(struct ctx *c, const struct machine_cfg *mc, struct buf *out)
{
	struct endpoint ep;
	struct strv opts = {0};
	int rc = machine_options(c, mc, PIN_IF_NONE, &ep, &opts);
	if (rc == EXIT_OK) {
		buf_printf(out, "%sHost %s\n", out->len ? "\n" : "", mc->name);
		for (size_t i = 0; i < opts.n; i++)
			buf_printf(out, "  %s\n", opts.v[i]);
	}
	strv_free(&opts);
	return rc;
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
	for (int i = c->argc > 1 ? 1 : 0; i < c->argc && rc == EXIT_OK; i++) {
		const struct machine_cfg *mc = pick(c, i ? c->argv[i] : NULL);
		rc = mc ? host_block(c, mc, &out) : EXIT_USAGE;
	}
	if (rc == EXIT_OK)
		fputs(out.s ? out.s : "", stdout);
	buf_free(&out);
	return rc;
}
