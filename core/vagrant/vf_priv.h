/* Shared by the files of core/vagrant/ only: the arena everything lives in,
 * tokens, the syntax tree, Ruby values, the YAML tree the translation
 * builds, and the interpreter's state. */
#ifndef CORRAL_VF_PRIV_H
#define CORRAL_VF_PRIV_H
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/base/diag.h"
#include "core/vagrant/vagrantfile.h"

/* ---- arena: every allocation of one import, freed at once ---- */

struct arena {
	void **v;
	size_t n, cap;
};
void *ar_alloc(struct arena *a, size_t n); /* zeroed */
char *ar_strndup(struct arena *a, const char *s, size_t n);
char *ar_strdup(struct arena *a, const char *s);
char *ar_printf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *ar_vprintf(struct arena *a, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void ar_free(struct arena *a);

struct vec {
	void **v;
	size_t n, cap;
};
void vec_push(struct arena *a, struct vec *v, void *p);

/* ---- tokens (lex.c) ---- */

enum tk {
	TK_EOF, TK_NL, TK_INT, TK_FLOAT, TK_STR, TK_XSTR, TK_REGEX, TK_SYM, TK_DSYM, TK_IDENT,
	TK_CONST, TK_GVAR, TK_IVAR, TK_LABEL, TK_OP, TK_WORDS, TK_SYMWORDS,
};

/* A piece of a string literal: text, or the source of a #{...}. */
struct strpart {
	const char *text;
	bool code;
	int line, col;
};

struct tok {
	enum tk k;
	int line, col;
	bool sp;       /* white space before it */
	const char *s; /* identifier, operator, label, symbol */
	long long i;
	double f;
	struct strpart *parts; /* strings, symbols with quotes, regexes */
	size_t nparts;
	const char **words; /* %w(), %i() */
	size_t nwords;
};

/* Tokens of src (line0/col0: where src starts, for interpolated code). */
int vf_lex(struct arena *a, const char *src, size_t len, int line0, int col0, struct tok **out,
	   size_t *n, struct diag *d);

/* ---- syntax tree (parse.c) ---- */

enum nk {
	N_NIL, N_TRUE, N_FALSE, N_SELF, N_INT, N_FLOAT, N_STR, N_STRLIT, N_XSTR, N_REGEX, N_SYM,
	N_DSYM, N_ARRAY, N_HASH, N_RANGE, N_VAR, N_CONST, N_GVAR, N_IVAR, N_CALL, N_INDEX,
	N_ASSIGN, N_OPASSIGN, N_BINOP, N_NOT, N_AND, N_OR, N_NEG, N_IF, N_CASE, N_WHEN, N_SEQ,
	N_OPAQUE, N_SPLAT, N_BLOCKPASS, N_DSPLAT, N_MASSIGN,
};

struct param {
	const char *name;  /* NULL: a destructuring (a, b) */
	const char **sub;
	size_t nsub;
};

struct blk {
	struct param *p;
	size_t np;
	struct node *body; /* N_SEQ */
};

struct node {
	enum nk k;
	int line, col, last_line;
	const char *s; /* name, operator, symbol, literal text */
	long long i;
	double f;
	struct node *a, *b, *c; /* receiver/left/condition, right/then, else */
	struct node **v;        /* arguments, elements, statements, parts; hash: k0 v0 k1 v1 */
	size_t n;
	struct blk *blk;
	bool excl;   /* a ... range */
	bool parens; /* a call written with ( ) */
};

/* The Vagrantfile as statements; -1 with d for what cannot be parsed at all. */
struct node *vf_parse(struct arena *a, const struct tok *t, size_t n, struct diag *d);
/* One expression from the source of a #{...}; NULL when it does not parse. */
struct node *vf_parse_code(struct arena *a, const char *src, int line, int col);

/* ---- the YAML tree the translation builds (emitted by emit.c) ---- */

enum yk { YV_STR, YV_INT, YV_BOOL, YV_PLAIN, YV_MAP, YV_SEQ };

struct yv {
	enum yk k;
	const char *s; /* YV_STR (quoted when needed), YV_PLAIN (written as is) */
	long long i;
	bool b;
	struct vec keys, vals; /* YV_MAP: const char *, struct yv *; YV_SEQ: vals */
	bool flow;             /* a map written { k: v } */
	bool user;             /* a map of the user's keys: kept in its order */
	struct vec comments;   /* YV_MAP/YV_SEQ items: lines written above it */
};

struct yv *y_str(struct arena *a, const char *s);
struct yv *y_plain(struct arena *a, const char *s);
struct yv *y_int(struct arena *a, long long i);
struct yv *y_bool(struct arena *a, bool b);
struct yv *y_map(struct arena *a);
struct yv *y_seq(struct arena *a);
struct yv *y_get(const struct yv *m, const char *key);
void y_set(struct arena *a, struct yv *m, const char *key, struct yv *v); /* replaces */
void y_del(struct yv *m, const char *key);
void y_push(struct arena *a, struct yv *seq, struct yv *v);
bool y_equal(const struct yv *x, const struct yv *y);
struct yv *y_copy(struct arena *a, const struct yv *v);

/* ---- notes ---- */

struct note {
	int line;
	bool imported;
	const char *text;
};

/* ---- Ruby values (value.c) ---- */

enum vk { V_NIL, V_BOOL, V_INT, V_FLOAT, V_STR, V_SYM, V_ARRAY, V_HASH, V_RANGE, V_HANDLE,
	  V_UNKNOWN };

struct handle;

struct value {
	enum vk k;
	bool b;
	long long i, hi; /* V_RANGE: i .. hi (inclusive; excl already applied) */
	double f;
	const char *s;   /* V_STR, V_SYM; V_UNKNOWN: why */
	struct vec items, keys; /* V_ARRAY: items; V_HASH: keys and items */
	struct handle *h;
};

struct interp;

struct value *v_nil(struct interp *I);
struct value *v_bool(struct interp *I, bool b);
struct value *v_int(struct interp *I, long long i);
struct value *v_str(struct interp *I, const char *s);
struct value *v_sym(struct interp *I, const char *s);
struct value *v_array(struct interp *I);
struct value *v_hash(struct interp *I);
struct value *v_unknown(struct interp *I, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
struct value *v_handle(struct interp *I, struct handle *h);
bool v_is_unknown(const struct value *v); /* anywhere inside */
/* No \r or \n: what corral's keys other than scripts, args and env take. */
bool vf_one_line(const char *s);
const struct value *v_unknown_in(const struct value *v);
/* Ruby's to_s of a string, symbol or number; NULL for others. */
const char *v_to_s(struct interp *I, const struct value *v);
/* Ruby's truth: everything but nil and false. */
bool v_truthy(const struct value *v);
/* A string, symbol or integer as text; NULL for anything else. */
const char *v_str_of(struct interp *I, const struct value *v);
bool v_eq(const struct value *x, const struct value *y);
struct value *v_hash_get(const struct value *h, const struct value *key);
/* A hash option by symbol or string key. */
struct value *v_opt(const struct value *h, const char *key);
void v_hash_set(struct interp *I, struct value *h, struct value *key, struct value *val);
const char *v_kind_name(const struct value *v);
/* Methods of plain values (strings, numbers, arrays, hashes, ranges);
 * NULL when the method is not one it knows. */
struct value *v_call(struct interp *I, struct value *recv, const char *name,
		     struct value **args, size_t nargs, const struct blk *blk);
struct value *v_binop(struct interp *I, const char *op, struct value *l, struct value *r);
struct value *v_range(struct interp *I, struct value *lo, struct value *hi, bool excl);
/* Ruby's format("%02d", 3); NULL for a format it does not know. */
const char *v_format(struct interp *I, const char *fmt, struct value **args, size_t nargs);

/* ---- the interpreter (eval.c) and the Vagrant calls (dsl.c) ---- */

/* One Vagrant configuration scope: the global `config`, or one machine. */
struct scope {
	const char *vname; /* Vagrant's name; NULL for the global scope */
	const char *name;  /* corral's */
	int line;
	struct yv *cfg;    /* machine keys as corral writes them, and _internal ones */
	struct vec notes;  /* struct note * */
	const char *mem_by, *cpus_by; /* which provider block set memory, cpus */
	unsigned count;    /* after folding NAME-1..NAME-N into one entry */
};

enum hk { H_VAGRANT, H_ENV, H_CONFIG, H_VM, H_SSH, H_NS, H_PROVIDER, H_VMX, H_STEP, H_TRIGGER };

struct pstep; /* a provisioning step being built (dsl_step.c) */
struct ptrig; /* a trigger being built (dsl_trigger.c) */

struct handle {
	enum hk k;
	struct scope *sc;
	const char *name; /* H_NS: the path ("config.winrm"); H_PROVIDER: the provider */
	struct pstep *st;
	struct ptrig *tr;
};

struct frame {
	struct frame *up;
	struct vec names, vals;
};

struct interp {
	struct arena *ar;
	const struct vf_opts *o;
	const char **lines; /* the Vagrantfile's lines, for notes */
	size_t nlines;
	struct frame *top;  /* constants and globals live here */
	struct frame *fr;   /* the innermost block's */
	struct scope *global, *cur;
	struct vec machines; /* struct scope *, in define order */
	const struct node *stmt; /* the statement being run, for notes */
	unsigned long budget;    /* evaluation steps left */
	int depth;
	bool configured;         /* a Vagrant.configure block ran */
	int configure_line;
	const char *default_provider; /* from ENV['VAGRANT_DEFAULT_PROVIDER'] */
	struct vec env_noted;    /* ENV names already noted */
};

/* s fit for a comment line and a terminal: control characters become '?'. */
const char *note_clean(struct interp *I, const char *s);
/* A note in sc at a line of the Vagrantfile (0: none), once. */
void note_at(struct interp *I, struct scope *sc, int line, bool imported, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* A note at the statement being run, in the current machine's scope. */
void note_add(struct interp *I, bool imported, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* "not imported: <the statement's source> — why", at the statement being run. */
void note_stmt(struct interp *I, const char *why);
/* The first line of node's source, trimmed, with "… (N lines)" when longer. */
const char *node_text(struct interp *I, const struct node *n);

struct value *eval(struct interp *I, const struct node *n);
void exec_seq(struct interp *I, const struct node *seq);
/* Runs blk with its parameters bound to args; returns the last value. */
struct value *run_block(struct interp *I, const struct blk *blk, struct value **args, size_t n);

struct value *dsl_const(struct interp *I, const char *name); /* Vagrant, ENV; NULL: none */
struct value *dsl_call(struct interp *I, struct handle *h, const char *name,
		       struct value **args, size_t nargs, const struct blk *blk);
struct value *dsl_index(struct interp *I, struct handle *h, struct value **args, size_t n);
struct scope *scope_new(struct interp *I, const char *vname, int line);
/* Runs a provisioner's or trigger's block (NULL: none) with its handle (k
 * H_STEP with a struct pstep *, or H_TRIGGER with a struct ptrig *) as
 * the block's parameter. */
void dsl_run_settings(struct interp *I, const struct blk *blk, enum hk k, struct scope *sc,
		      void *what);
/* config.trigger.before|after (when) ACTIONS [do |t| ... end] into sc's `triggers`. */
struct value *dsl_trigger(struct interp *I, struct scope *sc, const char *when,
			  struct value **a, size_t n, const struct blk *blk);
/* t.ATTR = v inside a trigger's block. */
struct value *dsl_trigger_set(struct interp *I, struct ptrig *t, const char *attr,
			      struct value *v);
/* A machine key set in a scope, noting a conflict between provider blocks. */
void scope_set(struct interp *I, struct scope *sc, const char *key, struct yv *v);
/* Sizes: a number or digits (MiB), or "4G", "40GB", as corral's size within
 * min..max bytes; NULL when it is none. dsl_memory: 16M to 16T. */
const char *dsl_size(struct interp *I, const struct value *v, uint64_t min, uint64_t max);
const char *dsl_memory(struct interp *I, const struct value *v);
void dsl_set_resource(struct interp *I, struct scope *sc, const char *prov, const char *key,
		      struct yv *v);
/* A host path as corral should write it; NULL (noted) when it must exist and does not. */
const char *dsl_path(struct interp *I, const struct value *v, const char *what, bool must_exist);

/* dsl_step.c: `config.vm.provision TYPE, opts do |s| ... end`. */
struct value *dsl_provision(struct interp *I, struct scope *sc, struct value **args,
			    size_t nargs, const struct blk *blk);
struct value *dsl_step_set(struct interp *I, struct pstep *st, const char *attr,
			   struct value *v);

/* model.c: the scopes as corral's machines, networks and defaults. */
struct model {
	struct yv *networks; /* name -> { subnet } */
	struct yv *defaults; /* NULL: none */
	struct vec machines; /* struct scope *, the entries written */
	struct vec notes;    /* global notes */
	bool dhcp;           /* a `type: dhcp` network is among them */
};
void model_build(struct interp *I, struct model *m);

/* emit.c: the corral.yaml text (malloc'ed). */
char *emit_yaml(struct interp *I, const struct model *m);

#endif
