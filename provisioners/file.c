/* The file provisioner: a host file or directory tree copied over SFTP,
 * modes preserved. */
#include "core/log.h"
#include "core/ssh.h"
#include "provisioners/provisioner.h"

static int file_run(struct prov_ctx *pc, const struct step *s, struct diag *d)
{
	const struct file_step *f = &s->file;
	log_machine(pc->m->cfg->name, "copying %s to %s", f->source, f->destination);
	if (ssh_upload(pc->conn, f->source, f->destination, d) < 0)
		return diag_wrap(d, "copy %s to %s", f->source, f->destination);
	return 0;
}

const struct provisioner file_provisioner = {
	.name = "file",
	.kind = STEP_FILE,
	.run = file_run,
};
