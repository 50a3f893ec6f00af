/* The shell provisioner: an inline script or a host script run over SSH,
 * as root through sudo (privileged, the default) or as the login user.
 * Every value that reaches the remote command line goes through ssh_quote. */
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"
#include "core/box/oci.h"
#include "core/host/mstate.h"
#include "core/ssh/ssh.h"
#include "provisioners/step.h"

#define SCRIPT_MAX (16u << 20)
/* Longer inline scripts are uploaded like host scripts: one argument of a
 * remote command line is limited (128 KiB on Linux). */
#define INLINE_ARG_MAX (64u << 10)

/* An inline script is `sh -c RUNNER SCRIPT ARGS...`: RUNNER hands the
 * script to bash when the guest has it (what Vagrant users write), to sh
 * on minimal guests. */
static const char inline_runner[] =
	"command -v bash >/dev/null 2>&1 && exec bash -c \"$0\" corral \"$@\"; "
	"exec sh -c \"$0\" corral \"$@\"";

static bool env_name_ok(const char *k)
{
	if (!k[0] || (k[0] >= '0' && k[0] <= '9'))
		return false;
	return strspn(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") ==
	       strlen(k);
}

/* binary: false (the default) turns CRLF line ends into LF, as Vagrant does,
 * so scripts edited on Windows run. */
static void normalize(struct buf *out, const char *s, size_t n, bool binary)
{
	for (size_t i = 0; i < n; i++)
		if (binary || !(s[i] == '\r' && i + 1 < n && s[i + 1] == '\n'))
			buf_add(out, s + i, 1);
	if (!out->s)
		buf_add(out, "", 0);
}

static void add_quoted(struct buf *b, const char *s)
{
	char *q = ssh_quote(s);
	buf_printf(b, " %s", q);
	free(q);
}

/* An OCI image's config Env (its box's metadata.json), which the step's
 * own env may override: scripts see what the image's processes see. */
static void image_env(struct buf *b, const struct prov_ctx *pc)
{
	const char *dir = pc->m->box_dir ? pc->m->box_dir : machine_str(pc->m, MK_BOX_DIR);
	json_t *oci = dir && *dir ? oci_box_info(dir) : NULL, *v;
	size_t i;
	json_array_foreach(json_object_get(oci, "env"), i, v) {
		const char *kv = json_string_value(v), *eq = kv ? strchr(kv, '=') : NULL;
		_cleanup_free_ char *k = eq ? xstrndup(kv, (size_t)(eq - kv)) : NULL;
		if (k && env_name_ok(k))
			add_quoted(b, kv);
	}
	json_decref(oci);
}

/* "[sudo -E -H --] env K='v'..." : the variables are set by env(1) after
 * sudo, so they reach the script whatever sudo's env_reset says. */
static void command_start(struct buf *b, const struct prov_ctx *pc, const struct shell_step *sh)
{
	if (sh->privileged && strcmp(pc->ep->user, "root") != 0)
		buf_puts(b, "sudo -E -H -- ");
	buf_puts(b, "env");
	image_env(b, pc);
	for (size_t i = 0; i < sh->nenv; i++) {
		_cleanup_free_ char *kv = xasprintf("%s=%s", sh->env[i].key, sh->env[i].value);
		add_quoted(b, kv);
	}
}

static void command_args(struct buf *b, const struct strv *args)
{
	for (size_t i = 0; i < args->n; i++)
		add_quoted(b, args->v[i]);
}

static void describe(const struct prov_ctx *pc, const struct step *s, const char *cmd)
{
	const struct shell_step *sh = &s->shell;
	log_machine(pc->m->cfg->name, "running %s%s", sh->path ? sh->path : "inline script",
		    sh->sensitive ? " (sensitive: command and env hidden)" : "");
	if (!sh->sensitive)
		log_debug("%s: %s", pc->m->cfg->name, cmd);
}

/* Uploads the script and runs it; it is removed in the same command line
 * whatever its exit, and once more if the connection failed mid-run. */
static int run_uploaded(struct prov_ctx *pc, const struct step *s, const struct buf *script,
			struct buf *cmd, const char *prefix, int *status, struct buf *tail,
			struct diag *d)
{
	_cleanup_free_ char *path = step_guest_tmp(s, "step", ".sh");
	_cleanup_free_ char *qpath = ssh_quote(path);
	if (ssh_upload_data(pc->conn, script->s, script->len, path, 0755, d) < 0)
		return diag_wrap(d, "upload the script");
	buf_printf(cmd, " %s", qpath);
	command_args(cmd, &s->shell.args);
	buf_printf(cmd, "; rc=$?; rm -f %s; exit $rc", qpath);
	describe(pc, s, cmd->s);
	int rc = ssh_exec(pc->conn, cmd->s, prefix, status, tail, STEP_TAIL_LINES, d);
	if (rc < 0) {
		struct diag ignored = {0};
		_cleanup_free_ char *rm = xasprintf("rm -f %s", qpath);
		int st;
		ssh_exec(pc->conn, rm, NULL, &st, NULL, 0, &ignored);
	}
	return rc;
}

static int load_script(const struct shell_step *sh, struct buf *script, struct diag *d)
{
	if (!sh->path) {
		normalize(script, sh->inline_script, strlen(sh->inline_script), sh->binary);
		return 0;
	}
	char *data;
	size_t len;
	if (read_file(sh->path, SCRIPT_MAX, &data, &len, d) < 0)
		return diag_hint(d, "the shell step's `path` must name a readable script on the host");
	normalize(script, data, len, sh->binary);
	free(data);
	return 0;
}

static int check_env(const struct shell_step *sh, struct diag *d)
{
	for (size_t i = 0; i < sh->nenv; i++)
		if (!env_name_ok(sh->env[i].key)) {
			diag_fail(d, "env: `%s` is not a variable name", sh->env[i].key);
			return diag_hint(d, "use letters, digits and _, not starting with a digit");
		}
	return 0;
}

/* A sensitive step's env values stay out of everything logged while it
 * runs, the guest's own output included (a script may echo them). */
static void hide_env(const struct shell_step *sh)
{
	_cleanup_free_ const char **v = xcalloc(sh->nenv + 1, sizeof(*v));
	for (size_t i = 0; i < sh->nenv; i++)
		v[i] = sh->env[i].value;
	log_secrets_set(v, sh->nenv);
}

/* Status 127 of a privileged step (command not found): when the guest
 * has no sudo (most OCI images), that is the reason, said plainly. */
static int privileged_fail(struct prov_ctx *pc, const struct shell_step *sh, struct diag *d)
{
	int st = 0;
	struct diag ignored = {0};
	if (!sh->privileged || strcmp(pc->ep->user, "root") == 0 ||
	    ssh_exec(pc->conn, "command -v sudo >/dev/null 2>&1", NULL, &st, NULL, 0, &ignored) < 0 ||
	    st == 0)
		return 0;
	diag_fail(d, "the guest has no sudo to run this privileged step as root");
	diag_hint(d, "log in as root (`ssh: { user: root }`) or set `privileged: false`");
	return -1;
}

static int shell_run(struct prov_ctx *pc, const struct step *s, struct diag *d)
{
	const struct shell_step *sh = &s->shell;
	struct buf script = {0}, cmd = {0}, tail = {0};
	_cleanup_free_ char *prefix = step_prefix(pc->m->cfg->name, s);
	int status = 0, rc = check_env(sh, d);
	if (sh->sensitive)
		hide_env(sh);
	if (rc == 0)
		rc = load_script(sh, &script, d);
	if (rc == 0) {
		command_start(&cmd, pc, sh);
		bool upload = sh->path || script.len > INLINE_ARG_MAX || str_starts(script.s, "#!");
		if (upload) {
			rc = run_uploaded(pc, s, &script, &cmd, prefix, &status, &tail, d);
		} else {
			buf_puts(&cmd, " sh -c");
			add_quoted(&cmd, inline_runner);
			add_quoted(&cmd, script.s);
			command_args(&cmd, &sh->args);
			describe(pc, s, cmd.s);
			rc = ssh_exec(pc->conn, cmd.s, prefix, &status, &tail, STEP_TAIL_LINES, d);
		}
	}
	if (rc == 0 && status == 127)
		rc = privileged_fail(pc, sh, d);
	if (rc == 0 && status != 0)
		rc = step_exit_fail(d, status, &tail);
	log_secrets_clear();
	buf_free(&script);
	buf_free(&cmd);
	buf_free(&tail);
	return rc;
}

const struct provisioner shell_provisioner = {
	.name = "shell",
	.kind = STEP_SHELL,
	.run = shell_run,
};
