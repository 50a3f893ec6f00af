#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/base/util.h"
#include "t.h"

static void check_redact(const char *in, const char *want)
{
	char *out = log_redact(in);
	CHECK_STR(out, want);
	free(out);
}

static void test_redact(void)
{
	const char *secrets[] = {"hunter2", "hunter2-long", "", "two\r\nlines"};
	check_redact("pw=hunter2", "pw=hunter2");
	log_secrets_set(secrets, 4);
	check_redact("pw=hunter2 and hunter2", "pw=*** and ***");
	check_redact("hunter2-long!", "***!");
	check_redact("two", "***");
	check_redact("lines then two", "*** then ***");
	check_redact("nothing here", "nothing here");
	log_secrets_clear();
	check_redact("pw=hunter2", "pw=hunter2");
}

static void *other_thread(void *arg)
{
	*(char **)arg = log_redact("pw=hunter2");
	return NULL;
}

static void test_per_thread(void)
{
	const char *secrets[] = {"hunter2"};
	char *seen = NULL;
	pthread_t th;
	log_secrets_set(secrets, 1);
	pthread_create(&th, NULL, other_thread, &seen);
	pthread_join(th, NULL);
	CHECK_STR(seen, "pw=hunter2");
	free(seen);
	log_secrets_clear();
}

/* What log_stream prints (to stdout) is masked. */
static void test_stream_masked(void)
{
	const char *secrets[] = {"hunter2"};
	char path[] = "/tmp/corral-test-log.XXXXXX";
	int fd = mkstemp(path), saved = dup(STDOUT_FILENO);
	fflush(stdout);
	dup2(fd, STDOUT_FILENO);
	log_secrets_set(secrets, 1);
	log_stream("web:setup", "token is hunter2", false);
	log_secrets_clear();
	log_stream("web:setup", "plain hunter2", false);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	char *data = NULL;
	size_t len;
	struct diag d = {0};
	CHECK(read_file(path, 4096, &data, &len, &d) == 0);
	CHECK_STR(data, "web:setup | token is ***\nweb:setup | plain hunter2\n");
	free(data);
	close(fd);
	unlink(path);
}

int main(void)
{
	RUN(test_redact);
	RUN(test_per_thread);
	RUN(test_stream_masked);
	return T_END();
}
