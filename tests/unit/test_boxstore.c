/* boxstore_ensure, as `up` calls it: a real store in a temporary
 * $CORRAL_HOME, real .box archives and a catalog on disk. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/box/store.h"
#include "core/box/catalog.h"
#include "core/base/util.h"
#include "t.h"

static char home[] = "/tmp/corral-boxstore.XXXXXX";
static const char *const kvm[] = {"kvm", "libvirt", "qemu", NULL};

static void add_member(struct archive *a, const char *name, const char *body)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)strlen(body));
	archive_write_header(a, e);
	archive_write_data(a, body, strlen(body));
	archive_entry_free(e);
}

/* A box for `provider` whose disk says `tag`. */
static char *make_box(const char *file, const char *provider, const char *tag)
{
	char *path = path_join(home, file);
	struct archive *a = archive_write_new();
	archive_write_add_filter_gzip(a);
	archive_write_set_format_pax_restricted(a);
	archive_write_open_filename(a, path);
	_cleanup_free_ char *meta = xasprintf("{\"provider\": \"%s\", \"format\": \"qcow2\"}", provider);
	add_member(a, "metadata.json", meta);
	add_member(a, "box.img", tag);
	archive_write_close(a);
	archive_write_free(a);
	return path;
}

static char *disk(const struct box_ref *r)
{
	_cleanup_free_ char *p = path_join(r->dir, "box.img");
	char *data = NULL;
	size_t n;
	struct diag d;
	return read_file(p, 1024, &data, &n, &d) == 0 ? data : xstrdup("(none)");
}

static void test_direct_box(void)
{
	_cleanup_free_ char *box = make_box("direct.box", "libvirt", "direct");
	struct machine_cfg mc = {.name = "web", .box = "test/direct", .box_url = box};
	struct box_ref r;
	struct diag d = {0};
	CHECK(boxstore_ensure(&mc, kvm, &r, &d) == 0);
	CHECK_STR(r.version, "0");
	CHECK_STR(r.provider, "libvirt");
	CHECK_STR(r.arch, host_arch());
	_cleanup_free_ char *want = xasprintf("%s/boxes/test-VAGRANTSLASH-direct/0/%s/libvirt", home,
					      host_arch());
	CHECK_STR(r.dir, want);
	box_ref_free(&r);
	unlink(box); /* found in the store from now on: the source is not read again */
	CHECK(boxstore_ensure(&mc, kvm, &r, &d) == 0);
	CHECK_STR(r.dir, want);
	box_ref_free(&r);
	static const char *const vbox[] = {"virtualbox", NULL};
	CHECK(boxstore_ensure(&mc, vbox, &r, &d) == -1); /* not in the store, source gone */
	CHECK(strstr(d.msg, "box test/direct") != NULL);
	free(make_box("direct.box", "libvirt", "direct"));
	mc.box_version = ">= 1";
	CHECK(boxstore_ensure(&mc, kvm, &r, &d) == -1);
	CHECK(strstr(d.msg, "always version 0") != NULL);
}

static void test_catalog(void)
{
	_cleanup_free_ char *b1 = make_box("c1.box", "libvirt", "one");
	_cleanup_free_ char *b2 = make_box("c2.box", "qemu", "two");
	_cleanup_free_ char *b3 = make_box("c3.box", "libvirt", "three");
	_cleanup_free_ char *cat = path_join(home, "cat.json");
	_cleanup_free_ char *json = xasprintf(
		"{\"name\": \"test/cat\", \"versions\": ["
		"{\"version\": \"1.0\", \"providers\": [{\"name\": \"libvirt\", \"url\": \"c1.box\"}]},"
		"{\"version\": \"1.1\", \"providers\": [{\"name\": \"qemu\", \"url\": \"c2.box\"}]},"
		"{\"version\": \"2.0\", \"providers\": [{\"name\": \"libvirt\", \"url\": \"c3.box\"}]}]}");
	struct diag d = {0};
	CHECK(write_file_atomic(cat, json, strlen(json), 0644, &d) == 0);
	struct machine_cfg mc = {.name = "db", .box = "test/cat", .box_url = cat,
				 .box_version = "~> 1.0"};
	struct box_ref r;
	CHECK(boxstore_ensure(&mc, kvm, &r, &d) == 0);
	CHECK_STR(r.version, "1.1");
	CHECK_STR(r.provider, "qemu");
	_cleanup_free_ char *t = disk(&r);
	CHECK_STR(t, "two");
	box_ref_free(&r);
	mc.box_version = NULL; /* as in Vagrant, an installed box that fits is used */
	CHECK(boxstore_ensure(&mc, kvm, &r, &d) == 0);
	CHECK_STR(r.version, "1.1");
	box_ref_free(&r);
	mc.box_version = "< 1.1"; /* the catalog's newest fitting, added on demand */
	CHECK(boxstore_ensure(&mc, kvm, &r, &d) == 0);
	CHECK_STR(r.version, "1.0");
	box_ref_free(&r);
	mc.box = "other/name";
	CHECK(boxstore_ensure(&mc, kvm, &r, &d) == -1);
	CHECK(strstr(d.msg, "is for box test/cat, not other/name") != NULL);
}

static void test_no_box(void)
{
	struct machine_cfg mc = {.name = "x", .box = "nothing-like-this"};
	struct box_ref r;
	struct diag d = {0};
	CHECK(boxstore_ensure(&mc, kvm, &r, &d) == -1);
	CHECK(d.msg[0] != '\0');
}

int main(void)
{
	if (!mkdtemp(home))
		return 1;
	setenv("CORRAL_HOME", home, 1);
	RUN(test_direct_box);
	RUN(test_catalog);
	RUN(test_no_box);
	struct diag d;
	rm_rf(home, &d);
	return T_END();
}
