/* core/ssh against the host's real OpenSSH server on loopback: keys,
 * waiting, host key pinning, exec, SFTP, quoting, the first-boot key swap,
 * and client options that the real ssh, scp and rsync accept. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "core/ssh/insecure_key.h"
#include "core/base/log.h"
#include "core/ssh/ssh.h"
#include "core/base/util.h"
#include "tests/unit/t.h"
#include "tests/unit/t_net.h"

static char T[] = "/tmp/corral-ssh.XXXXXX";
static unsigned port;
static pid_t sshd_pid = -1;
static struct endpoint ep; /* root@127.0.0.1:port with the machine key */

static char *tpath(const char *leaf) { return path_join(T, leaf); }

static void put(const char *leaf, const char *text, mode_t mode)
{
	_cleanup_free_ char *p = tpath(leaf);
	_cleanup_free_ char *dir = path_dirname(p);
	struct diag d = {0};
	mkdir_p(dir, 0755, &d);
	write_file_atomic(p, text, strlen(text), mode, &d);
}

static char *slurp(const char *path)
{
	char *data = NULL;
	size_t len;
	struct diag d = {0};
	return read_file(path, 1 << 24, &data, &len, &d) == 0 ? data : NULL;
}

/* Runs argv; its stdout (if out) is captured, its stderr goes to $T/run.err.
 * Returns the exit status. */
