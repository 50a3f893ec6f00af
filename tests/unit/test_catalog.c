/* Catalog parsing and the version/provider/architecture choice. */
#include <stdlib.h>

#include "core/box/catalog.h"
#include "core/base/util.h"
#include "t.h"

static struct catalog cat;

static int load(const char *path, struct catalog *c, struct diag *d)
{
	char *data;
	size_t len;
	if (read_file(path, 1 << 20, &data, &len, d) < 0)
		return -1;
	int r = catalog_parse(data, len, path, c, d);
	free(data);
	return r;
}

/* The URL of the entry picked, or the error text. */
static char result[2048];
static const char *pick(const char *constraint, const char *const *providers, const char *arch)
{
	struct catalog_pick p;
	struct diag d = {0};
	if (catalog_pick(&cat, constraint, providers, arch, &p, &d) < 0)
		snprintf(result, sizeof(result), "error: %s", d.msg);
	else
		snprintf(result, sizeof(result), "%s %s", p.provider->url, p.arch);
	return result;
}

static const char *const kvm[] = {"kvm", "libvirt", "qemu", NULL};
static const char *const libvirt[] = {"libvirt", NULL};
static const char *const container[] = {"container", NULL};
static const char *const vbox[] = {"virtualbox", NULL};

static void test_parse(void)
{
	struct diag d = {0};
	CHECK(load("tests/fixtures/boxes/catalog-multi.json", &cat, &d) == 0);
	CHECK_STR(cat.name, "corral/multi");
	CHECK(cat.nv == 4);
	if (cat.nv == 4) { /* newest first, numerically */
		CHECK_STR(cat.v[0].version, "2.0.0");
		CHECK_STR(cat.v[1].version, "1.10.0");
		CHECK_STR(cat.v[2].version, "1.2.0");
		CHECK_STR(cat.v[3].version, "1.0.0");
		CHECK_STR(cat.v[2].p[0].checksum_type, "sha256");
		CHECK(cat.v[3].p[1].arch == NULL);
	}
}

static void test_newest_fitting(void)
{
	CHECK_STR(pick(NULL, kvm, "amd64"), "multi-2.0.0-kvm-amd64.box amd64");
	CHECK_STR(pick("< 2", kvm, "amd64"), "multi-1.2.0-libvirt-amd64.box amd64");
	CHECK_STR(pick("~> 1.0.0", kvm, "amd64"), "multi-1.0.0-libvirt-amd64.box amd64");
	CHECK_STR(pick("~> 1.2", libvirt, "arm64"), "multi-1.10.0-libvirt-arm64.box arm64");
	CHECK_STR(pick("= 1.2", vbox, "amd64"), "error: no version of corral/multi fits: "
		  "version \"= 1.2\", provider virtualbox, architecture amd64; the catalog offers: "
		  "2.0.0 (kvm/unknown, kvm/amd64); 1.10.0 (libvirt/arm64, virtualbox/amd64); "
		  "1.2.0 (libvirt/amd64, qemu/unknown, container/arm64); "
		  "1.0.0 (libvirt/amd64, container/any)");
}

static void test_provider_order(void)
{
	/* the first provider of the list that the version has wins */
	static const char *const qemu_first[] = {"qemu", "libvirt", NULL};
	CHECK_STR(pick("1.2.0", qemu_first, "unknown"), "multi-1.2.0-qemu-unknown.box unknown");
	CHECK_STR(pick("1.2.0", qemu_first, "amd64"), "multi-1.2.0-libvirt-amd64.box amd64");
	CHECK_STR(pick("1.2.0", kvm, "amd64"), "multi-1.2.0-libvirt-amd64.box amd64");
	CHECK_STR(pick("1.2.0", NULL, "arm64"), "multi-1.2.0-container-arm64.box arm64");
}

static void test_architecture(void)
{
	/* exact architecture beats "unknown" in one version */
	static const char *const kvm_only[] = {"kvm", NULL};
	CHECK_STR(pick(NULL, kvm_only, "amd64"), "multi-2.0.0-kvm-amd64.box amd64");
	CHECK_STR(pick(NULL, kvm_only, "unknown"), "multi-2.0.0-kvm-unknown.box unknown");
	/* an entry without an architecture fits any, stored under the one asked for */
	CHECK_STR(pick(NULL, container, "riscv64"), "multi-1.0.0-container.box riscv64");
	CHECK_STR(pick(NULL, container, "arm64"), "multi-1.2.0-container-arm64.box arm64");
	/* no arch given: the host's, then "unknown" */
	const char *h = host_arch();
	CHECK(h && *h);
	static const char *const qemu[] = {"qemu", NULL};
	if (strcmp(h, "arm64") != 0)
		CHECK_STR(pick(NULL, qemu, NULL), "multi-1.2.0-qemu-unknown.box unknown");
	CHECK(strstr(pick("> 5", kvm, NULL), "architecture ") != NULL);
	CHECK(strstr(result, "|unknown; the catalog offers") != NULL);
}

static void expect_bad(const char *json, const char *want)
{
	struct catalog c;
	struct diag d = {0};
	CHECK(catalog_parse(json, strlen(json), "cat.json", &c, &d) == -1);
	if (!strstr(d.msg, want))
		printf("#   wanted \"%s\" in \"%s\"\n", want, d.msg);
	CHECK(strstr(d.msg, want) != NULL);
	CHECK(strstr(d.hint, "versions") != NULL);
}

static void test_errors(void)
{
	expect_bad("{\"name\": \"a/b\", ", "not valid JSON");
	expect_bad("[]", "not a JSON object");
	expect_bad("{\"versions\": []}", "\"name\" must be a non-empty string");
	expect_bad("{\"name\": \"a/b\"}", "\"versions\" must be a list");
	expect_bad("{\"name\": \"a/b\", \"versions\": [{\"version\": \"v1\"}]}",
		   "versions[0]: \"v1\" is not a version");
	expect_bad("{\"name\": \"a/b\", \"versions\": [{\"version\": \"1\", \"providers\": "
		   "[{\"name\": \"kvm\", \"url\": \"u\"}, {\"name\": \"kvm\"}]}]}",
		   "versions[0].providers[1]: \"url\" must be a non-empty string");
	expect_bad("{\"name\": \"a/b\", \"versions\": [{\"version\": \"1\", \"providers\": "
		   "[{\"name\": \"kvm\", \"url\": \"u\", \"architecture\": 5}]}]}",
		   "\"architecture\" must be a non-empty string");
	struct diag d = {0};
	CHECK(catalog_pick(&cat, ">> 1", kvm, "amd64", &(struct catalog_pick){0}, &d) == -1);
	CHECK(strstr(d.msg, "invalid version constraint") != NULL);
}

static void test_empty(void)
{
	struct catalog c;
	struct diag d = {0};
	const char *j = "{\"name\": \"a/b\", \"versions\": []}";
	CHECK(catalog_parse(j, strlen(j), "x", &c, &d) == 0);
	struct catalog_pick p;
	CHECK(catalog_pick(&c, NULL, NULL, "amd64", &p, &d) == -1);
	CHECK(strstr(d.msg, "offers: no versions") != NULL);
	catalog_free(&c);
}

int main(void)
{
	RUN(test_parse);
	RUN(test_newest_fitting);
	RUN(test_provider_order);
	RUN(test_architecture);
	RUN(test_errors);
	RUN(test_empty);
	catalog_free(&cat);
	return T_END();
}
