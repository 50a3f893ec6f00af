/* The provisioners against real sshd servers on loopback (two of them, each
 * with its own host key, standing in for two machines) and the real
 * ansible-playbook: shell (inline, path, args, env, privileged through a
 * real sudo, CRLF, sensitive), failure reports, file trees, run semantics
 * and their record, and a two-group playbook with host keys checked. */
#include <fcntl.h>
#include <glob.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/host/proc.h"
#include "core/ssh/ssh.h"
#include "core/host/state.h"
#include "core/base/util.h"
#include "provisioners/ansible.h"
#include "provisioners/provisioner.h"
#include "tests/unit/t.h"
#include "tests/unit/t_net.h"

static char T[] = "/tmp/corral-prov.XXXXXX";
static char user[32]; /* a throw-away login with password-less sudo */
static pid_t sshd_pid[2] = {-1, -1};
static struct env env;
static struct machine_cfg cfg[2];
static struct machine mach[2];
static struct prov_target tg[2];
static unsigned next_id;

static char *tpath(const char *leaf) { return path_join(T, leaf); }

static void put(const char *path, const char *text, mode_t mode)
{
	_cleanup_free_ char *dir = path_dirname(path);
	struct diag d = {0};
	mkdir_p(dir, 0755, &d);
	write_file_atomic(path, text, strlen(text), mode, &d);
	chmod(path, mode);
}

static char *slurp(const char *path)
{
	char *data = NULL;
	struct diag d = {0};
	return read_file(path, 1 << 24, &data, NULL, &d) == 0 ? data : NULL;
}

static int sh(const char *script)
{
	const char *argv[] = {"sh", "-c", script, NULL};
	struct diag d = {0};
	int rc = proc_run(argv, NULL, &d);
	if (rc < 0)
		printf("#   %s: %s\n", script, d.msg);
	return rc;
}

/* Output of the code between capture_start and capture_end (both the
 * streamed lines on stdout and the log on stderr), echoed as comments. */
static int saved[2];
static void capture_start(void)
{
	fflush(stdout);
	fflush(stderr);
	_cleanup_free_ char *p = tpath("capture");
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	for (int i = 0; i < 2; i++) {
		saved[i] = dup(i + 1);
		dup2(fd, i + 1);
	}
	close(fd);
}

static char *capture_end(void)
{
	fflush(stdout);
	fflush(stderr);
	for (int i = 0; i < 2; i++) {
		dup2(saved[i], i + 1);
		close(saved[i]);
	}
	_cleanup_free_ char *p = tpath("capture");
	char *out = slurp(p);
	for (const char *l = out; l && *l;) {
		size_t n = strcspn(l, "\n");
		printf("#   | %.*s\n", (int)n, l);
		l += n + (l[n] == '\n');
	}
	return out ? out : xstrdup("");
}

/* sshd i with host key `hostkey`. */
static void sshd_start(int i, const char *hostkey)
{
	_cleanup_free_ char *conf = xasprintf("%s/sshd%d.conf", T, i);
	_cleanup_free_ char *log = xasprintf("%s/sshd%d.log", T, i);
	_cleanup_free_ char *text = xasprintf(
		"ListenAddress 127.0.0.1\nHostKey %s/%s\nAuthorizedKeysFile %s/authorized_keys\n"
		"StrictModes no\nUsePAM no\nPidFile none\nPasswordAuthentication no\n"
		"KbdInteractiveAuthentication no\nAllowUsers %s\nSubsystem sftp internal-sftp\n",
		T, hostkey, T, user);
	put(conf, text, 0644);
	sshd_pid[i] = t_sshd_start(conf, tg[i].ep.port, log, 0);
}

/* Stops sshd i and its connections (each in its own session), so that
 * Ansible's persistent connections end with it. */
static void sshd_stop(int i)
{
	if (sshd_pid[i] > 0) {
		_cleanup_free_ char *kids = xasprintf("/proc/%d/task/%d/children", (int)sshd_pid[i],
						      (int)sshd_pid[i]);
		_cleanup_free_ char *list = slurp(kids);
		for (char *p = list, *end; p && *p; p = end) {
			long pid = strtol(p, &end, 10);
			if (end == p)
				break;
			kill((pid_t)pid, SIGTERM);
		}
		kill(sshd_pid[i], SIGTERM);
		waitpid(sshd_pid[i], NULL, 0);
	}
	sshd_pid[i] = -1;
}

static bool connect_machine(int i)
{
	struct diag d = {0};
	ssh_close(tg[i].conn);
	tg[i].conn = NULL;
	if (ssh_wait_ready(&tg[i].ep, 10000, NULL, NULL, &tg[i].conn, &d) == 0)
		return true;
	printf("#   connect m%d: %s\n", i + 1, d.msg);
	return false;
}

static void make_user(void)
{
	snprintf(user, sizeof(user), "crlprov%d", (int)getpid());
	_cleanup_free_ char *cmd = xasprintf(
		"flock /tmp/corral-test-users.lock useradd -M -d %s/home -s /bin/bash %s && "
		"flock /tmp/corral-test-users.lock usermod -p '*' %s && "
		"mkdir -p %s/home && chown %s: %s/home && "
		"echo '%s ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/%s && chmod 0440 /etc/sudoers.d/%s",
		T, user, user, T, user, T, user, user, user);
	if (sh(cmd) < 0)
		printf("not ok - the test user %s (useradd, sudoers)\n", user);
}

