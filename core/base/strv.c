/* struct strv: push, format, join, free. */
#include "core/base/strv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/base/util.h"

void strv_take(struct strv *s, char *owned)
{
	s->v = xrealloc(s->v, (s->n + 2) * sizeof(*s->v));
	s->v[s->n++] = owned;
	s->v[s->n] = NULL;
}

void strv_push(struct strv *s, const char *str)
{
	strv_take(s, xstrdup(str));
}

void strv_pushf(struct strv *s, const char *fmt, ...)
{
	va_list ap;
	char *str;
	va_start(ap, fmt);
	if (vasprintf(&str, fmt, ap) < 0)
		abort();
	va_end(ap);
	strv_take(s, str);
}

char *strv_join(const struct strv *s, const char *sep)
{
	struct buf b = {0};
	for (size_t i = 0; i < s->n; i++) {
		if (i)
			buf_puts(&b, sep);
		buf_puts(&b, s->v[i]);
	}
	return b.s ? b.s : xstrdup("");
}

void strv_free(struct strv *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	*s = (struct strv){0};
}
