/* `corral import`: a Vagrantfile translated into corral.yaml without running
 * Ruby. A tokenizer and parser for the subset of Ruby Vagrantfiles are
 * written in (lex.c, parse.c), a small interpreter with local variables,
 * loops and conditions over known values (eval.c, value.c), the Vagrant
 * configuration calls it understands (dsl.c, dsl_step.c), the step from
 * Vagrant's model to corral's (model.c) and one YAML emitter (emit.c).
 * Whatever cannot be translated becomes a note: a `# not imported` comment
 * in the output at the machine it concerns, and a line of the summary. */
#ifndef CORRAL_VAGRANTFILE_H
#define CORRAL_VAGRANTFILE_H
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"

struct vf_note {
	int line;      /* in the Vagrantfile */
	bool imported; /* true: translated with a difference; false: left out */
	char *text;    /* what and why, one line */
};

struct vf_result {
	char *yaml;            /* the corral.yaml text */
	struct vf_note *notes; /* each once, by line */
	size_t nnotes;
	char **machines; /* corral's machine entries, in order (a `count` entry once) */
	size_t nmachines;
};

struct vf_opts {
	const char *name;     /* the Vagrantfile as the user named it (header, diags) */
	const char *src_dir;  /* its directory: relative paths there are checked to exist */
	const char *path_dir; /* NULL: paths are written as in the Vagrantfile; else
			       * relative ones are joined to this (the output lives elsewhere) */
};

/* 0 and *out filled, or -1 with d at file:line:col for a Vagrantfile that
 * cannot be parsed at all (an unterminated string, unbalanced `end`s). */
int vagrantfile_import(const struct vf_opts *o, const char *text, size_t len,
		       struct vf_result *out, struct diag *d);
void vf_result_free(struct vf_result *r);

#endif