static void drop_user(void)
{
	_cleanup_free_ char *cmd = xasprintf("rm -f /etc/sudoers.d/%s; "
					     "flock /tmp/corral-test-users.lock userdel %s 2>/dev/null",
					     user, user);
	sh(cmd);
}

static void setup(void)
{
	struct diag d = {0};
	mkdtemp(T);
	chmod(T, 0755);
	make_user();
	_cleanup_free_ char *state = tpath("project/.corral");
	env = (struct env){.path = tpath("project/corral.yaml"), .dir = tpath("project"),
			   .state_dir = xstrdup(state), .machines = cfg, .nmachines = 2};
	_cleanup_free_ char *ha = tpath("host_a"), *hb = tpath("host_b"), *hc = tpath("host_c");
	char *pub = NULL;
	ssh_host_key_generate(ha, &pub, &d);
	free(pub);
	ssh_host_key_generate(hb, &pub, &d);
	free(pub);
	ssh_host_key_generate(hc, &pub, &d);
	free(pub);
	for (int i = 0; i < 2; i++) {
		cfg[i] = (struct machine_cfg){.name = xasprintf("m%d", i + 1),
					      .base_name = xasprintf("m%d", i + 1)};
		machine_open(&mach[i], &env, &cfg[i], &d);
		mkdir_p(mach[i].dir, 0700, &d);
		struct endpoint *ep = &tg[i].ep;
		tg[i].m = &mach[i];
		snprintf(ep->host, sizeof(ep->host), "127.0.0.1");
		snprintf(ep->user, sizeof(ep->user), "%s", user);
		ep->port = t_free_port();
		_cleanup_free_ char *key = machine_path(&mach[i], "id_ed25519");
		_cleanup_free_ char *kh = machine_path(&mach[i], "known_hosts");
		snprintf(ep->key_path, sizeof(ep->key_path), "%s", key);
		snprintf(ep->known_hosts, sizeof(ep->known_hosts), "%s", kh);
		ssh_machine_key(mach[i].dir, &pub, &d);
		_cleanup_free_ char *ak = tpath("authorized_keys");
		_cleanup_free_ char *old = slurp(ak);
		_cleanup_free_ char *all = xasprintf("%s%s\n", old ? old : "", pub);
		put(ak, all, 0644);
		free(pub);
		sshd_start(i, i == 0 ? "host_a" : "host_b");
	}
}

static struct step new_step(enum step_kind kind, const char *name, enum run_when run)
{
	struct step s = {.kind = kind, .name = (char *)name, .index = 1, .run = run};
	snprintf(s.id, sizeof(s.id), "%08x%056u", ++next_id, 0u);
	return s;
}

static struct step inline_step(const char *name, const char *script)
{
	struct step s = new_step(STEP_SHELL, name, RUN_ONCE);
	s.shell.inline_script = (char *)script;
	return s;
}

static int run_step(int i, const struct step *s, struct diag *d)
{
	struct prov_ctx pc = {.m = &mach[i], .conn = tg[i].conn, .ep = &tg[i].ep,
			      .peers = tg, .npeers = 2};
	return provisioner_for(s->kind)->run(&pc, s, d);
}

static void test_connect(void)
{
	CHECK(connect_machine(0));
	CHECK(connect_machine(1));
}

static void test_shell_inline_env_args(void)
{
	struct kv env_vars[] = {{"GREETING", "it's a \"test\" $HOME"}, {"EMPTY", ""}};
	struct step s = inline_step("greet", "printf 'g=%s e=[%s] n=%s 1=%s 2=%s\\n' "
					     "\"$GREETING\" \"$EMPTY\" \"$#\" \"$1\" \"$2\"; id -un");
	s.shell.env = env_vars;
	s.shell.nenv = 2;
	char *args[] = {"one", "two 'three'"};
	s.shell.args = (struct strv){args, 2};
	struct diag d = {0};
	capture_start();
	int rc = run_step(0, &s, &d);
	_cleanup_free_ char *out = capture_end();
	CHECK(rc == 0);
	CHECK(strstr(out, "m1:greet | g=it's a \"test\" $HOME e=[] n=2 1=one 2=two 'three'"));
	_cleanup_free_ char *who = xasprintf("m1:greet | %s\n", user);
	CHECK(strstr(out, who));
	/* privileged: root through sudo, and env still reaches the script */
	s.shell.privileged = true;
	capture_start();
	rc = run_step(0, &s, &d);
	_cleanup_free_ char *out2 = capture_end();
	CHECK(rc == 0);
	CHECK(strstr(out2, "m1:greet | root\n"));
	CHECK(strstr(out2, "g=it's a \"test\" $HOME"));
}

static void test_shell_bad_env_name(void)
{
	struct kv bad[] = {{"A;rm -rf /", "x"}};
	struct step s = inline_step("shell", "true");
	s.shell.env = bad;
	s.shell.nenv = 1;
	struct diag d = {0};
	CHECK(run_step(0, &s, &d) < 0);
	CHECK(strstr(d.msg, "not a variable name"));
}

