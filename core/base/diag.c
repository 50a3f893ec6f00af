/* struct diag: setting, prefixing and collecting errors. */
#include "core/base/diag.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int vfail(struct diag *d, int code, const char *fmt, va_list ap)
{
	memset(d, 0, sizeof(*d));
	d->code = code;
	vsnprintf(d->msg, sizeof(d->msg), fmt, ap);
	return -1;
}

int diag_fail(struct diag *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(d, 0, fmt, ap);
	va_end(ap);
	return -1;
}

int diag_code(struct diag *d, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfail(d, code, fmt, ap);
	va_end(ap);
	return -1;
}

int diag_errno(struct diag *d, const char *fmt, ...)
{
	int e = errno;
	va_list ap;
	va_start(ap, fmt);
	vfail(d, e, fmt, ap);
	va_end(ap);
	size_t n = strlen(d->msg);
	snprintf(d->msg + n, sizeof(d->msg) - n, ": %s", strerror(e));
	errno = e;
	return -1;
}

int diag_hint(struct diag *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->hint, sizeof(d->hint), fmt, ap);
	va_end(ap);
	return -1;
}

int diag_wrap(struct diag *d, const char *fmt, ...)
{
	char prefix[512], old[sizeof(d->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, d->msg, sizeof(old));
	snprintf(d->msg, sizeof(d->msg), "%s: %s", prefix, old);
	return -1;
}

int diag_at(struct diag *d, const char *file, int line, int col)
{
	snprintf(d->file, sizeof(d->file), "%s", file ? file : "");
	d->line = line;
	d->col = col;
	return -1;
}

void diag_list_add(struct diag_list *l, const struct diag *d)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		struct diag *v = realloc(l->v, cap * sizeof(*v));
		if (!v)
			abort();
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = *d;
}

void diag_list_free(struct diag_list *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
