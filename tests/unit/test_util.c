#include <stdlib.h>
#include <unistd.h>

#include "core/base/util.h"
#include "t.h"

static void test_path_abs(void)
{
	char *p = path_abs("/a/b", "../c/./d");
	CHECK_STR(p, "/a/c/d");
	free(p);
	p = path_abs("/a", "/x/../../y");
	CHECK_STR(p, "/y");
	free(p);
	p = path_abs("/", ".");
	CHECK_STR(p, "/");
	free(p);
	p = path_abs("/a/b/", "c//");
	CHECK_STR(p, "/a/b/c");
	free(p);
}

static void test_dirname_join(void)
{
	char *p = path_dirname("/a/b/c.yaml");
	CHECK_STR(p, "/a/b");
	free(p);
	p = path_dirname("c.yaml");
	CHECK_STR(p, ".");
	free(p);
	p = path_join("/a/", "b");
	CHECK_STR(p, "/a/b");
	free(p);
}

static void test_suggest(void)
{
	const char *keys[] = {"memory", "cpus", "disk", "provider"};
	CHECK_STR(str_suggest("memroy", keys, 4), "memory");
	CHECK_STR(str_suggest("cpu", keys, 4), "cpus");
	CHECK(str_suggest("zzzzzz", keys, 4) == NULL);
	CHECK(str_distance("kitten", "sitting") == 3);
}

static void test_buf(void)
{
	struct buf b = {0};
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	CHECK(b.len > 3000);
	CHECK(str_starts(b.s, "0,1,2,"));
	CHECK(str_ends(b.s, "999,"));
	buf_free(&b);
}

static void test_atomic_write_and_read(void)
{
	char dir[] = "/tmp/corral-unit-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char *f = path_join(dir, "x/y/f.txt");
	char *fd = path_dirname(f);
	struct diag d = {0};
	CHECK(mkdir_p(fd, 0755, &d) == 0);
	CHECK(write_file_atomic(f, "hello", 5, 0644, &d) == 0);
	char *data;
	size_t len;
	CHECK(read_file(f, 100, &data, &len, &d) == 0);
	CHECK(len == 5 && memcmp(data, "hello", 5) == 0);
	free(data);
	CHECK(read_file(f, 3, &data, &len, &d) == -1);
	CHECK(strstr(d.msg, "too large") != NULL);
	CHECK(rm_rf(dir, &d) == 0);
	CHECK(!path_exists(dir));
	free(f);
	free(fd);
}

int main(void)
{
	RUN(test_path_abs);
	RUN(test_dirname_join);
	RUN(test_suggest);
	RUN(test_buf);
	RUN(test_atomic_write_and_read);
	return T_END();
}
