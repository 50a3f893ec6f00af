/* Processes: identity and stopping (pid + start time), PATH lookup,
 * starting (proc_spawn: fds, environment, exec, failures reported back
 * over a pipe) and running to the end (proc_cmd_run: stdin fed, output
 * read, lines split, exit status). */
#include "core/host/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/base/strv.h"

#define CLONE_STACK (256 * 1024)

extern char **environ;

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

char *proc_which(const char *prog)
{
	if (strchr(prog, '/'))
		return access(prog, X_OK) == 0 ? xstrdup(prog) : NULL;
	const char *path = getenv("PATH");
	_cleanup_free_ char *copy = xstrdup(path ? path : "/usr/sbin:/usr/bin:/sbin:/bin");
	for (char *dir = copy, *end; dir; dir = end ? end + 1 : NULL) {
		end = strchr(dir, ':');
		if (end)
			*end = '\0';
		char *p = path_join(*dir ? dir : ".", prog); /* an empty entry is ".", as for execvp */
		if (access(p, X_OK) == 0)
			return p;
		free(p);
	}
	return NULL;
}

bool proc_have(const char *prog)
{
	_cleanup_free_ char *p = proc_which(prog);
	return p != NULL;
}

/* ---- proc_spawn ---- */

/* What the child needs, prepared by the parent: between fork and exec
 * only async-signal-safe calls (the parent may be multi-threaded). */
struct child {
	const struct proc_spawn *s;
	const char *path;
	char *const *envp;
	const int *fds; /* PROC_NULL replaced */
	int *moved;     /* scratch: fds[i] moved clear of 0..nfds-1 */
	int report;     /* write end: errno when the exec fails */
};

static int child_main(void *arg)
{
	const struct child *c = arg;
	const struct proc_spawn *s = c->s;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	bool ok = (!s->setsid || setsid() >= 0);
	/* Two passes: a source may be another entry's target. */
	for (size_t i = 0; ok && i < s->nfds; i++)
		ok = (c->moved[i] = fcntl(c->fds[i], F_DUPFD_CLOEXEC, (int)s->nfds)) >= 0;
	for (size_t i = 0; ok && i < s->nfds; i++)
		ok = dup2(c->moved[i], (int)i) >= 0;
	if (ok && s->cwd)
		ok = chdir(s->cwd) == 0;
	if (ok && s->set_ids)
		ok = setgroups(0, NULL) == 0 && setgid(s->gid) == 0 && setuid(s->uid) == 0;
	if (ok)
		execve(c->path, (char *const *)s->argv, c->envp);
	int e = errno;
	ssize_t w = write(c->report, &e, sizeof(e));
	(void)w;
	_exit(127);
}

/* fork, or clone into new namespaces (glibc's clone runs child_main on a
 * stack of its own; without CLONE_VM the memory is a copy, as for fork). */
static pid_t start_child(struct child *c)
{
	if (!c->s->namespaces) {
		pid_t pid = fork();
		if (pid == 0)
			child_main(c);
		return pid;
	}
	char *stack = xmalloc(CLONE_STACK);
	pid_t pid = clone(child_main, stack + CLONE_STACK, c->s->namespaces | SIGCHLD, c);
	free(stack);
	return pid;
}

/* 0 once the child ran its program (the report pipe closed on exec), else
 * -1 with the errno it sent; the failed child is reaped. */
static int await_exec(pid_t pid, int report, const char *prog, struct diag *d)
{
	int e = 0;
	ssize_t n;
	while ((n = read(report, &e, sizeof(e))) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(e))
		return 0;
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	errno = e;
	return diag_errno(d, "cannot run %s", prog);
}

static int spawn_with(const struct proc_spawn *s, struct child *c, pid_t *pid, struct diag *d)
{
	int rep[2];
	if (pipe2(rep, O_CLOEXEC) < 0)
		return diag_errno(d, "pipe");
	/* Clear of the fds the child sets up, so no dup2 closes it. */
	c->report = fcntl(rep[1], F_DUPFD_CLOEXEC, (int)s->nfds + 3);
	close(rep[1]);
	if (c->report < 0) {
		close(rep[0]);
		return diag_errno(d, "dup");
	}
	*pid = start_child(c);
	int e = errno;
	close(c->report);
	int rc = *pid < 0 ? (errno = e, diag_errno(d, "%s %s", s->namespaces ? "clone" : "fork",
						   s->argv[0]))
			  : await_exec(*pid, rep[0], c->path, d);
	close(rep[0]);
	return rc;
}

