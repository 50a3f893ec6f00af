/* Whether corral turns Ansible's pipelining on (provisioners/ansible_cfg.c):
 * on when nobody chose; left alone when the user's environment or the
 * ansible.cfg ansible-playbook reads sets it (Ansible's search order, the
 * key in its sections only, comments and continuation lines not counted);
 * the envfile's `pipelining` over everything. No ansible runs. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/config/envfile.h"
#include "provisioners/ansible.h"
#include "t.h"
#include "t_env.h"

static char T[] = "/tmp/corral-ansible-cfg-XXXXXX";
static char *top; /* our working directory at start */

static char *tp(const char *rel)
{
	return path_join(T, rel);
}

static void put(const char *rel, const char *text)
{
	_cleanup_free_ char *p = tp(rel);
	struct diag d = {0};
	if (write_file_atomic(p, text, strlen(text), 0644, &d) < 0)
		printf("#   %s\n", d.msg);
}

/* Nothing set: no variables, $ANSIBLE_CONFIG pointing at rel (NULL: unset),
 * an empty home, in T/run (T/run/ansible.cfg absent until a case puts it). */
static void reset(const char *rel)
{
	unsetenv("ANSIBLE_PIPELINING");
	unsetenv("ANSIBLE_SSH_PIPELINING");
	unsetenv("ANSIBLE_CONFIG");
	_cleanup_free_ char *home = tp("home"), *run = tp("run"), *cwd_cfg = tp("run/ansible.cfg");
	_cleanup_free_ char *home_cfg = tp("home/.ansible.cfg");
	unlink(cwd_cfg);
	unlink(home_cfg);
	chmod(run, 0755);
	setenv("HOME", home, 1);
	if (rel) {
		_cleanup_free_ char *p = tp(rel);
		setenv("ANSIBLE_CONFIG", p, 1);
	}
	if (chdir(run) < 0)
		printf("#   chdir %s failed\n", run);
}

static const struct ansible_step unset = {.pipelining = OPT_UNSET};

static const char *decide(void)
{
	return ansible_pipelining(&unset);
}

static void test_nobody_chose(void)
{
	put("empty.cfg", "[defaults]\nforks = 5\n");
	reset("empty.cfg");
	CHECK_STR(decide(), "True");
	struct strv env = {0};
	ansible_pipelining_env(&unset, &env);
	CHECK(env.n == 2);
	CHECK(env.n == 2 && strcmp(env.v[0], "ANSIBLE_PIPELINING=True") == 0);
	CHECK(env.n == 2 && strcmp(env.v[1], "ANSIBLE_SSH_PIPELINING=True") == 0);
	strv_free(&env);
}

static void test_env_chose(void)
{
	static const char *const vars[] = {"ANSIBLE_PIPELINING", "ANSIBLE_SSH_PIPELINING"};
	for (size_t i = 0; i < 2; i++) {
		put("empty.cfg", "");
		reset("empty.cfg");
		setenv(vars[i], "False", 1);
		CHECK(decide() == NULL);
		struct strv env = {0};
		ansible_pipelining_env(&unset, &env);
		CHECK(env.n == 0);
		strv_free(&env);
		/* even empty: Ansible counts a variable that is there */
		setenv(vars[i], "", 1);
		CHECK(decide() == NULL);
	}
}

/* ini text -> whether it counts as the user's choice */
static const struct {
	const char *ini;
	bool chose;
} inis[] = {
	{"[defaults]\npipelining = False\n", true},
	{"[defaults]\nPipelining=True\n", true},
	{"[connection]\n  pipelining: true\n", true},
	{"[ssh_connection]\nssh_args = -C\npipelining = True\n", true},
	{"[DEFAULT]\npipelining = False\n", true},
	{"[defaults]\r\npipelining = False\r\n", true},
	{"[galaxy]\npipelining = False\n", false},
	{"[defaults]\n# pipelining = False\n; pipelining = False\n", false},
	{"[defaults]\nforks = 5\n  pipelining = False\n", false},
	{"[defaults]\npipelining_more = 1\nnot_pipelining = 1\n", false},
	{"pipelining = False\n[defaults]\n", false},
	{"[defaults]\nforks = 5\n[persistent_connection]\npipelining = 1\n", false},
	{"", false},
};

static void test_cfg_chose(void)
{
	for (size_t i = 0; i < sizeof(inis) / sizeof(inis[0]); i++) {
		put("user.cfg", inis[i].ini);
		reset("user.cfg");
		const char *got = decide();
		if (inis[i].chose ? got != NULL : !got || strcmp(got, "True") != 0) {
			printf("#   ini %zu: got %s\n", i, got ? got : "NULL");
			t_case_failed = 1;
		}
	}
}

/* $ANSIBLE_CONFIG, ./ansible.cfg, ~/.ansible.cfg: the first found is the
 * only one read. */
