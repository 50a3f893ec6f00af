/* A small QMP client: one JSON object per line over QEMU's unix socket.
 * After the greeting and qmp_capabilities, each command's reply is the
 * first line with "return" or "error"; events in between are skipped. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/base/util.h"
#include "providers/kvm/kvm.h"

#define QMP_REPLY_TIMEOUT_MS 120000 /* savevm of a large guest under TCG is slow */
#define QMP_LINE_MAX (1 << 20)

struct qmp {
	int fd;
	struct buf in;
};

static int connect_once(const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof(a.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		fd = -1;
	}
	return fd;
}

/* The next line (without '\n') into *line (caller frees). */
static int read_line(struct qmp *q, char **line, struct diag *d)
{
	uint64_t deadline = now_ms() + QMP_REPLY_TIMEOUT_MS;
	for (;;) {
		char *nl = q->in.len ? memchr(q->in.s, '\n', q->in.len) : NULL;
		if (nl) {
			*line = xstrndup(q->in.s, (size_t)(nl - q->in.s));
			q->in.len -= (size_t)(nl + 1 - q->in.s);
			memmove(q->in.s, nl + 1, q->in.len);
			return 0;
		}
		if (q->in.len > QMP_LINE_MAX)
			return diag_fail(d, "QMP: a reply longer than %d bytes", QMP_LINE_MAX);
		struct pollfd p = {.fd = q->fd, .events = POLLIN};
		uint64_t now = now_ms();
		if (now >= deadline || poll(&p, 1, (int)(deadline - now)) == 0)
			return diag_fail(d, "QMP: QEMU did not answer within %ds",
					 QMP_REPLY_TIMEOUT_MS / 1000);
		char tmp[4096];
		ssize_t n = read(q->fd, tmp, sizeof(tmp));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return diag_fail(d, "QMP: QEMU closed the connection");
		buf_add(&q->in, tmp, (size_t)n);
	}
}

/* The next object holding `key` ("QMP", "return" or "error"). */
static int read_reply(struct qmp *q, json_t **obj, struct diag *d)
{
	for (;;) {
		char *line;
		if (read_line(q, &line, d) < 0)
			return -1;
		json_t *o = json_loads(line, 0, NULL);
		free(line);
		if (json_is_object(o) && !json_object_get(o, "event")) {
			*obj = o;
			return 0;
		}
		json_decref(o);
	}
}

int qmp_exec(struct qmp *q, const char *cmd, json_t *args, json_t **ret, struct diag *d)
{
	json_t *req = json_pack("{s:s}", "execute", cmd);
	if (args)
		json_object_set_new(req, "arguments", args);
	char *s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	struct buf out = {0};
	buf_printf(&out, "%s\n", s);
	free(s);
	ssize_t w = send(q->fd, out.s, out.len, MSG_NOSIGNAL);
	bool sent = w == (ssize_t)out.len;
	buf_free(&out);
	if (!sent)
		return diag_errno(d, "QMP: send %s", cmd);
	json_t *rep;
	if (read_reply(q, &rep, d) < 0)
		return diag_wrap(d, "QMP %s", cmd);
	json_t *err = json_object_get(rep, "error");
	int rc = 0;
	if (err)
		rc = diag_fail(d, "QMP %s: %s", cmd, json_string_value(json_object_get(err, "desc")));
	else if (ret)
		*ret = json_incref(json_object_get(rep, "return"));
	json_decref(rep);
	return rc;
}

int qmp_hmp(struct qmp *q, const char *line, struct diag *d)
{
	json_t *ret = NULL;
	if (qmp_exec(q, "human-monitor-command", json_pack("{s:s}", "command-line", line), &ret,
		     d) < 0)
		return -1;
	const char *out = json_string_value(ret);
	int rc = 0;
	if (out && *out) {
		size_t n = strcspn(out, "\r\n");
		rc = diag_fail(d, "%s: %.*s", line, (int)n, out);
	}
	json_decref(ret);
	return rc;
}

int qmp_open(const char *sock_path, unsigned timeout_ms, struct qmp **out, struct diag *d)
{
	uint64_t deadline = now_ms() + timeout_ms;
	int fd;
	while ((fd = connect_once(sock_path)) < 0 && (errno == ENOENT || errno == ECONNREFUSED) &&
	       now_ms() < deadline)
		sleep_ms(20);
	if (fd < 0)
		return diag_errno(d, "QMP: connect to %s", sock_path);
	struct qmp *q = xcalloc(1, sizeof(*q));
	q->fd = fd;
	json_t *greeting = NULL;
	int rc = read_reply(q, &greeting, d);
	json_decref(greeting);
	if (rc < 0 || qmp_exec(q, "qmp_capabilities", NULL, NULL, d) < 0) {
		qmp_close(q);
		return -1;
	}
	*out = q;
	return 0;
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	close(q->fd);
	buf_free(&q->in);
	free(q);
}

int qmp_call(const char *sock_path, const char *cmd, json_t *args, json_t **ret, struct diag *d)
{
	struct qmp *q;
	if (qmp_open(sock_path, 2000, &q, d) < 0) {
		json_decref(args);
		return -1;
	}
	int rc = qmp_exec(q, cmd, args, ret, d);
	qmp_close(q);
	return rc;
}
