/* Safe extraction: archives are written here with libarchive, unpacked with
 * core/box/unpack, and the tree and manifest checked; hostile ones must leave
 * nothing outside the destination. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/box/fetch.h"
#include "core/box/unpack.h"
#include "core/base/util.h"
#include "tests/unit/t.h"

static char tmp[64];
static const struct unpack_opts opts = {.private_store = true};

struct ent {
	const char *path;
	mode_t type; /* AE_IFREG, AE_IFDIR, AE_IFLNK, AE_IFCHR; 0: hard link */
	mode_t perm;
	const char *data; /* file content, or the link target */
};

static void write_archive(const char *file, int filter, const struct ent *v, size_t n)
{
	struct archive *a = archive_write_new();
	archive_write_set_format_pax_restricted(a);
	if (filter)
		archive_write_add_filter(a, filter);
	archive_write_open_filename(a, file);
	for (size_t i = 0; i < n; i++) {
		struct archive_entry *e = archive_entry_new();
		archive_entry_set_pathname(e, v[i].path);
		archive_entry_set_filetype(e, v[i].type ? v[i].type : AE_IFREG);
		archive_entry_set_perm(e, v[i].perm);
		if (v[i].type == AE_IFLNK)
			archive_entry_set_symlink(e, v[i].data);
		else if (!v[i].type)
			archive_entry_set_hardlink(e, v[i].data);
		else if (v[i].type == AE_IFREG)
			archive_entry_set_size(e, (la_int64_t)strlen(v[i].data));
		archive_write_header(a, e);
		if (v[i].type == AE_IFREG)
			archive_write_data(a, v[i].data, strlen(v[i].data));
		archive_entry_free(e);
	}
	archive_write_free(a);
}

/* Unpacks into a fresh tmp/out; returns unpack_file's result and its message. */
static int unpack_entries(const struct ent *v, size_t n, int filter, struct diag *d)
{
	_cleanup_free_ char *file = xasprintf("%s/box.tar", tmp);
	_cleanup_free_ char *out = xasprintf("%s/out", tmp);
	struct diag ignore;
	rm_rf(out, &ignore);
	mkdir(out, 0755);
	write_archive(file, filter, v, n);
	return unpack_file(file, out, &opts, NULL, d);
}

static bool exists_in(const char *rel)
{
	_cleanup_free_ char *p = xasprintf("%s/%s", tmp, rel);
	return path_exists(p);
}

static const struct ent good[] = {
	{"./", AE_IFDIR, 0755, NULL},
	{"./metadata.json", AE_IFREG, 0644, "{\"provider\":\"container\"}"},
	{"./rootfs/usr/bin/sudo", AE_IFREG, 04755, "#!/bin/sh\n"},
	{"./rootfs/etc", AE_IFDIR, 0700, NULL},
	{"./rootfs/etc/localtime", AE_IFLNK, 0777, "/usr/share/zoneinfo/UTC"},
	{"./rootfs/bin", AE_IFLNK, 0777, "usr/bin"},
	{"./rootfs/usr/bin/sudoedit", 0, 0, "rootfs/usr/bin/sudo"},
};

static void test_good_archive(void)
{
	static const int filters[] = {ARCHIVE_FILTER_NONE, ARCHIVE_FILTER_GZIP, ARCHIVE_FILTER_XZ,
				      ARCHIVE_FILTER_BZIP2, ARCHIVE_FILTER_ZSTD};
	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		struct diag d = {0};
		int rc = unpack_entries(good, sizeof(good) / sizeof(good[0]), filters[i], &d);
		if (rc < 0)
			printf("#   filter %d: %s\n", filters[i], d.msg);
		CHECK(rc == 0);
	}
	struct stat st;
	_cleanup_free_ char *sudo = xasprintf("%s/out/rootfs/usr/bin/sudo", tmp);
	_cleanup_free_ char *edit = xasprintf("%s/out/rootfs/usr/bin/sudoedit", tmp);
	_cleanup_free_ char *etc = xasprintf("%s/out/rootfs/etc", tmp);
	CHECK(stat(sudo, &st) == 0 && (st.st_mode & 07777) == 04755);
	struct stat st2;
	CHECK(stat(edit, &st2) == 0 && st2.st_ino == st.st_ino);
	CHECK(stat(etc, &st) == 0 && (st.st_mode & 07777) == 0700);
	CHECK(exists_in("out/" BOXFETCH_MANIFEST));
}

