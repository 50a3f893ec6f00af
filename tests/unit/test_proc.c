/* The process runner: exit status, signals, stdin, both streams, lines
 * split across reads, the environment, a missing program; proc_spawn's fd
 * plumbing, session and signal mask. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/base/strv.h"
#include "core/host/proc.h"
#include "t.h"

/* Runs `sh -c script` with c's settings. */
static int sh(struct proc_cmd *c, const char *script, struct diag *d)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	c->argv = argv;
	int rc = proc_cmd_run(c, d);
	c->argv = NULL;
	return rc;
}

static void exit_status(void)
{
	struct proc_cmd c = {0};
	struct diag d = {0};
	CHECK(sh(&c, "echo bye; exit 3", &d) == 0);
	CHECK(c.status == 3 && c.sig == 0);
	CHECK_STR(c.out.s, "bye\n");
	CHECK_STR(c.err.s, "");
	proc_cmd_free(&c);
	CHECK(sh(&c, "true", &d) == 0);
	CHECK(c.status == 0);
	proc_cmd_free(&c);
}

static void signal_death(void)
{
	struct proc_cmd c = {0};
	struct diag d = {0};
	CHECK(sh(&c, "kill -TERM $$; sleep 5", &d) == 0);
	CHECK(c.sig == SIGTERM);
	CHECK(c.status == 128 + SIGTERM);
	const char *argv[] = {"sh", NULL};
	c.argv = argv;
	CHECK(proc_cmd_check(&c, &d) == -1);
	CHECK_STR(d.msg, "sh was killed by signal 15");
	proc_cmd_free(&c);
}

static void stdin_fed(void)
{
	struct proc_cmd c = {.input = "one\ntwo"};
	struct diag d = {0};
	const char *cat[] = {"cat", NULL};
	c.argv = cat;
	CHECK(proc_cmd_run(&c, &d) == 0);
	CHECK_STR(c.out.s, "one\ntwo");
	proc_cmd_free(&c);
	/* More than a pipe holds, both ways at once: no deadlock. */
	size_t n = 1u << 20;
	char *big = malloc(n + 1);
	memset(big, 'x', n);
	big[n] = '\0';
	c = (struct proc_cmd){.argv = cat, .input = big};
	CHECK(proc_cmd_run(&c, &d) == 0);
	CHECK(c.out.len == n && c.status == 0);
	proc_cmd_free(&c);
	/* A child that reads nothing: the write fails quietly, no SIGPIPE. */
	c = (struct proc_cmd){.input = big};
	CHECK(sh(&c, "exec <&-; exit 4", &d) == 0);
	CHECK(c.status == 4);
	proc_cmd_free(&c);
	free(big);
	/* No input: stdin is /dev/null. */
	c = (struct proc_cmd){0};
	CHECK(sh(&c, "wc -c", &d) == 0);
	CHECK_STR(c.out.s, "0\n");
	proc_cmd_free(&c);
}

static void stderr_captured(void)
{
	struct proc_cmd c = {.split = true};
	struct diag d = {0};
	CHECK(sh(&c, "echo out; echo err >&2; exit 1", &d) == 0);
	CHECK_STR(c.out.s, "out\n");
	CHECK_STR(c.err.s, "err\n");
	const char *argv[] = {"tool", NULL};
	c.argv = argv;
	CHECK(proc_cmd_check(&c, &d) == -1);
	CHECK_STR(d.msg, "tool failed: err");
	proc_cmd_free(&c);
	c = (struct proc_cmd){0};
	CHECK(sh(&c, "echo out; echo err >&2", &d) == 0);
	CHECK_STR(c.out.s, "out\nerr\n");
	proc_cmd_free(&c);
}

static void collect(const char *line, void *arg)
{
	struct strv *v = arg;
	strv_push(v, line);
}

static void lines_across_reads(void)
{
	struct strv v = {0};
	struct proc_cmd c = {.line = collect, .arg = &v};
	struct diag d = {0};
	CHECK(sh(&c, "printf ab; sleep 0.1; printf 'c\\nd'; sleep 0.1; printf 'e\\n\\nf'", &d) == 0);
	CHECK(v.n == 4);
	CHECK_STR(v.v[0], "abc");
	CHECK_STR(v.n > 1 ? v.v[1] : NULL, "de");
	CHECK_STR(v.n > 2 ? v.v[2] : NULL, "");
	CHECK_STR(v.n > 3 ? v.v[3] : NULL, "f"); /* the last, unterminated */
	CHECK_STR(c.out.s, "");
	proc_cmd_free(&c);
	strv_free(&v);
}

