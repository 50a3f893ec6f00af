/* corral import [VAGRANTFILE] [-o FILE] [--force]: a Vagrantfile translated
 * into corral.yaml (core/vagrant/), checked by the envfile loader before it
 * is written, with a summary of what was left out on stderr. Exit 0 when
 * written, 1 when the output exists (without --force) or cannot be
 * written, 2 for a Vagrantfile that cannot be read or parsed. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/base/util.h"
#include "core/vagrant/vagrantfile.h"

#define VAGRANTFILE_MAX (4u << 20)

struct import_args {
	const char *src, *out;
	bool force;
};

static int parse_args(struct ctx *c, struct import_args *a)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'}, {"force", no_argument, NULL, 'F'}, {0}};
	const struct command *cmd = command_find("import");
	int o;
	while ((o = getopt_long(c->argc, c->argv, "o:", opts, NULL)) != -1) {
		if (o == 'o')
			a->out = optarg;
		else if (o == 'F')
			a->force = true;
		else
			return usage_error(cmd, "unknown option");
	}
	if (c->argc - optind > 1)
		return usage_error(cmd, "import takes one VAGRANTFILE");
	a->src = optind < c->argc ? c->argv[optind] : "Vagrantfile";
	return EXIT_OK;
}

/* The real directory of path (which must exist), or NULL. */
static char *real_dir(const char *path)
{
	_cleanup_free_ char *dir = path_dirname(path);
	char buf[PATH_MAX];
	return realpath(dir, buf) ? xstrdup(buf) : NULL;
}

/* Loads the generated text as `validate` would; prints the problems. */
static int self_check(const char *as, const char *yaml)
{
	struct env *e = NULL;
	struct diag_list errs = {0};
	if (envfile_load_buffer(as, yaml, strlen(yaml), 0, &e, &errs) == 0) {
		env_free(e);
		return 0;
	}
	for (size_t i = 0; i < errs.n; i++)
		report(&errs.v[i]);
	diag_list_free(&errs);
	fputs("corral import: what it made does not validate, so it wrote nothing; this is a bug in "
	      "corral import: please report it with the Vagrantfile\n",
	      stderr);
	return -1;
}

static void summary(const char *src, const char *out, const struct vf_result *r)
{
	if (out)
		fprintf(stderr, "corral import: wrote %s from %s: ", out, src);
	else
		fprintf(stderr, "corral import: %s translated: ", src);
	fprintf(stderr, "%zu machine%s (", r->nmachines, r->nmachines == 1 ? "" : "s");
	for (size_t i = 0; i < r->nmachines; i++)
		fprintf(stderr, "%s%s", i ? ", " : "", r->machines[i]);
	fputs(")\n", stderr);
	for (int imported = 0; imported < 2; imported++) {
		size_t n = 0;
		for (size_t i = 0; i < r->nnotes; i++)
			n += r->notes[i].imported == imported;
		if (!n)
			continue;
		if (imported)
			fprintf(stderr, "%zu note%s on what differs:\n", n, n == 1 ? "" : "s");
		else
			fprintf(stderr, "%zu part%s not imported (the `# not imported` lines%s%s):\n",
				n, n == 1 ? "" : "s", out ? " in " : "", out ? out : "");
		for (size_t i = 0; i < r->nnotes; i++)
			if (r->notes[i].imported == imported && r->notes[i].line)
				fprintf(stderr, "  %s:%d: %s\n", src, r->notes[i].line, r->notes[i].text);
			else if (r->notes[i].imported == imported)
				fprintf(stderr, "  %s: %s\n", src, r->notes[i].text);
	}
	fputs("next: corral validate, then corral up\n", stderr);
}

static int read_source(const char *src, char **text, size_t *len)
{
	struct diag d = {0};
	if (read_file(src, VAGRANTFILE_MAX, text, len, &d) == 0)
		return 0;
	diag_hint(&d, path_exists(src) ? "a Vagrantfile is at most 4 MiB"
				       : "name the Vagrantfile: corral import PATH/Vagrantfile");
	report(&d);
	return -1;
}

static int write_out(const char *out, const char *yaml)
{
	struct diag d = {0};
	if (strcmp(out, "-") == 0) {
		fputs(yaml, stdout);
		return fflush(stdout) == 0 ? 0 : -1;
	}
	if (write_file_atomic(out, yaml, strlen(yaml), 0644, &d) == 0)
		return 0;
	report(&d);
	return -1;
}

int cmd_import(struct ctx *c)
{
	struct import_args a = {0};
	int rc = parse_args(c, &a);
	if (rc != EXIT_OK)
		return rc;
	_cleanup_free_ char *text = NULL;
	size_t len;
	if (read_source(a.src, &text, &len) < 0)
		return EXIT_USAGE;
	_cleanup_free_ char *src_dir = real_dir(a.src);
	_cleanup_free_ char *dflt = src_dir ? path_join(src_dir, "corral.yaml") : NULL;
	const char *out = a.out ? a.out : c->file ? c->file : dflt;
	if (!src_dir)
		return EXIT_USAGE;
	if (strcmp(out, "-") && path_exists(out) && !a.force) {
		struct diag d = {0};
		diag_fail(&d, "%s already exists", out);
		diag_hint(&d, "pass --force to overwrite it, or -o FILE to write elsewhere");
		report(&d);
		return EXIT_FAIL;
	}
	bool to_stdout = strcmp(out, "-") == 0;
	_cleanup_free_ char *out_dir = to_stdout ? xstrdup(src_dir) : real_dir(out);
	if (!out_dir) {
		struct diag d = {0};
		diag_errno(&d, "the directory of %s", out);
		report(&d);
		return EXIT_FAIL;
	}
	struct vf_opts o = {.name = a.src, .src_dir = src_dir,
			    .path_dir = strcmp(src_dir, out_dir) ? src_dir : NULL};
	struct vf_result r;
	struct diag d = {0};
	if (vagrantfile_import(&o, text, len, &r, &d) < 0) {
		report(&d);
		return EXIT_USAGE;
	}
	const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
	_cleanup_free_ char *as = path_join(out_dir, to_stdout ? "corral.yaml" : base);
	rc = self_check(as, r.yaml) < 0 || write_out(out, r.yaml) < 0 ? EXIT_FAIL : EXIT_OK;
	if (rc == EXIT_OK)
		summary(a.src, to_stdout ? NULL : out, &r);
	vf_result_free(&r);
	return rc;
}