static void test_verify(void)
{
	struct diag d = {0};
	struct diag_list problems = {0};
	CHECK(unpack_entries(good, sizeof(good) / sizeof(good[0]), ARCHIVE_FILTER_GZIP, &d) == 0);
	_cleanup_free_ char *out = xasprintf("%s/out", tmp);
	CHECK(unpack_verify(out, &problems, &d) == 0);
	CHECK(problems.n == 0);
	_cleanup_free_ char *meta = xasprintf("%s/metadata.json", out);
	_cleanup_free_ char *extra = xasprintf("%s/rootfs/extra", out);
	_cleanup_free_ char *sudo = xasprintf("%s/rootfs/usr/bin/sudo", out);
	CHECK(write_file_atomic(meta, "{}", 2, 0644, &d) == 0);
	CHECK(write_file_atomic(extra, "x", 1, 0644, &d) == 0);
	CHECK(chmod(sudo, 0755) == 0);
	CHECK(unpack_verify(out, &problems, &d) == 0);
	CHECK(problems.n == 4); /* sudoedit is a hard link to sudo */
	for (size_t i = 0; i < problems.n; i++)
		printf("#   problem: %s\n", problems.v[i].msg);
	CHECK(problems.n > 0 && strstr(problems.v[0].msg, "metadata.json: content changed"));
	diag_list_free(&problems);
}

/* Each hostile archive: refused with the given text; nothing lands outside. */
static void refused(const struct ent *v, size_t n, const char *want)
{
	struct diag d = {0};
	int rc = unpack_entries(v, n, ARCHIVE_FILTER_GZIP, &d);
	CHECK(rc < 0);
	if (!strstr(d.msg, want)) {
		printf("#   wanted \"%s\" in: %s\n", want, d.msg);
		t_case_failed = 1;
	}
	CHECK(!exists_in("x") && !exists_in("escaped"));
}

static void test_hostile(void)
{
	refused((struct ent[]){{"../x", AE_IFREG, 0644, "x"}}, 1, "`..` component");
	_cleanup_free_ char *abs = xasprintf("%s/x", tmp);
	refused((struct ent[]){{abs, AE_IFREG, 0644, "x"}}, 1, "absolute path");
	refused((struct ent[]){{"l", AE_IFLNK, 0777, "../escaped"}}, 1, "symlink target leaves");
	refused((struct ent[]){{"l", AE_IFLNK, 0777, "/etc"}}, 1, "symlink target leaves");
	refused((struct ent[]){{"l", AE_IFLNK, 0777, ".."}, {"l/x", AE_IFREG, 0644, "x"}}, 2,
		"symlink target leaves");
	refused((struct ent[]){{"rootfs/l", AE_IFLNK, 0777, "/"}, {"rootfs/l/x", AE_IFREG, 0644, "x"}},
		2, "written through `rootfs/l`");
	refused((struct ent[]){{"h", 0, 0, "../x"}}, 1, "hard link");
	refused((struct ent[]){{"h", 0, 0, "missing"}}, 1, "hard link");
	refused((struct ent[]){{"dev/null", AE_IFCHR, 0666, NULL}}, 1, "device node");
	refused((struct ent[]){{"p", AE_IFIFO, 0666, NULL}}, 1, "FIFO");
	refused((struct ent[]){{"a", AE_IFREG, 0644, "1"}, {"a", AE_IFREG, 0644, "2"}}, 2, "duplicate");
	refused((struct ent[]){{BOXFETCH_MANIFEST, AE_IFREG, 0644, "{}"}}, 1, "reserved");
}

static mode_t perm_of(const char *rel)
{
	struct stat st;
	_cleanup_free_ char *p = xasprintf("%s/out/%s", tmp, rel);
	return lstat(p, &st) == 0 ? st.st_mode & 07777 : (mode_t)-1;
}

/* Setuid survives only in a container's root tree, whichever comes first:
 * metadata.json or the tree; a hard link follows its target. */
