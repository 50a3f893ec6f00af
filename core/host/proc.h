/* Processes corral starts, waits for, or finds again from another corral
 * process later.
 *
 * Starting one goes through proc_spawn (the fd, environment and exec
 * plumbing), in one of two ways:
 *   proc_cmd_run  a helper program corral waits for: argv, environment,
 *                 optional stdin, output captured and/or line by line, exit
 *                 status. ip, nft, rsync, qemu-img, QEMU (it daemonizes
 *                 itself and exits), VBoxManage, ansible-playbook.
 *   proc_spawn    a process corral does not wait for, because it outlives
 *                 the command or is supervised elsewhere: the container's
 *                 init (new namespaces, own session), the detached port
 *                 forwarder (own session, its listening sockets as fds
 *                 3...), sshd under the built-in init (reaped by its loop).
 * Either way argv only (never a shell), the program looked up in PATH by
 * corral, and a program that cannot be executed is an error of the start
 * ("cannot run PROG: why"), not an exit status. The child gets an empty
 * signal mask. What replaces a process instead of starting one stays a
 * plain exec: the built-in init handing PID 1 to the box's systemd.
 *
 * Finding one again: an identity that survives pid reuse (pid + start
 * time), and stopping with a deadline. */
#ifndef CORRAL_PROC_H
#define CORRAL_PROC_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/base/diag.h"
#include "core/base/util.h"

/* Start time (clock ticks since boot, /proc/PID/stat field 22); 0 when the
 * process is gone or a zombie. */
unsigned long long proc_start_time(pid_t pid);
/* The very process recorded as (pid, start) is still running. */
bool proc_alive(pid_t pid, unsigned long long start);
/* Sends sig to (pid, start) and waits up to timeout_ms for it to exit.
 * 0: gone (or was already), 1: still running at the deadline. */
int proc_stop(pid_t pid, unsigned long long start, int sig, uint64_t timeout_ms);

/* PATH lookup like execvp's: the program's path (caller frees), or NULL. */
char *proc_which(const char *prog);
/* The program exists in PATH and is executable. */
bool proc_have(const char *prog);

#define PROC_NULL (-1) /* in proc_spawn.fds: /dev/null */

struct proc_spawn {
	const char *const *argv;  /* argv[0] is looked up in PATH unless it holds a '/' */
	const char *exe;          /* when set, this file runs instead ("/proc/self/exe") */
	const char *const *envp;  /* its whole environment; NULL: ours */
	const int *fds;           /* its fds 0..nfds-1: these fds of ours (or PROC_NULL); */
	size_t nfds;              /* 0: it shares our 0, 1 and 2. Others: our fds without CLOEXEC */
	bool setsid;              /* its own session, out of our terminal's reach */
	int namespaces;           /* CLONE_NEW* flags: it starts in new namespaces */
	const char *cwd;          /* its working directory; NULL: ours */
	bool set_ids;             /* it runs as uid/gid, with no supplementary groups */
	uid_t uid;
	gid_t gid;
};
/* Starts it and returns once it runs its program (*pid set), or -1 when it
 * could not (nothing left running). */
int proc_spawn(const struct proc_spawn *s, pid_t *pid, struct diag *d);
/* Waits for a child started by proc_spawn: its exit status, or 128+N when
 * signal N ended it (*sig = N, else 0). */
int proc_wait(pid_t pid, int *sig);

#define PROC_OUTPUT_MAX (16u << 20) /* bytes kept of each stream; the rest is read and dropped */

/* One run of a helper program, to its end. The caller sets the first
 * block; proc_cmd_run fills the second. */
struct proc_cmd {
	const char *const *argv;     /* argv[0] is looked up in PATH unless it holds a '/' */
	const char *const *env;      /* NAME=VALUE set for it, replacing ours of that name */
	const char *const *env_drop; /* prefixes of our variables it does not get ("LC_") */
	const char *input;           /* written to its stdin, then EOF; NULL: /dev/null */
	const char *cwd;             /* its working directory; NULL: ours */
	bool split;                  /* stderr into err; else into out, after stdout's bytes */
	/* Called with each line of out as it arrives (without its '\n'; a last
	 * unterminated line too); out then stays empty. */
	void (*line)(const char *line, void *arg);
	void *arg;

	struct buf out, err; /* NUL-terminated, never NULL after a run; proc_cmd_free */
	int status;          /* its exit code, or 128 + the signal that ended it */
	int sig;             /* that signal; 0 when it exited */
};
/* Runs it until it exited and its output is closed (a daemon it leaves
 * behind must not hold the output open). -1 only when it could not be
 * started: its exit status is data for the caller. */
int proc_cmd_run(struct proc_cmd *c, struct diag *d);
/* A non-zero status as an error: "PROG failed: OUTPUT" (err, else out). */
int proc_cmd_check(const struct proc_cmd *c, struct diag *d);
void proc_cmd_free(struct proc_cmd *c);

/* Runs argv with `input` (may be NULL) on its stdin and waits; a non-zero
 * exit is an error carrying its output (stdout and stderr). */
int proc_run(const char *const argv[], const char *input, struct diag *d);

#endif