static int run(char *const argv[], struct buf *out)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	_cleanup_free_ char *errp = tpath("run.err");
	pid_t pid = fork();
	if (pid == 0) {
		int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(e, 2);
		dup2(p[1], 1);
		close(p[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	char chunk[4096];
	ssize_t n;
	while ((n = read(p[0], chunk, sizeof(chunk))) > 0)
		if (out)
			buf_add(out, chunk, (size_t)n);
	close(p[0]);
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 256;
}

/* sshd with `hostkey`, logins for root via $T/home/.ssh/authorized_keys,
 * HOME and the SFTP start directory in $T/home, after delay_ms. */
static void sshd_start(const char *hostkey, unsigned delay_ms)
{
	_cleanup_free_ char *cfg = xasprintf(
		"ListenAddress 127.0.0.1\nHostKey %s/%s\n"
		"AuthorizedKeysFile %s/home/.ssh/authorized_keys\nStrictModes no\nUsePAM no\n"
		"PidFile none\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
		"PermitRootLogin prohibit-password\nSetEnv HOME=%s/home\n"
		"Subsystem sftp internal-sftp -d %s/home\n",
		T, hostkey, T, T, T);
	put("sshd_config", cfg, 0644);
	_cleanup_free_ char *cfgp = tpath("sshd_config");
	_cleanup_free_ char *logp = tpath("sshd.log");
	sshd_pid = t_sshd_start(cfgp, port, logp, delay_ms);
}

static void sshd_stop(void)
{
	if (sshd_pid > 0) {
		kill(sshd_pid, SIGTERM);
		waitpid(sshd_pid, NULL, 0);
	}
	sshd_pid = -1;
}

static struct ssh_conn *connect_ok(void)
{
	struct ssh_conn *c = NULL;
	struct diag d = {0};
	if (ssh_wait_ready(&ep, 10000, NULL, NULL, &c, &d) < 0) {
		printf("#   connect: %s\n", d.msg);
		t_case_failed = 1;
	}
	return c;
}

static void test_keys(void)
{
	struct diag d = {0};
	char *pub = NULL, *again = NULL;
	_cleanup_free_ char *dir = tpath("m");
	CHECK(ssh_machine_key(dir, &pub, &d) == 0);
	CHECK(pub && str_starts(pub, "ssh-ed25519 AAAA"));
	struct stat st;
	CHECK(stat(ep.key_path, &st) == 0 && (st.st_mode & 0777) == 0600);
	_cleanup_free_ char *pubp = tpath("m/id_ed25519.pub");
	CHECK(stat(pubp, &st) == 0 && (st.st_mode & 0777) == 0644);
	CHECK(ssh_machine_key(dir, &again, &d) == 0);
	CHECK_STR(again, pub);
	/* OpenSSH derives the same public key from the file corral wrote. */
	struct buf out = {0};
	char *argv[] = {"/usr/bin/ssh-keygen", "-y", "-f", ep.key_path, NULL};
	CHECK(run(argv, &out) == 0);
	CHECK(out.s && strncmp(out.s, pub, strlen("ssh-ed25519 ") + 68) == 0);
	_cleanup_free_ char *ak = xasprintf("%s\n", pub);
	put("home/.ssh/authorized_keys", ak, 0600);
	buf_free(&out);
	free(pub);
	free(again);
}

static void test_host_keys(void)
{
	struct diag d = {0};
	char *a = NULL, *b = NULL;
	_cleanup_free_ char *pa = tpath("host_a"), *pb = tpath("host_b");
	CHECK(ssh_host_key_generate(pa, &a, &d) == 0);
	CHECK(ssh_host_key_generate(pb, &b, &d) == 0);
	CHECK(a && b && strcmp(a, b) != 0 && str_starts(a, "ssh-ed25519 "));
	struct stat st;
	CHECK(stat(pa, &st) == 0 && (st.st_mode & 0777) == 0600);
	_cleanup_free_ char *text = slurp(pa);
	CHECK(text && str_starts(text, "-----BEGIN OPENSSH PRIVATE KEY-----"));
	free(a);
	free(b);
}

static void test_wait_for_late_sshd(void)
{
	sshd_start("host_a", 300);
	uint64_t t0 = now_ms();
	struct ssh_conn *c = connect_ok();
	uint64_t took = now_ms() - t0;
	CHECK(c != NULL);
	CHECK(took >= 300 && took < 3000);
	printf("#   ready after %llu ms\n", (unsigned long long)took);
	/* First contact pinned sshd's key under corral's alias. */
	_cleanup_free_ char *kh = slurp(ep.known_hosts);
	_cleanup_free_ char *pa = tpath("host_a");
	_cleanup_free_ char *pub = NULL;
	struct diag d = {0};
	CHECK(ssh_public_line(pa, &pub, &d) == 0);
	char *blob = pub ? strchr(pub, ' ') + 1 : NULL;
	if (blob)
		*strchr(blob, ' ') = '\0';
	CHECK(kh && blob && strstr(kh, blob) && str_starts(kh, "corral-machine ssh-ed25519 "));
	ssh_close(c);
}

static int open_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	return n;
}

/* Sockets handed to libssh are closed with their sessions, failed or not. */
static void test_no_fd_leak(void)
{
	int before = open_fds();
	for (int i = 0; i < 3; i++)
		ssh_close(connect_ok());
	struct endpoint wrong = ep;
	snprintf(wrong.user, sizeof(wrong.user), "nosuchuser");
	struct ssh_conn *c = NULL;
	struct diag d = {0};
	CHECK(ssh_wait_ready(&wrong, 100, NULL, NULL, &c, &d) < 0);
	CHECK(strstr(d.msg, "refused key"));
	CHECK(open_fds() == before);
}

static void test_timeout_shows_console(void)
{
	struct buf log = {0};
	for (int i = 1; i <= 20; i++)
		buf_printf(&log, "boot line %d\n", i);
	put("console.log", log.s, 0644);
	buf_free(&log);
	struct endpoint dead = ep;
	dead.port = t_free_port();
	_cleanup_free_ char *console = tpath("console.log");
	struct ssh_conn *c = NULL;
	struct diag d = {0};
	uint64_t t0 = now_ms();
	CHECK(ssh_wait_ready(&dead, 400, console, NULL, &c, &d) < 0);
	uint64_t took = now_ms() - t0;
	CHECK(c == NULL);
	CHECK(took >= 400 && took < 2500);
	CHECK(strstr(d.msg, "timed out") && strstr(d.msg, "waiting for ssh"));
	CHECK(strstr(d.msg, "Connection refused"));
	CHECK(strstr(d.msg, "boot line 20") && strstr(d.msg, "boot line 13"));
	CHECK(!strstr(d.msg, "boot line 12\n"));
	CHECK(d.hint[0]);
}

static void test_host_key_mismatch(void)
{
	sshd_stop();
	sshd_start("host_b", 0);
	struct ssh_conn *c = NULL;
	struct diag d = {0};
	uint64_t t0 = now_ms();
	CHECK(ssh_wait_ready(&ep, 10000, NULL, "corral ssh --reset-host-key web", &c, &d) < 0);
	CHECK(c == NULL);
	CHECK(now_ms() - t0 < 5000);
	CHECK(strstr(d.msg, "not the one pinned") && strstr(d.msg, "SHA256:"));
	CHECK(strstr(d.hint, "corral ssh --reset-host-key web"));
	sshd_stop();
	sshd_start("host_a", 0);
}

/* Runs cmd with log lines (coloured, so stderr is told apart) going to a file. */
static int exec_captured(struct ssh_conn *c, const char *cmd, const char *in, size_t in_len,
			 int *status, struct buf *tail, char **out)
{
	_cleanup_free_ char *p = tpath("captured");
	fflush(stdout);
	int saved = dup(1), fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	dup2(fd, 1);
	close(fd);
	struct log_opts o = {.color = true};
	log_setup(&o);
	struct diag d = {0};
	int rc = in ? ssh_exec_input(c, cmd, in, in_len, "P", status, tail, 3, &d)
		    : ssh_exec(c, cmd, "P", status, tail, 3, &d);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	struct log_opts plain = {0};
	log_setup(&plain);
	if (rc < 0)
		printf("#   exec: %s\n", d.msg);
	*out = slurp(p);
	return rc;
}

static void test_exec(void)
{
	struct ssh_conn *c = connect_ok();
	if (!c)
		return;
	int status = -1;
	struct buf tail = {0};
	_cleanup_free_ char *out = NULL;
	CHECK(exec_captured(c, "echo one; echo two >&2; sleep 0.2; echo three; printf four", NULL, 0,
			    &status, &tail, &out) == 0);
	CHECK(status == 0);
	CHECK(out && strstr(out, "\033[2mP |\033[0m one\n"));
	CHECK(out && strstr(out, "\033[33mP |\033[0m two\n"));
	CHECK(out && strstr(out, "\033[2mP |\033[0m four\n"));
	CHECK_STR(tail.s, "two\nthree\nfour");
	free(out);
	out = NULL;
	CHECK(exec_captured(c, "exit 3", NULL, 0, &status, NULL, &out) == 0 && status == 3);
	free(out);
	out = NULL;
	CHECK(exec_captured(c, "kill -KILL $$", NULL, 0, &status, NULL, &out) == 0);
	CHECK(status == 255 + SIGKILL);
	buf_free(&tail);
	ssh_close(c);
}

/* A TCP relay to sshd on `to` that holds what the server sends for
 * `hold_ms` after its first byte, then passes all of it on at once: a
 * client that was slow to be scheduled, as on a loaded host, finds the
 * server's packets queued together. One connection; a child process. */
static pid_t batching_relay(unsigned listen_port, unsigned to, unsigned hold_ms)
{
	int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	a.sin_port = htons((uint16_t)listen_port);
	if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1) < 0)
		return -1;
	pid_t pid = fork();
	if (pid != 0) {
		close(l);
		return pid;
	}
	int c = accept(l, NULL, NULL), srv = socket(AF_INET, SOCK_STREAM, 0);
	a.sin_port = htons((uint16_t)to);
	if (c < 0 || connect(srv, (struct sockaddr *)&a, sizeof(a)) < 0)
		_exit(1);
	char buf[1 << 16];
	for (;;) {
		struct pollfd p[2] = {{.fd = c, .events = POLLIN}, {.fd = srv, .events = POLLIN}};
		if (poll(p, 2, -1) < 0)
			_exit(1);
		for (int i = 0; i < 2; i++) {
			if (!(p[i].revents & (POLLIN | POLLHUP)))
				continue;
			if (i == 1)
				usleep(hold_ms * 1000);
			ssize_t n = read(p[i].fd, buf, sizeof(buf));
			if (n <= 0 || write_all(p[1 - i].fd, buf, (size_t)n) < 0)
				_exit(0);
		}
	}
}