int proc_spawn(const struct proc_spawn *s, pid_t *pid, struct diag *d)
{
	_cleanup_free_ char *path = s->exe ? xstrdup(s->exe) : proc_which(s->argv[0]);
	if (!path)
		return diag_code(d, ENOENT, "cannot run %s: not found in PATH", s->argv[0]);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return diag_errno(d, "open /dev/null");
	int *fds = xcalloc(s->nfds + 1, sizeof(int)), *moved = xcalloc(s->nfds + 1, sizeof(int));
	for (size_t i = 0; i < s->nfds; i++)
		fds[i] = s->fds[i] == PROC_NULL ? null : s->fds[i];
	struct child c = {.s = s, .path = path, .envp = s->envp ? (char *const *)s->envp : environ,
			  .fds = fds, .moved = moved};
	int rc = spawn_with(s, &c, pid, d);
	close(null);
	free(fds);
	free(moved);
	return rc;
}

/* ---- proc_cmd_run ---- */

static bool same_name(const char *a, const char *b)
{
	size_t n = strcspn(a, "=");
	return strncmp(a, b, n) == 0 && b[n] == '=';
}

/* env, then ours without what env sets or drop names. */
static void child_env(const struct proc_cmd *c, struct strv *out)
{
	for (const char *const *e = c->env; e && *e; e++)
		strv_push(out, *e);
	for (char **e = environ; *e; e++) {
		bool skip = false;
		for (const char *const *s = c->env; !skip && s && *s; s++)
			skip = same_name(*s, *e);
		for (const char *const *p = c->env_drop; !skip && p && *p; p++)
			skip = str_starts(*e, *p);
		if (!skip)
			strv_push(out, *e);
	}
}

/* The parent's ends of the child's stdin, stdout and stderr (-1: none). */
enum { IN, OUT, ERR };

struct pump {
	struct proc_cmd *c;
	struct pollfd p[3];
	size_t fed;
	struct buf pending; /* out's unfinished line, with a line callback */
};

static void close_end(struct pump *u, int i)
{
	close(u->p[i].fd);
	u->p[i].fd = -1;
}

static void keep(struct buf *b, const char *s, size_t n)
{
	if (b->len < PROC_OUTPUT_MAX)
		buf_add(b, s, n < PROC_OUTPUT_MAX - b->len ? n : PROC_OUTPUT_MAX - b->len);
}

static void emit_lines(struct pump *u, bool eof)
{
	struct buf *b = &u->pending;
	size_t start = 0;
	if (!b->s)
		return;
	char *nl;
	while ((nl = memchr(b->s + start, '\n', b->len - start))) {
		*nl = '\0';
		u->c->line(b->s + start, u->c->arg);
		start = (size_t)(nl - b->s) + 1;
	}
	if (eof && start < b->len) {
		u->c->line(b->s + start, u->c->arg);
		start = b->len;
	}
	memmove(b->s, b->s + start, b->len - start + 1);
	b->len -= start;
}

static void take(struct pump *u, int i, const char *s, size_t n)
{
	if (i == ERR)
		keep(&u->c->err, s, n);
	else if (!u->c->line)
		keep(&u->c->out, s, n);
	else {
		buf_add(&u->pending, s, n);
		emit_lines(u, false);
	}
}

/* A write to a pipe whose reader is gone raises SIGPIPE: blocked here, and
 * the pending one taken, so only this write fails (EPIPE). */