static bool no_script_left(const struct step *s)
{
	_cleanup_free_ char *pat = xasprintf("/tmp/corral-*-%.8s-*", s->id);
	glob_t g;
	int r = glob(pat, 0, NULL, &g);
	globfree(&g);
	return r == GLOB_NOMATCH;
}

static void test_shell_path_crlf(void)
{
	_cleanup_free_ char *script = tpath("project/scripts/setup.sh");
	put(script, "v=abc\r\n[ ${#v} -eq 3 ] && echo \"len3 $1 $(id -u) $0\" || "
		    "echo lenother\r\nexit \"${2:-0}\"\r\n", 0644);
	struct step s = new_step(STEP_SHELL, "setup", RUN_ONCE);
	s.shell.path = script;
	s.shell.privileged = true;
	char *args[] = {"fast", "0"};
	s.shell.args = (struct strv){args, 2};
	struct diag d = {0};
	capture_start();
	int rc = run_step(1, &s, &d);
	_cleanup_free_ char *out = capture_end();
	CHECK(rc == 0);
	_cleanup_free_ char *want = xasprintf("m2:setup | len3 fast 0 /tmp/corral-step-%.8s-", s.id);
	printf("#   diag: %s\n", d.msg);
	CHECK(strstr(out, want));
	CHECK(no_script_left(&s));
	/* binary: true keeps the CRs; a failing script is removed as well */
	s.shell.binary = true;
	args[1] = "4";
	capture_start();
	rc = run_step(1, &s, &d);
	_cleanup_free_ char *out2 = capture_end();
	CHECK(rc < 0);
	CHECK(strstr(out2, "m2:setup | lenother"));
	CHECK(no_script_left(&s));
	/* inline scripts get the same CRLF handling */
	struct step i = inline_step("shell", "v=abc\r\n[ ${#v} -eq 3 ] && echo inl3 || echo inlx\r\n");
	capture_start();
	rc = run_step(1, &i, &d);
	_cleanup_free_ char *out3 = capture_end();
	CHECK(rc == 0 && strstr(out3, "m2 | inl3"));
}

static void test_shell_sensitive(void)
{
	const char *secret = "s3cr3t-t0ken-xyzzy";
	struct kv vars[] = {{"TOKEN", (char *)secret}};
	struct step s = inline_step("deploy", "test -n \"$TOKEN\" && echo \"token is $TOKEN\"; exit 5");
	s.shell.env = vars;
	s.shell.nenv = 1;
	s.shell.sensitive = true;
	struct log_opts verbose = {.verbose = true};
	log_setup(&verbose);
	struct diag d = {0};
	capture_start();
	int rc = run_step(0, &s, &d);
	_cleanup_free_ char *out = capture_end();
	CHECK(rc < 0);
	CHECK(strstr(d.msg, "exit code 5") && strstr(d.msg, "token is ***"));
	CHECK(!strstr(d.msg, secret) && !strstr(d.hint, secret));
	CHECK(strstr(out, "sensitive"));
	CHECK(!strstr(out, "TOKEN="));
	/* the same step, not sensitive, does show them in the verbose log:
	 * the checks above would catch a leak */
	s.shell.sensitive = false;
	capture_start();
	run_step(0, &s, &d);
	_cleanup_free_ char *shown = capture_end();
	CHECK(strstr(shown, secret) && strstr(d.msg, secret));
	struct log_opts quiet = {0};
	log_setup(&quiet);
}

static json_t *provisioned(int i)
{
	return json_object_get(mach[i].state, "provisioned");
}

static bool has_id(int i, const struct step *s)
{
	size_t k;
	json_t *v;
	json_array_foreach(provisioned(i), k, v)
		if (strcmp(json_string_value(v), s->id) == 0)
			return true;
	return false;
}

static void test_failure_report(void)
{
	struct step steps[2] = {
		inline_step("prepare", "echo ready"),
		inline_step("migrate", "for i in $(seq 1 30); do echo \"line $i\"; done; exit 3"),
	};
	steps[1].index = 2;
	cfg[0].steps = steps;
	cfg[0].nsteps = 2;
	struct prov_ctx pc = {.m = &mach[0], .conn = tg[0].conn, .ep = &tg[0].ep};
	struct diag d = {0};
	capture_start();
	int rc = provision_machine(&pc, PROVISION_DEFAULT, true, NULL, &d);
	_cleanup_free_ char *out = capture_end();
	printf("#   diag: %s\n", d.msg);
	CHECK(rc < 0);
	CHECK(str_starts(d.msg, "m1: provision step 2 (migrate): exit code 3; last lines:"));
	CHECK(strstr(d.msg, "\n    line 11\n") && strstr(d.msg, "\n    line 30"));
	CHECK(!strstr(d.msg, "line 10\n"));
	CHECK(strstr(out, "m1:migrate | line 1\n"));
	/* the record: step 1 ran, the plan is still pending, on disk */
	json_t *st = NULL;
	_cleanup_free_ char *sp = machine_path(&mach[0], "state.json");
	CHECK(state_load(sp, &st, &d) == 0);
	CHECK(json_is_true(json_object_get(st, "provision_pending")));
	json_t *ran = json_object_get(st, "provisioned");
	CHECK(json_array_size(ran) == 1 &&
	      strcmp(json_string_value(json_array_get(ran, 0)), steps[0].id) == 0);
	json_decref(st);
	cfg[0].steps = NULL;
	cfg[0].nsteps = 0;
}

