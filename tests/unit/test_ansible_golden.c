/* Golden tests, libvirt style: each tests/golden/ansible/NAME.yaml is
 * loaded by the real envfile parser and every ansible step in it turned into
 * ansible-playbook's argv, compared with NAME.argv (the envfile's directory
 * written as $DIR). No ansible runs. CORRAL_GOLDEN_UPDATE=1 rewrites the
 * .argv files. */
#include <glob.h>
#include <stdlib.h>

#include "core/base/util.h"
#include "provisioners/ansible.h"
#include "tests/unit/t.h"

#define GOLDEN "tests/golden/ansible"

static void add_step(struct buf *out, const struct env *e, const struct step *s,
		     const char *machine)
{
	struct ansible_job j = {.env = e, .step = s, .machine = machine};
	struct strv argv;
	ansible_command(&j, &argv);
	buf_printf(out, "== %s step %u\n", machine ? machine : "provision", s->index);
	size_t dn = strlen(e->dir);
	for (size_t i = 0; i < argv.n; i++) {
		const char *a = argv.v[i];
		const char *at = strstr(a, e->dir);
		if (at) {
			buf_add(out, a, (size_t)(at - a));
			buf_printf(out, "$DIR%s\n", at + dn);
		} else {
			buf_printf(out, "%s\n", a);
		}
	}
	strv_free(&argv);
}

static char *render(const struct env *e)
{
	struct buf out = {0};
	for (size_t i = 0; i < e->nmachines; i++)
		for (size_t k = 0; k < e->machines[i].nsteps; k++)
			if (e->machines[i].steps[k].kind == STEP_ANSIBLE)
				add_step(&out, e, &e->machines[i].steps[k], e->machines[i].name);
	for (size_t k = 0; k < e->nsteps; k++)
		add_step(&out, e, &e->steps[k], NULL);
	return out.s ? out.s : xstrdup("");
}

static void check_case(const char *yaml)
{
	struct env *e = NULL;
	struct diag_list errs = {0};
	_cleanup_free_ char *abs = path_abs(getenv("PWD") ? getenv("PWD") : ".", yaml);
	if (envfile_load(abs, &e, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			printf("#   %s:%d:%d: %s\n", yaml, errs.v[i].line, errs.v[i].col, errs.v[i].msg);
		diag_list_free(&errs);
		t_case_failed = 1;
		return;
	}
	_cleanup_free_ char *got = render(e);
	_cleanup_free_ char *argvp = xasprintf("%.*s.argv", (int)(strlen(yaml) - 5), yaml);
	struct diag d = {0};
	if (getenv("CORRAL_GOLDEN_UPDATE"))
		write_file_atomic(argvp, got, strlen(got), 0644, &d);
	char *want = NULL;
	if (read_file(argvp, 1 << 20, &want, NULL, &d) < 0)
		printf("#   %s\n", d.msg);
	if (!want || strcmp(got, want) != 0) {
		printf("#   %s: argv differs from %s; got:\n%s", yaml, argvp, got);
		t_case_failed = 1;
	}
	free(want);
	env_free(e);
}

static void test_golden_files(void)
{
	glob_t g;
	CHECK(glob(GOLDEN "/*.yaml", 0, NULL, &g) == 0 && g.gl_pathc >= 3);
	for (size_t i = 0; i < g.gl_pathc; i++)
		check_case(g.gl_pathv[i]);
	globfree(&g);
}

int main(void)
{
	RUN(test_golden_files);
	return T_END();
}
