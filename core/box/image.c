/* Cloud images into the box store: telling an image from a box archive by
 * its first bytes, writing it sparse, and the metadata.json a Vagrant box
 * would carry. unpack.c streams the decompressed bytes through here. */
#include "core/box/image.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/base/util.h"
#include "core/box/catalog.h"
#include "core/box/guard.h"
#include "core/host/proc.h"

#define SPARSE_BLOCK 4096u

static bool at(const unsigned char *b, size_t n, size_t off, const char *magic, size_t len)
{
	return n >= off + len && memcmp(b + off, magic, len) == 0;
}

enum image_kind image_sniff(const void *buf, size_t n)
{
	const unsigned char *b = buf;
	if (at(b, n, 257, "ustar", 5))
		return IMAGE_NONE; /* a box: tar, POSIX or GNU */
	if (at(b, n, 0, "QFI\xfb", 4))
		return IMAGE_QCOW2;
	if (at(b, n, 512, "EFI PART", 8) || at(b, n, 510, "\x55\xaa", 2))
		return IMAGE_RAW;
	return IMAGE_NONE;
}

const char *image_format(enum image_kind k)
{
	return k == IMAGE_QCOW2 ? "qcow2" : "raw";
}

static bool all_zero(const unsigned char *p, size_t n)
{
	return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

struct sink {
	int fd;
	uint64_t at, written;
	struct hash *h;
};

/* Writes n bytes at the sink's offset, leaving zero blocks as holes. */
static int put(struct sink *s, const unsigned char *p, size_t n, struct diag *d)
{
	hash_update(s->h, p, n);
	while (n) {
		size_t piece = SPARSE_BLOCK - (size_t)(s->at % SPARSE_BLOCK);
		piece = piece < n ? piece : n;
		if (!all_zero(p, piece)) {
			ssize_t w = pwrite(s->fd, p, piece, (off_t)s->at);
			if (w != (ssize_t)piece) {
				int e = w < 0 ? errno : ENOSPC;
				if (room_errno(e))
					return room_full(".", s->written + piece, room_free(".") + s->written, d);
				errno = e;
				return diag_errno(d, "write the image");
			}
			s->written += piece;
		}
		s->at += piece, p += piece, n -= piece;
	}
	return 0;
}

int image_write(const char *path, const void *head, size_t nhead, image_read_fn read, void *ctx,
		struct image_out *out, struct diag *d)
{
	struct sink s = {.h = hash_new("sha256")};
	s.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (s.fd < 0) {
		hash_free(s.h);
		return diag_errno(d, "create %s", path);
	}
	int rc = put(&s, head, nhead, d);
	for (;;) {
		const void *buf;
		ssize_t n = rc < 0 ? 0 : read(ctx, &buf);
		if (n < 0)
			rc = diag_fail(d, "the image's input stopped");
		if (n <= 0)
			break;
		rc = put(&s, buf, (size_t)n, d);
	}
	if (rc == 0 && ftruncate(s.fd, (off_t)s.at) < 0)
		rc = room_errno(errno) ? room_full(".", s.at, room_free("."), d)
				       : diag_errno(d, "size %s", path);
	if (close(s.fd) < 0 && rc == 0)
		rc = diag_errno(d, "close %s", path);
	hash_final(s.h, NULL, out->sha256);
	out->size = s.at;
	return rc;
}

/* A qcow2 cut short still has a header that reads: qemu-img check finds
 * the clusters its tables point past the end. Raw images carry nothing to
 * check them by but the publisher's checksum. */
int image_check(const char *path, enum image_kind k, struct diag *d)
{
	if (k != IMAGE_QCOW2 || !proc_have("qemu-img"))
		return 0;
	const char *argv[] = {"qemu-img", "check", "-q", "-f", "qcow2", path, NULL};
	struct proc_cmd c = {.argv = argv};
	int rc = proc_cmd_run(&c, d) < 0 ? -1 : proc_cmd_check(&c, d);
	proc_cmd_free(&c);
	return rc < 0 ? diag_wrap(d, "the qcow2 image is damaged or truncated") : 0;
}

char *image_metadata(enum image_kind k, const char *source)
{
	json_t *m = json_pack("{s:s, s:s, s:s, s:b, s:s?}", "provider", "kvm", "format",
			      image_format(k), "architecture", host_arch(), "cloud_init", 1,
			      "source", source);
	char *s = json_dumps(m, JSON_SORT_KEYS);
	json_decref(m);
	return s;
}