/* ssh.forward_agent: the host's agent (a real ssh-agent holding the
 * machine's key) answers `ssh-add -l` in the guest; without it, nothing.
 * Also when the guest's agent channel comes in the same read as the exec
 * request's reply (through batching_relay): refused until session 8,
 * which a cold `make test` at full load hit once. */
static void test_agent_forwarding(void)
{
	_cleanup_free_ char *sock = tpath("agent.sock");
	pid_t agent_pid = fork(); /* in the foreground (-D), so that it is ours to stop */
	if (agent_pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 1);
		dup2(null, 2);
		execl("/usr/bin/ssh-agent", "ssh-agent", "-D", "-a", sock, (char *)NULL);
		_exit(127);
	}
	/* up to 10 s (polled, so no slower when it is quick): with 2 s this
	 * test failed once on a machine at load 15 */
	for (int i = 0; i < 1000 && !path_exists(sock); i++)
		usleep(10000);
	setenv("SSH_AUTH_SOCK", sock, 1);
	char *add[] = {"/usr/bin/ssh-add", ep.key_path, NULL};
	CHECK(run(add, NULL) == 0);
	int status = -1;
	_cleanup_free_ char *on = NULL, *off = NULL;
	ep.forward_agent = true;
	struct ssh_conn *c = connect_ok();
	CHECK(c && exec_captured(c, "ssh-add -l", NULL, 0, &status, NULL, &on) == 0);
	CHECK(status == 0 && on && strstr(on, "(ED25519)"));
	if (!(status == 0 && on && strstr(on, "(ED25519)")))
		printf("#   ssh-add -l in the guest: exit %d, output: %s\n", status, on ? on : "(none)");
	ssh_close(c);
	unsigned relay_port = t_free_port();
	pid_t relay = batching_relay(relay_port, port, 300);
	CHECK(relay > 0);
	struct endpoint direct = ep;
	ep.port = relay_port;
	free(on);
	on = NULL;
	c = relay > 0 ? connect_ok() : NULL;
	CHECK(c && exec_captured(c, "ssh-add -l", NULL, 0, &status, NULL, &on) == 0);
	CHECK(status == 0 && on && strstr(on, "(ED25519)"));
	if (!(status == 0 && on && strstr(on, "(ED25519)")))
		printf("#   through the batching relay: exit %d, output: %s\n", status, on ? on : "(none)");
	ssh_close(c);
	ep = direct;
	if (relay > 0) {
		kill(relay, SIGTERM);
		waitpid(relay, NULL, 0);
	}
	ep.forward_agent = false;
	c = connect_ok();
	CHECK(c && exec_captured(c, "ssh-add -l", NULL, 0, &status, NULL, &off) == 0);
	CHECK(status == 2); /* "Could not open a connection to your authentication agent" */
	ssh_close(c);
	unsetenv("SSH_AUTH_SOCK");
	if (agent_pid > 0) {
		kill(agent_pid, SIGTERM);
		waitpid(agent_pid, NULL, 0);
	}
}

