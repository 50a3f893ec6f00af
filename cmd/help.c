/* Help, in one layout for every place it shows: `corral help`, `corral help
 * COMMAND`, `corral COMMAND --help` and the man page corral(1). The man
 * page's SYNOPSIS, GLOBAL OPTIONS and COMMANDS come from the hidden
 * `corral __man synopsis|options|commands`, which prints the same fields of
 * the command table, in the same order, as Markdown for go-md2man (make
 * splices it into docs/man/corral.1.md). Help texts are plain text: the
 * Markdown layout escapes what Markdown would read as markup and keeps each
 * option block verbatim as a code block. */
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/base/util.h"

static const char global_usage[] =
	"[-f FILE] [-C DIR] [--json] [-v] [--no-color] [--lock-timeout S] COMMAND [ARGS]";

static const char global_options[] =
	"  -f, --file FILE       the envfile (default: corral.yaml here or in a parent)\n"
	"  -C, --directory DIR   run as if started in DIR\n"
	"      --json            machine-readable output where a command has it\n"
	"  -v, --verbose         debug logging\n"
	"      --no-color        no colours (also NO_COLOR=1)\n"
	"      --lock-timeout S  wait up to S seconds for another command on this envfile\n"
	"      --version         print the version\n"
	"  -h, --help            this help; with a command, that command's\n";

enum layout_id { LAYOUT_TEXT, LAYOUT_MARKDOWN };

/* printf formats; usage gets 1$ the name, 2$ the arguments and 3$ the
 * space before them (none for a command without arguments), a block
 * line gets its length and text. */
static const struct layout {
	const char *usage, *summary, *block_head, *block_line, *block_end;
	bool markdown; /* escape name, arguments and summary */
} layouts[] = {
	[LAYOUT_TEXT] = {"usage: corral %1$s%3$s%2$s\n\n", "%s\n", "\n%s:\n", "%.*s\n", "", false},
	[LAYOUT_MARKDOWN] = {"### %1$s\n\n**corral %1$s**%3$s%2$s\n\n", "%s\n\n", "", "    %.*s\n", "\n",
			     true},
};

/* Markdown's punctuation that would turn plain help text into markup. */
static char *md_escape(const char *s)
{
	struct buf b = {0};
	buf_add(&b, "", 0);
	for (; *s; s++) {
		if (strchr("\\`*_[]<>|#", *s))
			buf_add(&b, "\\", 1);
		buf_add(&b, s, 1);
	}
	return b.s;
}

static char *field(const struct layout *l, const char *s)
{
	return l->markdown ? md_escape(s) : xstrdup(s);
}

/* A block of lines (a command's options) under its heading, verbatim. */
static void print_block(const struct layout *l, const char *head, const char *text, FILE *out)
{
	if (!text[0])
		return;
	fprintf(out, l->block_head, head);
	for (const char *p = text; *p;) {
		const char *nl = strchrnul(p, '\n');
		fprintf(out, l->block_line, (int)(nl - p), p);
		p = *nl ? nl + 1 : nl;
	}
	fputs(l->block_end, out);
}

static void print_command(const struct command *cmd, enum layout_id id, FILE *out)
{
	const struct layout *l = &layouts[id];
	_cleanup_free_ char *name = field(l, cmd->name);
	_cleanup_free_ char *args = field(l, cmd->args);
	_cleanup_free_ char *summary = field(l, cmd->summary);
	fprintf(out, l->usage, name, args, args[0] ? " " : "");
	fprintf(out, l->summary, summary);
	print_block(l, "options", cmd->help, out);
}

void command_usage(const struct command *cmd, FILE *out) { print_command(cmd, LAYOUT_TEXT, out); }

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
	printf("usage: corral %s\n\ncommands:\n", global_usage);
	for (size_t i = 0; i < n; i++)
		if (!command_hidden(&t[i]))
			printf("  %-14s %s\n", t[i].name, t[i].summary);
	print_block(&layouts[LAYOUT_TEXT], "global options", global_options, stdout);
	return EXIT_OK;
}

static void man_synopsis(void)
{
	_cleanup_free_ char *usage = md_escape(global_usage);
	printf("**corral** %s\n\n", usage);
}

static void man_options(void) { print_block(&layouts[LAYOUT_MARKDOWN], "", global_options, stdout); }

static void man_commands(void)
{
	size_t n;
	const struct command *t = commands(&n);
	for (size_t i = 0; i < n; i++)
		if (!command_hidden(&t[i]))
			print_command(&t[i], LAYOUT_MARKDOWN, stdout);
}

static const struct {
	const char *part;
	void (*print)(void);
} man_parts[] = {
	{"synopsis", man_synopsis},
	{"options", man_options},
	{"commands", man_commands},
};

int cmd_man(struct ctx *c)
{
	for (size_t i = 0; c->argc == 2 && i < sizeof(man_parts) / sizeof(man_parts[0]); i++)
		if (strcmp(c->argv[1], man_parts[i].part) == 0) {
			man_parts[i].print();
			return EXIT_OK;
		}
	return usage_error(command_find("__man"), "which part of the man page?");
}
