/* corral package [MACHINE] [-o FILE]: a stopped machine as a .box for its
 * provider, through the provider's `package` entry (NULL: it says so).
 * The box is written to a temporary name beside FILE and renamed into
 * place only when complete, with FILE.sha256 (sha256sum's format) written
 * first: never a half-written box, and on any failure (a full disk
 * included) neither the box nor the temporary file is left. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/base/util.h"
#include "core/host/mstate.h"
#include "engine/lifecycle.h"
#include "providers/provider.h"

static const struct command *pkg_cmd(void) { return command_find("package"); }

static const struct machine_cfg *pkg_machine(struct ctx *c, const char *name)
{
	const struct machine_cfg *mc = name ? env_machine(c->env, name) : env_primary(c->env);
	if (!mc && name)
		usage_error(pkg_cmd(), "no machine `%s` in %s", name, c->env->path);
	else if (!mc)
		usage_error(pkg_cmd(), "several machines and none is `primary`: name one");
	return mc;
}

/* The checksum file, then the box: FILE.sha256 names the file by its base name. */
static int finish(const char *tmp, const char *out, char hex[HASH_HEX_MAX], struct diag *d)
{
	if (hash_file(tmp, "sha256", NULL, hex, d) < 0)
		return -1;
	const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
	_cleanup_free_ char *sumf = xasprintf("%s.sha256", out);
	_cleanup_free_ char *line = xasprintf("%s  %s\n", hex, base);
	if (write_file_atomic(sumf, line, strlen(line), 0644, d) < 0)
		return -1;
	if (rename(tmp, out) < 0)
		return diag_errno(d, "rename %s to %s", tmp, out);
	return 0;
}

static int package_one(const struct provider *p, struct machine *m, const char *out,
		       char hex[HASH_HEX_MAX], struct diag *d)
{
	_cleanup_free_ char *dir = path_dirname(out);
	_cleanup_free_ char *tmp = xasprintf("%s/.%s.tmp-%d", dir, strrchr(out, '/') + 1,
					     (int)getpid());
	unlink(tmp);
	m->box_dir = xstrdup(machine_str(m, MK_BOX_DIR));
	int r = p->package(m, tmp, d);
	if (r == 0)
		r = finish(tmp, out, hex, d);
	if (r < 0)
		unlink(tmp);
	return r;
}

/* Refuses what cannot be packaged: not created, running, no `package`. */
static int can_package(const struct provider *p, enum mstate s, const char *name,
		       struct diag *d)
{
	if (!p || s == MS_NOT_CREATED) {
		diag_fail(d, "%s is not created: nothing to package", name);
		return diag_hint(d, "`corral up %s`, change it, `corral halt %s`, then package it",
				 name, name);
	}
	if (s != MS_STOPPED) {
		diag_fail(d, "%s is %s: package takes a stopped machine", name, mstate_name(s));
		return diag_hint(d, "`corral halt %s` first", name);
	}
	if (!p->package)
		return diag_fail(d, "the %s provider does not support package", p->name);
	return 0;
}

static void print_result(struct ctx *c, const char *name, const char *prov, const char *out,
			 const char *hex)
{
	if (c->json) {
		json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "machine", name, "provider", prov,
				      "box", out, "checksum_type", "sha256", "checksum", hex);
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
		puts(s);
		free(s);
		json_decref(o);
	} else {
		printf("packaged %s (%s) as %s\nsha256 %s (in %s.sha256)\n", name, prov, out, hex,
		       out);
	}
}

static int run_package(struct ctx *c, const struct machine_cfg *mc, const char *out_arg)
{
	char cwd[4096];
	_cleanup_free_ char *def = xasprintf("%s/%s.box", c->env->dir, mc->name);
	_cleanup_free_ char *out = out_arg ? path_abs(getcwd(cwd, sizeof(cwd)) ? cwd : "/", out_arg)
					   : xstrdup(def);
	struct machine m;
	struct diag d = {0};
	if (machine_open(&m, c->env, mc, &d) < 0)
		return report_exit(&d);
	enum mstate s = MS_NOT_CREATED;
	const struct provider *p = lifecycle_state(&m, &s);
	char hex[HASH_HEX_MAX];
	int r = can_package(p, s, mc->name, &d);
	if (r == 0 && path_exists(out))
		r = diag_fail(&d, "%s exists; remove it or give another name with -o", out);
	if (r == 0)
		log_machine(mc->name, "packaging");
	if (r == 0 && (r = package_one(p, &m, out, hex, &d)) < 0)
		diag_wrap(&d, "%s: package", mc->name);
	if (r == 0)
		print_result(c, mc->name, p->name, out, hex);
	machine_close(&m);
	return r < 0 ? report_exit(&d) : EXIT_OK;
}

int cmd_package(struct ctx *c)
{
	static const struct option opts[] = {{"output", required_argument, NULL, 'o'}, {0}};
	const char *out = NULL;
	int opt;
	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(c->argc, c->argv, "o:", opts, NULL)) != -1) {
		if (opt != 'o')
			return usage_error(pkg_cmd(), "unknown option `%s`", c->argv[optind - 1]);
		out = optarg;
	}
	if (c->argc - optind > 1)
		return usage_error(pkg_cmd(), "one machine at a time");
	int rc = ctx_load_env(c);
	if (rc)
		return rc;
	const struct machine_cfg *mc = pkg_machine(c, optind < c->argc ? c->argv[optind] : NULL);
	if (!mc)
		return EXIT_USAGE;
	if ((rc = ctx_lock(c)) != EXIT_OK)
		return rc;
	return run_package(c, mc, out);
}
