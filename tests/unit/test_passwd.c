/* The guest's /etc/passwd as passwd(5) defines it: lines `useradd` writes
 * (empty GECOS), comments, short and long lines, non-numeric ids. */
#include <string.h>

#include "core/base/util.h"
#include "providers/container/container.h"
#include "tests/unit/t.h"

static int lookup(const char *text, const char *user, struct passwd_entry *e)
{
	static char buf[8192];
	snprintf(buf, sizeof(buf), "%s", text);
	return passwd_lookup(buf, user, e);
}

static void test_useradd_line(void)
{
	struct passwd_entry e;
	CHECK(lookup("root:x:0:0:root:/root:/bin/bash\n"
		     "vagrant:x:1000:1000::/home/vagrant:/bin/bash\n", "vagrant", &e) == 0);
	CHECK(e.uid == 1000 && e.gid == 1000);
	CHECK_STR(e.home, "/home/vagrant");
	CHECK_STR(e.shell, "/bin/bash");
}

static void test_empty_fields(void)
{
	struct passwd_entry e;
	CHECK(lookup("svc::1001:1001:::\n", "svc", &e) == 0);
	CHECK(e.uid == 1001 && !e.home[0] && !e.shell[0]);
}

static void test_bad_lines_skipped(void)
{
	struct passwd_entry e;
	CHECK(lookup("# vagrant:x:1:1::/h:/s\n"
		     "vagrant:x:12a:1::/bad:/bin/sh\n"
		     "vagrant:x:1:1::/six-fields\n"
		     "vagrant:x:1:1::/eight:/bin/sh:extra\n"
		     "vagrant:x:-1:1::/neg:/bin/sh\n"
		     "vagrant:x:4294967295:1::/max:/bin/sh\n"
		     "vagrant:x:7:8:V:/home/v:/bin/sh\n", "vagrant", &e) == 0);
	CHECK(e.uid == 7 && e.gid == 8);
	CHECK_STR(e.home, "/home/v");
	CHECK(lookup("other:x:1:1::/h:/s\n", "vagrant", &e) < 0);
	CHECK(lookup("", "vagrant", &e) < 0);
}

static void test_long_line(void)
{
	struct passwd_entry e;
	static char big[10000];
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "vagrant:x:1:1:", 14);
	CHECK(lookup(big, "vagrant", &e) < 0);
}

/* The id corral gives a user it adds: free in passwd (uid and gid) and group. */
static void test_free_id(void)
{
	const char *pw = "root:x:0:0:root:/root:/bin/sh\n"
			 "a:x:1000:1001::/h:/bin/sh\n"
			 "# c:x:1003:1003::/h:/bin/sh\n";
	const char *gr = "root:x:0:\nstaff:x:1002:a\n";
	CHECK(passwd_free_id(pw, gr, 1000, 60000) == 1003);
	CHECK(passwd_free_id(NULL, NULL, 1000, 60000) == 1000);
	CHECK(passwd_free_id(pw, "bad line\nx:x:12a:\n", 1000, 1002) == 0);
	CHECK(passwd_free_id("", "", 100, 101) == 100);
}

int main(void)
{
	RUN(test_free_id);
	RUN(test_useradd_line);
	RUN(test_empty_fields);
	RUN(test_bad_lines_skipped);
	RUN(test_long_line);
	return T_END();
}
