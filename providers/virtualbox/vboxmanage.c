/* Running VBoxManage: found on PATH (or $CORRAL_VBOXMANAGE), always in the
 * C locale (its messages are parsed), argv only, both streams captured, its
 * own error lines turned into the diag with what corral was doing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/base/log.h"
#include "providers/virtualbox/vbox.h"

extern char **environ;

/* VBOX_E_INVALID_OBJECT_STATE is what VirtualBox reports while a session
 * lock from a VM that just stopped is still being released (Packer retries
 * it 5 times too). Nothing else is retried. */
#define RETRY_CODE "VBOX_E_INVALID_OBJECT_STATE"
#define RETRIES 5
#define RETRY_MS 1000
#define OUTPUT_MAX (16u << 20)

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
	const char *p = getenv("PATH");
	_cleanup_free_ char *dirs = xstrdup(p ? p : "/usr/bin:/bin");
	char *save = NULL;
	for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		char *cand = path_join(*dir ? dir : ".", "VBoxManage");
		if (access(cand, X_OK) == 0)
			return *path = cand, 0;
		free(cand);
	}
	diag_fail(d, "VBoxManage is not on PATH");
	return diag_hint(d, "install VirtualBox 7 (or 6.1), or set CORRAL_VBOXMANAGE to its VBoxManage");
}

/* The environment with the locale forced to C: VBoxManage's messages are parsed. */
static char **c_locale_env(void)
{
	size_t n = 0;
	while (environ[n])
		n++;
	char **env = xcalloc(n + 3, sizeof(char *));
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!str_starts(environ[i], "LANG=") && !str_starts(environ[i], "LC_") &&
		    !str_starts(environ[i], "LANGUAGE="))
			env[k++] = environ[i];
	env[k++] = "LANG=C";
	env[k++] = "LC_ALL=C";
	return env;
}

/* Reads both pipes to their end, whichever has data first. */
static void drain(int out, int err, struct vbox_res *r)
{
	struct pollfd p[2] = {{.fd = out, .events = POLLIN}, {.fd = err, .events = POLLIN}};
	struct buf *dst[2] = {&r->out, &r->err};
	int open_fds = 2;
	char tmp[4096];
	while (open_fds > 0) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < 2; i++) {
			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t k = read(p[i].fd, tmp, sizeof(tmp));
			if (k > 0 && dst[i]->len < OUTPUT_MAX)
				buf_add(dst[i], tmp, (size_t)k);
			if (k == 0 || (k < 0 && errno != EINTR)) {
				p[i].fd = -1;
				open_fds--;
			}
		}
	}
	buf_add(&r->out, "", 0);
	buf_add(&r->err, "", 0);
}

static int spawn_once(const char *prog, const struct strv *a, struct vbox_res *r, struct diag *d)
{
	int po[2], pe[2];
	if (pipe2(po, O_CLOEXEC) < 0)
		return diag_errno(d, "pipe");
	if (pipe2(pe, O_CLOEXEC) < 0) {
		close(po[0]);
		close(po[1]);
		return diag_errno(d, "pipe");
	}
	const char **argv = xcalloc(a->n + 2, sizeof(char *));
	argv[0] = prog;
	for (size_t i = 0; i < a->n; i++)
		argv[i + 1] = a->v[i];
	char **env = c_locale_env();
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, po[1], 1);
	posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
	pid_t pid;
	int e = posix_spawn(&pid, prog, &fa, NULL, (char *const *)argv, env);
	posix_spawn_file_actions_destroy(&fa);
	free(env);
	free(argv);
	close(po[1]);
	close(pe[1]);
	if (e == 0)
		drain(po[0], pe[0], r);
	close(po[0]);
	close(pe[0]);
	if (e != 0)
		return errno = e, diag_errno(d, "run %s", prog);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return 0;
}

static void describe(const char *doing, const struct strv *a, struct vbox_res *r,
		     struct diag *d)
{
	char msg[512];
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

int vbox_check_version(struct diag *d)
{
	struct vbox_res r;
	if (vbox_runv("check the VirtualBox version", &r, d, "--version", NULL) < 0)
		return -1;
	int major, minor;
	char ver[64];
	int rc = vbox_parse_version(r.out.s, &major, &minor, ver, sizeof(ver));
	vbox_res_free(&r);
	if (rc < 0)
		return diag_fail(d, "VBoxManage --version printed no version");
	if (major == 7 || (major == 6 && minor == 1))
		return 0;
	diag_fail(d, "VirtualBox %s is not supported", ver);
	return diag_hint(d, "corral drives VirtualBox 7.x and 6.1: upgrade VirtualBox");
}