static void test_selection_table(void)
{
	struct step once = new_step(STEP_SHELL, "a", RUN_ONCE);
	struct step always = new_step(STEP_SHELL, "b", RUN_ALWAYS);
	struct step never = new_step(STEP_SHELL, "c", RUN_NEVER);
	char *names[] = {"c"};
	struct strv only = {names, 1};
	CHECK(provision_selects(&once, PROVISION_DEFAULT, NULL, true, false));
	CHECK(!provision_selects(&once, PROVISION_DEFAULT, NULL, true, true));
	CHECK(!provision_selects(&once, PROVISION_DEFAULT, NULL, false, false));
	CHECK(provision_selects(&once, PROVISION_FORCE, NULL, false, true));
	CHECK(provision_selects(&always, PROVISION_DEFAULT, NULL, false, true));
	CHECK(!provision_selects(&always, PROVISION_NONE, NULL, true, false));
	CHECK(!provision_selects(&never, PROVISION_FORCE, NULL, true, false));
	CHECK(provision_selects(&never, PROVISION_FORCE, &only, false, false));
	CHECK(!provision_selects(&once, PROVISION_FORCE, &only, true, false));
}

/* Steps that append their letter to a file on the "guest": once (a), a once
 * step that fails until its marker exists (b), always (c), never (d). */
static char *log_of_runs(void)
{
	_cleanup_free_ char *p = tpath("home/runs");
	char *s = slurp(p);
	unlink(p);
	return s ? s : xstrdup("");
}

static void test_run_semantics(void)
{
	_cleanup_free_ char *ra = xasprintf("echo -n a >> %s/home/runs", T);
	_cleanup_free_ char *rb = xasprintf("[ -e %s/home/marker ] || { touch %s/home/marker; exit 1; };"
					    " echo -n b >> %s/home/runs", T, T, T);
	_cleanup_free_ char *rc_ = xasprintf("echo -n c >> %s/home/runs", T);
	_cleanup_free_ char *rd = xasprintf("echo -n d >> %s/home/runs", T);
	struct step steps[4] = {inline_step("a", ra), inline_step("b", rb), inline_step("c", rc_),
				inline_step("d", rd)};
	steps[2].run = RUN_ALWAYS;
	steps[3].run = RUN_NEVER;
	for (unsigned k = 0; k < 4; k++)
		steps[k].index = k + 1;
	cfg[1].steps = steps;
	cfg[1].nsteps = 4;
	struct prov_ctx pc = {.m = &mach[1], .conn = tg[1].conn, .ep = &tg[1].ep};
	struct diag d = {0};
	char *dn[] = {"d"}, *an[] = {"a", "c"};
	struct strv only_d = {dn, 1}, only_ac = {an, 2};
	capture_start();
	int r1 = provision_machine(&pc, PROVISION_DEFAULT, true, NULL, &d); /* created; b fails */
	_cleanup_free_ char *o1 = log_of_runs();
	bool pend1 = json_is_true(json_object_get(mach[1].state, "provision_pending"));
	int r2 = provision_machine(&pc, PROVISION_DEFAULT, false, NULL, &d); /* resumes at b */
	_cleanup_free_ char *o2 = log_of_runs();
	bool pend2 = json_is_true(json_object_get(mach[1].state, "provision_pending"));
	int r3 = provision_machine(&pc, PROVISION_DEFAULT, false, NULL, &d); /* later up */
	_cleanup_free_ char *o3 = log_of_runs();
	int r4 = provision_machine(&pc, PROVISION_FORCE, false, NULL, &d); /* up --provision */
	_cleanup_free_ char *o4 = log_of_runs();
	int r5 = provision_machine(&pc, PROVISION_FORCE, false, &only_d, &d);
	_cleanup_free_ char *o5 = log_of_runs();
	int r6 = provision_machine(&pc, PROVISION_FORCE, false, &only_ac, &d);
	_cleanup_free_ char *o6 = log_of_runs();
	int r7 = provision_machine(&pc, PROVISION_NONE, true, NULL, &d);
	_cleanup_free_ char *o7 = log_of_runs();
	free(capture_end());
	CHECK(r1 < 0 && strcmp(o1, "a") == 0 && pend1);
	CHECK(r2 == 0 && strcmp(o2, "bc") == 0 && !pend2);
	CHECK(r3 == 0 && strcmp(o3, "c") == 0);
	CHECK(r4 == 0 && strcmp(o4, "abc") == 0);
	CHECK(r5 == 0 && strcmp(o5, "d") == 0);
	CHECK(r6 == 0 && strcmp(o6, "ac") == 0);
	CHECK(r7 == 0 && strcmp(o7, "") == 0);
	CHECK(has_id(1, &steps[0]) && has_id(1, &steps[1]) && has_id(1, &steps[3]));
	/* a new machine forgets the record of its former life */
	capture_start();
	int r8 = provision_machine(&pc, PROVISION_DEFAULT, true, NULL, &d);
	free(capture_end());
	_cleanup_free_ char *o8 = log_of_runs();
	CHECK(r8 == 0 && strcmp(o8, "abc") == 0 && !has_id(1, &steps[3]));
	cfg[1].steps = NULL;
	cfg[1].nsteps = 0;
}

