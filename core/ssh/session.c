/* Connecting: TCP probe, SSH handshake on the probed socket, host key
 * check against the machine's pinned key, public-key login; retried with
 * backoff until the guest is ready or the deadline passes. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/cancel.h"
#include "core/ssh/insecure_key.h"
#include "core/ssh/ssh_priv.h"
#include "core/base/util.h"

enum { FIRST_INTERVAL_MS = 20, MAX_INTERVAL_MS = 500, TCP_TIMEOUT_MS = 2000,
       HANDSHAKE_TIMEOUT_MS = 10000, RECONNECT_TIMEOUT_MS = 10000, MAX_KEYS = 4,
       SESSION_TIMEOUT_S = 300, CONSOLE_LINES = 8, CONSOLE_COLS = 100 };

enum attempt { ATTEMPT_OK, ATTEMPT_RETRY, ATTEMPT_FATAL };

/* What one wait is about: where, with which keys, and the reset advice. */
struct waiter {
	const struct endpoint *ep;
	ssh_key keys[MAX_KEYS];
	const char *key_names[MAX_KEYS];
	size_t nkeys;
	const char *reset_hint;
};

static void waiter_free(struct waiter *w)
{
	for (size_t i = 0; i < w->nkeys; i++)
		ssh_key_free(w->keys[i]);
	w->nkeys = 0;
}

static int waiter_add_file(struct waiter *w, const char *path, struct diag *d)
{
	if (ssh_key_load(path, &w->keys[w->nkeys], d) < 0)
		return -1;
	w->key_names[w->nkeys++] = path;
	return 0;
}

/* first_key, or Vagrant's insecure keys when NULL. */
static int waiter_add_first(struct waiter *w, const char *first_key, struct diag *d)
{
	if (first_key)
		return waiter_add_file(w, first_key, d);
	size_t n;
	const struct insecure_key *k = insecure_keys(&n);
	for (size_t i = 0; i < n && w->nkeys < MAX_KEYS; i++) {
		if (ssh_pki_import_privkey_base64(k[i].private, NULL, NULL, NULL,
						  &w->keys[w->nkeys]) != SSH_OK)
			return diag_fail(d, "cannot load Vagrant's insecure %s key", k[i].type);
		w->key_names[w->nkeys++] = "Vagrant's insecure key";
	}
	return 0;
}

static int wait_connected(int fd, unsigned timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLOUT};
	int r = poll(&p, 1, (int)timeout_ms);
	if (r == 0)
		errno = ETIMEDOUT;
	if (r <= 0)
		return -1;
	int err = 0;
	socklen_t len = sizeof(err);
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
		errno = err ? err : errno;
		return -1;
	}
	return 0;
}

/* A connected, blocking TCP socket, or -1 with the reason in why. */
static int tcp_connect(const struct endpoint *ep, unsigned timeout_ms, struct diag *why)
{
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
	char port[16];
	snprintf(port, sizeof(port), "%u", ep->port);
	int e = getaddrinfo(ep->host, port, &hints, &res);
	if (e)
		return diag_fail(why, "cannot resolve %s: %s", ep->host, gai_strerror(e));
	int fd = -1, err = 0;
	for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
			    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ||
		    (errno == EINPROGRESS && wait_connected(fd, timeout_ms) == 0))
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		return diag_fail(why, "%s port %u: %s", ep->host, ep->port, strerror(err));
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	return fd;
}

static bool file_empty(const char *path)
{
	struct stat st;
	return stat(path, &st) < 0 || st.st_size == 0;
}

/* A session on the connected socket fd (owned by the session from here),
 * reading no OpenSSH config and trusting only the machine's pinned key. */
