/* State files and the envfile lock: atomic replace survives kill -9 at any
 * moment; a second locker fails at once or waits, and learns the holder's pid. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/host/lock.h"
#include "core/host/state.h"
#include "core/base/util.h"
#include "t.h"

static char dir[] = "/tmp/corral-state-XXXXXX";

static void test_roundtrip(void)
{
	char *p = path_join(dir, "s/state.json");
	struct diag d = {0};
	json_t *o;
	CHECK(state_load(p, &o, &d) == 0 && json_object_size(o) == 0);
	json_object_set_new(o, "provider", json_string("container"));
	json_object_set_new(o, "pid", json_integer(42));
	CHECK(state_save(p, o, &d) == 0);
	json_decref(o);
	CHECK(state_load(p, &o, &d) == 0);
	CHECK_STR(state_str(o, "provider", NULL), "container");
	CHECK(state_int(o, "pid", 0) == 42);
	CHECK(state_int(o, "missing", 7) == 7);
	json_decref(o);
	free(p);
}

static void test_corrupt_is_error(void)
{
	char *p = path_join(dir, "bad.json");
	struct diag d = {0};
	CHECK(write_file_atomic(p, "{\"a\":", 5, 0644, &d) == 0);
	json_t *o = NULL;
	CHECK(state_load(p, &o, &d) == -1);
	CHECK(strstr(d.msg, "not valid JSON") != NULL);
	free(p);
}

/* A writer rewriting a big state file in a loop is killed at random moments;
 * every time, the file parses and is one of the versions written. */
static void test_kill9_never_tears(void)
{
	char *p = path_join(dir, "kill.json");
	struct diag d = {0};
	for (int round = 0; round < 20; round++) {
		pid_t pid = fork();
		if (pid == 0) {
			char *pad = xmalloc(256 << 10);
			memset(pad, 'x', (256 << 10) - 1);
			pad[(256 << 10) - 1] = '\0';
			for (int i = 0;; i++) {
				json_t *o = json_object();
				json_object_set_new(o, "gen", json_integer(i));
				json_object_set_new(o, "pad", json_string(pad));
				json_object_set_new(o, "tail", json_integer(i));
				state_save(p, o, &d);
				json_decref(o);
			}
		}
		sleep_ms(5 + (unsigned)(rand() % 20));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		json_t *o = NULL;
		if (path_exists(p)) {
			CHECK(state_load(p, &o, &d) == 0);
			CHECK(state_int(o, "gen", -1) == state_int(o, "tail", -2));
			json_decref(o);
		}
	}
	free(p);
}

static void test_lock_holder_pid(void)
{
	char *p = path_join(dir, "lock");
	struct diag d = {0};
	int ready[2];
	CHECK(pipe(ready) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct lock l;
		if (lock_acquire(p, 0, &l, &d) < 0)
			_exit(1);
		(void)!write(ready[1], "x", 1);
		pause();
		_exit(0);
	}
	char c;
	CHECK(read(ready[0], &c, 1) == 1);
	struct lock l;
	uint64_t t0 = now_ms();
	CHECK(lock_acquire(p, 0, &l, &d) == -1);
	CHECK(now_ms() - t0 < 100);
	char want[64];
	snprintf(want, sizeof(want), "pid %ld", (long)pid);
	CHECK(strstr(d.msg, want) != NULL);
	t0 = now_ms();
	CHECK(lock_acquire(p, 300, &l, &d) == -1);
	CHECK(now_ms() - t0 >= 300);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK(lock_acquire(p, 1000, &l, &d) == 0);
	lock_release(&l);
	close(ready[0]);
	close(ready[1]);
	free(p);
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	RUN(test_roundtrip);
	RUN(test_corrupt_is_error);
	RUN(test_kill9_never_tears);
	RUN(test_lock_holder_pid);
	struct diag d;
	rm_rf(dir, &d);
	return T_END();
}