static mode_t mode_of(const char *leaf)
{
	_cleanup_free_ char *p = tpath(leaf);
	struct stat st;
	return stat(p, &st) == 0 ? st.st_mode & 07777 : 0;
}

static void test_file_tree(void)
{
	_cleanup_free_ char *src = tpath("project/conf");
	_cleanup_free_ char *a = tpath("project/conf/bin/run.sh"), *b = tpath("project/conf/app.ini");
	_cleanup_free_ char *c = tpath("project/conf/deep/er/x.txt");
	put(a, "#!/bin/sh\necho run\n", 0750);
	put(b, "[app]\nname=demo\n", 0640);
	put(c, "deep\n", 0604);
	struct step s = new_step(STEP_FILE, "file", RUN_ONCE);
	s.file.source = src;
	s.file.destination = "~/etc/app";
	struct diag d = {0};
	capture_start();
	int rc = run_step(0, &s, &d);
	free(capture_end());
	CHECK(rc == 0);
	CHECK(mode_of("home/etc/app/bin/run.sh") == 0750);
	CHECK(mode_of("home/etc/app/app.ini") == 0640);
	CHECK(mode_of("home/etc/app/deep/er/x.txt") == 0604);
	_cleanup_free_ char *got = tpath("home/etc/app/app.ini");
	_cleanup_free_ char *text = slurp(got);
	CHECK(text && strcmp(text, "[app]\nname=demo\n") == 0);
	/* a directory the login may not write: staged, then copied by root */
	_cleanup_free_ char *locked = tpath("rootonly");
	mkdir(locked, 0755);
	_cleanup_free_ char *into = tpath("rootonly/app");
	s.file.destination = into;
	capture_start();
	rc = run_step(0, &s, &d);
	_cleanup_free_ char *log = capture_end();
	CHECK(rc == 0 && strstr(log, "copying it into place with sudo"));
	CHECK(mode_of("rootonly/app/bin/run.sh") == 0750 && mode_of("rootonly/app/app.ini") == 0640);
	CHECK(no_script_left(&s));
	/* a single file to an absolute destination */
	_cleanup_free_ char *dst = tpath("home/single.ini");
	s.file.source = b;
	s.file.destination = dst;
	CHECK(run_step(1, &s, &d) == 0);
	CHECK(mode_of("home/single.ini") == 0640);
}

static char *const play_yml =
	"- hosts: everything\n"
	"  gather_facts: false\n"
	"  tasks:\n"
	"    - file: { path: \"{{ out }}/{{ inventory_hostname }}\", state: directory }\n"
	"- hosts: web\n"
	"  gather_facts: false\n"
	"  tasks:\n"
	"    - name: the release file, from a template\n"
	"      template: { src: app.conf.j2, dest: \"{{ out }}/{{ inventory_hostname }}/app.conf\","
	" mode: \"0640\" }\n"
	"      notify: restart app\n"
	"    - name: a static file\n"
	"      copy: { src: files/motd, dest: \"{{ out }}/{{ inventory_hostname }}/motd\" }\n"
	"  handlers:\n"
	"    - name: restart app\n"
	"      copy: { content: \"restarted by {{ ansible_user_id | default('?') }}\\n\","
	" dest: \"{{ out }}/{{ inventory_hostname }}/restarted\" }\n"
	"- hosts: db\n"
	"  gather_facts: false\n"
	"  tasks:\n"
	"    - copy: { content: \"db {{ release }} {{ role_name_var }}\\n\","
	" dest: \"{{ out }}/{{ inventory_hostname }}/db.conf\" }\n"
	"    - copy: { content: \"vars={{ [l, o, q, spaced, flag, nested, nothing] | to_json }}\\n\","
	" dest: \"{{ out }}/{{ inventory_hostname }}/vars.json\" }\n"
	"- hosts: everything\n"
	"  gather_facts: false\n"
	"  tasks:\n"
	"    - command: whoami\n"
	"      register: who\n"
	"    - copy: { content: \"{{ who.stdout }}\\n\","
	" dest: \"{{ out }}/{{ inventory_hostname }}/whoami\" }\n"
	"    - name: the module's Python, as the guest runs it\n"
	"      shell: xargs -0 echo < /proc/$PPID/cmdline\n"
	"      register: parent\n"
	"    - copy: { content: \"{{ parent.stdout }}\\n\","
	" dest: \"{{ out }}/{{ inventory_hostname }}/parent\" }\n";

static struct ansible_group groups[3];
/* Group vars that must reach the playbook as they are: quotes, backslashes,
 * newlines, spaces, booleans, null, numbers, lists and nested mappings. */
static const char db_vars[] =
	"{\"role_name_var\": \"primary\", \"l\": [1, true, null], \"o\": {\"k\": 1.5},"
	" \"q\": \"a'b\\\\c\\nd\\\"e\", \"spaced\": \"  two words, 'single' \\\"double\\\" # ; = [x] \","
	" \"flag\": false, \"nested\": {\"a\": {\"b\": [2, \"x y\", {\"t\": true}]}, \"n\": -3},"
	" \"nothing\": null}";
static char *web_hosts[] = {"m1"}, *db_hosts[] = {"m2", "ghost"}, *children[] = {"web", "db"};

