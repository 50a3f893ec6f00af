/* Cloud images as boxes: what the first bytes say a stream is, and images
 * plain, compressed (gzip, xz, zstd) or in Debian's tar of disk.raw
 * unpacked into box.img (sparse, byte for byte) with a generated
 * metadata.json; a qcow2 cut short is refused. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/box/image.h"
#include "core/box/unpack.h"
#include "core/base/util.h"
#include "core/host/proc.h"
#include "tests/unit/t.h"

#define DISK (4u << 20)
static char tmp[64];

static void test_sniff(void)
{
	static unsigned char b[IMAGE_SNIFF];
	memset(b, 0, sizeof(b));
	CHECK(image_sniff(b, sizeof(b)) == IMAGE_NONE);
	memcpy(b, "QFI\xfb", 4);
	CHECK(image_sniff(b, sizeof(b)) == IMAGE_QCOW2);
	CHECK(image_sniff(b, 3) == IMAGE_NONE);
	memset(b, 0, sizeof(b));
	b[510] = 0x55, b[511] = 0xaa;
	CHECK(image_sniff(b, sizeof(b)) == IMAGE_RAW);
	CHECK(image_sniff(b, 511) == IMAGE_NONE);
	memset(b, 0, sizeof(b));
	memcpy(b + 512, "EFI PART", 8);
	CHECK(image_sniff(b, sizeof(b)) == IMAGE_RAW);
	memcpy(b + 257, "ustar", 5); /* a tar archive whatever else it holds */
	b[510] = 0x55, b[511] = 0xaa;
	CHECK(image_sniff(b, sizeof(b)) == IMAGE_NONE);
	CHECK_STR(image_format(IMAGE_QCOW2), "qcow2");
	CHECK_STR(image_format(IMAGE_RAW), "raw");
}

/* A raw disk: boot signature, data at the start and 3 MiB in, zeros else. */
static char *disk_bytes(void)
{
	char *p = xcalloc(1, DISK);
	memcpy(p, "corral-mbr", 10);
	p[510] = 0x55, p[511] = (char)0xaa;
	memcpy(p + (3u << 20), "far-data", 8);
	return p;
}

/* The disk through libarchive's raw writer: plain (filter 0) or compressed;
 * in_tar: inside a tar as disk.raw. */
static char *write_disk(int filter, bool in_tar)
{
	char *file = xasprintf("%s/in-%d-%d", tmp, filter, in_tar);
	_cleanup_free_ char *p = disk_bytes();
	struct archive *a = archive_write_new();
	if (in_tar)
		archive_write_set_format_pax_restricted(a);
	else
		archive_write_set_format_raw(a);
	if (filter)
		archive_write_add_filter(a, filter);
	archive_write_open_filename(a, file);
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, "disk.raw");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, DISK);
	archive_write_header(a, e);
	archive_write_data(a, p, DISK);
	archive_entry_free(e);
	archive_write_free(a);
	return file;
}

static char *fresh_out(void)
{
	char *out = xasprintf("%s/out", tmp);
	struct diag ignore;
	rm_rf(out, &ignore);
	mkdir(out, 0755);
	return out;
}

static void check_box(const char *out, const char *format)
{
	_cleanup_free_ char *img = path_join(out, "box.img"), *meta = path_join(out, "metadata.json");
	_cleanup_free_ char *want = disk_bytes();
	char *got = NULL, *m = NULL;
	size_t n = 0, mn = 0;
	struct diag d;
	struct stat st;
	CHECK(read_file(img, DISK + 1, &got, &n, &d) == 0);
	CHECK(n == DISK && got && memcmp(got, want, DISK) == 0);
	CHECK(stat(img, &st) == 0 && st.st_blocks * 512 < 64 * 1024); /* holes stay holes */
	CHECK(read_file(meta, 4096, &m, &mn, &d) == 0);
	json_t *j = m ? json_loads(m, 0, NULL) : NULL;
	CHECK_STR(json_string_value(json_object_get(j, "provider")), "kvm");
	CHECK_STR(json_string_value(json_object_get(j, "format")), format);
	CHECK_STR(json_string_value(json_object_get(j, "source")), "test-source");
	CHECK(json_is_true(json_object_get(j, "cloud_init")));
	struct diag_list problems = {0};
	CHECK(unpack_verify(out, &problems, &d) == 0 && problems.n == 0);
	diag_list_free(&problems);
	json_decref(j);
	free(got);
	free(m);
}

static void test_raw_forms(void)
{
	static const int filters[] = {0, ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_XZ, ARCHIVE_FILTER_ZSTD};
	struct unpack_opts o = {.source = "test-source"};
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++)
		for (int tar = 0; tar < 2; tar++) {
			_cleanup_free_ char *in = write_disk(filters[i], tar);
			_cleanup_free_ char *out = fresh_out();
			struct diag d;
			int rc = unpack_file(in, out, &o, NULL, &d);
			if (rc < 0)
				printf("# filter %d tar %d: %s\n", filters[i], tar, d.msg);
			CHECK(rc == 0);
			check_box(out, "raw");
		}
}

static void test_qcow2(void)
{
	if (!proc_have("qemu-img")) {
		printf("# skipped: no qemu-img\n");
		return;
	}
	_cleanup_free_ char *img = xasprintf("%s/q.qcow2", tmp), *cut = xasprintf("%s/cut", tmp);
	const char *create[] = {"qemu-img", "create", "-q", "-f", "qcow2", img, "8M", NULL};
	const char *io[] = {"qemu-io", "-c", "write -P 7 0 256k", img, NULL};
	struct diag d;
	CHECK(proc_run(create, NULL, &d) == 0);
	if (proc_have("qemu-io"))
		CHECK(proc_run(io, NULL, &d) == 0);
	struct unpack_opts o = {.source = "test-source"};
	_cleanup_free_ char *out = fresh_out();
	CHECK(unpack_file(img, out, &o, NULL, &d) == 0);
	_cleanup_free_ char *meta = path_join(out, "metadata.json"), *m = NULL;
	CHECK(read_file(meta, 4096, &m, NULL, &d) == 0 && m && strstr(m, "\"qcow2\""));
	/* cut short: the header still reads, the tables point past the end */
	char *data;
	size_t n;
	CHECK(read_file(img, 16 << 20, &data, &n, &d) == 0 && n > 65536 * 2);
	CHECK(write_file_atomic(cut, data, n - 65536, 0644, &d) == 0);
	free(data);
	free(out);
	out = fresh_out();
	CHECK(unpack_file(cut, out, &o, NULL, &d) < 0 && strstr(d.msg, "damaged or truncated"));
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/corral-image.XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	RUN(test_sniff);
	RUN(test_raw_forms);
	RUN(test_qcow2);
	struct diag d;
	rm_rf(tmp, &d);
	return T_END();
}
