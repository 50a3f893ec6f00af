/* JSON state files (machine state.json, $CORRAL_HOME/index.json, box
 * records): loaded whole, replaced atomically, never torn. */
#ifndef CORRAL_STATE_H
#define CORRAL_STATE_H
#include <jansson.h>

#include "core/base/diag.h"

/* A missing file loads as an empty object; a corrupt one is an error that
 * names the file (it is never silently replaced). */
int state_load(const char *path, json_t **obj, struct diag *d);
int state_save(const char *path, const json_t *obj, struct diag *d);

/* Typed getters that tolerate absence: a missing or mistyped key gives def. */
const char *state_str(const json_t *o, const char *key, const char *def);
long long state_int(const json_t *o, const char *key, long long def);

#endif