static void missing_program(void)
{
	const char *argv[] = {"corral-no-such-program", "x", NULL};
	struct proc_cmd c = {.argv = argv};
	struct diag d = {0};
	CHECK(proc_cmd_run(&c, &d) == -1);
	CHECK(d.code == ENOENT);
	CHECK(strstr(d.msg, "corral-no-such-program") != NULL);
	proc_cmd_free(&c);
	CHECK(proc_run(argv, NULL, &d) == -1);
	CHECK_STR(d.msg, "cannot run corral-no-such-program: not found in PATH");
	/* Found but not executable: the exec's own error. */
	char dir[] = "/tmp/corral-proc.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char *p = path_join(dir, "prog");
	CHECK(write_file_atomic(p, "#!/nonexistent/interpreter\n", 27, 0755, &d) == 0);
	const char *bad[] = {p, NULL};
	CHECK(proc_run(bad, NULL, &d) == -1);
	CHECK(d.code == ENOENT);
	CHECK(strstr(d.msg, "cannot run ") && strstr(d.msg, "/prog: No such file or directory"));
	rm_rf(dir, &d);
	free(p);
}

static void environment(void)
{
	setenv("CORRAL_T_SET", "ours", 1);
	setenv("CORRAL_T_DROP", "x", 1);
	setenv("CORRAL_T_KEEP", "kept", 1);
	static const char *const env[] = {"CORRAL_T_SET=theirs", "CORRAL_T_NEW=new", NULL};
	static const char *const drop[] = {"CORRAL_T_DROP=", NULL};
	struct proc_cmd c = {.env = env, .env_drop = drop};
	struct diag d = {0};
	CHECK(sh(&c, "echo \"$CORRAL_T_SET $CORRAL_T_NEW ${CORRAL_T_DROP-unset} $CORRAL_T_KEEP\"; "
		     "env | grep -c '^CORRAL_T_SET='", &d) == 0);
	CHECK_STR(c.out.s, "theirs new unset kept\n1\n");
	proc_cmd_free(&c);
	unsetenv("CORRAL_T_SET");
	unsetenv("CORRAL_T_DROP");
	unsetenv("CORRAL_T_KEEP");
}

static void run_reports_output(void)
{
	const char *argv[] = {"sh", "-c", "echo partial; echo boom >&2; exit 2", NULL};
	struct diag d = {0};
	CHECK(proc_run(argv, NULL, &d) == -1);
	CHECK_STR(d.msg, "sh failed: partial\nboom");
	const char *ok[] = {"sh", "-c", "read x; [ \"$x\" = hi ]", NULL};
	CHECK(proc_run(ok, "hi\n", &d) == 0);
}

/* fds 0..n of the child come from anywhere, even from each other's slots. */
static void spawn_fds(void)
{
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	/* The write end as its fd 3, and as fd 1 too; stdin from /dev/null. */
	int fds[] = {PROC_NULL, p[1], 2, p[1]};
	const char *argv[] = {"sh", "-c", "echo to3 >&3; echo to1; cat", NULL};
	struct proc_spawn s = {.argv = argv, .fds = fds, .nfds = 4};
	struct diag d = {0};
	pid_t pid;
	CHECK(proc_spawn(&s, &pid, &d) == 0);
	close(p[1]);
	char buf[64] = {0};
	size_t len = 0;
	ssize_t n;
	while ((n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	close(p[0]);
	CHECK_STR(buf, "to3\nto1\n");
	int st;
	CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void spawn_session_and_mask(void)
{
	sigset_t usr, old;
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr, &old);
	int p[2];
	CHECK(pipe2(p, O_CLOEXEC) == 0);
	int fds[] = {PROC_NULL, p[1], 2};
	const char *argv[] = {"sh", "-c", "grep SigBlk /proc/self/status; sleep 2", NULL};
	struct proc_spawn s = {.argv = argv, .fds = fds, .nfds = 3, .setsid = true};
	struct diag d = {0};
	pid_t pid;
	CHECK(proc_spawn(&s, &pid, &d) == 0);
	close(p[1]);
	CHECK(getsid(pid) == pid);
	char buf[128] = {0};
	ssize_t n = read(p[0], buf, sizeof(buf) - 1);
	CHECK(n > 0 && strstr(buf, "SigBlk:\t0000000000000000") != NULL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	close(p[0]);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void which(void)
{
	char *p = proc_which("sh");
	CHECK(p && p[0] == '/');
	free(p);
	CHECK(proc_have("sh"));
	CHECK(!proc_have("corral-no-such-program"));
	CHECK(proc_which("/nonexistent/x") == NULL);
}

int main(void)
{
	RUN(exit_status);
	RUN(signal_death);
	RUN(stdin_fed);
	RUN(stderr_captured);
	RUN(lines_across_reads);
	RUN(missing_program);
	RUN(environment);
	RUN(run_reports_output);
	RUN(spawn_fds);
	RUN(spawn_session_and_mask);
	RUN(which);
	return T_END();
}
