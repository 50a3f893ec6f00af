/* boxstore_ensure, as `up` calls it: a real store in a temporary
 * $CORRAL_HOME, real .box archives and a catalog on disk; and Vagrant's
 * store in a temporary $VAGRANT_HOME, in both of its layouts. */
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
	(void)b1; /* made for its side effect (a file), freed at exit */
	_cleanup_free_ char *b2 = make_box("c2.box", "qemu", "two");
	(void)b2; /* made for its side effect (a file), freed at exit */
	_cleanup_free_ char *b3 = make_box("c3.box", "libvirt", "three");
	(void)b3; /* made for its side effect (a file), freed at exit */
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

/* A box in Vagrant's store: rel is NAME/VERSION[/ARCH]/PROVIDER under $VAGRANT_HOME/boxes. */
static void vagrant_box(const char *rel, const char *tag)
{
	_cleanup_free_ char *dir = xasprintf("%s/vagrant.d/boxes/%s", home, rel);
	_cleanup_free_ char *meta = path_join(dir, "metadata.json"), *img = path_join(dir, "box.img");
	struct diag d;
	mkdir_p(dir, 0755, &d);
	write_file_atomic(meta, "{\"provider\": \"libvirt\"}", 23, 0644, &d);
	write_file_atomic(img, tag, strlen(tag), 0644, &d);
}

static void test_vagrant_store(void)
{
	vagrant_box("old-VAGRANTSLASH-layout/1.0/libvirt", "old layout");
	vagrant_box("new-VAGRANTSLASH-layout/2.0/unknown/libvirt", "new 2.0");
	vagrant_box("new-VAGRANTSLASH-layout/2.1/unknown/libvirt", "new 2.1");
	vagrant_box("test-VAGRANTSLASH-cat/9.0/unknown/libvirt", "vagrant's cat");
	vagrant_box("partial/1.0/unknown/libvirt-without-metadata/x", "not a box");
	struct box_list l;
	CHECK(vagrant_box_list(NULL, &l) == 0);
	CHECK(l.n == 4);
	CHECK_STR(l.n ? l.v[0].name : NULL, "new/layout");
	CHECK_STR(l.n ? l.v[2].name : NULL, "old/layout");
	CHECK_STR(l.n > 2 ? l.v[2].arch : NULL, "unknown");
	CHECK(l.n && l.v[0].vagrant);
	box_list_free(&l);
	CHECK(boxstore_list(&l, &(struct diag){0}) == 0);
	for (size_t i = 0; i < l.n; i++)
		CHECK(!l.v[i].vagrant);
	box_list_free(&l);

	struct box_ref r;
	struct diag d = {0};
	struct machine_cfg mc = {.name = "a", .box = "old/layout"};
	CHECK(boxstore_ensure(&mc, kvm, &r, &d) == 0);
	_cleanup_free_ char *old = disk(&r);
	CHECK_STR(old, "old layout");
	CHECK(r.vagrant);
	box_ref_free(&r);
	mc = (struct machine_cfg){.name = "b", .box = "new/layout", .box_version = "< 2.1"};
	CHECK(boxstore_ensure(&mc, kvm, &r, &d) == 0);
	_cleanup_free_ char *v20 = disk(&r);
	CHECK_STR(v20, "new 2.0");
	box_ref_free(&r);
	/* corral's own store wins when it has the box */
	mc = (struct machine_cfg){.name = "c", .box = "test/cat"};
	CHECK(boxstore_ensure(&mc, kvm, &r, &d) == 0);
	CHECK(!r.vagrant);
	box_ref_free(&r);
}

int main(void)
{
	if (!mkdtemp(home))
		return 1;
	setenv("CORRAL_HOME", home, 1);
	_cleanup_free_ char *vh = path_join(home, "vagrant.d");
	setenv("VAGRANT_HOME", vh, 1);
	RUN(test_direct_box);
	RUN(test_catalog);
	RUN(test_no_box);
	RUN(test_vagrant_store);
	struct diag d;
	rm_rf(home, &d);
	return T_END();
}