static void test_exec_large_output(void)
{
	struct ssh_conn *c = connect_ok();
	if (!c)
		return;
	struct buf want = {0};
	for (int i = 1; i <= 150000; i++)
		buf_printf(&want, "\033[2mP |\033[0m %d\n", i);
	int status = -1;
	_cleanup_free_ char *out = NULL;
	uint64_t t0 = now_ms();
	CHECK(exec_captured(c, "seq 1 150000", NULL, 0, &status, NULL, &out) == 0);
	printf("#   1 MB of output in %llu ms\n", (unsigned long long)(now_ms() - t0));
	CHECK(status == 0);
	CHECK(out && strcmp(out, want.s) == 0);
	buf_free(&want);
	ssh_close(c);
}

static void test_exec_input(void)
{
	struct ssh_conn *c = connect_ok();
	if (!c)
		return;
	const char *script = "x=fed\necho \"script $x\"\nexit 7\n";
	int status = -1;
	struct buf tail = {0};
	_cleanup_free_ char *out = NULL;
	CHECK(exec_captured(c, "/bin/sh -s", script, strlen(script), &status, &tail, &out) == 0);
	CHECK(status == 7);
	CHECK_STR(tail.s, "script fed");
	/* More stdin than any window, echoed while it is read: no deadlock. */
	size_t big = 3 << 20, lines = big / 64;
	char *data = xmalloc(big);
	memset(data, 'y', big);
	for (size_t i = 63; i < big; i += 64)
		data[i] = '\n';
	free(out);
	out = NULL;
	CHECK(exec_captured(c, "cat && echo end", data, big, &status, &tail, &out) == 0);
	CHECK(status == 0);
	CHECK(tail.s && str_ends(tail.s, "\nend"));
	size_t got = 0;
	for (const char *p = out; p && (p = strchr(p, '\n')); p++)
		got++;
	CHECK(got == lines + 1);
	/* A command that exits without reading its input still reports its status. */
	free(out);
	out = NULL;
	CHECK(exec_captured(c, "exit 4", data, big, &status, NULL, &out) == 0);
	CHECK(status == 4);
	free(data);
	buf_free(&tail);
	ssh_close(c);
}