static void test_search_order(void)
{
	static const char sets[] = "[defaults]\npipelining = False\n";
	_cleanup_free_ char *run = tp("run");
	/* the working directory's */
	reset(NULL);
	put("run/ansible.cfg", sets);
	CHECK(decide() == NULL);
	_cleanup_free_ char *p = ansible_cfg_path();
	CHECK_STR(p, "ansible.cfg");
	/* $ANSIBLE_CONFIG first, though it does not set it */
	put("empty.cfg", "");
	setenv("ANSIBLE_CONFIG", "empty.cfg", 1);
	CHECK(decide() == NULL); /* relative: run/empty.cfg, absent */
	_cleanup_free_ char *abs = tp("empty.cfg");
	setenv("ANSIBLE_CONFIG", abs, 1);
	CHECK_STR(decide(), "True");
	/* $ANSIBLE_CONFIG a directory: its ansible.cfg */
	setenv("ANSIBLE_CONFIG", run, 1);
	CHECK(decide() == NULL);
	/* a world-writable working directory is skipped, as Ansible does */
	reset(NULL);
	put("run/ansible.cfg", sets);
	chmod(run, 0777);
	CHECK_STR(decide(), "True");
	/* but an empty $ANSIBLE_CONFIG is the working directory, read anyway */
	setenv("ANSIBLE_CONFIG", "", 1);
	CHECK(decide() == NULL);
	unsetenv("ANSIBLE_CONFIG");
	/* then ~/.ansible.cfg */
	put("home/.ansible.cfg", sets);
	CHECK(decide() == NULL);
	setenv("ANSIBLE_CONFIG", "~/.ansible.cfg", 1);
	CHECK(decide() == NULL);
	chmod(run, 0755);
}

static struct env *load(const char *value)
{
	_cleanup_free_ char *yaml = xasprintf("version: 1\n"
					      "machines:\n"
					      "  web:\n"
					      "    box: test/tiny\n"
					      "    provision:\n"
					      "      - ansible: { playbook: site.yml%s%s }\n",
					      value ? ", pipelining: " : "", value ? value : "");
	return t_env_load(yaml);
}

/* The envfile's key wins over the environment and ansible.cfg; it is not
 * part of the step's id (running the same play faster is the same step). */
static void test_envfile_key(void)
{
	put("run/ansible.cfg", "[defaults]\npipelining = True\n");
	struct env *off = load("false"), *on = load("yes"), *none = load(NULL);
	CHECK(off && on && none);
	if (!off || !on || !none)
		goto out;
	const struct step *s_off = &off->machines[0].steps[0], *s_on = &on->machines[0].steps[0];
	const struct step *s_none = &none->machines[0].steps[0];
	CHECK(s_off->ansible.pipelining == OPT_FALSE && s_on->ansible.pipelining == OPT_TRUE);
	CHECK(s_none->ansible.pipelining == OPT_UNSET);
	CHECK(strcmp(s_off->id, s_none->id) == 0 && strcmp(s_on->id, s_none->id) == 0);
	setenv("ANSIBLE_PIPELINING", "True", 1);
	CHECK_STR(ansible_pipelining(&s_off->ansible), "False");
	CHECK(ansible_pipelining(&s_none->ansible) == NULL);
	struct strv env = {0};
	ansible_pipelining_env(&s_off->ansible, &env);
	CHECK(env.n == 2 && strcmp(env.v[0], "ANSIBLE_PIPELINING=False") == 0 &&
	      strcmp(env.v[1], "ANSIBLE_SSH_PIPELINING=False") == 0);
	strv_free(&env);
	unsetenv("ANSIBLE_PIPELINING");
	CHECK_STR(ansible_pipelining(&s_on->ansible), "True");
out:
	env_free(off);
	env_free(on);
	env_free(none);
	struct env *bad = load("maybe");
	CHECK(!bad);
	env_free(bad);
}

int main(void)
{
	struct diag d = {0};
	top = getcwd(NULL, 0);
	if (!mkdtemp(T))
		return 1;
	_cleanup_free_ char *home = tp("home"), *run = tp("run");
	if (mkdir_p(home, 0755, &d) < 0 || mkdir_p(run, 0755, &d) < 0)
		return 1;
	RUN(test_nobody_chose);
	RUN(test_env_chose);
	RUN(test_cfg_chose);
	RUN(test_search_order);
	RUN(test_envfile_key);
	reset(NULL);
	static const char *const files[] = {"empty.cfg", "user.cfg", "run", "home", ""};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		_cleanup_free_ char *p = tp(files[i]);
		if (unlink(p) < 0)
			rmdir(p);
	}
	if (top && chdir(top) < 0)
		return 1;
	free(top);
	return T_END();
}
