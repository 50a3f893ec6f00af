/* Starting a container: corral itself is re-executed (through an fd opened
 * on /proc/self/exe) as `corral __init` in fresh namespaces and its own
 * session, so the machine outlives this command. Host-side set-up (cgroup,
 * veth) happens while the init starts; a control socket orders the two. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/base/util.h"
#include "providers/container/container.h"

#define STACK_SIZE (256 * 1024)
#define MAX_ARGS (16 + CT_MAX_NETS + 2 * CT_MAX_BINDS)

struct child {
	int exe, ctl, console, null;
	char **argv;
};

/* Between clone and exec only async-signal-safe calls: the parent may be
 * multi-threaded. */
static int child_main(void *arg)
{
	const struct child *c = arg;
	static char *const envp[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"container=corral", NULL,
	};
	if (setsid() < 0 || dup2(c->null, 0) < 0 || dup2(c->console, 1) < 0 ||
	    dup2(c->console, 2) < 0 || dup2(c->ctl, 3) < 0)
		_exit(126);
	execveat(c->exe, "", c->argv, envp, AT_EMPTY_PATH);
	_exit(127);
}

static void build_argv(const struct ct_boot *b, char **argv, char **owned)
{
	size_t n = 0, o = 0;
	argv[n++] = "corral";
	argv[n++] = "__init";
	const char *const kv[][2] = {
		{"lower", b->lower}, {"upper", b->upper}, {"work", b->work}, {"root", b->root},
		{"hostname", b->hostname}, {"init", b->init},
	};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		argv[n++] = owned[o++] = xasprintf("%s=%s", kv[i][0], kv[i][1]);
	for (unsigned i = 0; i < b->nnets; i++)
		argv[n++] = owned[o++] = xasprintf("net=eth%u,%s/%u,%s", i, b->nets[i].ip,
						   b->nets[i].prefix, b->nets[i].gateway);
	for (size_t i = 0; i < b->nbinds; i++) { /* paths may hold any byte: one argument each */
		argv[n++] = owned[o++] = xasprintf("bind_src=%s", b->binds[i].host);
		argv[n++] = owned[o++] = xasprintf("bind_dst=%s", b->binds[i].guest);
	}
	argv[n] = owned[o] = NULL;
}

/* Moves fd above 3, so that the child's dup2(ctl, 3) never clobbers it. */
static int high(int fd)
{
	if (fd < 0)
		return fd;
	int h = fcntl(fd, F_DUPFD_CLOEXEC, 10);
	close(fd);
	return h;
}

static int open_fds(const struct ct_boot *b, struct child *c, int sv[2], struct diag *d)
{
	c->exe = high(open("/proc/self/exe", O_PATH | O_CLOEXEC));
	c->console = high(open(b->console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644));
	c->null = high(open("/dev/null", O_RDWR | O_CLOEXEC));
	if (c->exe < 0 || c->console < 0 || c->null < 0)
		return diag_errno(d, "open %s", c->exe < 0       ? "/proc/self/exe"
						: c->console < 0 ? b->console
								 : "/dev/null");
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return diag_errno(d, "socketpair");
	c->ctl = fcntl(sv[1], F_DUPFD_CLOEXEC, 10);
	if (c->ctl < 0)
		return diag_errno(d, "dup");
	return 0;
}

int ct_spawn(const struct ct_boot *b, pid_t *pid, int *ctl, struct diag *d)
{
	struct child c = {-1, -1, -1, -1, NULL};
	int sv[2] = {-1, -1};
	char *argv[MAX_ARGS], *owned[MAX_ARGS];
	build_argv(b, argv, owned);
	c.argv = argv;
	int r = open_fds(b, &c, sv, d);
	char *stack = xmalloc(STACK_SIZE);
	if (r == 0) {
		int flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET;
		*pid = clone(child_main, stack + STACK_SIZE, flags | SIGCHLD, &c);
		if (*pid < 0)
			r = diag_errno(d, "clone the container's init");
	}
	free(stack);
	for (size_t i = 0; owned[i]; i++)
		free(owned[i]);
	int fds[] = {c.exe, c.console, c.null, c.ctl, sv[1]};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	if (r < 0) {
		if (sv[0] >= 0)
			close(sv[0]);
		return -1;
	}
	*ctl = sv[0];
	return 0;
}

int ct_spawn_finish(int ctl, uint64_t timeout_ms, struct diag *d)
{
	if (write(ctl, "g", 1) != 1)
		return diag_fail(d, "the container's init exited before it started "
				    "(see its console.log)");
	char msg[1024];
	size_t len = 0;
	uint64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		struct pollfd p = {.fd = ctl, .events = POLLIN};
		uint64_t now = now_ms();
		if (now >= deadline)
			return diag_fail(d, "the container's init did not report back within %llus",
					 (unsigned long long)timeout_ms / 1000);
		int pr = poll(&p, 1, (int)(deadline - now));
		if (pr < 0 && errno != EINTR)
			return diag_errno(d, "poll");
		if (pr <= 0)
			continue;
		ssize_t n = read(ctl, msg + len, sizeof(msg) - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == sizeof(msg) - 1)
			break;
	}
	msg[len] = '\0';
	if (strcmp(msg, "OK\n") == 0)
		return 0;
	msg[strcspn(msg, "\n")] = '\0';
	return diag_fail(d, "container init: %s", len ? msg : "exited without a word (see console.log)");
}