static ssh_session session_new(const struct endpoint *ep, int fd, unsigned timeout_ms)
{
	ssh_session s = ssh_new();
	if (!s) {
		close(fd);
		return NULL;
	}
	bool no = false;
	unsigned port = 22;
	long secs = timeout_ms < 1000 ? 1 : timeout_ms / 1000;
	socket_t sock = fd;
	ssh_options_set(s, SSH_OPTIONS_PROCESS_CONFIG, &no);
	ssh_options_set(s, SSH_OPTIONS_FD, &sock);
	ssh_options_set(s, SSH_OPTIONS_HOST, SSH_HOST_ALIAS);
	ssh_options_set(s, SSH_OPTIONS_PORT, &port);
	ssh_options_set(s, SSH_OPTIONS_USER, ep->user);
	ssh_options_set(s, SSH_OPTIONS_KNOWNHOSTS, ep->known_hosts);
	ssh_options_set(s, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, "/dev/null");
	ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &secs);
	if (file_empty(ep->known_hosts))
		ssh_options_set(s, SSH_OPTIONS_HOSTKEYS,
				"ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,"
				"ecdsa-sha2-nistp521,rsa-sha2-512,rsa-sha2-256");
	return s;
}

/* libssh leaves a socket given with SSH_OPTIONS_FD open on disconnect
 * (unless it closed it itself after an error): closing it is ours. */
static void session_end(ssh_session s)
{
	socket_t fd = ssh_get_fd(s);
	ssh_disconnect(s);
	ssh_free(s);
	if (fd != SSH_INVALID_SOCKET)
		close(fd);
}

static int host_key_mismatch(ssh_session s, const struct waiter *w, struct diag *d)
{
	ssh_key key = NULL;
	unsigned char *hash = NULL;
	size_t hlen = 0;
	char *fp = NULL;
	if (ssh_get_server_publickey(s, &key) == SSH_OK &&
	    ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &hlen) == 0)
		fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, hlen);
	diag_fail(d, "the ssh host key of %s port %u (%s) is not the one pinned in %s",
		  w->ep->host, w->ep->port, fp ? fp : "unknown", w->ep->known_hosts);
	diag_hint(d, "if the machine was re-created, forget the old key with `%s`; if not, "
		     "something else is answering on that port",
		  w->reset_hint ? w->reset_hint : "corral ssh --reset-host-key NAME");
	ssh_string_free_char(fp);
	ssh_clean_pubkey_hash(&hash);
	ssh_key_free(key);
	return -1;
}

/* Pins the key on first contact; any other key later is refused. */
static int verify_host(ssh_session s, const struct waiter *w, struct diag *d)
{
	switch (ssh_session_is_known_server(s)) {
	case SSH_KNOWN_HOSTS_OK:
		return 0;
	case SSH_KNOWN_HOSTS_NOT_FOUND:
	case SSH_KNOWN_HOSTS_UNKNOWN:
		if (!file_empty(w->ep->known_hosts))
			return host_key_mismatch(s, w, d);
		if (ssh_session_update_known_hosts(s) != SSH_OK)
			return ssh_fail(d, s, "pinning the ssh host key");
		return 0;
	case SSH_KNOWN_HOSTS_CHANGED:
	case SSH_KNOWN_HOSTS_OTHER:
		return host_key_mismatch(s, w, d);
	default:
		return ssh_fail(d, s, w->ep->known_hosts);
	}
}

static int authenticate(ssh_session s, const struct waiter *w, struct diag *why)
{
	struct buf tried = {0};
	for (size_t i = 0; i < w->nkeys; i++) {
		int r = ssh_userauth_publickey(s, NULL, w->keys[i]);
		if (r == SSH_AUTH_SUCCESS) {
			buf_free(&tried);
			return 0;
		}
		if (r == SSH_AUTH_ERROR) {
			buf_free(&tried);
			return ssh_fail(why, s, "ssh login");
		}
		buf_printf(&tried, "%s%s", i ? ", " : "", w->key_names[i]);
	}
	diag_fail(why, "user %s refused key %s", w->ep->user, tried.s ? tried.s : "(none)");
	buf_free(&tried);
	return -1;
}

