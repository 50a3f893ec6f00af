/* The machine's upper layer, bounded by `disk:`. A machine created with
 * `disk:` keeps its upper and work directories on an ext4 file system of
 * that size in its own image (.corral/machines/NAME/disk.img), loop-mounted
 * on the host at layer/ while it runs: the guest's writes end at the size,
 * with "No space left on device", and persist across halt and up like any
 * upper layer. Without `disk:` (or for machines created before), upper/
 * and work/ are plain directories beside state.json. Chosen at creation:
 * changing `disk:` later takes a destroy. Without root there is no limit
 * (no_disk below). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/base/util.h"
#include "core/host/paths.h"
#include "core/host/proc.h"
#include "providers/container/container.h"

#define IMG "disk.img"
#define LAYER "layer"
#define DISK_HINT "leave `disk:` out for a container whose upper layer may grow without bound"

/* True when dir is a mount point on the file system of the machine's directory. */
static bool mounted(const char *mdir, const char *dir)
{
	struct stat a, b;
	return stat(mdir, &a) == 0 && stat(dir, &b) == 0 && a.st_dev != b.st_dev;
}

/* A sparse image of `size` bytes with an empty ext4 on it. */
static int make_image(const char *img, uint64_t size, struct diag *d)
{
	int fd = open(img, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return diag_errno(d, "create %s", img);
	int r = ftruncate(fd, (off_t)size) < 0 ? diag_errno(d, "size %s", img) : 0;
	close(fd);
	const char *argv[] = {"mkfs.ext4", "-q", "-F", "-m", "0", img, NULL};
	if (r == 0 && !proc_have("mkfs.ext4"))
		r = diag_fail(d, "mkfs.ext4 is not installed (install e2fsprogs)");
	if (r == 0 && proc_run(argv, NULL, d) < 0)
		r = -1;
	if (r < 0)
		unlink(img);
	return r;
}

static int mount_layer(const char *img, const char *layer, struct diag *d)
{
	const char *argv[] = {"mount", "-o", "loop,nosuid,nodev", img, layer, NULL};
	return mkdir_p(layer, 0700, d) < 0 || proc_run(argv, NULL, d) < 0 ? -1 : 0;
}

/* Without root: no loop mount (ext4 is not a file system a user
 * namespace may mount, and /dev/loop-control is root's), so no size limit
 * on the upper layer. Under best-effort a warning, else an error. */
static int no_disk(const struct machine *m, struct diag *d)
{
	diag_fail(d, "a size limit on the upper layer needs a loop-mounted file system, which "
		     "only root may mount");
	return ct_limit_missed(ct_best_effort(m->cfg), m->cfg->name, "disk",
			       "leave `disk:` out, set provider_options.container.limits: "
			       "best-effort, or run corral as root", d);
}

int ct_disk_open(const struct machine *m, bool creating, char **upper, char **work,
		 struct diag *d)
{
	_cleanup_free_ char *img = machine_path(m, IMG), *layer = machine_path(m, LAYER);
	bool have = path_exists(img);
	uint64_t size = m->cfg->disk;
	if (!have && creating && size && host_rootless() && no_disk(m, d) < 0)
		return -1;
	if (!have && (!creating || !size || host_rootless())) {
		*upper = machine_path(m, "upper");
		*work = machine_path(m, "work");
		return 0;
	}
	if (!have && make_image(img, size, d) < 0) {
		if (ct_limit_missed(ct_best_effort(m->cfg), m->cfg->name, "disk", DISK_HINT, d) < 0)
			return -1;
		return ct_disk_open(m, false, upper, work, d); /* best-effort: no limit */
	}
	if (!mounted(m->dir, layer) && mount_layer(img, layer, d) < 0)
		return ct_limit_missed(false, m->cfg->name, "disk", DISK_HINT, d);
	*upper = path_join(layer, "upper");
	*work = path_join(layer, "work");
	return 0;
}

void ct_disk_close(const struct machine *m)
{
	_cleanup_free_ char *layer = machine_path(m, LAYER);
	if (!mounted(m->dir, layer))
		return;
	const char *argv[] = {"umount", layer, NULL};
	struct diag d = {0};
	if (proc_run(argv, NULL, &d) < 0)
		log_warn("%s: could not unmount %s: %s", m->cfg->name, layer, d.msg);
}
