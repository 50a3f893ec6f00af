/* Version comparison and Vagrant's constraint syntax. */
#include "core/box/version.h"
#include "t.h"

static bool sat(const char *c, const char *v)
{
	bool ok = false;
	struct diag d = {0};
	if (version_satisfies(c, v, &ok, &d) < 0) {
		printf("#   unexpected error for \"%s\": %s\n", c, d.msg);
		return false;
	}
	return ok;
}

static void test_compare(void)
{
	CHECK(version_cmp("1.0", "1.0") == 0);
	CHECK(version_cmp("1", "1.0.0") == 0); /* missing segments are 0 */
	CHECK(version_cmp("1.10", "1.9") > 0); /* numeric, not lexical */
	CHECK(version_cmp("1.2.3", "1.2.10") < 0);
	CHECK(version_cmp("2", "10") < 0);
	CHECK(version_cmp("010", "10") == 0);
	CHECK(version_cmp("12345678901234567890123", "12345678901234567890122") > 0);
	CHECK(version_cmp("1.0.rc1", "1.0") < 0); /* pre-release first */
	CHECK(version_cmp("1.0-beta", "1.0") < 0);
	CHECK(version_cmp("1.0.a", "1.0.b") < 0);
	CHECK(version_cmp("0", "0.0.1") < 0);
}

static void test_valid(void)
{
	CHECK(version_valid("0"));
	CHECK(version_valid("1.2.3"));
	CHECK(version_valid("20240101.0.1"));
	CHECK(version_valid("1.0-beta.2"));
	CHECK(!version_valid(""));
	CHECK(!version_valid("v1.0"));
	CHECK(!version_valid("1..2"));
	CHECK(!version_valid("1.2."));
	CHECK(!version_valid("1.2 3"));
	CHECK(!version_valid("1/2"));
}

static void test_operators(void)
{
	CHECK(sat("= 1.2", "1.2") && sat("= 1.2", "1.2.0") && !sat("= 1.2", "1.2.1"));
	CHECK(sat("1.2", "1.2") && !sat("1.2", "1.3")); /* bare version: = */
	CHECK(sat("!= 1.2", "1.3") && !sat("!= 1.2", "1.2"));
	CHECK(sat("> 1.2", "1.2.1") && !sat("> 1.2", "1.2"));
	CHECK(sat("< 1.2", "1.1.9") && !sat("< 1.2", "1.2"));
	CHECK(sat(">= 1.2", "1.2") && sat(">= 1.2", "3") && !sat(">= 1.2", "1.1"));
	CHECK(sat("<= 1.2", "1.2") && !sat("<= 1.2", "1.2.1"));
	CHECK(sat(">=1.2", "1.2") && sat("  <=  2 ", "2")); /* spacing is free */
	CHECK(sat(NULL, "7") && sat("", "0") && sat("   ", "1"));
}

static void test_pessimistic(void)
{
	/* ~> 1.2 means >= 1.2, < 2.0 */
	CHECK(sat("~> 1.2", "1.2") && sat("~> 1.2", "1.9.9") && sat("~> 1.2", "1.10"));
	CHECK(!sat("~> 1.2", "2.0") && !sat("~> 1.2", "1.1"));
	/* ~> 1.2.3 means >= 1.2.3, < 1.3 */
	CHECK(sat("~> 1.2.3", "1.2.3") && sat("~> 1.2.3", "1.2.99"));
	CHECK(!sat("~> 1.2.3", "1.3") && !sat("~> 1.2.3", "1.2.2"));
	CHECK(sat("~> 1", "1.5") && !sat("~> 1", "2")); /* one segment bumps itself */
	CHECK(sat("~> 1.9.9", "1.9.10") && !sat("~> 1.9.9", "1.10")); /* carry: < 1.10 */
	CHECK(sat("~> 9.9", "9.99") && !sat("~> 9.9", "10"));
	CHECK(sat("~>2.0", "2.5"));
}

static void test_lists(void)
{
	CHECK(sat(">= 1.0, < 2.0", "1.5") && !sat(">= 1.0, < 2.0", "2.0"));
	CHECK(sat("~> 1.2, != 1.3", "1.4") && !sat("~> 1.2, != 1.3", "1.3"));
	CHECK(!sat("> 1, < 1", "1"));
	CHECK(sat(">= 1,<= 1", "1"));
}

static void expect_error(const char *c)
{
	struct vconstraint vc;
	struct diag d = {0};
	int r = vconstraint_parse(c, &vc, &d);
	CHECK(r == -1);
	CHECK(strstr(d.msg, "invalid version constraint") != NULL);
	CHECK(strstr(d.hint, "~>") != NULL);
	if (r == 0)
		vconstraint_free(&vc);
}

static void test_errors(void)
{
	expect_error(">>1");
	expect_error("=> 1.0");
	expect_error("~ 1.0");
	expect_error(">= ");
	expect_error("1.0,");
	expect_error(", 1.0");
	expect_error(">= 1.0 < 2.0");
	expect_error("latest");
	struct vconstraint vc;
	struct diag d = {0};
	CHECK(vconstraint_parse(">= 1.0, => 2", &vc, &d) == -1);
	CHECK(strstr(d.msg, "\"=> 2\"") != NULL); /* names the bad clause */
}

int main(void)
{
	RUN(test_compare);
	RUN(test_valid);
	RUN(test_operators);
	RUN(test_pessimistic);
	RUN(test_lists);
	RUN(test_errors);
	return T_END();
}
