/* Safe extraction of a box archive — tar, plain or compressed with gzip, xz,
 * bzip2 or zstd — streamed from a read callback into an empty directory,
 * with a per-file manifest (BOXFETCH_MANIFEST) recording what was written.
 *
 * Refused, with the entry named: absolute paths, `..` components, entries
 * under a symlink, symlinks whose target leaves the directory, hard links to
 * anything but a regular file extracted earlier, duplicates, device nodes,
 * FIFOs and sockets (a container's /dev comes from the runtime, never from a
 * box), and truncated or damaged archives. One exception, for container root
 * file systems: a symlink under rootfs/ may have an absolute target, which
 * the container resolves inside its own root; nothing is ever written
 * through a symlink, so extraction cannot reach the host through it.
 *
 * Modes (setuid included), times, xattrs and ACLs are kept; numeric
 * ownership too when running as root. */
#ifndef CORRAL_UNPACK_H
#define CORRAL_UNPACK_H
#include <sys/types.h>

#include "core/base/diag.h"

/* Like libarchive's read callback: > 0 bytes at *buf (valid until the next
 * call), 0 at the end, -1 when the input failed (the caller knows why). */
typedef ssize_t (*unpack_read_fn)(void *ctx, const void **buf);

/* dest_dir must exist and be empty. Decompression and extraction run on two
 * threads. On failure dest_dir may hold part of the archive: the caller
 * removes it. */
int unpack_stream(unpack_read_fn read, void *ctx, const char *dest_dir, struct diag *d);
int unpack_file(const char *archive, const char *dest_dir, struct diag *d);

/* Compares dir with its manifest; each difference goes to *problems. */
int unpack_verify(const char *dir, struct diag_list *problems, struct diag *d);

#endif
