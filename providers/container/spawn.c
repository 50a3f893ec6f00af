/* Starting a container: corral itself is re-executed (/proc/self/exe,
 * through proc_spawn) as `corral __init` in fresh mount and PID namespaces
 * and its own session, so the machine outlives this command (without root
 * also in a user namespace whose map the parent writes: unshare.c, and the
 * init waits for it). The init makes
 * the user namespace and the namespaces it owns (net, UTS, IPC) itself
 * (isolate.c) and says "R"; host-side set-up (cgroup, veth) happens then;
 * a control socket orders the two. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/host/proc.h"
#include "providers/container/container.h"

#define SPAWN_READY_MS 10000

static void build_argv(const struct ct_boot *b, struct strv *argv)
{
	strv_push(argv, "corral");
	strv_push(argv, "__init");
	const char *const kv[][2] = {
		{"lower", b->lower}, {"upper", b->upper}, {"work", b->work}, {"root", b->root},
		{"hostname", b->hostname}, {"init", b->init}, {"user", b->user},
		{"id", b->id},
	};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		strv_pushf(argv, "%s=%s", kv[i][0], kv[i][1]);
	strv_pushf(argv, "idmap=%u", b->idmap);
	for (unsigned i = 0; i < b->nnets; i++)
		strv_pushf(argv, "net=eth%u,%s/%u,%s", i, b->nets[i].ip, b->nets[i].prefix,
			   b->nets[i].gateway);
	if (b->sshd_dir)
		strv_pushf(argv, "sshd=%s", b->sshd_dir);
	for (size_t i = 0; i < b->nsvc; i++)
		strv_pushf(argv, "svc=%s", b->svc_argv[i]);
	for (size_t i = 0; i < b->nsvc_env; i++)
		strv_pushf(argv, "svc_env=%s", b->svc_env[i]);
	if (b->nsvc) {
		strv_pushf(argv, "svc_dir=%s", b->svc_dir);
		strv_pushf(argv, "svc_user=%s", b->svc_user);
	}
	if (b->rootless) {
		strv_push(argv, "rootless=1");
		strv_pushf(argv, "userkey=%s", b->user_pub);
		strv_pushf(argv, "hostkey=%s", b->host_key);
		strv_pushf(argv, "name=%s", b->name);
	}
	for (size_t i = 0; i < b->nbinds; i++) { /* paths may hold any byte: one argument each */
		strv_pushf(argv, "bind_src=%s", b->binds[i].host);
		strv_pushf(argv, "bind_dst=%s", b->binds[i].guest);
	}
}

/* The init's last word after len bytes already in msg: "OK\n", or an
 * error message, until EOF. */
static int read_report(int ctl, uint64_t timeout_ms, char *msg, size_t cap, size_t len,
		       struct diag *d)
{
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
		ssize_t n = read(ctl, msg + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
		if (len == cap - 1)
			break;
	}
	msg[len] = '\0';
	if (strcmp(msg, "OK\n") == 0)
		return 0;
	msg[strcspn(msg, "\n")] = '\0';
	return diag_fail(d, "container init: %s", len ? msg : "exited without a word (see console.log)");
}

/* One byte from the init, with the tap fds it sends along (at most
 * CT_MAX_NETS - 1, into taps[1..]); the byte read, or -1. */
static ssize_t recv_ready(int ctl, char *c, int *taps)
{
	char cbuf[CMSG_SPACE(sizeof(int) * CT_MAX_NETS)];
	struct iovec io = {.iov_base = c, .iov_len = 1};
	struct msghdr mh = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = cbuf,
			    .msg_controllen = sizeof(cbuf)};
	ssize_t n = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
	for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (i + 1 < CT_MAX_NETS)
				taps[i + 1] = fd;
			else
				close(fd);
		}
	}
	return n;
}

/* The init's stdin is /dev/null, its output the console log, fd 3 the
 * control socket; the environment is its own. */
int ct_spawn(const struct ct_boot *b, pid_t *pid, int *ctl, int *taps, struct diag *d)
{
	for (size_t i = 0; i < CT_MAX_NETS; i++)
		taps[i] = -1;
	static const char *const envp[] = {
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"container=corral", NULL,
	};
	int console = open(b->console, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (console < 0)
		return diag_errno(d, "open %s", b->console);
	if (!b->rootless && fchown(console, b->idmap, b->idmap) < 0) { /* it is the guest's /dev/console */
		close(console);
		return diag_errno(d, "set owner of %s", b->console);
	}
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
		.namespaces = CLONE_NEWNS | CLONE_NEWPID | (b->rootless ? CLONE_NEWUSER : 0),
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
	if (b->rootless && ct_userns_release(*pid, sv[0], d) < 0) {
		kill(*pid, SIGKILL);
		close(sv[0]);
		return -1;
	}
	char ready = 0;
	struct pollfd p = {.fd = sv[0], .events = POLLIN};
	int pr;
	while ((pr = poll(&p, 1, SPAWN_READY_MS)) < 0 && errno == EINTR)
		;
	if (pr > 0 && recv_ready(sv[0], &ready, taps) == 1 && ready == 'R')
		return 0;
	/* anything else is the start of the init's error message; nothing
	 * within the time (pr 0) is a hung init, not one to wait for again */
	char msg[1024] = {ready};
	if (pr <= 0)
		diag_fail(d, "the container's init did not make its namespaces within %us",
			  SPAWN_READY_MS / 1000);
	else if (read_report(sv[0], SPAWN_READY_MS, msg, sizeof(msg), ready ? 1 : 0, d) == 0)
		diag_fail(d, "the container's init did not make its namespaces");
	kill(*pid, SIGKILL);
	close(sv[0]);
	for (size_t i = 0; i < CT_MAX_NETS; i++)
		if (taps[i] >= 0)
			close(taps[i]), taps[i] = -1;
	return -1;
}

int ct_spawn_finish(int ctl, uint64_t timeout_ms, struct diag *d)
{
	if (write(ctl, "g", 1) != 1)
		return diag_fail(d, "the container's init exited before it started "
				    "(see its console.log)");
	char msg[1024];
	return read_report(ctl, timeout_ms, msg, sizeof(msg), 0, d);
}
