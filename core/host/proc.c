#include "core/host/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/base/util.h"

unsigned long long proc_start_time(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields start after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	p += 2;
	for (int field = 3; field < 22 && p; field++) {
		p = strchr(p, ' ');
		if (p)
			p++;
	}
	return p ? strtoull(p, NULL, 10) : 0;
}

bool proc_alive(pid_t pid, unsigned long long start)
{
	return pid > 0 && start && proc_start_time(pid) == start;
}

int proc_stop(pid_t pid, unsigned long long start, int sig, uint64_t timeout_ms)
{
	int fd = pidfd_open(pid, 0);
	if (fd < 0)
		return 0;
	/* Checked after pidfd_open: the fd now pins this very process. */
	if (!proc_alive(pid, start) || pidfd_send_signal(fd, sig, NULL, 0) < 0) {
		close(fd);
		waitpid(pid, NULL, WNOHANG);
		return 0;
	}
	/* The pidfd wakes us at once for our own children; an orphan stays a
	 * zombie until the host's init reaps it, which can take long, so
	 * /proc is checked too: a zombie counts as gone. */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	uint64_t deadline = now_ms() + timeout_ms;
	int r = 1;
	while (r == 1 && proc_alive(pid, start)) {
		if (now_ms() >= deadline)
			r = 2;
		else if (poll(&p, 1, 5) > 0)
			r = 0;
	}
	close(fd);
	waitpid(pid, NULL, WNOHANG); /* reaps it when it was our own child */
	return r == 2 ? 1 : 0;
}

bool proc_have(const char *prog)
{
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	char *save = NULL;
	for (char *dir = strtok_r(copy, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
		_cleanup_free_ char *p = path_join(dir, prog);
		if (access(p, X_OK) == 0)
			return true;
	}
	return false;
}

static void child_exec(const char *const argv[], int in, int err)
{
	dup2(in, 0);
	dup2(err, 1);
	dup2(err, 2);
	execvp(argv[0], (char *const *)argv);
	_exit(127);
}

static void read_all(int fd, struct buf *b)
{
	char tmp[1024];
	ssize_t n;
	while ((n = read(fd, tmp, sizeof(tmp))) > 0 || (n < 0 && errno == EINTR))
		if (n > 0 && b->len < 8192)
			buf_add(b, tmp, (size_t)n);
}

int proc_run(const char *const argv[], const char *input, struct diag *d)
{
	int in[2], err[2];
	if (pipe2(in, O_CLOEXEC) < 0)
		return diag_errno(d, "pipe");
	if (pipe2(err, O_CLOEXEC) < 0) {
		close(in[0]);
		close(in[1]);
		return diag_errno(d, "pipe");
	}
	pid_t pid = fork();
	if (pid == 0)
		child_exec(argv, in[0], err[1]);
	close(in[0]);
	close(err[1]);
	if (pid < 0) {
		close(in[1]);
		close(err[0]);
		return diag_errno(d, "fork %s", argv[0]);
	}
	if (input) {
		signal(SIGPIPE, SIG_IGN);
		ssize_t w = write(in[1], input, strlen(input));
		(void)w; /* a child that exits early reports through its status */
	}
	close(in[1]);
	struct buf out = {0};
	read_all(err[0], &out);
	close(err[0]);
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	int rc = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		while (out.len && (out.s[out.len - 1] == '\n'))
			out.s[--out.len] = '\0';
		if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
			rc = diag_fail(d, "%s: not found or not executable", argv[0]);
		else
			rc = diag_fail(d, "%s failed%s%s", argv[0], out.len ? ": " : "",
				       out.len ? out.s : "");
	}
	buf_free(&out);
	return rc;
}
