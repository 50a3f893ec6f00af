/* corral completion bash|zsh, and the hidden `__complete WHAT` the scripts
 * call for live words: commands, the envfile's machines, stored boxes. */
#include <dirent.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/base/util.h"

/* Both scripts work eval'ed (`eval "$(corral completion bash)"`) and as
 * installed files: bash-completion's completions/corral, zsh's _corral in
 * $fpath (autoloaded by compinit: the file's body defines _corral and, run
 * as the autoloaded function, completes at once). */
static const char bash_script[] =
	"# corral bash completion: eval \"$(corral completion bash)\", or this file\n"
	"# as bash-completion's completions/corral\n"
	"_corral() {\n"
	"  local cur=${COMP_WORDS[COMP_CWORD]} words\n"
	"  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
	"    words=$(corral __complete commands 2>/dev/null)\n"
	"  else\n"
	"    case ${COMP_WORDS[1]} in\n"
	"      box) words=\"add search list remove prune outdated update verify sign publish $(corral __complete boxes 2>/dev/null)\" ;;\n"
	"      init) words=$(corral __complete boxes 2>/dev/null) ;;\n"
	"      completion) words=\"bash zsh\" ;;\n"
	"      help) words=$(corral __complete commands 2>/dev/null) ;;\n"
	"      *) words=$(corral __complete machines 2>/dev/null) ;;\n"
	"    esac\n"
	"  fi\n"
	"  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
	"}\n"
	"complete -F _corral corral\n";

/* `words` is zsh's own array of the command line: the candidates get
 * another name. */
static const char zsh_script[] =
	"#compdef corral\n"
	"# corral zsh completion: eval \"$(corral completion zsh)\", or this file as\n"
	"# _corral in a directory of $fpath (e.g. vendor-completions)\n"
	"_corral() {\n"
	"  local -a cands\n"
	"  if (( CURRENT == 2 )); then\n"
	"    cands=(${(f)\"$(corral __complete commands 2>/dev/null)\"})\n"
	"  else\n"
	"    case $words[2] in\n"
	"      box) cands=(add search list remove prune outdated update verify sign publish\n"
	"                  ${(f)\"$(corral __complete boxes 2>/dev/null)\"}) ;;\n"
	"      init) cands=(${(f)\"$(corral __complete boxes 2>/dev/null)\"}) ;;\n"
	"      completion) cands=(bash zsh) ;;\n"
	"      help) cands=(${(f)\"$(corral __complete commands 2>/dev/null)\"}) ;;\n"
	"      *) cands=(${(f)\"$(corral __complete machines 2>/dev/null)\"}) ;;\n"
	"    esac\n"
	"  fi\n"
	"  compadd -a cands\n"
	"}\n"
	"if [ \"$funcstack[1]\" = _corral ]; then _corral \"$@\"; else compdef _corral corral; fi\n";

static void print_boxes(void)
{
	_cleanup_free_ char *dir = path_join(corral_home(), "boxes");
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		struct buf b = {0};
		for (const char *p = e->d_name; *p;) {
			if (str_starts(p, "-VAGRANTSLASH-")) {
				buf_puts(&b, "/");
				p += strlen("-VAGRANTSLASH-");
			} else {
				buf_add(&b, p++, 1);
			}
		}
		puts(b.s);
		buf_free(&b);
	}
	closedir(d);
}

static int complete_words(struct ctx *c)
{
	const char *what = c->argc > 1 ? c->argv[1] : "";
	if (strcmp(what, "commands") == 0) {
		size_t n;
		const struct command *t = commands(&n);
		for (size_t i = 0; i < n; i++)
			if (!command_hidden(&t[i]))
				puts(t[i].name);
	} else if (strcmp(what, "machines") == 0) {
		if (ctx_load_env(c) == EXIT_OK)
			for (size_t i = 0; i < c->env->nmachines; i++)
				puts(c->env->machines[i].name);
	} else if (strcmp(what, "boxes") == 0) {
		print_boxes();
	}
	return EXIT_OK;
}

int cmd_completion(struct ctx *c)
{
	if (strcmp(c->argv[0], "__complete") == 0)
		return complete_words(c);
	if (c->argc != 2)
		return usage_error(command_find("completion"), "which shell?");
	if (strcmp(c->argv[1], "bash") == 0)
		fputs(bash_script, stdout);
	else if (strcmp(c->argv[1], "zsh") == 0)
		fputs(zsh_script, stdout);
	else
		return usage_error(command_find("completion"), "no completion for `%s`", c->argv[1]);
	return EXIT_OK;
}
