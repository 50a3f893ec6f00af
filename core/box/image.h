/* Distribution cloud images as boxes: a qcow2 or raw disk image (the
 * decompressor in unpack.c has already taken off any .xz/.gz/.zst) is not a
 * Vagrant box, so it is stored as one: box.img, written sparse as it
 * streams in, beside a generated metadata.json that says what it is
 * (provider kvm, format qcow2|raw, architecture, cloud_init, source).
 * What a stream is, is told by its first bytes, never by its name. */
#ifndef CORRAL_BOX_IMAGE_H
#define CORRAL_BOX_IMAGE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/base/diag.h"

/* Bytes enough to tell what a stream is (a tar header, a partition table). */
#define IMAGE_SNIFF 4096

enum image_kind { IMAGE_NONE, IMAGE_QCOW2, IMAGE_RAW };

/* The kind of the stream that starts with buf[0..n): a tar archive is
 * IMAGE_NONE; qcow2 by its magic; raw by an MBR's boot signature or a GPT
 * header. */
enum image_kind image_sniff(const void *buf, size_t n);
/* "qcow2" | "raw" (metadata.json's "format"). */
const char *image_format(enum image_kind k);

/* Pulls the image's bytes after head[0..nhead): > 0 bytes at *buf, 0 at
 * the end, -1 when the input failed. */
typedef ssize_t (*image_read_fn)(void *ctx, const void **buf);

struct image_out {
	char sha256[65]; /* of every byte, holes included */
	uint64_t size;
};

/* Writes the image to `path` (created, never replaced, 0644), skipping
 * zero runs so the file stays sparse. A full file system fails with
 * room_full's message; the caller removes what was written. */
int image_write(const char *path, const void *head, size_t nhead, image_read_fn read, void *ctx,
		struct image_out *out, struct diag *d);

/* A written image that is whole: for qcow2, `qemu-img check` (when the
 * host has qemu-img) fails on one cut short. */
int image_check(const char *path, enum image_kind k, struct diag *d);

/* metadata.json's text for an image box. source may be NULL. */
char *image_metadata(enum image_kind k, const char *source);

#endif