static struct step playbook_step(const char *out)
{
	_cleanup_free_ char *dir = tpath("project/ansible");
	_cleanup_free_ char *pb = path_join(dir, "site.yml");
	_cleanup_free_ char *tpl = path_join(dir, "app.conf.j2");
	_cleanup_free_ char *motd = path_join(dir, "files/motd");
	put(pb, play_yml, 0644);
	put(tpl, "release={{ release }}\ncolor={{ color }}\n", 0644);
	put(motd, "welcome\n", 0644);
	json_decref(groups[0].vars);
	json_decref(groups[1].vars);
	groups[0] = (struct ansible_group){.name = "web", .hosts = {web_hosts, 1},
					   .vars = json_pack("{s:s}", "color", "blue")};
	groups[1] = (struct ansible_group){
		.name = "db", .hosts = {db_hosts, 2},
		.vars = json_loads(db_vars, 0, NULL)};
	groups[2] = (struct ansible_group){.name = "everything", .children = {children, 2}};
	struct step s = new_step(STEP_ANSIBLE, "site", RUN_ONCE);
	s.ansible.playbook = path_join(dir, "site.yml");
	s.ansible.groups = groups;
	s.ansible.ngroups = 3;
	s.ansible.extra_vars = json_pack("{s:s, s:s}", "release", "1.4", "out", out);
	s.ansible.become = true;
	static char *targets[] = {"m1", "m2"};
	s.ansible.targets = (struct strv){targets, 2};
	return s;
}

static void test_ansible_argv(void)
{
	struct step s = new_step(STEP_ANSIBLE, "ansible", RUN_ONCE);
	char *tags[] = {"a", "b"}, *skip[] = {"slow"}, *raw[] = {"--diff", "--forks=2"};
	s.index = 3;
	s.ansible.playbook = "/p/site.yml";
	s.ansible.extra_vars = json_pack("{s:s}", "k", "it's");
	s.ansible.become = true;
	s.ansible.tags = (struct strv){tags, 2};
	s.ansible.skip_tags = (struct strv){skip, 1};
	s.ansible.raw_arguments = (struct strv){raw, 2};
	s.ansible.verbose = 2;
	struct ansible_job j = {.env = &env, .step = &s, .machine = "m1"};
	struct strv argv;
	ansible_command(&j, &argv);
	struct buf got = {0};
	for (size_t i = 0; i < argv.n; i++)
		buf_printf(&got, "%s\n", argv.v[i]);
	_cleanup_free_ char *want = xasprintf(
		"ansible-playbook\n-i\n%s/provisioners/ansible/inventory/m1-step3.json\n--limit\nm1\n"
		"--extra-vars\n{\"k\":\"it's\"}\n--become\n--tags\na,b\n--skip-tags\nslow\n-vv\n"
		"--diff\n--forks=2\n/p/site.yml\n", env.state_dir);
	CHECK_STR(got.s, want);
	CHECK(argv.v[argv.n] == NULL);
	strv_free(&argv);
	buf_free(&got);
	json_decref(s.ansible.extra_vars);
}

