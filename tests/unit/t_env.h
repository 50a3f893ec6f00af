/* An envfile for a unit test: YAML text loaded by the real parser as
 * /tmp/corral.yaml, without touching the file system; NULL (and its first
 * error as a comment line) when it does not load. */
#ifndef CORRAL_T_ENV_H
#define CORRAL_T_ENV_H

#include <stdio.h>
#include <string.h>

#include "core/config/envfile.h"

static inline struct env *t_env_load(const char *yaml)
{
	struct env *e = NULL;
	struct diag_list errs = {0};
	if (envfile_load_buffer("/tmp/corral.yaml", yaml, strlen(yaml), ENVFILE_NO_FS, &e, &errs) < 0)
		printf("#   %s\n", errs.n ? errs.v[0].msg : "?");
	diag_list_free(&errs);
	return e;
}

#endif