/* One machine's worth of work, as parallel `up` does it from its thread. */
static void *parallel_job(void *arg)
{
	long i = (long)arg;
	struct ssh_conn *c = NULL;
	struct diag d = {0};
	int status = -1;
	struct buf tail = {0};
	_cleanup_free_ char *remote = xasprintf("~/par/%ld", i);
	_cleanup_free_ char *cmd = xasprintf("sed 's/^/# /' %s/home/par/%ld", T, i);
	bool ok = ssh_wait_ready(&ep, 10000, NULL, NULL, &c, &d) == 0 &&
		  ssh_upload_data(c, "job\n", 4, remote, 0600, &d) == 0 &&
		  ssh_exec(c, cmd, NULL, &status, &tail, 1, &d) == 0 && status == 0 &&
		  tail.s && strcmp(tail.s, "# job") == 0;
	ssh_close(c);
	buf_free(&tail);
	return ok ? arg : NULL;
}

static void test_parallel_connections(void)
{
	enum { N = 4 };
	pthread_t th[N];
	for (long i = 0; i < N; i++)
		pthread_create(&th[i], NULL, parallel_job, (void *)(i + 1));
	for (long i = 0; i < N; i++) {
		void *r = NULL;
		pthread_join(th[i], &r);
		CHECK(r == (void *)(i + 1));
	}
}

static bool mode_is(const char *leaf, unsigned mode)
{
	_cleanup_free_ char *p = tpath(leaf);
	struct stat st;
	if (lstat(p, &st) < 0 || (st.st_mode & 07777) != mode) {
		printf("#   %s: mode %o, want %o\n", leaf, st.st_mode & 07777, mode);
		return false;
	}
	return true;
}