static void test_inventory_text(void)
{
	_cleanup_free_ char *out = tpath("out");
	struct step s = playbook_step(out);
	struct buf inv = {0};
	struct diag d = {0};
	CHECK(ansible_inventory(&s.ansible, tg, 2, "/k h/known_hosts", &inv, &d) == 0);
	json_t *inv_json = inv.s ? json_loads(inv.s, 0, NULL) : NULL;
	json_t *all = json_object_get(inv_json, "all");
	CHECK(all != NULL);
	json_t *m2 = json_pack("{s:s, s:I, s:s, s:s, s:s}", "ansible_host", "127.0.0.1",
			       "ansible_port", (json_int_t)tg[1].ep.port, "ansible_user", user,
			       "ansible_ssh_private_key_file", tg[1].ep.key_path,
			       "corral_ssh_extra_args", "-o ForwardAgent=no");
	CHECK(json_equal(json_object_get(json_object_get(all, "hosts"), "m2"), m2));
	json_decref(m2);
	json_t *kids = json_object_get(all, "children");
	json_t *want_web = json_pack("{s:{s:{}}, s:{s:s}}", "hosts", "m1", "vars", "color", "blue");
	CHECK(json_equal(json_object_get(kids, "web"), want_web));
	json_decref(want_web);
	json_t *db = json_object_get(kids, "db"); /* ghost is not running: left out */
	json_t *want_db_hosts = json_pack("{s:{}}", "m2");
	CHECK(json_equal(json_object_get(db, "hosts"), want_db_hosts));
	json_decref(want_db_hosts);
	CHECK(json_equal(json_object_get(db, "vars"), groups[1].vars)); /* every value as it is */
	json_t *want_all = json_pack("{s:{s:{}, s:{}}}", "children", "web", "db");
	CHECK(json_equal(json_object_get(kids, "everything"), want_all));
	json_decref(want_all);
	const char *args = json_string_value(
		json_object_get(json_object_get(all, "vars"), "ansible_ssh_common_args"));
	CHECK(args && str_starts(args, "-o UserKnownHostsFile='/k h/known_hosts'"
				       " -o StrictHostKeyChecking=yes"));
	/* Each host's own options reach ssh through all's vars, the lowest
	 * rank: a user's ansible_ssh_extra_args anywhere replaces them. */
	CHECK_STR(json_string_value(json_object_get(json_object_get(all, "vars"),
						    "ansible_ssh_extra_args")),
		  "{{ corral_ssh_extra_args | default('') }}");
	CHECK(!json_object_get(json_object_get(json_object_get(all, "hosts"), "m1"),
			       "ansible_ssh_extra_args"));
	json_decref(inv_json);
	buf_free(&inv);
	/* A guest on this host, with the agent: both as ssh options of its own. */
	struct prov_target one = tg[0];
	one.ep.on_host = one.ep.forward_agent = true;
	CHECK(ansible_inventory(&s.ansible, &one, 1, "/k", &inv, &d) == 0);
	inv_json = inv.s ? json_loads(inv.s, 0, NULL) : NULL;
	json_t *m1 = json_object_get(json_object_get(json_object_get(inv_json, "all"), "hosts"), "m1");
	CHECK_STR(json_string_value(json_object_get(m1, "corral_ssh_extra_args")),
		  "-o ForwardAgent=yes -o KexAlgorithms=^curve25519-sha256,curve25519-sha256@libssh.org");
	json_decref(inv_json);
	buf_free(&inv);
	/* known_hosts: other addresses' lines stay, ours are replaced */
	_cleanup_free_ char *old = xasprintf("[127.0.0.1]:%u ssh-ed25519 OLDKEY\n"
					     "10.0.0.9 ssh-ed25519 OTHER\n", tg[0].ep.port);
	struct buf kh = {0};
	CHECK(ansible_known_hosts(tg, 2, old, &kh, &d) == 0);
	_cleanup_free_ char *k1 = xasprintf("[127.0.0.1]:%u ssh-ed25519 AAAA", tg[0].ep.port);
	CHECK(kh.s && str_starts(kh.s, "10.0.0.9 ssh-ed25519 OTHER\n") && strstr(kh.s, k1));
	CHECK(kh.s && !strstr(kh.s, "OLDKEY"));
	buf_free(&kh);
	struct ansible_group evil = {.name = "web]\n[all:vars"};
	s.ansible.groups = &evil;
	s.ansible.ngroups = 1;
	CHECK(ansible_inventory(&s.ansible, tg, 2, "/k", &inv, &d) < 0);
	CHECK(strstr(d.msg, "group name"));
	buf_free(&inv);
	json_decref(s.ansible.extra_vars);
	free(s.ansible.playbook);
}

static char *out_file(const char *host, const char *leaf)
{
	_cleanup_free_ char *rel = xasprintf("out/%s/%s", host, leaf);
	_cleanup_free_ char *p = tpath(rel);
	return slurp(p);
}

/* A top-level step across both machines, after both are up. */
static void test_ansible_playbook(void)
{
	_cleanup_free_ char *out = tpath("out");
	struct step s = playbook_step(out);
	env.steps = &s;
	env.nsteps = 1;
	tg[0].created = tg[1].created = true;
	struct diag d = {0};
	struct env_failure envf = {0};
	capture_start();
	int rc = provision_env(&env, tg, 2, PROVISION_DEFAULT, NULL, &envf, &d);
	_cleanup_free_ char *log = capture_end();
	printf("#   diag: %s\n", rc ? d.msg : "");
	CHECK(rc == 0);
	_cleanup_free_ char *conf = out_file("m1", "app.conf");
	_cleanup_free_ char *motd = out_file("m1", "motd");
	_cleanup_free_ char *restarted = out_file("m1", "restarted");
	_cleanup_free_ char *db = out_file("m2", "db.conf");
	_cleanup_free_ char *no_db = out_file("m1", "db.conf");
	_cleanup_free_ char *who1 = out_file("m1", "whoami");
	_cleanup_free_ char *who2 = out_file("m2", "whoami");
	CHECK(conf && strcmp(conf, "release=1.4\ncolor=blue\n") == 0);
	CHECK(motd && strcmp(motd, "welcome\n") == 0);
	CHECK(restarted && str_starts(restarted, "restarted by"));
	CHECK(db && strcmp(db, "db 1.4 primary\n") == 0);
	/* the group vars reached the playbook with their types and every byte */
	_cleanup_free_ char *vars = out_file("m2", "vars.json");
	json_t *got_vars = vars && str_starts(vars, "vars=") ? json_loads(vars + 5, 0, NULL) : NULL;
	json_t *want_vars = json_pack("[O, O, O, O, O, O, O]", json_object_get(groups[1].vars, "l"),
				      json_object_get(groups[1].vars, "o"),
				      json_object_get(groups[1].vars, "q"),
				      json_object_get(groups[1].vars, "spaced"),
				      json_object_get(groups[1].vars, "flag"),
				      json_object_get(groups[1].vars, "nested"),
				      json_object_get(groups[1].vars, "nothing"));
	if (!json_equal(got_vars, want_vars))
		printf("#   vars.json: %s\n", vars ? vars : "(none)");
	CHECK(json_equal(got_vars, want_vars));
	json_decref(got_vars);
	json_decref(want_vars);
	CHECK(!no_db);
	CHECK(who1 && who2 && strcmp(who1, "root\n") == 0 && strcmp(who2, "root\n") == 0);
	/* pipelining on (nobody chose: main points ANSIBLE_CONFIG at an empty
	 * file): the module reached Python on stdin, never as an AnsiballZ_*.py
	 * file put in the guest first */
	_cleanup_free_ char *parent = out_file("m1", "parent");
	printf("#   module process: %s", parent ? parent : "(none)\n");
	CHECK(parent && strstr(parent, "python") && !strstr(parent, "AnsiballZ"));
	CHECK(mode_of("out/m1/app.conf") == 0640);
	CHECK(strstr(log, "site | PLAY RECAP"));
	CHECK(has_id(0, &s) && has_id(1, &s));
	/* the generated files: both pinned keys under the inventory's address */
	_cleanup_free_ char *khp = path_join(env.state_dir, "provisioners/ansible/known_hosts");
	_cleanup_free_ char *kh = slurp(khp);
	_cleanup_free_ char *k1 = xasprintf("[127.0.0.1]:%u ssh-ed25519 ", tg[0].ep.port);
	_cleanup_free_ char *k2 = xasprintf("[127.0.0.1]:%u ssh-ed25519 ", tg[1].ep.port);
	CHECK(kh && strstr(kh, k1) && strstr(kh, k2));
	/* a later default up: already recorded, not run again */
	tg[0].created = tg[1].created = false;
	_cleanup_free_ char *rm = xasprintf("rm -rf %s", out);
	sh(rm);
	capture_start();
	rc = provision_env(&env, tg, 2, PROVISION_DEFAULT, NULL, &envf, &d);
	free(capture_end());
	_cleanup_free_ char *again = out_file("m1", "app.conf");
	CHECK(rc == 0 && !again);
	/* a target not up in this run: the step waits, and says so when it was due */
	capture_start();
	rc = provision_env(&env, tg, 1, PROVISION_FORCE, NULL, &envf, &d);
	_cleanup_free_ char *waits = capture_end();
	CHECK(rc == 0 && strstr(waits, "it targets m2, which this run did not bring up"));
	CHECK(!envf.step && envf.machines.n == 0);
	strv_free(&envf.machines);
	env.steps = NULL;
	env.nsteps = 0;
	json_decref(s.ansible.extra_vars);
	free(s.ansible.playbook);
}

