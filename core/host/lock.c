#include "core/host/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/util.h"

static long holder_pid(int fd)
{
	char buf[32] = {0};
	if (pread(fd, buf, sizeof(buf) - 1, 0) <= 0)
		return 0;
	return strtol(buf, NULL, 10);
}

int lock_acquire(const char *path, unsigned timeout_ms, struct lock *l, struct diag *d)
{
	_cleanup_free_ char *dir = path_dirname(path);
	if (mkdir_p(dir, 0755, d) < 0)
		return -1;
	/* Never through a link, never anything but a plain file: whoever can
	 * write the project directory must not make root truncate a file. */
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
	if (fd < 0 && errno == ELOOP)
		return diag_fail(d, "lock %s is a symbolic link; corral does not follow it", path);
	if (fd < 0)
		return diag_errno(d, "open lock %s", path);
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return diag_fail(d, "lock %s is not a plain file", path);
	}
	uint64_t deadline = now_ms() + timeout_ms;
	/* Naps stay short: the threads of one `up` (one per machine) take the
	 * same locks (address pool, index) for a few ms each, and a waiter
	 * asleep long past the release serializes the whole run. */
	unsigned nap = 2;
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK) {
			diag_errno(d, "lock %s", path);
			close(fd);
			return -1;
		}
		if (now_ms() >= deadline) {
			long pid = holder_pid(fd);
			close(fd);
			diag_fail(d, "another corral command (pid %ld) is working on this envfile", pid);
			return diag_hint(d, "wait for it to finish, or pass --lock-timeout SECONDS to wait");
		}
		sleep_ms(nap);
		if (nap < 20)
			nap *= 2;
	}
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
		diag_errno(d, "write lock %s", path);
		close(fd);
		return -1;
	}
	l->fd = fd;
	return 0;
}

void lock_release(struct lock *l)
{
	if (l->fd < 0)
		return;
	close(l->fd); /* closing drops the flock */
	l->fd = -1;
}
