/* Where corral keeps what is host-wide rather than per envfile, decided in
 * one place by who runs it. Root keeps system directories; any other user
 * gets its own (XDG base directories), so two users never share a pool,
 * a lock or a state file, and nothing needs root to be written:
 *   run dir   CORRAL_RUN_DIR, else root: /run/corral,
 *             else $XDG_RUNTIME_DIR/corral, else STATE/run
 *   lib dir   CORRAL_LIB_DIR, else root: /var/lib/corral,
 *             else $XDG_STATE_HOME/corral (default ~/.local/state/corral)
 * $CORRAL_HOME (boxes, download cache, index.json) is per user already
 * (core/base/util.h corral_home). An XDG variable that is not an absolute
 * path is ignored, as the XDG spec says. Each returns a string the caller
 * frees; the directories are made by the callers that write there. */
#ifndef CORRAL_PATHS_H
#define CORRAL_PATHS_H
#include <stdbool.h>

/* Not root: the per-user locations, and the rootless container mode. */
bool host_rootless(void);
char *host_run_dir(void);
char *host_lib_dir(void);

#endif
