/* core/box/pack.c and publish.c: a .box written with boxpack (metadata.json
 * first, read back), then published into a directory: the catalog's layout
 * and members, a second version and a re-publish (other versions kept, the
 * same entry replaced, the same bytes when nothing changed), and what is
 * refused before anything is written. */
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/box/catalog.h"
#include "core/box/pack.h"
#include "core/box/publish.h"
#include "t.h"

static char tmp[] = "/tmp/corral-publish.XXXXXX";

/* A container box with metadata naming arch (NULL: none). */
static char *make_box(const char *name, const char *arch)
{
	char *path = path_join(tmp, name);
	_cleanup_free_ char *bdir = path_join(tmp, "src");
	_cleanup_free_ char *meta = path_join(bdir, "metadata.json");
	struct diag d = {0};
	mkdir_p(bdir, 0755, &d);
	_cleanup_free_ char *m = arch ? xasprintf("{\"architecture\": \"%s\", \"virtual_size\": 1}", arch)
				      : xstrdup("{\"virtual_size\": 1}");
	write_file_atomic(meta, m, strlen(m), 0644, &d);
	_cleanup_free_ char *payload = path_join(tmp, "payload");
	write_file_atomic(payload, "hello", 5, 0644, &d);
	struct boxpack *p;
	static const char *const drop[] = {"virtual_size", NULL};
	unlink(path);
	CHECK(boxpack_open(path, &p, &d) == 0);
	CHECK(boxpack_metadata(p, bdir, "container", drop, &d) == 0);
	CHECK(boxpack_add_file(p, "rootfs/hello", payload, &d) == 0);
	CHECK(boxpack_close(p, &d) == 0);
	return path;
}

static void test_pack(void)
{
	_cleanup_free_ char *box = make_box("a.box", "arm64");
	char *json = NULL;
	struct diag d = {0};
	CHECK(boxpack_read_metadata(box, &json, &d) == 0);
	json_t *m = json_loads(json ? json : "", 0, NULL);
	CHECK_STR(json_string_value(json_object_get(m, "provider")), "container");
	CHECK_STR(json_string_value(json_object_get(m, "architecture")), "arm64");
	CHECK(json_object_get(m, "virtual_size") == NULL);
	json_decref(m);
	free(json);
	struct boxpack *p;
	CHECK(boxpack_open(box, &p, &d) == -1); /* never over an existing file */
	_cleanup_free_ char *none = make_box("b.box", NULL);
	CHECK(boxpack_read_metadata(none, &json, &d) == 0);
	CHECK(strstr(json, host_arch()) != NULL);
	free(json);
}

static json_t *load_catalog(const char *dir)
{
	_cleanup_free_ char *p = path_join(dir, "acme/tiny");
	return json_load_file(p, 0, NULL);
}

static char *catalog_text(const char *dir)
{
	_cleanup_free_ char *p = path_join(dir, "acme/tiny");
	char *s = NULL;
	struct diag d = {0};
	read_file(p, 1 << 20, &s, NULL, &d);
	return s;
}

static int publish(const char *dir, const char *version, const char *box, const char *provider)
{
	struct publish_opts o = {.dir = dir, .name = "acme/tiny", .version = version,
				 .provider = provider};
	char *boxes[] = {(char *)box};
	struct published *v;
	char *cat;
	struct diag d = {0};
	int r = box_publish(&o, boxes, 1, &v, &cat, &d);
	if (r == 0) {
		published_free(v, 1);
		free(cat);
	}
	return r;
}

static void test_publish(void)
{
	_cleanup_free_ char *box = make_box("c.box", "amd64");
	_cleanup_free_ char *dir = path_join(tmp, "www");
	CHECK(publish(dir, "1.0.0", box, NULL) == 0);
	CHECK(publish(dir, "1.10.0", box, "container") == 0);
	_cleanup_free_ char *before = catalog_text(dir);
	CHECK(publish(dir, "1.10.0", box, NULL) == 0);
	_cleanup_free_ char *after = catalog_text(dir);
	CHECK_STR(after, before);
	json_t *c = load_catalog(dir);
	CHECK_STR(json_string_value(json_object_get(c, "name")), "acme/tiny");
	json_t *vs = json_object_get(c, "versions");
	CHECK(json_array_size(vs) == 2);
	CHECK_STR(json_string_value(json_object_get(json_array_get(vs, 0), "version")), "1.10.0");
	json_t *ps = json_object_get(json_array_get(vs, 0), "providers");
	CHECK(json_array_size(ps) == 1);
	json_t *e = json_array_get(ps, 0);
	CHECK_STR(json_string_value(json_object_get(e, "url")), "tiny-1.10.0-container-amd64.box");
	CHECK_STR(json_string_value(json_object_get(e, "checksum_type")), "sha256");
	CHECK(json_object_get(e, "signature") == NULL);
	json_decref(c);
	_cleanup_free_ char *copy = path_join(dir, "acme/tiny-1.0.0-container-amd64.box");
	CHECK(path_exists(copy));
}

static void test_refused(void)
{
	_cleanup_free_ char *box = make_box("d.box", "amd64");
	_cleanup_free_ char *dir = path_join(tmp, "refused");
	CHECK(publish(dir, "1.0.0", box, "kvm") == -1); /* the box says container */
	CHECK(!path_exists(dir));
	CHECK(publish(dir, "not a version", box, NULL) == -1);
	struct publish_opts o = {.dir = dir, .name = "../x", .version = "1"};
	char *boxes[] = {box};
	struct published *v;
	char *cat;
	struct diag d = {0};
	CHECK(box_publish(&o, boxes, 1, &v, &cat, &d) == -1 && d.code == DIAG_USAGE);
	CHECK(!path_exists(dir));
}

int main(void)
{
	if (!mkdtemp(tmp))
		return 1;
	RUN(test_pack);
	RUN(test_publish);
	RUN(test_refused);
	struct diag d;
	rm_rf(tmp, &d);
	return T_END();
}
