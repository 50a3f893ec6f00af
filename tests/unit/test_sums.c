/* Publishers' checksum files: GNU (text and binary markers), BSD tags
 * (Fedora's CHECKSUM), clearsigned wrappers, patterns, and what has no
 * entry; the short-name table's entries; fingerprints as people write them. */
#include <stdlib.h>

#include "core/box/distros.h"
#include "core/box/openpgp.h"
#include "core/box/sums.h"
#include "t.h"

#define H64A "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define H64B "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"
#define H128 "ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db2" \
	     "7ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff"

static const char *found(const char *text, const char *file)
{
	static char out[512];
	struct sums_entry e;
	struct diag d = {0};
	if (sums_find(text, strlen(text), file, &e, &d) < 0) {
		snprintf(out, sizeof(out), "error %d: %s", d.code == DIAG_SUMS_NO_ENTRY ? 1 : 0, d.msg);
		return out;
	}
	snprintf(out, sizeof(out), "%s %s %s", e.name, e.type, e.hex);
	sums_entry_free(&e);
	return out;
}

static void test_gnu(void)
{
	const char *ubuntu = H64A " *ubuntu-24.04-server-cloudimg-amd64.img\n"
			     H64B " *ubuntu-24.04-server-cloudimg-arm64.img\n";
	CHECK_STR(found(ubuntu, "ubuntu-24.04-server-cloudimg-arm64.img"),
		  "ubuntu-24.04-server-cloudimg-arm64.img sha256 " H64B);
	const char *debian = H128 "  debian-12-genericcloud-amd64.qcow2\r\n"
			     H128 "  debian-12-genericcloud-amd64.json\r\n";
	CHECK_STR(found(debian, "debian-12-genericcloud-amd64.qcow2"),
		  "debian-12-genericcloud-amd64.qcow2 sha512 " H128);
	CHECK_STR(found(H64A "  ./sub.img\n", "sub.img"), "sub.img sha256 " H64A);
	CHECK(strstr(found(ubuntu, "ubuntu-24.04-server-cloudimg-amd64.img.gz"), "error 1:"));
	CHECK(strstr(found(ubuntu, "cloudimg-amd64.img"), "error 1:")); /* whole names only */
	CHECK(strstr(found("", "x.img"), "error 1:"));
	/* not a digest of a known length, one space: no entry */
	CHECK(strstr(found("abcd  x.img\n" H64A " x.img\n", "x.img"), "error 1:"));
}

static void test_tags(void)
{
	const char *fedora =
		"-----BEGIN PGP SIGNED MESSAGE-----\n"
		"Hash: SHA256\n"
		"\n"
		"# Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2: 491716608 bytes\n"
		"SHA256 (Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2) = " H64A "\n"
		"# Fedora-Cloud-Base-Generic-41-1.4.x86_64.raw.xz: 1 bytes\n"
		"SHA256 (Fedora-Cloud-Base-Generic-41-1.4.x86_64.raw.xz) = " H64B "\n"
		"-----BEGIN PGP SIGNATURE-----\n"
		"\n"
		"iHUEARYKAB0WIQQ=\n"
		"-----END PGP SIGNATURE-----\n";
	CHECK(sums_clearsigned(fedora, strlen(fedora)));
	CHECK(!sums_clearsigned(H64A "  x\n", 67));
	CHECK_STR(found(fedora, "Fedora-Cloud-Base-Generic-41-1.4.x86_64.raw.xz"),
		  "Fedora-Cloud-Base-Generic-41-1.4.x86_64.raw.xz sha256 " H64B);
	CHECK_STR(found(fedora, "Fedora-Cloud-Base-Generic-41-*.x86_64.qcow2"),
		  "Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2 sha256 " H64A);
	CHECK_STR(found("SHA512 (a.qcow2) = " H128 "\n", "a.qcow2"), "a.qcow2 sha512 " H128);
	/* a tag whose digest length is not its type's is no entry */
	CHECK(strstr(found("SHA512 (a.qcow2) = " H64A "\n", "a.qcow2"), "error 1:"));
	/* lines after the signature are not signed: ignored */
	char *tail = NULL;
	if (asprintf(&tail, "%s%s", fedora, "SHA256 (evil.qcow2) = " H64A "\n") > 0)
		CHECK(strstr(found(tail, "evil.qcow2"), "error 1:"));
	free(tail);
}

static void test_patterns_and_conflicts(void)
{
	const char *two = "SHA256 (img-1.2.qcow2) = " H64A "\nSHA256 (img-1.10.qcow2) = " H64B
			  "\nSHA256 (img-1.3.qcow2) = " H64A "\n";
	CHECK_STR(found(two, "img-1.*.qcow2"), "img-1.3.qcow2 sha256 " H64A); /* the greatest name */
	const char *clash = H64A "  x.img\n" H64B "  x.img\n";
	CHECK(strstr(found(clash, "x.img"), "two different sha256 digests") != NULL);
	CHECK_STR(found(H64A "  x.img\n" H64A "  x.img\n", "x.img"), "x.img sha256 " H64A);
	const char *dashed = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n"
			     "- " H64A "  x.img\n-----BEGIN PGP SIGNATURE-----\n";
	CHECK_STR(found(dashed, "x.img"), "x.img sha256 " H64A);
}

static void test_fingerprints(void)
{
	char f[PGP_FPR_LEN + 1];
	CHECK(pgp_fpr_normal("D2EB 4462 6FDD C30B 513D  5BB7 1A5D 6C4C 7DB8 7C81", f));
	CHECK_STR(f, "D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C81");
	CHECK(pgp_fpr_normal("d2eb44626fddc30b513d5bb71a5d6c4c7db87c81", f));
	CHECK(!pgp_fpr_normal("1A5D6C4C7DB87C81", f));
	CHECK(!pgp_fpr_normal("D2EB44626FDDC30B513D5BB71A5D6C4C7DB87C8G", f));
}

static void test_table(void)
{
	setenv("CORRAL_DATA_DIR", "data", 1);
	setenv("CORRAL_IMAGE_MIRROR", "https://127.0.0.1:1/m/", 1);
	struct distro x;
	struct diag d = {0};
	bool ok;
	CHECK(distro_find("fedora/41", "arm64", &x, &ok, &d) == 0 && ok);
	CHECK_STR(x.sums_url, "https://127.0.0.1:1/m/download.fedoraproject.org/pub/fedora/linux/"
			      "releases/41/Cloud/aarch64/images/Fedora-Cloud-41-1.4-aarch64-CHECKSUM");
	CHECK_STR(x.image, "Fedora-Cloud-Base-Generic-41-1.4.aarch64.qcow2");
	CHECK(x.signature_url == NULL && x.keys.n == 1);
	distro_free(&x);
	CHECK(distro_find("archlinux", "arm64", &x, &ok, &d) < 0 && ok);
	CHECK(distro_find("hashicorp/bionic64", "amd64", &x, &ok, &d) == 0 && !ok);
	struct distro_list l;
	CHECK(distros_list("ubuntu", &l, &d) == 0 && l.n == 4);
	for (size_t i = 0; i < l.n; i++)
		CHECK(l.v[i].keys.n == 1 && l.v[i].signature_url);
	distro_list_free(&l);
	unsetenv("CORRAL_IMAGE_MIRROR");
}

int main(void)
{
	RUN(test_gnu);
	RUN(test_tags);
	RUN(test_patterns_and_conflicts);
	RUN(test_fingerprints);
	RUN(test_table);
	return T_END();
}
