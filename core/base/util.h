/* Small helpers every module uses: memory that aborts on exhaustion,
 * strings, paths, whole-file I/O with atomic replace, cleanup attributes. */
#ifndef CORRAL_UTIL_H
#define CORRAL_UTIL_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/base/diag.h"

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);           /* NULL stays NULL */
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One exit path per function: `_cleanup_free_ char *p = ...;` */
void freep(void *p);
void closep(int *fd);
#define _cleanup_free_ __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))

bool str_starts(const char *s, const char *prefix);
bool str_ends(const char *s, const char *suffix);
/* Whether s is one of list's strings (list NULL-ended, or NULL). */
bool str_in_list(const char *s, const char *const *list);
/* Levenshtein distance, for "did you mean" suggestions. */
size_t str_distance(const char *a, const char *b);
/* Closest of `n` candidates within a small distance, or NULL. */
const char *str_suggest(const char *word, const char *const *cands, size_t n);

/* A growable string. */
struct buf {
	char *s;
	size_t len, cap;
};
void buf_add(struct buf *b, const char *s, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_free(struct buf *b);

char *path_join(const char *a, const char *b); /* b absolute: b */
char *path_dirname(const char *p);
char *path_abs(const char *base_dir, const char *p); /* lexical, no symlink resolution */
bool path_exists(const char *p);
bool path_is_dir(const char *p);

int mkdir_p(const char *path, mode_t mode, struct diag *d);
int rm_rf(const char *path, struct diag *d);

/* Reads at most max bytes; larger files are an error, never a partial read. */
int read_file(const char *path, size_t max, char **data, size_t *len, struct diag *d);
/* The same with extra open(2) flags, e.g. O_NOFOLLOW for files in places
 * a user or guest may control (a symlink there is an error, not followed). */
int read_file_flags(const char *path, int oflags, size_t max, char **data, size_t *len,
		    struct diag *d);
/* The same from an open descriptor; name is for messages. */
int read_fd(int fd, const char *name, size_t max, char **data, size_t *len, struct diag *d);
/* Writes all n bytes (retrying short writes and EINTR); -1 with errno. */
int write_all(int fd, const char *p, size_t n);
/* temp file in the same directory + fsync + rename + fsync(dir): readers see
 * the old or the new content, never a torn file, even after kill -9. */
int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
		      struct diag *d);

/* $CORRAL_HOME, default ~/.corral; created on demand by callers. */
const char *corral_home(void);
/* $HOME, else the password database's home of the real uid, else /tmp. */
const char *user_home(void);

uint64_t now_ms(void); /* monotonic */
void sleep_ms(unsigned ms);

#endif
