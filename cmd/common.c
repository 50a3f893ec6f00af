#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/base/log.h"
#include "core/base/util.h"

static const char *col(const char *code) { return log_opts()->color ? code : ""; }

static void report_as(const struct diag *d, const char *what, const char *color)
{
	if (d->file[0] && d->line)
		fprintf(stderr, "%s%s:%d:%d:%s ", col("\033[1m"), d->file, d->line, d->col, col("\033[0m"));
	else if (d->file[0])
		fprintf(stderr, "%s%s:%s ", col("\033[1m"), d->file, col("\033[0m"));
	else
		fputs("corral: ", stderr);
	fprintf(stderr, "%s%s:%s %s\n", col(color), what, col("\033[0m"), d->msg);
	if (d->hint[0])
		fprintf(stderr, "  %shint:%s %s\n", col("\033[36m"), col("\033[0m"), d->hint);
}

void report(const struct diag *d) { report_as(d, "error", "\033[1;31m"); }

void report_warning(const struct diag *d) { report_as(d, "warning", "\033[1;33m"); }

int report_exit(const struct diag *d)
{
	report(d);
	return d->code == DIAG_USAGE ? EXIT_USAGE : EXIT_FAIL;
}

int usage_error(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;
	fputs("corral: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	if (cmd)
		fprintf(stderr, "usage: corral %s %s\n(see `corral help %s`)\n", cmd->name,
			cmd->args, cmd->name);
	return EXIT_USAGE;
}

int ctx_load_env(struct ctx *c)
{
	struct diag d = {0};
	_cleanup_free_ char *path = NULL;
	char cwd[4096];
	if (!getcwd(cwd, sizeof(cwd)))
		strcpy(cwd, ".");
	if (envfile_find(c->file, cwd, &path, &d) < 0)
		return report_exit(&d);
	struct diag_list errs = {0};
	if (envfile_load(path, &c->env, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			report(&errs.v[i]);
		fprintf(stderr, "%zu error%s in %s\n", errs.n, errs.n == 1 ? "" : "s", path);
		diag_list_free(&errs);
		return EXIT_USAGE;
	}
	return EXIT_OK;
}

bool machine_named(const struct machine_cfg *mc, const char *name)
{
	return strcmp(name, mc->name) == 0 || strcmp(name, mc->base_name) == 0;
}

int check_machine_names(const struct command *cmd, const struct env *e, char *const *names,
			size_t n)
{
	for (size_t i = 0; i < n; i++) {
		bool found = false;
		for (size_t j = 0; j < e->nmachines; j++)
			found |= machine_named(&e->machines[j], names[i]);
		if (!found)
			return usage_error(cmd, "no machine `%s` in %s", names[i], e->path);
	}
	return EXIT_OK;
}

int ctx_lock(struct ctx *c)
{
	struct diag d = {0};
	_cleanup_free_ char *p = path_join(c->env->state_dir, "lock");
	if (lock_acquire(p, c->lock_timeout_ms, &c->lock, &d) < 0)
		return report_exit(&d);
	return EXIT_OK;
}

void ctx_done(struct ctx *c)
{
	lock_release(&c->lock);
	env_free(c->env);
	c->env = NULL;
}
