/* Internal to the envfile loader; every other module includes core/config/envfile.h.
 * The loader is four files, one job each:
 *   core/config/yamltree.c  YAML text -> a tree of nodes with positions: anchors,
 *                    aliases and `<<` merges resolved; duplicate keys,
 *                    binary input and resource bombs rejected
 *   core/config/units.c     the syntax of single values: sizes, durations,
 *                    addresses, names, ${VAR}
 *   core/config/envkeys.c   the key table: tree -> typed structs, per-value checks
 *   core/config/envfile.c   load, defaults and count, whole-file checks, step ids */
#ifndef CORRAL_YAMLTREE_H
#define CORRAL_YAMLTREE_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/diag.h"
#include "core/config/envfile.h"
#include "core/base/util.h"

/* Checked before reading: a 100 MB file costs a stat(), not a parse. */
#define ENVFILE_MAX_BYTES (4u << 20)
/* Nodes after expanding aliases and merges: defeats "billion laughs". */
#define YTREE_MAX_NODES 100000
#define YTREE_MAX_DEPTH 64
/* Errors listed before the loader stops adding more. */
#define ENVFILE_MAX_ERRORS 100

/* ---- the YAML tree (yamltree.c) ---- */

enum ytype { Y_SCALAR, Y_SEQ, Y_MAP };

struct ypair {
	struct ynode *key, *val;
};

struct ynode {
	enum ytype type;
	int line, col; /* 1-based */
	bool quoted;   /* quoted, block or !!str: a string even when it reads `true` or `~` */
	char *str;     /* scalar text */
	size_t len;    /* may include NUL bytes ("\0" escapes): decoders reject those */
	struct ynode **items; /* sequence */
	size_t nitems;
	struct ypair *pairs; /* mapping, merges applied, in document order */
	size_t npairs;
	size_t weight;     /* nodes in this subtree with aliases expanded */
	struct ynode *all; /* every node of a tree, linked for freeing */
};

struct ytree {
	struct ynode *root; /* NULL for an empty document */
	struct ynode *all;
};

/* Returns -1 when the text is not a YAML document corral can read (errors
 * added); duplicate keys are added as errors but still give a tree (0). */
int ytree_parse(const char *file, const char *data, size_t len, struct ytree *t,
		struct diag_list *errs);
void ytree_free(struct ytree *t);

bool ynode_null(const struct ynode *n);
const char *ynode_what(const struct ynode *n); /* "a mapping", "a list", "a string", "nothing" */
/* For positions in late errors only: values are decoded by the key table. */
const struct ynode *ynode_get(const struct ynode *map, const char *key);

/* Adds an error unless the same one is listed (nodes reached through aliases,
 * and defaults decoded once per machine, report once) or the list is full. */
void ydiag(struct diag_list *errs, const char *file, int line, int col, const char *hint,
	   const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* True once errors are no longer listed: callers skip costly suggestions. */
bool ydiag_full(const struct diag_list *errs);
void ydiagv(struct diag_list *errs, const char *file, int line, int col, const char *hint,
	    const char *fmt, va_list ap) __attribute__((format(printf, 6, 0)));

/* ---- value syntax (units.c); parse_size and friends are in envfile.h ---- */

bool valid_name(const char *s);     /* machine and network names: [a-z0-9][a-z0-9-]*, <= 63 */
bool valid_server_name(const char *s); /* a server's network name: [A-Za-z0-9][A-Za-z0-9_.-]*, <= 63 */
bool valid_hostname(const char *s); /* RFC 1123 labels, dot-separated */
bool valid_user(const char *s);     /* [a-z_][a-z0-9_-]*, <= 32 */
bool valid_ident(const char *s);    /* env vars and ansible groups: [A-Za-z_][A-Za-z0-9_]* */
bool valid_ip(const char *s);       /* IPv4 or IPv6 */
bool valid_ipv4(const char *s);
bool valid_cidr(const char *s);     /* IPv4 network/prefix, host bits zero */
bool valid_box(const char *s);      /* "corral/debian-12", or a source (box_is_source) */
/* A box given as its source: a URL (scheme://...) or a path (/..., ./..., ../...),
 * as Lima and Multipass take an image; stored under a name made from its file name. */
bool box_is_source(const char *s);
bool valid_constraint(const char *s); /* Vagrant version constraints: ">= 1.2, < 2" */
bool valid_url(const char *s);      /* one word, not an option (no leading '-') */
bool valid_checksum(const char *s); /* "sha256:<64 hex>" and the like */
bool valid_abs(const char *s);      /* a guest path: absolute */
bool valid_dest(const char *s);     /* a guest path: absolute or "~..." */
/* ${VAR} and ${VAR:-default} from the environment, $$ for "$". NULL with
 * why's msg and hint set when a variable is unset or a reference is broken. */
char *expand_vars(const char *s, struct diag *why);

/* ---- the key table (envkeys.c) ---- */

enum { DEFER_DEFAULTS, DEFER_MACHINES, DEFER_N };

/* One decoding pass over a tree. */
struct dec {
	const char *file; /* for diags: the path as given */
	const char *dir;  /* relative paths resolve from here */
	unsigned flags;   /* ENVFILE_* */
	struct diag_list *errs;
	struct buf path;  /* key path being decoded: "machines.web.ports[1]" */
	size_t budget;    /* values left to decode: aliases can't make this slow */
	bool in_defaults;
	/* Top-level values the loader decodes itself, once the rest is known. */
	const struct ynode *deferred[DEFER_N];
};

void dec_err(struct dec *d, const struct ynode *at, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* Appends to the key path; dec_pop(d, mark) restores it. */
size_t dec_push(struct dec *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dec_pop(struct dec *d, size_t mark);

/* The top level: version, networks and top-level provision into e; defaults
 * and machines into d->deferred. */
void envkeys_top(struct dec *d, const struct ynode *root, struct env *e);
/* Built-in defaults, then a machine (or defaults) mapping decoded on top. */
void envkeys_machine_init(struct machine_cfg *m);
void envkeys_machine(struct dec *d, const struct ynode *n, struct machine_cfg *m);
void envkeys_machine_free(struct machine_cfg *m);
void envkeys_env_free(struct env *e); /* what envkeys_top filled */
/* What a step does, as JSON: every key that changes its effect (not name,
 * run, sensitive, verbose), host paths relative to dir. */
json_t *envkeys_step_config(const struct step *s, const char *dir);

#endif