static enum attempt attempt(const struct waiter *w, unsigned budget_ms, ssh_session *out,
			    struct diag *why, struct diag *d)
{
	int fd = tcp_connect(w->ep, budget_ms < TCP_TIMEOUT_MS ? budget_ms : TCP_TIMEOUT_MS, why);
	if (fd < 0)
		return ATTEMPT_RETRY;
	ssh_session s = session_new(w->ep, fd, budget_ms < HANDSHAKE_TIMEOUT_MS ? budget_ms
									: HANDSHAKE_TIMEOUT_MS);
	if (!s) {
		diag_fail(d, "out of memory for an ssh session");
		return ATTEMPT_FATAL;
	}
	enum attempt a = ATTEMPT_RETRY;
	if (ssh_connect(s) != SSH_OK)
		ssh_fail(why, s, "ssh handshake");
	else if (verify_host(s, w, d) < 0)
		a = ATTEMPT_FATAL;
	else if (authenticate(s, w, why) == 0)
		a = ATTEMPT_OK;
	if (a == ATTEMPT_OK) {
		/* From here on a blocking SFTP call may wait on a slow guest disk. */
		long secs = SESSION_TIMEOUT_S;
		ssh_options_set(s, SSH_OPTIONS_TIMEOUT, &secs);
		*out = s;
	} else {
		session_end(s);
	}
	return a;
}