static void test_privileges(void)
{
	static const struct ent last[] = {
		{"rootfs/usr/bin/sudo", AE_IFREG, 04755, "#!/bin/sh\n"},
		{"rootfs/usr/bin/sudoedit", 0, 0, "rootfs/usr/bin/sudo"},
		{"rootfs/var/mail", AE_IFDIR, 02775, NULL},
		{"metadata.json", AE_IFREG, 0644, "{\"provider\":\"container\"}"},
	};
	static const struct ent kvm[] = {
		{"metadata.json", AE_IFREG, 0644, "{\"provider\":\"kvm\"}"},
		{"rootfs/usr/bin/sudo", AE_IFREG, 04755, "#!/bin/sh\n"},
		{"helper", AE_IFREG, 06755, "#!/bin/sh\n"},
	};
	struct diag d = {0};
	CHECK(unpack_entries(last, sizeof(last) / sizeof(last[0]), ARCHIVE_FILTER_GZIP, &d) == 0);
	CHECK(perm_of("rootfs/usr/bin/sudo") == 04755 && perm_of("rootfs/usr/bin/sudoedit") == 04755);
	CHECK(perm_of("rootfs/var/mail") == 02775);
	_cleanup_free_ char *out = xasprintf("%s/out", tmp);
	struct diag_list problems = {0};
	CHECK(unpack_verify(out, &problems, &d) == 0 && problems.n == 0);
	diag_list_free(&problems);
	CHECK(unpack_entries(kvm, sizeof(kvm) / sizeof(kvm[0]), ARCHIVE_FILTER_GZIP, &d) == 0);
	CHECK(perm_of("rootfs/usr/bin/sudo") == 0755 && perm_of("helper") == 0755);
	CHECK(unpack_verify(out, &problems, &d) == 0 && problems.n == 0);
	diag_list_free(&problems);
}

/* Special files under a container's rootfs/dev/ are skipped; not in any
 * other box, nor anywhere else. */
static void test_dev(void)
{
	struct diag d = {0};
	static const struct ent ct[] = {
		{"rootfs/dev/null", AE_IFCHR, 0666, NULL},
		{"rootfs/dev/fd", AE_IFLNK, 0777, "/proc/self/fd"},
		{"metadata.json", AE_IFREG, 0644, "{\"provider\":\"container\"}"},
	};
	CHECK(unpack_entries(ct, sizeof(ct) / sizeof(ct[0]), ARCHIVE_FILTER_GZIP, &d) == 0);
	CHECK(!exists_in("out/rootfs/dev/null") && perm_of("rootfs/dev/fd") != (mode_t)-1);
	static const struct ent kvm[] = {
		{"rootfs/dev/null", AE_IFCHR, 0666, NULL},
		{"metadata.json", AE_IFREG, 0644, "{\"provider\":\"kvm\"}"},
	};
	CHECK(unpack_entries(kvm, 2, ARCHIVE_FILTER_GZIP, &d) < 0 && strstr(d.msg, "rootfs/dev/null"));
	static const struct ent kvm_first[] = {
		{"metadata.json", AE_IFREG, 0644, "{\"provider\":\"kvm\"}"},
		{"rootfs/dev/null", AE_IFCHR, 0666, NULL},
	};
	CHECK(unpack_entries(kvm_first, 2, ARCHIVE_FILTER_GZIP, &d) < 0 && strstr(d.msg, "device node"));
	static const struct ent elsewhere[] = {
		{"metadata.json", AE_IFREG, 0644, "{\"provider\":\"container\"}"},
		{"rootfs/etc/null", AE_IFCHR, 0666, NULL},
	};
	CHECK(unpack_entries(elsewhere, 2, ARCHIVE_FILTER_GZIP, &d) < 0 && strstr(d.msg, "device node"));
}

static void test_truncated(void)
{
	static char big[200000];
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (char)('a' + (i * 7919 % 26));
	struct ent v[] = {{"big", AE_IFREG, 0644, big}};
	struct diag d = {0};
	CHECK(unpack_entries(v, 1, ARCHIVE_FILTER_GZIP, &d) == 0);
	_cleanup_free_ char *file = xasprintf("%s/box.tar", tmp);
	_cleanup_free_ char *out = xasprintf("%s/out", tmp);
	struct stat st;
	CHECK(stat(file, &st) == 0 && truncate(file, st.st_size / 2) == 0);
	rm_rf(out, &d);
	mkdir(out, 0755);
	CHECK(unpack_file(file, out, &opts, NULL, &d) < 0);
	CHECK(strstr(d.msg, "truncated") != NULL);
	CHECK(write_file_atomic(file, "not an archive at all", 21, 0644, &d) == 0);
	rm_rf(out, &d);
	mkdir(out, 0755);
	CHECK(unpack_file(file, out, &opts, NULL, &d) < 0);
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/corral-unpack.XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	RUN(test_good_archive);
	RUN(test_verify);
	RUN(test_hostile);
	RUN(test_truncated);
	RUN(test_privileges);
	RUN(test_dev);
	struct diag d;
	rm_rf(tmp, &d);
	return T_END();
}
