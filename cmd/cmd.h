/* The command layer: global options, the command table, and the shared
 * steps commands take (find and load the envfile, take the lock, report a
 * diag). Only cmd/ prints results and errors. */
#ifndef CORRAL_CMD_H
#define CORRAL_CMD_H
#include <stdbool.h>

#include "core/base/diag.h"
#include "core/config/envfile.h"
#include "core/host/lock.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct ctx {
	const char *file;          /* -f */
	bool json, verbose, color;
	unsigned lock_timeout_ms;  /* --lock-timeout, default 0 */
	int argc;                  /* argv[0] is the command name */
	char **argv;
	struct env *env;           /* set by ctx_load_env */
	struct lock lock;          /* held after ctx_lock */
};

struct command {
	const char *name;
	int (*run)(struct ctx *c);
	const char *args;    /* synopsis after the name */
	const char *summary; /* one line for `corral help` */
	const char *help;    /* options, shown by `corral help NAME` and NAME --help */
};

const struct command *commands(size_t *n);
const struct command *command_find(const char *name);
/* Internal commands (`__init`, ...): out of help, man page and completion. */
bool command_hidden(const struct command *cmd);
/* The command's help, as `corral help NAME` and `corral NAME --help` show it. */
void command_usage(const struct command *cmd, FILE *out);

/* Finds (-f or upward search) and loads the envfile; prints every error.
 * Returns EXIT_OK or the exit code to return. */
int ctx_load_env(struct ctx *c);
/* Whether `name` is the machine's name or its count's base name ("web"). */
bool machine_named(const struct machine_cfg *mc, const char *name);
/* Every one of names[0..n) names a machine of e (machine_named); else a
 * usage error of cmd, returned as its exit code. */
int check_machine_names(const struct command *cmd, const struct env *e, char *const *names,
			size_t n);
/* Takes the envfile's lock (mutating commands). Returns EXIT_OK or EXIT_FAIL. */
int ctx_lock(struct ctx *c);
void ctx_done(struct ctx *c);

/* Prints one error: "file:line:col: error: msg" + hint, coloured on a TTY. */
void report(const struct diag *d);
/* The same layout for what is valid but probably not meant. */
void report_warning(const struct diag *d);
/* report(d), then the exit code its kind calls for: EXIT_USAGE for
 * DIAG_USAGE, EXIT_FAIL for everything else. */
int report_exit(const struct diag *d);
/* "unknown option" etc.: prints and returns EXIT_USAGE. */
int usage_error(const struct command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int cmd_init(struct ctx *c);
int cmd_import(struct ctx *c);
int cmd_validate(struct ctx *c);
int cmd_lock(struct ctx *c);
int cmd_status(struct ctx *c);
int cmd_provision(struct ctx *c);
int cmd_box(struct ctx *c);
int cmd_up(struct ctx *c);
int cmd_halt(struct ctx *c);
int cmd_reload(struct ctx *c);
int cmd_reset(struct ctx *c);
int cmd_destroy(struct ctx *c);
int cmd_global_status(struct ctx *c);
int cmd_port(struct ctx *c);
/* A provider's helper process (`__init`, `__portfwd`). */
int cmd_provider_entry(struct ctx *c);
int cmd_ssh(struct ctx *c);
int cmd_rsync(struct ctx *c);
int cmd_snapshot(struct ctx *c);
int cmd_package(struct ctx *c);
int cmd_suspend(struct ctx *c);
int cmd_resume(struct ctx *c);
int cmd_ssh_config(struct ctx *c);
int cmd_completion(struct ctx *c);
int cmd_help(struct ctx *c);
int cmd_man(struct ctx *c);
int cmd_version(struct ctx *c);

#endif
