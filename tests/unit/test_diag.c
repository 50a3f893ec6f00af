/* struct diag: codes are set by diag_errno and diag_code, and survive
 * every later change of the message (wrap, hint, position). */
#include <errno.h>
#include <string.h>

#include "core/base/diag.h"
#include "t.h"

static void errno_sets_code(void)
{
	struct diag d = {0};
	errno = ENOENT;
	CHECK(diag_errno(&d, "open %s", "x") == -1);
	CHECK(d.code == ENOENT);
	CHECK_STR(d.msg, "open x: No such file or directory");
	CHECK(errno == ENOENT);
}

static void fail_has_no_code(void)
{
	struct diag d = {.code = EIO};
	diag_fail(&d, "plain");
	CHECK(d.code == 0);
	CHECK_STR(d.msg, "plain");
}

static void code_survives_wrap(void)
{
	struct diag d = {0};
	CHECK(diag_code(&d, DIAG_STOPPED, "stopped after %d bytes", 3) == -1);
	diag_wrap(&d, "download %s", "u");
	diag_hint(&d, "try again");
	diag_at(&d, "f.yaml", 1, 2);
	diag_wrap(&d, "box add");
	CHECK(d.code == DIAG_STOPPED);
	CHECK_STR(d.msg, "box add: download u: stopped after 3 bytes");
	CHECK_STR(d.hint, "try again");
}

static void errno_code_survives_wrap(void)
{
	struct diag d = {0};
	errno = EADDRINUSE;
	diag_errno(&d, "bind");
	diag_wrap(&d, "forward");
	CHECK(d.code == EADDRINUSE);
}

static void codes_are_no_errno(void)
{
	static const int codes[] = {DIAG_STOPPED, DIAG_USAGE, DIAG_PORT_TAKEN};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		CHECK(codes[i] > 4095); /* the kernel's errno values end at 4095 */
}

static void copies_keep_code(void)
{
	struct diag a = {0}, b;
	diag_code(&a, DIAG_PORT_TAKEN, "port");
	struct diag_list l = {0};
	diag_list_add(&l, &a);
	b = l.v[0];
	CHECK(b.code == DIAG_PORT_TAKEN);
	diag_list_free(&l);
}

int main(void)
{
	RUN(errno_sets_code);
	RUN(fail_has_no_code);
	RUN(code_survives_wrap);
	RUN(errno_code_survives_wrap);
	RUN(codes_are_no_errno);
	RUN(copies_keep_code);
	return T_END();
}
