/* A growable vector of owned strings, always NULL-terminated (v[n] ==
 * NULL once anything was pushed), so it is an argv or envp for exec as it
 * stands. Zero-initialised is empty; strv_free empties it again. */
#ifndef CORRAL_STRV_H
#define CORRAL_STRV_H
#include <stddef.h>

struct strv {
	char **v;
	size_t n;
};

/* A copy of s at the end. */
void strv_push(struct strv *s, const char *str);
void strv_pushf(struct strv *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* owned (from malloc) at the end, without copying. */
void strv_take(struct strv *s, char *owned);
/* Every string, sep between them; "" when empty. Caller frees. */
char *strv_join(const struct strv *s, const char *sep);
void strv_free(struct strv *s);

#endif
