/* corral package [MACHINE] [-o FILE]: a stopped machine as a .box for its
 * provider, written by engine/package.c (never a half-written box: see
 * package.h); this file parses, picks the output path and prints. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "core/base/util.h"
#include "engine/package.h"

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
	struct diag d = {0};
	char hex[HASH_HEX_MAX];
	const char *prov = NULL;
	if (package_run(c->env, mc, out, hex, &prov, &d) < 0)
		return report_exit(&d);
	print_result(c, mc->name, prov, out, hex);
	return EXIT_OK;
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
