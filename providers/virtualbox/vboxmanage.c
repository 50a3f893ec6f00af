/* Running VBoxManage: found on PATH (or $CORRAL_VBOXMANAGE), always in the
 * C locale (its messages are parsed), argv only, both streams captured, its
 * own error lines turned into the diag with what corral was doing. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/host/proc.h"
#include "providers/virtualbox/vbox.h"

/* VBOX_E_INVALID_OBJECT_STATE is what VirtualBox reports while a session
 * lock from a VM that just stopped is still being released (Packer retries
 * it 5 times too). Nothing else is retried. */
#define RETRY_CODE "VBOX_E_INVALID_OBJECT_STATE"
#define RETRIES 5
#define RETRY_MS 1000

void vbox_res_free(struct vbox_res *r)
{
	buf_free(&r->out);
	buf_free(&r->err);
}

bool vbox_not_found(const struct vbox_res *r)
{
	return strcmp(r->code, "VBOX_E_OBJECT_NOT_FOUND") == 0;
}

int vbox_locate(char **path, struct diag *d)
{
	const char *env = getenv("CORRAL_VBOXMANAGE");
	if (env && *env) {
		if (access(env, X_OK) == 0)
			return *path = xstrdup(env), 0;
		diag_errno(d, "CORRAL_VBOXMANAGE=%s", env);
		return diag_hint(d, "point CORRAL_VBOXMANAGE at the VBoxManage program, or unset it");
	}
	if ((*path = proc_which("VBoxManage")))
		return 0;
	diag_fail(d, "VBoxManage is not on PATH");
	return diag_hint(d, "install VirtualBox 7 (or 6.1), or set CORRAL_VBOXMANAGE to its VBoxManage");
}

/* Its messages are parsed: the locale is forced to C. */
static int spawn_once(const char *prog, const struct strv *a, struct vbox_res *r, struct diag *d)
{
	static const char *const env[] = {"LANG=C", "LC_ALL=C", NULL};
	static const char *const drop[] = {"LC_", "LANGUAGE=", NULL};
	struct strv argv = {0};
	strv_push(&argv, prog);
	for (size_t i = 0; i < a->n; i++)
		strv_push(&argv, a->v[i]);
	struct proc_cmd c = {.argv = (const char *const *)argv.v, .env = env, .env_drop = drop,
			     .split = true};
	int rc = proc_cmd_run(&c, d);
	strv_free(&argv);
	r->out = c.out;
	r->err = c.err;
	r->status = c.status;
	return rc;
}

static void describe(const char *doing, const struct strv *a, struct vbox_res *r,
		     struct diag *d)
{
	char msg[1024];
	vbox_parse_error(r->err.s ? r->err.s : "", msg, sizeof(msg), r->code, sizeof(r->code));
	if (!msg[0]) {
		const char *src = r->err.len > 1 ? r->err.s : r->out.s ? r->out.s : "";
		snprintf(msg, sizeof(msg), "%.*s", (int)strcspn(src, "\n"), src);
	}
	diag_fail(d, "%s: VBoxManage %s: %s%s%s%s", doing, a->n ? a->v[0] : "", msg,
		  r->code[0] ? " (" : "", r->code, r->code[0] ? ")" : "");
	if (r->status == 2)
		diag_hint(d, "VBoxManage refused corral's command line: a corral bug, or a VirtualBox "
			     "version corral does not know; please report it with `VBoxManage --version`");
	else if (vbox_not_found(r))
		diag_hint(d, "the VM was removed outside corral: `corral destroy` forgets it");
}

int vbox_run(const char *doing, const struct strv *a, struct vbox_res *res, struct diag *d)
{
	struct vbox_res local = {0}, *r = res ? res : &local;
	*r = (struct vbox_res){0};
	_cleanup_free_ char *prog = NULL;
	if (vbox_locate(&prog, d) < 0)
		return diag_wrap(d, "%s", doing);
	for (int attempt = 1;; attempt++) {
		*r = (struct vbox_res){0};
		if (spawn_once(prog, a, r, d) < 0) {
			vbox_res_free(r);
			return diag_wrap(d, "%s", doing);
		}
		if (r->status == 0)
			break;
		describe(doing, a, r, d);
		if (strcmp(r->code, RETRY_CODE) != 0 || attempt == RETRIES) {
			if (!res)
				vbox_res_free(r);
			return -1;
		}
		log_debug("%s: VirtualBox reports %s; retrying (%d/%d)", doing, RETRY_CODE, attempt,
			  RETRIES - 1);
		vbox_res_free(r);
		sleep_ms(RETRY_MS);
	}
	if (!res)
		vbox_res_free(r);
	return 0;
}

int vbox_runv(const char *doing, struct vbox_res *res, struct diag *d, ...)
{
	struct strv a = {0};
	va_list ap;
	va_start(ap, d);
	for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
		strv_push(&a, s);
	va_end(ap);
	int rc = vbox_run(doing, &a, res, d);
	strv_free(&a);
	return rc;
}

/* What --version said, once checked (a run drives one VirtualBox). */
static struct vbox_version checked;

/* 7.0.0's `showvminfo` leaves out the Forwarding lines of a VM with two or
 * more NAT rules: corral could neither clear nor avoid them. */
static int refuse_700(const struct vbox_version *v, struct diag *d)
{
	diag_fail(d, "VirtualBox %s is not supported: its `VBoxManage showvminfo` omits the NAT "
		     "port forwards of a VM that has more than one", v->text);
	return diag_hint(d, "upgrade VirtualBox to 7.0.2 or later");
}

int vbox_check_version(struct diag *d)
{
	struct vbox_res r;
	if (vbox_runv("check the VirtualBox version", &r, d, "--version", NULL) < 0)
		return -1;
	struct vbox_version v;
	int rc = vbox_parse_version(r.out.s ? r.out.s : "", &v);
	vbox_res_free(&r);
	if (rc < 0)
		return diag_fail(d, "VBoxManage --version printed no version");
	if (v.major == 7 && v.minor == 0 && v.patch == 0)
		return refuse_700(&v, d);
	if (v.major == 7 || (v.major == 6 && v.minor == 1)) {
		checked = v;
		return 0;
	}
	diag_fail(d, "VirtualBox %s is not supported", v.text);
	return diag_hint(d, "corral drives VirtualBox 7.x and 6.1: upgrade VirtualBox");
}

bool vbox_hostonly_limited(void)
{
	return checked.major != 6 || checked.patch >= 28;
}
