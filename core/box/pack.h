/* Writing a Vagrant-format .box: a tar archive (zstd, else gzip) whose first
 * entry is metadata.json, then the payload. Used by `corral package`
 * (each provider streams its machine in) and by the tests. The archive is
 * written where the caller says; the caller writes to a temporary name and
 * renames (cmd/package.c), so a failed pack never leaves a box behind. */
#ifndef CORRAL_BOXPACK_H
#define CORRAL_BOXPACK_H
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "core/base/diag.h"

struct boxpack;

/* Creates path (must not exist) and starts the archive. */
int boxpack_open(const char *path, struct boxpack **out, struct diag *d);

/* metadata.json, first: box_dir's own (NULL or missing: {}), with
 * "provider" set to provider and "architecture" to this host's when it
 * has none; every key in `drop` (NULL-ended, may be NULL) removed. */
int boxpack_metadata(struct boxpack *p, const char *box_dir, const char *provider,
		     const char *const *drop, struct diag *d);

/* One entry named `name` in the box. st gives its type, mode and mtime;
 * uid/gid its owner in the box. Regular files are read from fd; xattrs are
 * taken from fd too (regular files and directories; fd < 0: none), except
 * overlayfs' own (trusted.overlay.*, user.overlay.*). symlink: the target
 * of a symbolic link. */
struct boxpack_entry {
	const char *name;
	const struct stat *st;
	uid_t uid;
	gid_t gid;
	int fd;
	const char *symlink;
	const char *hardlink; /* a regular file: a link to this earlier entry (no data) */
	/* A file capability made in a user namespace (VFS_CAP_REVISION_3)
	 * whose root is this host uid becomes a plain one (revision 2), as it
	 * was meant for the guest's root; 0: capabilities kept as they are. */
	uint32_t ns_root;
};
int boxpack_add(struct boxpack *p, const struct boxpack_entry *e, struct diag *d);

/* A host file (followed: the caller's own, e.g. a flattened disk) as a
 * regular file `name`, mode 0644, owner 0. */
int boxpack_add_file(struct boxpack *p, const char *name, const char *host_path,
		     struct diag *d);

/* A whole box of host files in one call: creates out, writes
 * boxpack_metadata(box_dir, provider; "virtual_size" dropped: the payload
 * changed), then paths[i] as names[i], in order, and finishes it. */
int boxpack_files(const char *out, const char *box_dir, const char *provider,
		  const char *const *names, const char *const *paths, size_t n, struct diag *d);

/* OUT.d: a fresh staging directory beside the box for a provider's
 * intermediate files (a flattened disk, an export); NULL on failure.
 * boxpack_unstage removes it, whatever is in it, and frees the name. */
char *boxpack_stage(const char *out, struct diag *d);
void boxpack_unstage(char *stage);

/* Finishes the archive (flushing it to disk: fsync) and frees p. On
 * failure (ENOSPC: the code is ENOSPC) the caller removes the file. */
int boxpack_close(struct boxpack *p, struct diag *d);
/* Frees p without finishing; the caller removes the file. */
void boxpack_abort(struct boxpack *p);

/* The metadata.json of the .box file at path (its first entries are read
 * until it is found), NUL-terminated in *json (caller frees). */
int boxpack_read_metadata(const char *path, char **json, struct diag *d);

#endif