/* m2's sshd comes back with another host key on the same port: the pinned
 * key no longer matches and Ansible must refuse to talk to it. */
static void test_ansible_changed_host_key(void)
{
	_cleanup_free_ char *out = tpath("out2");
	struct step s = playbook_step(out);
	sshd_stop(1);
	sshd_start(1, "host_c");
	usleep(300 * 1000);
	struct prov_ctx pc = {.m = &mach[0], .conn = tg[0].conn, .ep = &tg[0].ep,
			      .peers = tg, .npeers = 2};
	s.ansible.limit = "all";
	struct diag d = {0};
	capture_start();
	int rc = provisioner_for(STEP_ANSIBLE)->run(&pc, &s, &d);
	_cleanup_free_ char *log = capture_end();
	printf("#   diag: %s\n", d.msg);
	CHECK(rc < 0);
	CHECK(strstr(d.msg, "exit code"));
	CHECK(strstr(log, "REMOTE HOST IDENTIFICATION HAS CHANGED") ||
	      strstr(log, "Host key verification failed"));
	_cleanup_free_ char *p = tpath("out2/m2/db.conf");
	CHECK(!path_exists(p));
	json_decref(s.ansible.extra_vars);
	free(s.ansible.playbook);
}

int main(void)
{
	if (geteuid() != 0 || !proc_have("ansible-playbook") || !proc_have("sudo")) {
		printf("not ok - test_provision needs root, sudo and ansible-playbook (make test"
		       " installs them)\n");
		return 1;
	}
	t_sshd_prepare();
	setup();
	_cleanup_free_ char *cp = tpath("ansible-cp");
	setenv("ANSIBLE_SSH_CONTROL_PATH_DIR", cp, 1);
	_cleanup_free_ char *acfg = tpath("ansible.cfg");
	put(acfg, "[defaults]\n", 0644);
	setenv("ANSIBLE_CONFIG", acfg, 1);
	unsetenv("ANSIBLE_PIPELINING");
	unsetenv("ANSIBLE_SSH_PIPELINING");
	RUN(test_connect);
	RUN(test_shell_inline_env_args);
	RUN(test_shell_bad_env_name);
	RUN(test_shell_path_crlf);
	RUN(test_shell_sensitive);
	RUN(test_failure_report);
	RUN(test_selection_table);
	RUN(test_run_semantics);
	RUN(test_file_tree);
	RUN(test_ansible_argv);
	RUN(test_inventory_text);
	RUN(test_ansible_playbook);
	RUN(test_ansible_changed_host_key);
	for (int i = 0; i < 2; i++) {
		ssh_close(tg[i].conn);
		sshd_stop(i);
		machine_close(&mach[i]);
		free(cfg[i].name);
		free(cfg[i].base_name);
	}
	json_decref(groups[0].vars);
	json_decref(groups[1].vars);
	drop_user();
	free(env.path);
	free(env.dir);
	free(env.state_dir);
	_cleanup_free_ char *rm = xasprintf("rm -rf %s", T);
	sh(rm);
	return T_END();
}
