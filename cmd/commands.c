/* The command table: dispatch, help and completion all come from it. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"

#define CORRAL_VERSION "0.1.0"

static const struct command table[] = {
	{"init", cmd_init, "[--force] [BOX]", "write a commented corral.yaml here",
	 "  --force   overwrite an existing corral.yaml\n"},
	{"validate", cmd_validate, "", "check the envfile; every error with file:line:col", ""},
	{"status", cmd_status, "[NAME...]", "show the state of the envfile's machines",
	 "  --json    one JSON object per machine, as an array\n"},
	{"completion", cmd_completion, "bash|zsh", "print a shell completion script", ""},
	{"__complete", cmd_completion, "commands|machines|boxes", "(for completion scripts)", ""},
	{"help", cmd_help, "[COMMAND]", "show help for corral or one command", ""},
	{"version", cmd_version, "", "print corral's version", ""},
};

const struct command *commands(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]);
	return table;
}

const struct command *command_find(const char *name)
{
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

void command_usage(const struct command *cmd, FILE *out)
{
	fprintf(out, "usage: corral %s %s\n\n%s\n", cmd->name, cmd->args, cmd->summary);
	if (cmd->help[0])
		fprintf(out, "\noptions:\n%s", cmd->help);
}

int cmd_version(struct ctx *c)
{
	(void)c;
	printf("corral %s\n", CORRAL_VERSION);
	return EXIT_OK;
}

int cmd_help(struct ctx *c)
{
	if (c->argc >= 2) {
		const struct command *cmd = command_find(c->argv[1]);
		if (!cmd)
			return usage_error(NULL, "no command `%s`", c->argv[1]);
		command_usage(cmd, stdout);
		return EXIT_OK;
	}
	size_t n;
	const struct command *t = commands(&n);
	printf("usage: corral [-f FILE] [-C DIR] [--json] [-v] [--no-color] [--lock-timeout S]"
	       " COMMAND [ARGS]\n\ncommands:\n");
	for (size_t i = 0; i < n; i++)
		if (t[i].name[0] != '_')
			printf("  %-14s %s\n", t[i].name, t[i].summary);
	printf("\nglobal options:\n"
	       "  -f, --file FILE       the envfile (default: corral.yaml here or in a parent)\n"
	       "  -C, --directory DIR   run as if started in DIR\n"
	       "      --json            machine-readable output where a command has it\n"
	       "  -v, --verbose         debug logging\n"
	       "      --no-color        no colours (also NO_COLOR=1)\n"
	       "      --lock-timeout S  wait up to S seconds for another command on this envfile\n"
	       "      --version         print the version\n");
	return EXIT_OK;
}
