/* corral status [NAME...]: each machine's state as its provider sees it. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/box/oci.h"
#include "engine/lifecycle.h"
#include "core/host/machine.h"
#include "core/host/mstate.h"

static bool selected(struct ctx *c, const struct machine_cfg *m)
{
	if (c->argc < 2)
		return true;
	for (int i = 1; i < c->argc; i++)
		if (machine_named(m, c->argv[i]))
			return true;
	return false;
}

/* -v: root or rootless, as the machine's last up ran (container, kvm). */
static void print_mode(struct machine *m, const struct provider *p)
{
	const char *mode = machine_str(m, MK_MODE), *text = NULL;
	if (p && mode)
		text = strcmp(mode, "root") == 0 ? p->mode_root
		       : strcmp(mode, "rootless") == 0 ? p->mode_rootless : NULL;
	if (text)
		printf("  mode: %s\n", text);
}

/* -v: which init a container machine runs and, for corral's built-in
 * one, what it started from the guest's /etc/rc2.d. */
static void print_init(struct machine *m)
{
	static const struct {
		const char *mode, *text;
	} inits[] = {
		{"systemd", "the box's systemd"},
		{"builtin", "corral's built-in (runs sshd and the guest's /etc/rc2.d services)"},
	};
	const char *mode = machine_str(m, MK_INIT);
	for (size_t i = 0; mode && i < sizeof(inits) / sizeof(inits[0]); i++)
		if (strcmp(mode, inits[i].mode) == 0)
			printf("  init: %s\n", inits[i].text);
	if (!mode || strcmp(mode, "builtin") != 0)
		return;
	size_t n = machine_list_len(m, MK_INIT_SERVICES);
	if (!n)
		printf("  /etc/rc2.d: nothing enabled\n");
	for (size_t i = 0; i < n; i++)
		printf("  /etc/rc2.d: %s\n", machine_list_get(m, MK_INIT_SERVICES, i));
}

/* -v: the OCI image a machine runs and the image's command (entrypoint
 * + cmd), noting whether `command: image` runs it as the main service. */
static void print_image(struct machine *m)
{
	const char *dir = m->box_dir ? m->box_dir : machine_str(m, MK_BOX_DIR);
	json_t *oci = dir && *dir ? oci_box_info(dir) : NULL, *v;
	if (!oci)
		return;
	printf("  image: %s\n  image command:", json_string_value(json_object_get(oci, "reference")));
	static const char *const parts[] = {"entrypoint", "cmd"};
	size_t i;
	for (size_t k = 0; k < sizeof(parts) / sizeof(parts[0]); k++)
		json_array_foreach(json_object_get(oci, parts[k]), i, v)
			printf(" %s", json_string_value(v) ? json_string_value(v) : "?");
	const char *cmd = m->cfg->container.command;
	printf(" (%s)\n", cmd && strcmp(cmd, "image") == 0 ? "run by `command: image`"
							 : "not run: no `command: image`");
	json_decref(oci);
}

/* -v: the accelerator a kvm machine's QEMU runs on, and why auto fell back. */
static void print_accel(struct machine *m)
{
	const char *accel = machine_str(m, MK_ACCEL), *why = machine_str(m, MK_ACCEL_FALLBACK);
	if (accel)
		printf("  accel: %s%s%s\n", strcmp(accel, "kvm") == 0 ? "KVM" : "TCG",
		       why ? " — " : "", why ? why : "");
}

/* A machine with no recorded provider was never created. */
static enum mstate machine_state(struct machine *m, const struct provider **p, const char **prov)
{
	enum mstate s;
	*p = lifecycle_state(m, &s);
	*prov = *p ? (*p)->name : m->cfg->provider;
	return s;
}

int cmd_status(struct ctx *c)
{
	int rc = ctx_load_env(c);
	if (rc || (rc = check_machine_names(command_find("status"), c->env, c->argv + 1, (size_t)c->argc - 1)))
		return rc;
	json_t *arr = json_array();
	for (size_t i = 0; i < c->env->nmachines; i++) {
		const struct machine_cfg *mc = &c->env->machines[i];
		if (!selected(c, mc))
			continue;
		struct machine m;
		struct diag d = {0};
		if (machine_open(&m, c->env, mc, &d) < 0) {
			report(&d);
			rc = EXIT_FAIL;
			continue;
		}
		const struct provider *p;
		const char *prov;
		enum mstate s = machine_state(&m, &p, &prov);
		const char *ip = s == MS_RUNNING ? machine_str(&m, MK_IP) : NULL;
		const char *member = s == MS_NOT_CREATED ? NULL : machine_str(&m, MK_LOCATION);
		if (c->json)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s?, s:s?}", "name",
							     mc->name, "state", mstate_name(s),
							     "provider", prov, "ip", ip, "member",
							     member));
		else
			printf("%-24s %s (%s)%s%s\n", mc->name, mstate_name(s), prov, ip ? " " : "",
			       ip ? ip : "");
		if (!c->json && c->verbose && member)
			printf("  cluster member: %s\n", member);
		if (!c->json && c->verbose && s == MS_RUNNING) {
			print_mode(&m, p);
			print_init(&m);
			print_image(&m);
			print_accel(&m);
		}
		machine_close(&m);
	}
	if (c->json) {
		char *s = json_dumps(arr, JSON_INDENT(2));
		puts(s);
		free(s);
	}
	json_decref(arr);
	return rc;
}
