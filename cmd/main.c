/* corral: global options, then dispatch through the command table. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/events.h"
#include "core/base/log.h"
#include "core/base/util.h"

static const struct option global_opts[] = {
	{"file", required_argument, NULL, 'f'},
	{"directory", required_argument, NULL, 'C'},
	{"json", no_argument, NULL, 'j'},
	{"verbose", no_argument, NULL, 'v'},
	{"no-color", no_argument, NULL, 'n'},
	{"lock-timeout", required_argument, NULL, 'l'},
	{"version", no_argument, NULL, 'V'},
	{"help", no_argument, NULL, 'h'},
	{0},
};

struct globals {
	struct ctx ctx;
	bool no_color, version, help;
	const char *dir;
};

static int set_global(struct globals *g, int opt, const char *arg)
{
	char *end;
	switch (opt) {
	case 'f': g->ctx.file = arg; return 0;
	case 'C': g->dir = arg; return 0;
	case 'j': g->ctx.json = true; return 0;
	case 'v': g->ctx.verbose = true; return 0;
	case 'n': g->no_color = true; return 0;
	case 'V': g->version = true; return 0;
	case 'h': g->help = true; return 0;
	case 'l': {
		double s = strtod(arg, &end);
		if (*end || s < 0)
			return usage_error(NULL, "--lock-timeout takes seconds, not `%s`", arg);
		g->ctx.lock_timeout_ms = (unsigned)(s * 1000);
		return 0;
	}
	}
	return EXIT_USAGE;
}

/* Global long options may also follow the command (`corral status --json`);
 * they are taken out so each command parses only its own. Short -f stays the
 * command's own (`halt -f` is force), as in Vagrant. */
static int extract_trailing(struct globals *g, int *argc, char **argv)
{
	int out = 1;
	for (int i = 1; i < *argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			while (i < *argc)
				argv[out++] = argv[i++];
			break;
		}
		const struct option *o = NULL;
		const char *val = NULL;
		for (const struct option *p = global_opts; p->name && str_starts(a, "--"); p++) {
			size_t n = strlen(p->name);
			if (strncmp(a + 2, p->name, n) == 0 && (a[2 + n] == '\0' || a[2 + n] == '=')) {
				o = p;
				val = a[2 + n] == '=' ? a + 3 + n : NULL;
			}
		}
		if (!o || o->val == 'h' || o->val == 'V') {
			argv[out++] = argv[i];
			continue;
		}
		if (o->has_arg == required_argument && !val) {
			if (i + 1 >= *argc)
				return usage_error(NULL, "--%s needs a value", o->name);
			val = argv[++i];
		}
		if (set_global(g, o->val, val))
			return EXIT_USAGE;
	}
	argv[out] = NULL;
	*argc = out;
	return 0;
}

static void setup_output(struct globals *g)
{
	const char *nc = getenv("NO_COLOR");
	bool tty = isatty(STDERR_FILENO);
	g->ctx.color = tty && !g->no_color && !(nc && nc[0]);
	struct log_opts o = {
		.verbose = g->ctx.verbose, .color = g->ctx.color, .json = g->ctx.json, .tty = tty,
	};
	log_setup(&o);
	events_setup(g->ctx.json);
}

static int unknown_command(const char *name)
{
	size_t n;
	const struct command *cmds = commands(&n);
	const char *names[64];
	for (size_t i = 0; i < n && i < 64; i++)
		names[i] = cmds[i].name;
	const char *s = str_suggest(name, names, n < 64 ? n : 64);
	fprintf(stderr, "corral: unknown command `%s`", name);
	if (s)
		fprintf(stderr, "; did you mean `%s`?", s);
	fputs("\nrun `corral help` for the list of commands\n", stderr);
	return EXIT_USAGE;
}

int main(int argc, char **argv)
{
	struct globals g = {.ctx.lock.fd = -1};
	int opt;
	while ((opt = getopt_long(argc, argv, "+f:C:vh", global_opts, NULL)) != -1) {
		if (opt == '?' || set_global(&g, opt, optarg))
			return usage_error(NULL, "see `corral help`");
	}
	if (g.dir && chdir(g.dir) < 0) {
		perror(g.dir);
		return EXIT_USAGE;
	}
	int cargc = argc - optind;
	char **cargv = argv + optind;
	if (g.version)
		return cmd_version(&g.ctx);
	if (cargc == 0 || g.help) {
		/* `corral -h status` is `corral help status`; a bare `corral` is a usage error */
		char *help_argv[] = {"help", cargc ? cargv[0] : NULL, NULL};
		g.ctx.argc = cargc ? 2 : 1;
		g.ctx.argv = help_argv;
		int rc = cmd_help(&g.ctx);
		return rc ? rc : (g.help ? EXIT_OK : EXIT_USAGE);
	}
	const struct command *cmd = command_find(cargv[0]);
	if (!cmd)
		return unknown_command(cargv[0]);
	if (extract_trailing(&g, &cargc, cargv))
		return EXIT_USAGE;
	setup_output(&g);
	for (int i = 1; i < cargc && strcmp(cargv[i], "--") != 0; i++)
		if (strcmp(cargv[i], "--help") == 0) {
			command_usage(cmd, stdout);
			return EXIT_OK;
		}
	g.ctx.argc = cargc;
	g.ctx.argv = cargv;
	optind = 0; /* commands parse their own argv with getopt_long */
	int rc = cmd->run(&g.ctx);
	ctx_done(&g.ctx);
	return rc;
}
