/* Safe extraction of a box archive — tar, plain or compressed with gzip, xz,
 * bzip2 or zstd — streamed from a read callback into an empty directory,
 * with a per-file manifest (BOXFETCH_MANIFEST) recording what was written.
 *
 * Refused, with the entry named: absolute paths, `..` components, entries
 * under a symlink, symlinks whose target leaves the directory, hard links to
 * anything but a regular file extracted earlier, duplicates, device nodes,
 * FIFOs and sockets, and truncated or damaged archives. Exceptions, for
 * container root file systems: a symlink under rootfs/ may have an absolute
 * target, which the container resolves inside its own root (nothing is ever
 * written through a symlink, so extraction cannot reach the host through
 * it); and special files under rootfs/dev/ of a container box are skipped
 * (the runtime mounts its own /dev), with one note saying how many.
 *
 * Refused before they cost disk or CPU: archives over the limits of
 * core/box/guard.h (expanded size with sparse holes, entry count,
 * compression ratio), and entries the file system has no room for; a write
 * that fails for lack of space fails the unpack.
 *
 * Modes, times, xattrs and ACLs are kept. Setuid and setgid bits and file
 * capabilities (the security.capability xattr) are kept only in a container
 * box's root tree (rootfs/ of a box whose metadata.json says "container")
 * and only when the caller says the store is private; numeric owners only
 * in a container root tree, when running as root. Every other file is
 * stripped of them and owned by the user unpacking. */
#ifndef CORRAL_UNPACK_H
#define CORRAL_UNPACK_H
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/base/diag.h"

/* Like libarchive's read callback: > 0 bytes at *buf (valid until the next
 * call), 0 at the end, -1 when the input failed (the caller knows why). */
typedef ssize_t (*unpack_read_fn)(void *ctx, const void **buf);

struct unpack_opts {
	/* The compressed archive's size once known (0 until then, or for good):
	 * set by the producer before it hands over the first byte. NULL: never. */
	_Atomic uint64_t *compressed;
	/* The destination is reachable only by root, so a container root tree
	 * may keep its setuid programs and file capabilities. */
	bool private_store;
	/* An OCI image layer (core/box/oci_layers.c): every entry lands under
	 * rootfs/ and is a container root tree's from the start; a hard link
	 * to a file this layer does not hold (one of a lower layer) is not
	 * written but listed in the manifest's "links" (path -> target) for
	 * the layers' assembly. Whiteouts (.wh.*) are kept as the files they are. */
	bool layer;
	/* Where the box came from, for the metadata.json of a cloud image. */
	const char *source;
};

struct unpack_stats {
	bool container;       /* metadata.json names the provider "container" */
	uint64_t stripped;    /* setuid/setgid/capabilities dropped from a container root tree (store not private) */
	uint64_t dev_skipped; /* special files skipped under rootfs/dev/ */
};

/* dest_dir must exist and be empty. Decompression and extraction run on two
 * threads. On failure dest_dir may hold part of the archive: the caller
 * removes it. o and st may be NULL. */
int unpack_stream(unpack_read_fn read, void *ctx, const char *dest_dir,
		  const struct unpack_opts *o, struct unpack_stats *st, struct diag *d);
int unpack_file(const char *archive, const char *dest_dir, const struct unpack_opts *o,
		struct unpack_stats *st, struct diag *d);

/* Compares dir with its manifest; each difference goes to *problems. */
int unpack_verify(const char *dir, struct diag_list *problems, struct diag *d);

#endif
