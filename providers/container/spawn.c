/* Starting a container: corral itself is re-executed (/proc/self/exe,
 * through proc_spawn) as `corral __init` in fresh namespaces and its own
 * session, so the machine outlives this command. Host-side set-up (cgroup,
 * veth) happens while the init starts; a control socket orders the two. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/host/proc.h"
#include "providers/container/container.h"

static void build_argv(const struct ct_boot *b, struct strv *argv)
{
	strv_push(argv, "corral");
	strv_push(argv, "__init");
	const char *const kv[][2] = {
		{"lower", b->lower}, {"upper", b->upper}, {"work", b->work}, {"root", b->root},
		{"hostname", b->hostname}, {"init", b->init},
	};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		strv_pushf(argv, "%s=%s", kv[i][0], kv[i][1]);
	for (unsigned i = 0; i < b->nnets; i++)
		strv_pushf(argv, "net=eth%u,%s/%u,%s", i, b->nets[i].ip, b->nets[i].prefix,
			   b->nets[i].gateway);
	for (size_t i = 0; i < b->nbinds; i++) { /* paths may hold any byte: one argument each */
		strv_pushf(argv, "bind_src=%s", b->binds[i].host);
		strv_pushf(argv, "bind_dst=%s", b->binds[i].guest);
	}
}

/* The init's stdin is /dev/null, its output the console log, fd 3 the
 * control socket; the environment is its own. */
int ct_spawn(const struct ct_boot *b, pid_t *pid, int *ctl, struct diag *d)
{
	static const char *const envp[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"container=corral", NULL,
	};
	int console = open(b->console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (console < 0)
		return diag_errno(d, "open %s", b->console);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		close(console);
		return diag_errno(d, "socketpair");
	}
	struct strv argv = {0};
	build_argv(b, &argv);
	int fds[] = {PROC_NULL, console, console, sv[1]};
	struct proc_spawn s = {
		.argv = (const char *const *)argv.v, .exe = "/proc/self/exe", .envp = envp,
		.fds = fds, .nfds = 4, .setsid = true,
		.namespaces = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNET,
	};
	int r = proc_spawn(&s, pid, d);
	strv_free(&argv);
	close(console);
	close(sv[1]);
	if (r < 0) {
		close(sv[0]);
		return diag_wrap(d, "start the container's init");
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
