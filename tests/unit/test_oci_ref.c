/* OCI image references: which `box:` values are images, how each form is
 * read (registry, repository, tag, digest; docker.io's short forms), and the
 * store names they become. */
#include "core/box/oci.h"
#include "core/box/store_priv.h"
#include "t.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void test_is(void)
{
	CHECK(oci_ref_is("oci://localhost:5000/a/b:1"));
	CHECK(oci_ref_is("debian:12"));
	CHECK(oci_ref_is("library/ubuntu:24.04"));
	CHECK(oci_ref_is("docker.io/library/debian"));
	CHECK(oci_ref_is("ghcr.io/o/n@sha256:" D64));
	CHECK(oci_ref_is("oci-archive:/tmp/x.tar"));
	CHECK(oci_ref_is("docker-archive:x.tar"));
	CHECK(oci_ref_is("oci:/tmp/layout:v1"));
	CHECK(!oci_ref_is("corral/debian-12")); /* a Vagrant box keeps its meaning */
	CHECK(!oci_ref_is("debian"));
	CHECK(!oci_ref_is("https://example.org/x:1"));
	CHECK(!oci_ref_is(NULL));
}

static void parses(const char *s, const char *reg, const char *repo, const char *tag,
		   const char *digest)
{
	struct oci_ref r;
	struct diag d = {0};
	CHECK(oci_ref_parse(s, &r, &d) == 0);
	CHECK_STR(r.registry, reg);
	CHECK_STR(r.repo, repo);
	CHECK(tag ? r.tag && strcmp(r.tag, tag) == 0 : !r.tag);
	CHECK(digest ? r.digest && strcmp(r.digest, digest) == 0 : !r.digest);
	oci_ref_free(&r);
}

static void test_parse(void)
{
	parses("debian:12", "docker.io", "library/debian", "12", NULL);
	parses("library/ubuntu:24.04", "docker.io", "library/ubuntu", "24.04", NULL);
	parses("docker.io/nginx", "docker.io", "library/nginx", "latest", NULL);
	parses("oci://localhost:5000/test/tiny:1", "localhost:5000", "test/tiny", "1", NULL);
	parses("oci://quay.io/org/app", "quay.io", "org/app", "latest", NULL);
	parses("oci://r.example/a/b/c@sha256:" D64, "r.example", "a/b/c", NULL, "sha256:" D64);
	parses("org/app:v1@sha256:" D64, "docker.io", "org/app", "v1", "sha256:" D64);
	parses("index.docker.io/library/debian:12", "docker.io", "library/debian", "12", NULL);
}

static void refused(const char *s)
{
	struct oci_ref r;
	struct diag d = {0};
	CHECK(oci_ref_parse(s, &r, &d) < 0);
	CHECK(d.msg[0] != '\0');
}

static void test_refused(void)
{
	refused("debian@sha256:12");
	refused("debian@md5:" D64);
	refused("Debian:12");       /* repositories are lower case */
	refused("a/../b:1");
	refused("a/.hidden:1");
	refused("debian:-bad");
	refused("oci://localhost:5000");
	refused("oci:");
}

static void test_store_name(void)
{
	struct oci_ref r;
	struct diag d = {0};
	CHECK(oci_ref_parse("oci://localhost:5000/test/tiny:1", &r, &d) == 0);
	char *n = oci_store_name(&r), *s = oci_ref_string(&r);
	CHECK_STR(n, "oci/localhost_5000/test/tiny/1");
	CHECK_STR(s, "localhost:5000/test/tiny:1");
	CHECK(box_name_valid(n));
	free(n);
	free(s);
	oci_ref_free(&r);
	CHECK(oci_ref_parse("debian@sha256:" D64, &r, &d) == 0);
	n = oci_store_name(&r);
	CHECK_STR(n, "oci/docker.io/library/debian/sha256-" D64);
	CHECK(box_name_valid(n));
	free(n);
	oci_ref_free(&r);
	CHECK(oci_ref_parse("oci-archive:/tmp/img.tar:v2", &r, &d) == 0);
	CHECK(r.kind == OCI_ARCHIVE);
	CHECK_STR(r.path, "/tmp/img.tar");
	CHECK_STR(r.tag, "v2");
	n = oci_store_name(&r);
	CHECK(box_name_valid(n));
	free(n);
	oci_ref_free(&r);
}

int main(void)
{
	RUN(test_is);
	RUN(test_parse);
	RUN(test_refused);
	RUN(test_store_name);
	return T_END();
}
