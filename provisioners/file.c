/* The file provisioner: a host file or directory tree copied over SFTP,
 * modes preserved. SFTP writes as the login user; a destination that user
 * may not write (/etc/app.ini) is staged in /tmp and copied into place by
 * root through sudo. */
#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"
#include "core/ssh/ssh.h"
#include "provisioners/step.h"

/* $0: the staged copy, $1: the destination. */
static const char copy_dir[] =
	"mkdir -p \"$1\" && cp -R --preserve=mode,timestamps \"$0\"/. \"$1\"";
static const char copy_file[] =
	"mkdir -p \"$(dirname \"$1\")\" && cp --preserve=mode,timestamps \"$0\" \"$1\"";

static int copy_as_root(struct prov_ctx *pc, const struct step *s, struct diag *d)
{
	const struct file_step *f = &s->file;
	_cleanup_free_ char *stage = step_guest_tmp(s, "file", "");
	_cleanup_free_ char *qstage = ssh_quote(stage), *qdest = ssh_quote(f->destination);
	_cleanup_free_ char *qscript = ssh_quote(path_is_dir(f->source) ? copy_dir : copy_file);
	log_machine(pc->m->cfg->name, "%s is not writable by %s: copying it into place with sudo",
		    f->destination, pc->ep->user);
	if (ssh_upload(pc->conn, f->source, stage, d) < 0)
		return diag_wrap(d, "copy %s to %s", f->source, stage);
	_cleanup_free_ char *cmd = xasprintf("sudo -- sh -c %s %s %s; rc=$?; rm -rf %s; exit $rc",
					     qscript, qstage, qdest, qstage);
	struct buf tail = {0};
	int status = 0;
	_cleanup_free_ char *prefix = step_prefix(pc->m->cfg->name, s);
	int rc = ssh_exec(pc->conn, cmd, prefix, &status, &tail, STEP_TAIL_LINES, d);
	if (rc == 0 && status != 0)
		rc = step_exit_fail(d, status, &tail);
	buf_free(&tail);
	return rc < 0 ? diag_wrap(d, "copy %s into place with sudo", f->destination) : 0;
}

static int file_run(struct prov_ctx *pc, const struct step *s, struct diag *d)
{
	const struct file_step *f = &s->file;
	log_machine(pc->m->cfg->name, "copying %s to %s", f->source, f->destination);
	if (ssh_upload(pc->conn, f->source, f->destination, d) == 0)
		return 0;
	if (f->destination[0] == '~' || strcmp(pc->ep->user, "root") == 0)
		return diag_wrap(d, "copy %s to %s", f->source, f->destination);
	return copy_as_root(pc, s, d);
}

const struct provisioner file_provisioner = {
	.name = "file",
	.kind = STEP_FILE,
	.run = file_run,
};
