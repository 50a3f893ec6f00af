/* Errors as values: functions return 0 or -1 and fill a struct diag. */
#ifndef CORRAL_DIAG_H
#define CORRAL_DIAG_H
#include <stddef.h>

struct diag {
	char msg[1024];  /* what failed, with context prefixes ("box add: download: ...") */
	char hint[512];  /* what to do about it; may be empty */
	char file[512];  /* set for errors that point into a file */
	int line, col;   /* 1-based; 0 when unknown */
};

/* Each sets or changes *d and returns -1, so `return diag_fail(d, ...)` reads naturally. */
int diag_fail(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int diag_errno(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int diag_hint(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int diag_wrap(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int diag_at(struct diag *d, const char *file, int line, int col);

/* Many errors at once (envfile validation reports all of them). */
struct diag_list {
	struct diag *v;
	size_t n, cap;
};
void diag_list_add(struct diag_list *l, const struct diag *d);
void diag_list_free(struct diag_list *l);

#endif