void ssh_console_tail(const char *path, struct buf *b)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char data[4096];
	off_t end = fd < 0 ? -1 : lseek(fd, 0, SEEK_END);
	if (end < 0)
		return;
	off_t from = end > (off_t)sizeof(data) - 1 ? end - (off_t)sizeof(data) + 1 : 0;
	ssize_t n = pread(fd, data, sizeof(data) - 1, from);
	if (n <= 0)
		return;
	while (n > 0 && (data[n - 1] == '\n' || data[n - 1] == '\r'))
		n--;
	data[n] = '\0';
	char *start = data + n;
	for (int lines = 0; start > data && lines < CONSOLE_LINES; start--)
		lines += start[-1] == '\n';
	buf_printf(b, "; last console lines (%s):", path);
	char *save = NULL;
	for (char *line = strtok_r(start, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		for (char *p = line; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = ' ';
		buf_printf(b, "\n    %.*s", CONSOLE_COLS, line);
	}
}

static int timed_out(const struct waiter *w, uint64_t ms, const char *console_log,
		     const struct diag *why, struct diag *d)
{
	struct buf b = {0};
	buf_printf(&b, "timed out after %.1fs waiting for ssh on %s port %u as %s (last: %s)",
		   (double)ms / 1000, w->ep->host, w->ep->port, w->ep->user,
		   why->msg[0] ? why->msg : "no attempt finished");
	if (console_log)
		ssh_console_tail(console_log, &b);
	diag_fail(d, "%s", b.s);
	buf_free(&b);
	return diag_hint(d, "check that the guest runs sshd on port %u and authorizes the key; "
			    "raise ssh.boot_timeout if it boots slowly", w->ep->port);
}

static int wait_loop(const struct waiter *w, uint64_t timeout_ms, const char *console_log,
		     struct ssh_conn **out, struct diag *d)
{
	uint64_t start = now_ms(), deadline = start + timeout_ms;
	unsigned interval = FIRST_INTERVAL_MS;
	struct diag why = {0};
	for (;;) {
		uint64_t now = now_ms();
		unsigned budget = deadline > now + 1000 ? (unsigned)(deadline - now) : 1000;
		ssh_session s = NULL;
		enum attempt a = attempt(w, budget, &s, &why, d);
		if (a == ATTEMPT_FATAL)
			return -1;
		if (a == ATTEMPT_OK) {
			*out = xcalloc(1, sizeof(**out));
			(*out)->s = s;
			(*out)->ep = *w->ep;
			return 0;
		}
		now = now_ms();
		if (now >= deadline)
			return timed_out(w, now - start, console_log, &why, d);
		if (cancel_requested())
			return diag_fail(d, "interrupted while waiting for ssh on %s port %u",
					 w->ep->host, w->ep->port);
		sleep_ms(deadline - now < interval ? (unsigned)(deadline - now) : interval);
		interval = interval * 2 < MAX_INTERVAL_MS ? interval * 2 : MAX_INTERVAL_MS;
	}
}

static int check_endpoint(const struct endpoint *ep, struct diag *d)
{
	if (!ep->known_hosts[0])
		return diag_fail(d, "ssh to %s port %u: no known_hosts file to pin the host key in",
				 ep->host, ep->port);
	ssh_lib_init();
	return 0;
}

/* Waits logging in with ep->key_path, and with the first-boot keys too
 * (first_key, or Vagrant's insecure keys when NULL) when `first` is set. */
static int wait_keys(const struct endpoint *ep, bool first, const char *first_key,
		     uint64_t timeout_ms, const char *console_log, const char *reset_hint,
		     struct ssh_conn **out, struct diag *d)
{
	struct waiter w = {.ep = ep, .reset_hint = reset_hint};
	*out = NULL;
	int rc = check_endpoint(ep, d);
	if (rc == 0)
		rc = waiter_add_file(&w, ep->key_path, d);
	if (rc == 0 && first)
		rc = waiter_add_first(&w, first_key, d);
	if (rc == 0)
		rc = wait_loop(&w, timeout_ms, console_log, out, d);
	waiter_free(&w);
	return rc;
}

int ssh_wait_ready(const struct endpoint *ep, uint64_t timeout_ms, const char *console_log,
		   const char *reset_hint, struct ssh_conn **out, struct diag *d)
{
	return wait_keys(ep, false, NULL, timeout_ms, console_log, reset_hint, out, d);
}

int ssh_wait_ready_first_boot(const struct endpoint *ep, const char *first_key,
			      uint64_t timeout_ms, const char *console_log,
			      const char *reset_hint, struct ssh_conn **out, struct diag *d)
{
	if (wait_keys(ep, true, first_key, timeout_ms, console_log, reset_hint, out, d) < 0)
		return -1;
	if (ssh_replace_first_boot_key(out, ep, first_key, d) < 0) {
		ssh_close(*out);
		*out = NULL;
		return -1;
	}
	return 0;
}

/* The swap, run by /bin/sh in the guest: the machine's key in, the
 * insecure keys out, replacing authorized_keys in one rename. */
static char *swap_script(const char *pub)
{
	struct buf b = {0};
	_cleanup_free_ char *qpub = ssh_quote(pub);
	buf_puts(&b, "set -e\numask 077\nmkdir -p \"$HOME/.ssh\"\nf=\"$HOME/.ssh/authorized_keys\"\n"
		     "touch \"$f\"\nrc=0\ngrep -v -F");
	size_t n;
	const struct insecure_key *k = insecure_keys(&n);
	for (size_t i = 0; i < n; i++) {
		const char *blob = strchr(k[i].public, ' ') + 1;
		_cleanup_free_ char *b64 = xstrndup(blob, strcspn(blob, " "));
		_cleanup_free_ char *q = ssh_quote(b64);
		buf_printf(&b, " -e %s", q);
	}
	buf_printf(&b, " \"$f\" >\"$f.corral\" || rc=$?\n[ $rc -le 1 ]\n"
		       "grep -q -F -x -e %s \"$f.corral\" || printf '%%s\\n' %s >>\"$f.corral\"\n"
		       "mv -f \"$f.corral\" \"$f\"\n"
		       "if command -v restorecon >/dev/null; then restorecon -R \"$HOME/.ssh\" || :; fi\n",
		   qpub, qpub);
	return b.s;
}

int ssh_replace_first_boot_key(struct ssh_conn **c, const struct endpoint *ep,
			       const char *first_key, struct diag *d)
{
	if (!*c && wait_keys(ep, true, first_key, 0, NULL, NULL, c, d) < 0)
		return diag_wrap(d, "first-boot key swap");
	_cleanup_free_ char *pub = NULL;
	if (ssh_public_line(ep->key_path, &pub, d) < 0)
		return diag_wrap(d, "first-boot key swap");
	_cleanup_free_ char *script = swap_script(pub);
	struct buf tail = {0};
	int status = 0;
	int rc = ssh_exec_run(*c, "/bin/sh -s", script, strlen(script), NULL, true, &status,
			      &tail, 5, d);
	if (rc == 0 && status != 0)
		rc = diag_fail(d, "installing the machine key failed (exit %d): %s", status,
			       tail.s ? tail.s : "");
	buf_free(&tail);
	if (rc < 0)
		return diag_wrap(d, "first-boot key swap");
	ssh_close(*c);
	if (wait_keys(ep, false, NULL, RECONNECT_TIMEOUT_MS, NULL, NULL, c, d) < 0)
		return diag_wrap(d, "first-boot key swap: login with the machine key");
	return 0;
}

void ssh_close(struct ssh_conn *c)
{
	if (!c)
		return;
	session_end(c->s);
	free(c->home);
	free(c);
}
