/* corral init [BOX]: a commented starting envfile in the current directory. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/base/util.h"

static const char template[] =
	"# corral.yaml — the machines of this project. `corral up` brings them up.\n"
	"# Schema: every key is checked; `corral validate` shows errors with line:column.\n"
	"version: 1\n"
	"\n"
	"defaults:               # merged into every machine (the machine wins)\n"
	"  box: %s\n"
	"  provider: container   # container | kvm | virtualbox | incus | auto\n"
	"  cpus: 1\n"
	"  memory: 512M\n"
	"\n"
	"machines:\n"
	"  default:\n"
	"    hostname: default\n"
	"    # ports:\n"
	"    #   - { guest: 80, host: 8080 }\n"
	"    provision:\n"
	"      - shell:\n"
	"          inline: echo \"hello from $(hostname)\"\n";

int cmd_init(struct ctx *c)
{
	static const struct option opts[] = {{"force", no_argument, NULL, 'F'}, {0}};
	bool force = false;
	int o;
	while ((o = getopt_long(c->argc, c->argv, "", opts, NULL)) != -1) {
		if (o != 'F')
			return usage_error(command_find("init"), "unknown option");
		force = true;
	}
	if (c->argc - optind > 1)
		return usage_error(command_find("init"), "init takes at most one BOX");
	const char *box = optind < c->argc ? c->argv[optind] : "corral/debian-12";
	if (strpbrk(box, " \n\t\"'#:{}[]"))
		return usage_error(command_find("init"), "`%s` is not a box name", box);
	const char *path = c->file ? c->file : "corral.yaml";
	if (!force && path_exists(path)) {
		struct diag d = {0};
		diag_fail(&d, "%s already exists", path);
		diag_hint(&d, "pass --force to overwrite it");
		report(&d);
		return EXIT_FAIL;
	}
	_cleanup_free_ char *text = xasprintf(template, box);
	struct diag d = {0};
	if (write_file_atomic(path, text, strlen(text), 0644, &d) < 0) {
		report(&d);
		return EXIT_FAIL;
	}
	printf("wrote %s; next: corral up\n", path);
	return EXIT_OK;
}