static ssize_t write_nosigpipe(int fd, const void *s, size_t n)
{
	sigset_t pipe_set, old;
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	ssize_t w = write(fd, s, n);
	int e = errno;
	if (w < 0 && e == EPIPE && !sigismember(&old, SIGPIPE)) {
		struct timespec zero = {0, 0};
		sigtimedwait(&pipe_set, NULL, &zero);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	errno = e;
	return w;
}

static void feed(struct pump *u)
{
	size_t len = strlen(u->c->input);
	ssize_t w = write_nosigpipe(u->p[IN].fd, u->c->input + u->fed, len - u->fed);
	if (w > 0)
		u->fed += (size_t)w;
	if (u->fed == len || (w < 0 && errno != EINTR && errno != EAGAIN))
		close_end(u, IN); /* all written, or it stopped reading: its status tells */
}

static void drain(struct pump *u, int i)
{
	char tmp[4096];
	ssize_t n = read(u->p[i].fd, tmp, sizeof(tmp));
	if (n > 0)
		take(u, i, tmp, (size_t)n);
	else if (n == 0 || errno != EINTR)
		close_end(u, i);
}

static void pump(struct pump *u)
{
	while (u->p[IN].fd >= 0 || u->p[OUT].fd >= 0 || u->p[ERR].fd >= 0) {
		if (poll(u->p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (u->p[IN].fd >= 0 && u->p[IN].revents)
			feed(u);
		for (int i = OUT; i <= ERR; i++)
			if (u->p[i].fd >= 0 && u->p[i].revents)
				drain(u, i);
	}
	for (int i = IN; i <= ERR; i++)
		if (u->p[i].fd >= 0)
			close_end(u, i);
	if (u->c->line) {
		emit_lines(u, true);
		buf_free(&u->pending);
	}
	buf_add(&u->c->out, "", 0);
	buf_add(&u->c->err, "", 0);
}

int proc_wait(pid_t pid, int *sig)
{
	int st = 0;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	*sig = WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	return *sig ? 128 + *sig : WEXITSTATUS(st);
}

/* Pipes for what the child reads and writes: [IN|OUT|ERR][0 read, 1 write]. */
static int make_pipes(const struct proc_cmd *c, int fd[3][2], struct diag *d)
{
	bool want[3] = {c->input != NULL, true, c->split};
	for (int i = IN; i <= ERR; i++)
		if (want[i] && pipe2(fd[i], O_CLOEXEC) < 0)
			return diag_errno(d, "pipe");
	if (fd[IN][1] >= 0)
		fcntl(fd[IN][1], F_SETFL, O_NONBLOCK);
	return 0;
}

static void close_fds(int *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] >= 0)
			close(v[i]);
}

int proc_cmd_run(struct proc_cmd *c, struct diag *d)
{
	int fd[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	struct strv env = {0};
	c->status = c->sig = 0;
	if (make_pipes(c, fd, d) < 0) {
		for (int i = IN; i <= ERR; i++)
			close_fds(fd[i], 2);
		return -1;
	}
	if (c->env || c->env_drop)
		child_env(c, &env);
	int child[3] = {c->input ? fd[IN][0] : PROC_NULL, fd[OUT][1], c->split ? fd[ERR][1] : fd[OUT][1]};
	struct proc_spawn s = {.argv = c->argv, .envp = (const char *const *)env.v,
			       .fds = child, .nfds = 3, .cwd = c->cwd};
	pid_t pid;
	int rc = proc_spawn(&s, &pid, d);
	strv_free(&env);
	int mine[3] = {fd[IN][1], fd[OUT][0], fd[ERR][0]};
	int theirs[3] = {fd[IN][0], fd[OUT][1], fd[ERR][1]};
	close_fds(theirs, 3);
	if (rc < 0) {
		close_fds(mine, 3);
		return -1;
	}
	struct pump u = {.c = c};
	for (int i = IN; i <= ERR; i++)
		u.p[i] = (struct pollfd){.fd = mine[i], .events = i == IN ? POLLOUT : POLLIN};
	pump(&u);
	c->status = proc_wait(pid, &c->sig);
	return 0;
}

int proc_cmd_check(const struct proc_cmd *c, struct diag *d)
{
	if (c->status == 0)
		return 0;
	const struct buf *b = c->err.len ? &c->err : &c->out;
	size_t len = b->len;
	while (len && b->s[len - 1] == '\n')
		len--;
	if (c->sig)
		return diag_fail(d, "%s was killed by signal %d%s%.*s", c->argv[0], c->sig,
				 len ? ": " : "", (int)len, len ? b->s : "");
	return diag_fail(d, "%s failed%s%.*s", c->argv[0], len ? ": " : "", (int)len,
			 len ? b->s : "");
}

void proc_cmd_free(struct proc_cmd *c)
{
	buf_free(&c->out);
	buf_free(&c->err);
}

int proc_run(const char *const argv[], const char *input, struct diag *d)
{
	struct proc_cmd c = {.argv = argv, .input = input};
	int rc = proc_cmd_run(&c, d);
	if (rc == 0)
		rc = proc_cmd_check(&c, d);
	proc_cmd_free(&c);
	return rc;
}
