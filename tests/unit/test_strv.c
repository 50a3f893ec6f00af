/* struct strv: NULL-terminated after every push, owns its strings, joins. */
#include <stdlib.h>
#include <string.h>

#include "core/base/strv.h"
#include "core/base/util.h"
#include "t.h"

static void push_keeps_null_end(void)
{
	struct strv v = {0};
	char s[] = "copied";
	strv_push(&v, s);
	s[0] = 'X'; /* the vector holds its own copy */
	strv_pushf(&v, "%s=%d", "n", 3);
	strv_take(&v, xstrdup("owned"));
	CHECK(v.n == 3);
	CHECK_STR(v.v[0], "copied");
	CHECK_STR(v.v[1], "n=3");
	CHECK_STR(v.v[2], "owned");
	CHECK(v.v[3] == NULL);
	strv_free(&v);
	CHECK(v.v == NULL && v.n == 0);
	strv_free(&v); /* twice is harmless */
}

static void many(void)
{
	struct strv v = {0};
	for (int i = 0; i < 500; i++) /* no fixed limit (VirtualBox's argv had 96) */
		strv_pushf(&v, "%d", i);
	CHECK(v.n == 500);
	CHECK_STR(v.v[499], "499");
	CHECK(v.v[500] == NULL);
	strv_free(&v);
}

static void join(void)
{
	struct strv v = {0};
	char *s = strv_join(&v, ",");
	CHECK_STR(s, "");
	free(s);
	strv_push(&v, "a");
	strv_push(&v, "b c");
	s = strv_join(&v, ", ");
	CHECK_STR(s, "a, b c");
	free(s);
	strv_free(&v);
}

int main(void)
{
	RUN(push_keeps_null_end);
	RUN(many);
	RUN(join);
	return T_END();
}