static void test_upload(void)
{
	struct ssh_conn *c = connect_ok();
	if (!c)
		return;
	put("src/run.sh", "#!/bin/sh\necho hi\n", 0755);
	put("src/secret", "s3cret\n", 0600);
	put("src/deep/er/file.txt", "nested\n", 0644);
	_cleanup_free_ char *deep = tpath("src/deep"), *src = tpath("src");
	_cleanup_free_ char *link = tpath("src/link");
	chmod(deep, 0750);
	CHECK(symlink("run.sh", link) == 0);
	struct diag d = {0};
	CHECK(ssh_upload(c, src, "~/up/tree", &d) == 0);
	if (d.msg[0])
		printf("#   %s\n", d.msg);
	CHECK(mode_is("home/up/tree/run.sh", 0755));
	CHECK(mode_is("home/up/tree/secret", 0600));
	CHECK(mode_is("home/up/tree/deep", 0750));
	CHECK(mode_is("home/up/tree/deep/er/file.txt", 0644));
	_cleanup_free_ char *nested = tpath("home/up/tree/deep/er/file.txt");
	_cleanup_free_ char *got = slurp(nested);
	CHECK_STR(got, "nested\n");
	char target[64] = "";
	_cleanup_free_ char *rlink = tpath("home/up/tree/link");
	CHECK(readlink(rlink, target, sizeof(target) - 1) > 0);
	CHECK_STR(target, "run.sh");
	/* A single file to an absolute path with missing parents, and data. */
	_cleanup_free_ char *one = tpath("src/secret"), *abs = tpath("abs/x/y/secret");
	CHECK(ssh_upload(c, one, abs, &d) == 0);
	CHECK(mode_is("abs/x/y/secret", 0600));
	CHECK(ssh_upload_data(c, "data\n", 5, "~/d/data.txt", 0640, &d) == 0);
	CHECK(mode_is("home/d/data.txt", 0640));
	CHECK(ssh_upload(c, one, "relative/path", &d) < 0 && strstr(d.msg, "must be absolute"));
	ssh_close(c);
}

static void test_quote_roundtrip(void)
{
	struct ssh_conn *c = connect_ok();
	if (!c)
		return;
	const char *hostile[] = {
		"it's",  "$(touch pwned)", "a\nb\n", "  two  spaces ", "`id`", "back\\slash",
		"\"dq\"", "*", "; exit 9", "'", "",   "$HOME ~ & | < >",
	};
	_cleanup_free_ char *outp = tpath("quoted");
	_cleanup_free_ char *qout = ssh_quote(outp);
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		_cleanup_free_ char *q = ssh_quote(hostile[i]);
		_cleanup_free_ char *cmd = xasprintf("printf %%s %s > %s", q, qout);
		int status = -1;
		struct diag d = {0};
		CHECK(ssh_exec(c, cmd, NULL, &status, NULL, 0, &d) == 0 && status == 0);
		_cleanup_free_ char *got = slurp(outp);
		CHECK_STR(got, hostile[i]);
	}
	_cleanup_free_ char *pwned = tpath("home/pwned");
	CHECK(!path_exists(pwned) && !path_exists("/root/pwned"));
	ssh_close(c);
}

static bool can_login(const char *key, struct ssh_conn **keep)
{
	struct endpoint e = ep;
	snprintf(e.key_path, sizeof(e.key_path), "%s", key);
	struct ssh_conn *c = NULL;
	struct diag d = {0};
	bool ok = ssh_wait_ready(&e, 0, NULL, NULL, &c, &d) == 0;
	if (keep)
		*keep = c;
	else
		ssh_close(c);
	return ok;
}

/* Vagrant's insecure key of `type` written to $T/insecure-TYPE (0600). */
static char *insecure_file(const char *type)
{
	size_t n;
	const struct insecure_key *k = insecure_keys(&n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(k[i].type, type) == 0) {
			_cleanup_free_ char *leaf = xasprintf("insecure-%s", type);
			put(leaf, k[i].private, 0600);
			char *p = tpath(leaf);
			char *pub = NULL;
			struct diag d = {0};
			CHECK(ssh_public_line(p, &pub, &d) == 0);
			CHECK(pub && strncmp(pub, k[i].public, strlen(pub) - strlen(" corral")) == 0);
			free(pub);
			return p;
		}
	return NULL;
}

