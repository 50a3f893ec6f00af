/* The logger: global state (as is only the stop request of cancel.h).
 * Everything a person sees while a command runs (machine state changes,
 * streamed provisioner output, warnings, progress bars) goes through here;
 * errors travel as struct diag to cmd/. */
#ifndef CORRAL_LOG_H
#define CORRAL_LOG_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct log_opts {
	bool verbose;
	bool color; /* cmd/ decides: TTY, --no-color, NO_COLOR */
	bool json;  /* --json: human lines go to stderr, stdout stays parseable */
	bool tty;   /* stderr is a terminal: progress bars allowed */
};
void log_setup(const struct log_opts *o);
const struct log_opts *log_opts(void);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* "web-1: running" — one line per machine state change. */
void log_machine(const char *machine, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line of guest or tool output; the prefix names the machine (and step)
 * when `prefix` is non-NULL. Lines from parallel machines never interleave. */
void log_stream(const char *prefix, const char *line, bool is_stderr);

/* Secrets (a sensitive step's env values) shown as "***" in every line the
 * calling thread logs, until log_secrets_clear: guest output streamed live
 * cannot be vetted before it is printed. A multi-line secret is masked line
 * by line. The strings are copied. Per thread: parallel machines keep their
 * own. */
void log_secrets_set(const char *const *secrets, size_t n);
void log_secrets_clear(void);
/* s with the calling thread's secrets masked (caller frees). */
char *log_redact(const char *s);

/* Progress: a bar on a TTY, one plain line at start and end otherwise.
 * total 0 = unknown size. Thread-safe; one bar is drawn at a time. */
struct progress;
struct progress *progress_start(const char *label, uint64_t total);
void progress_set(struct progress *p, uint64_t done);
void progress_end(struct progress *p, bool ok);
/* 1536 -> "1.5 KiB", in the bar's units (B, KiB, MiB, GiB, TiB). */
void human_bytes(char *out, size_t n, double v);

/* For waits with no byte count (a machine booting): on a TTY, after a
 * second, "label 12s" is kept up to date until progress_timer_end, which
 * clears it and prints nothing (the caller reports the outcome). Off a TTY
 * it shows nothing. */
struct progress *progress_timer_start(const char *label);
void progress_timer_end(struct progress *p);

#endif
