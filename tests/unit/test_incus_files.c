/* The incus provider's file calls (providers/incus/api.c incus_file_get,
 * incus_file_put) made again while the server answers 500 — LXD's file
 * helper failing to start, which a real daemon does only by chance — and
 * not for any other answer. The server here is a thread on a Unix socket
 * in a temporary directory that answers each request with the next of a
 * list of canned HTTP answers, the way LXD's API does (its error
 * envelope, a sync answer, a file's bytes), and counts the requests. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "providers/incus/incus.h"
#include "tests/unit/t.h"

/* Answers: "STATUS LINE|Content-Type|body", made into HTTP by reply(). */
#define ERROR_500                                                                       \
	"500 Internal Server Error|application/json|{\"type\":\"error\",\"error\":"      \
	"\"dial unix forkfile.sock: connect: no such file or directory\",\"error_code\":500," \
	"\"metadata\":null}"
#define NOT_FOUND                                                                       \
	"404 Not Found|application/json|{\"type\":\"error\",\"error\":\"Not Found\","      \
	"\"error_code\":404,\"metadata\":null}"
#define PASSWD "200 OK|application/octet-stream|root:x:0:0:root:/root:/bin/sh\n"
#define SYNC_OK                                                                         \
	"200 OK|application/json|{\"type\":\"sync\",\"status\":\"Success\","                \
	"\"status_code\":200,\"metadata\":{}}"

static char dir[64], sock[128];

struct server {
	int fd;
	const char *const *answers; /* NULL-ended; the last one repeats */
	unsigned requests;
	char last_body[256];
};

/* One request's head and body (by Content-Length) read from fd. */
static void read_request(int fd, struct server *s)
{
	char buf[8192];
	size_t n = 0;
	char *end = NULL;
	while (!end && n < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			return;
		n += (size_t)r;
		buf[n] = 0;
		end = strstr(buf, "\r\n\r\n");
	}
	if (!end)
		return;
	const char *cl = strcasestr(buf, "Content-Length:");
	size_t want = cl ? (size_t)atol(cl + 15) : 0, have = n - (size_t)(end + 4 - buf);
	while (have < want && n < sizeof(buf) - 1) {
		ssize_t r = read(fd, buf + n, sizeof(buf) - 1 - n);
		if (r <= 0)
			break;
		n += (size_t)r;
		have += (size_t)r;
	}
	buf[n] = 0;
	snprintf(s->last_body, sizeof(s->last_body), "%s", end + 4);
}

/* The canned answer a ("STATUS|TYPE|BODY") as an HTTP response on fd. */
static void reply(int fd, const char *a)
{
	const char *t = strchr(a, '|'), *b = strchr(t + 1, '|');
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %.*s\r\nContent-Type: %.*s\r\nConnection: close\r\n"
			 "Content-Length: %zu\r\n\r\n",
			 (int)(t - a), a, (int)(b - t - 1), t + 1, strlen(b + 1));
	if (write(fd, head, (size_t)n) != n || write(fd, b + 1, strlen(b + 1)) < 0)
		return;
}

/* Answers each request with the next answer (the last one again and
 * again), counting them. */
static void *serve(void *arg)
{
	struct server *s = arg;
	size_t last = 0;
	while (s->answers[last + 1])
		last++;
	for (;;) {
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		read_request(c, s);
		const char *a = s->answers[s->requests < last ? s->requests : last];
		s->requests++; /* counted before the client has its answer */
		reply(c, a);
		close(c);
	}
}

/* Starts a server answering with `answers` in turn; the client to it in *c. */
static pthread_t start(struct server *s, const char *const *answers, struct incus_client *c)
{
	*s = (struct server){.answers = answers};
	unlink(sock);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(s->fd >= 0 && bind(s->fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(s->fd, 8) == 0);
	pthread_t t;
	pthread_create(&t, NULL, serve, s);
	*c = (struct incus_client){0};
	_cleanup_free_ char *remote = xasprintf("unix://%s", sock);
	incus_client_set_remote(c, remote);
	return t;
}

static void stop(struct server *s, pthread_t t, struct incus_client *c)
{
	shutdown(s->fd, SHUT_RDWR);
	close(s->fd);
	pthread_join(t, NULL);
	incus_client_close(c);
}

/* One incus_file_get against a server giving `answers`: its result, and
 * the status, body, message and number of requests it made. */
struct got {
	int rc;
	long status;
	unsigned requests;
	char body[64], msg[512];
};

static struct got get(const char *const *answers)
{
	struct server s;
	struct incus_client c;
	pthread_t t = start(&s, answers, &c);
	struct buf out = {0};
	struct diag d = {0};
	struct got g = {0};
	g.rc = incus_file_get(&c, "web", "/etc/passwd", &out, &g.status, &d);
	g.requests = s.requests;
	snprintf(g.body, sizeof(g.body), "%s", out.s ? out.s : "");
	snprintf(g.msg, sizeof(g.msg), "%s", d.msg);
	buf_free(&out);
	stop(&s, t, &c);
	return g;
}

static void get_after_a_500(void)
{
	static const char *const answers[] = {ERROR_500, PASSWD, NULL};
	struct got g = get(answers);
	CHECK(g.rc == 0);
	CHECK_STR(g.body, "root:x:0:0:root:/root:/bin/sh\n");
	CHECK(g.requests == 2);
}

static void get_500_that_lasts(void)
{
	static const char *const answers[] = {ERROR_500, NULL};
	struct got g = get(answers);
	CHECK(g.rc < 0 && g.status == 500);
	CHECK(strstr(g.msg, "forkfile.sock") != NULL);
	CHECK(g.requests == INCUS_FILE_TRIES);
}

static void get_404_once(void)
{
	static const char *const answers[] = {NOT_FOUND, PASSWD, NULL};
	struct got g = get(answers);
	CHECK(g.rc < 0 && g.status == 404);
	CHECK(g.requests == 1);
}

static void put_after_a_500(void)
{
	static const char *const answers[] = {ERROR_500, SYNC_OK, NULL};
	static const char *const hdrs[] = {"X-LXD-mode: 0644", NULL};
	struct server s;
	struct incus_client c;
	pthread_t t = start(&s, answers, &c);
	struct diag d = {0};
	CHECK(incus_file_put(&c, "web", "/etc/hostname", hdrs, "web\n", 4, &d) == 0);
	CHECK_STR(s.last_body, "web\n");
	CHECK(s.requests == 2);
	stop(&s, t, &c);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/corral-incus-files.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(sock, sizeof(sock), "%s/unix.socket", dir);
	RUN(get_after_a_500);
	RUN(get_500_that_lasts);
	RUN(get_404_once);
	RUN(put_after_a_500);
	struct diag ignored = {0};
	rm_rf(dir, &ignored);
	return T_END();
}
