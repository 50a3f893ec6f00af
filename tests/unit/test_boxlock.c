/* corral.lock: written sorted and stable, read back the same, and compared
 * with an envfile (machine added or removed, box, box_version or box_url
 * changed). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/box/boxlock.h"
#include "core/base/util.h"
#include "t.h"
#include "t_env.h"


static const char *two =
	"version: 1\n"
	"machines:\n"
	"  web: { box: test/tiny, box_version: '>= 1.0' }\n"
	"  db: { box: test/tiny, box_url: 'https://example.org/c.json' }\n";

static void entry(struct boxlock *l, const char *machine, const char *constraint,
		  const char *source, const char *version)
{
	struct boxlock_entry e = {
		.machine = (char *)machine, .box = "test/tiny", .constraint = (char *)constraint,
		.source = (char *)source, .version = (char *)version, .provider = "container",
		.arch = "amd64", .url = "https://example.org/t.box", .digest = "sha256:ab12",
	};
	boxlock_set(l, &e);
}

static void roundtrip(void)
{
	char dir[] = "/tmp/corral-boxlock.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	_cleanup_free_ char *path = path_join(dir, "corral.lock");
	struct boxlock l = {0}, back;
	entry(&l, "web", ">= 1.0", NULL, "1.0");
	entry(&l, "db", NULL, "https://example.org/c.json", "2.1");
	entry(&l, "web", ">= 1.0", NULL, "1.1"); /* replaces */
	CHECK(l.n == 2);
	CHECK_STR(l.v[0].machine, "db"); /* sorted by machine */
	struct diag d = {0};
	bool exists;
	CHECK(boxlock_save(path, &l, &d) == 0);
	CHECK(boxlock_load(path, &back, &exists, &d) == 0 && exists);
	CHECK(back.n == 2);
	CHECK_STR(boxlock_find(&back, "web")->version, "1.1");
	CHECK_STR(boxlock_find(&back, "db")->source, "https://example.org/c.json");
	CHECK(boxlock_find(&back, "web")->source == NULL);
	CHECK_STR(boxlock_find(&back, "web")->digest, "sha256:ab12");
	/* stable: the same lock writes the same bytes */
	char *a, *b;
	size_t na, nb;
	CHECK(read_file(path, 1 << 20, &a, &na, &d) == 0);
	CHECK(boxlock_save(path, &back, &d) == 0);
	CHECK(read_file(path, 1 << 20, &b, &nb, &d) == 0);
	CHECK(na == nb && memcmp(a, b, na) == 0);
	CHECK(strstr(a, "\"architecture\": \"amd64\",\n      \"box\": \"test/tiny\"") != NULL);
	free(a);
	free(b);
	boxlock_free(&l);
	boxlock_free(&back);
	rm_rf(dir, &d);
}

static void missing_and_bad(void)
{
	struct boxlock l;
	struct diag d = {0};
	bool exists = true;
	CHECK(boxlock_load("/nonexistent/corral.lock", &l, &exists, &d) == 0 && !exists && l.n == 0);
	char path[] = "/tmp/corral-boxlock-bad.XXXXXX";
	int fd = mkstemp(path);
	CHECK(fd >= 0 && write(fd, "{\"machines\": {\"web\": {\"box\": 3}}}", 33) == 33);
	close(fd);
	CHECK(boxlock_load(path, &l, &exists, &d) == -1);
	CHECK(strstr(d.msg, "web.box is not a string") != NULL);
	unlink(path);
}

static void stale(void)
{
	struct env *e = t_env_load(two);
	struct boxlock l = {0};
	struct strv why = {0};
	CHECK(e != NULL);
	if (!e)
		return;
	entry(&l, "web", ">= 1.0", NULL, "1.0");
	entry(&l, "db", NULL, "https://example.org/c.json", "1.0");
	CHECK(boxlock_stale(&l, e, &why) == 0);
	CHECK(boxlock_fits(boxlock_find(&l, "web"), env_machine(e, "web")));
	entry(&l, "web", ">= 2.0", NULL, "2.0"); /* the constraint the lock knew differs */
	entry(&l, "gone", NULL, NULL, "1.0");
	CHECK(!boxlock_fits(boxlock_find(&l, "web"), env_machine(e, "web")));
	CHECK(boxlock_stale(&l, e, &why) == 2);
	CHECK(why.n == 2);
	CHECK_STR(why.v[0], "web: box_version is `>= 1.0` in the envfile but `>= 2.0` in corral.lock");
	CHECK_STR(why.v[1], "machine gone is in corral.lock but no longer in the envfile");
	boxlock_retain(&l, e);
	CHECK(l.n == 2 && !boxlock_find(&l, "gone"));
	strv_free(&why);
	struct boxlock none = {0};
	CHECK(boxlock_stale(&none, e, &why) == 2);
	CHECK_STR(why.v[0], "machine web is not in corral.lock");
	strv_free(&why);
	boxlock_free(&l);
	env_free(e);
}

/* The entry for a box: URL, digest and signer from the store's record. */
static void from_box(void)
{
	char dir[] = "/tmp/corral-boxlock-box.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	_cleanup_free_ char *rec = path_join(dir, BOXSTORE_RECORD);
	const char *json = "{\"sha256\": \"00ff\", \"source\": \"https://example.org/t.box\", "
			   "\"signer\": \"release\"}";
	struct diag d = {0};
	CHECK(write_file_atomic(rec, json, strlen(json), 0644, &d) == 0);
	struct env *e = t_env_load(two);
	if (!e)
		return;
	struct box_ref ref = {"test/tiny", "1.2", "container", "amd64", dir, false};
	struct boxlock_entry le;
	boxlock_entry_from_box(env_machine(e, "web"), &ref, &le);
	CHECK_STR(le.digest, "sha256:00ff");
	CHECK_STR(le.url, "https://example.org/t.box");
	CHECK_STR(le.signer, "release");
	CHECK_STR(le.constraint, ">= 1.0");
	CHECK(le.source == NULL);
	CHECK(boxlock_fits(&le, env_machine(e, "web")));
	boxlock_entry_free(&le);
	env_free(e);
	rm_rf(dir, &d);
}

int main(void)
{
	RUN(from_box);
	RUN(roundtrip);
	RUN(missing_and_bad);
	RUN(stale);
	return T_END();
}