static void check_swapped(const char *machine_pub, const char *insecure_key)
{
	_cleanup_free_ char *akp = tpath("home/.ssh/authorized_keys");
	_cleanup_free_ char *ak = slurp(akp);
	CHECK(ak && strstr(ak, machine_pub));
	CHECK(ak && strstr(ak, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherUsersKey keep-me\n"));
	CHECK(ak && !strstr(ak, "vagrant insecure"));
	CHECK(!can_login(insecure_key, NULL));
	CHECK(can_login(ep.key_path, NULL));
}

static void test_first_boot_swap(void)
{
	size_t n;
	const struct insecure_key *k = insecure_keys(&n);
	CHECK(n == 2);
	_cleanup_free_ char *ed = insecure_file("ed25519"), *rsa = insecure_file("rsa");
	_cleanup_free_ char *mdir = tpath("m2");
	char *mpub = NULL;
	struct diag d = {0};
	CHECK(ssh_machine_key(mdir, &mpub, &d) == 0);
	struct endpoint saved = ep;
	snprintf(ep.key_path, sizeof(ep.key_path), "%s/m2/id_ed25519", T);

	/* A box authorizing the ed25519 insecure key: wait, then swap. */
	const char *other = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOtherUsersKey keep-me\n";
	_cleanup_free_ char *ak1 = xasprintf("%s\n%s", k[0].public, other);
	put("home/.ssh/authorized_keys", ak1, 0600);
	CHECK(!can_login(ep.key_path, NULL));
	struct ssh_conn *c = NULL;
	CHECK(ssh_wait_ready_first_boot(&ep, NULL, 10000, NULL, NULL, &c, &d) == 0);
	if (d.msg[0])
		printf("#   %s\n", d.msg);
	CHECK(c != NULL);
	ssh_close(c);
	check_swapped(mpub, ed);

	/* The rsa insecure key, swapped over a connection made elsewhere. */
	_cleanup_free_ char *ak2 = xasprintf("%s%s\n", other, k[1].public);
	put("home/.ssh/authorized_keys", ak2, 0600);
	c = NULL;
	CHECK(can_login(rsa, &c));
	CHECK(ssh_replace_first_boot_key(&c, &ep, rsa, &d) == 0);
	ssh_close(c);
	check_swapped(mpub, rsa);

	ep = saved;
	_cleanup_free_ char *mine = NULL;
	CHECK(ssh_public_line(ep.key_path, &mine, &d) == 0);
	_cleanup_free_ char *ak3 = xasprintf("%s\n", mine);
	put("home/.ssh/authorized_keys", ak3, 0600);
	free(mpub);
}

/* The Host block `corral ssh-config` prints, used by ssh, scp and rsync. */
static char *write_ssh_config(const struct endpoint *e)
{
	struct strv opts = {0};
	struct diag d = {0};
	CHECK(ssh_client_options(e, &opts, &d) == 0);
	struct buf b = {0};
	buf_puts(&b, "Host web\n");
	for (size_t i = 0; i < opts.n; i++)
		buf_printf(&b, "  %s\n", opts.v[i]);
	strv_free(&opts);
	put("ssh_config", b.s, 0644);
	buf_free(&b);
	return tpath("ssh_config");
}

static void test_client_options(void)
{
	/* A key path with a space and a %, which OpenSSH would expand; a guest
	 * on this host (OpenSSH takes the KexAlgorithms line). */
	struct endpoint e = ep;
	e.on_host = true;
	_cleanup_free_ char *key = slurp(ep.key_path);
	put("odd dir%h/key", key, 0600);
	snprintf(e.key_path, sizeof(e.key_path), "%s/odd dir%%h/key", T);
	_cleanup_free_ char *cfg = write_ssh_config(&e);
	struct buf out = {0};
	char *ssh[] = {"/usr/bin/ssh", "-F", cfg, "web", "echo ssh-ok", NULL};
	CHECK(run(ssh, &out) == 0);
	CHECK(out.s && strcmp(out.s, "ssh-ok\n") == 0);
	_cleanup_free_ char *src = tpath("src/secret"), *dst = tpath("scp-copy");
	_cleanup_free_ char *dst_arg = xasprintf("web:%s", dst);
	char *scp[] = {"/usr/bin/scp", "-q", "-F", cfg, src, dst_arg, NULL};
	CHECK(run(scp, NULL) == 0 && path_exists(dst));
	_cleanup_free_ char *rsh = xasprintf("ssh -F '%s'", cfg);
	_cleanup_free_ char *rdst = tpath("rsync-copy");
	_cleanup_free_ char *rdst_arg = xasprintf("web:%s", rdst);
	char *rsync[] = {"/usr/bin/rsync", "-a", "-e", rsh, src, rdst_arg, NULL};
	CHECK(run(rsync, NULL) == 0 && path_exists(rdst));
	/* A different host key is refused by OpenSSH too. */
	sshd_stop();
	sshd_start("host_b", 0);
	sleep_ms(300);
	char *again[] = {"/usr/bin/ssh", "-F", cfg, "-o", "BatchMode yes", "web", "true", NULL};
	CHECK(run(again, NULL) == 255);
	sshd_stop();
	sshd_start("host_a", 0);
	buf_free(&out);
}

static void test_quote_unit(void)
{
	_cleanup_free_ char *a = ssh_quote("it's");
	CHECK_STR(a, "'it'\\''s'");
	_cleanup_free_ char *b = ssh_quote("");
	CHECK_STR(b, "''");
	struct endpoint e = ep;
	snprintf(e.user, sizeof(e.user), "bad\"user");
	struct strv opts = {0};
	struct diag d = {0};
	CHECK(ssh_client_options(&e, &opts, &d) < 0 && strstr(d.msg, "bad\"user"));
	strv_free(&opts);
	/* The key exchange: corral's own first for a guest on this host only. */
	for (int on_host = 0; on_host < 2; on_host++) {
		struct endpoint h = ep;
		h.on_host = on_host;
		struct strv o = {0};
		CHECK(ssh_client_options(&h, &o, &d) == 0);
		bool kex = false;
		for (size_t i = 0; i < o.n; i++)
			kex |= strcmp(o.v[i], "KexAlgorithms ^curve25519-sha256,"
					      "curve25519-sha256@libssh.org") == 0;
		CHECK(kex == (on_host == 1));
		strv_free(&o);
	}
}

int main(void)
{
	if (!mkdtemp(T))
		return 1;
	t_sshd_prepare();
	port = t_free_port();
	struct passwd *pw = getpwuid(getuid());
	snprintf(ep.host, sizeof(ep.host), "127.0.0.1");
	ep.port = port;
	snprintf(ep.user, sizeof(ep.user), "%s", pw ? pw->pw_name : "root");
	snprintf(ep.key_path, sizeof(ep.key_path), "%s/m/id_ed25519", T);
	snprintf(ep.known_hosts, sizeof(ep.known_hosts), "%s/m/known_hosts", T);
	RUN(test_quote_unit);
	RUN(test_keys);
	RUN(test_host_keys);
	RUN(test_timeout_shows_console);
	RUN(test_wait_for_late_sshd);
	RUN(test_no_fd_leak);
	RUN(test_host_key_mismatch);
	RUN(test_exec);
	RUN(test_agent_forwarding);
	RUN(test_exec_large_output);
	RUN(test_exec_input);
	RUN(test_upload);
	RUN(test_parallel_connections);
	RUN(test_quote_roundtrip);
	RUN(test_first_boot_swap);
	RUN(test_client_options);
	sshd_stop();
	struct diag d = {0};
	rm_rf(T, &d);
	return T_END();
}
