/* corral box add|search|list|remove|prune|outdated|update|verify|sign: the box
 * store ($CORRAL_HOME/boxes, Vagrant's layout). The work is in core/box/. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "core/box/distros.h"
#include "core/box/fetch.h"
#include "core/box/oci.h"
#include "core/box/publish.h"
#include "core/box/store.h"
#include "core/base/log.h"
#include "core/base/util.h"
#include "core/box/version.h"

/* Every option any box subcommand takes; each subcommand lists its own. */
struct box_args {
	const char *name, *version, *provider, *arch, *checksum, *signature;
	const char *checksum_file, *checksum_signature;
	const char *pub_version, *key, *base_url; /* publish */
	bool force, insecure, all, dry_run;
	int npos;
	char **pos;
};

enum { O_NAME = 256, O_VERSION, O_PROVIDER, O_ARCH, O_CHECKSUM, O_SIGNATURE, O_FORCE,
       O_INSECURE, O_ALL, O_DRY_RUN, O_CHECKSUM_FILE, O_CHECKSUM_SIGNATURE, O_PUB_VERSION,
       O_KEY, O_BASE_URL };

static const struct option all_opts[] = {
	{"name", required_argument, NULL, O_NAME},
	{"box-version", required_argument, NULL, O_VERSION},
	{"provider", required_argument, NULL, O_PROVIDER},
	{"architecture", required_argument, NULL, O_ARCH},
	{"checksum", required_argument, NULL, O_CHECKSUM},
	{"signature", required_argument, NULL, O_SIGNATURE},
	{"force", no_argument, NULL, O_FORCE},
	{"insecure", no_argument, NULL, O_INSECURE},
	{"all", no_argument, NULL, O_ALL},
	{"dry-run", no_argument, NULL, O_DRY_RUN},
	{"checksum-file", required_argument, NULL, O_CHECKSUM_FILE},
	{"checksum-signature", required_argument, NULL, O_CHECKSUM_SIGNATURE},
	{"version", required_argument, NULL, O_PUB_VERSION},
	{"key", required_argument, NULL, O_KEY},
	{"base-url", required_argument, NULL, O_BASE_URL},
	{"arch", required_argument, NULL, O_ARCH},
	{0},
};

struct sub {
	const char *name;
	int (*run)(struct ctx *c, struct box_args *a);
	const char *opts; /* the options it takes, e.g. "name,force" */
	int min_pos, max_pos;
};

static const struct command *box_cmd(void) { return command_find("box"); }

static int set_opt(struct box_args *a, int opt, const char *arg)
{
	switch (opt) {
	case O_NAME: a->name = arg; break;
	case O_VERSION: a->version = arg; break;
	case O_PROVIDER: a->provider = arg; break;
	case O_ARCH: a->arch = arg; break;
	case O_CHECKSUM: a->checksum = arg; break;
	case O_SIGNATURE: a->signature = arg; break;
	case O_FORCE: a->force = true; break;
	case O_INSECURE: a->insecure = true; break;
	case O_ALL: a->all = true; break;
	case O_DRY_RUN: a->dry_run = true; break;
	case O_CHECKSUM_FILE: a->checksum_file = arg; break;
	case O_CHECKSUM_SIGNATURE: a->checksum_signature = arg; break;
	case O_PUB_VERSION: a->pub_version = arg; break;
	case O_KEY: a->key = arg; break;
	case O_BASE_URL: a->base_url = arg; break;
	default: return -1;
	}
	return 0;
}

static bool takes(const struct sub *s, const char *opt)
{
	size_t n = strlen(opt);
	for (const char *p = s->opts; (p = strstr(p, opt)); p += n)
		if ((p == s->opts || p[-1] == ',') && (p[n] == ',' || !p[n]))
			return true;
	return false;
}

static int parse_args(const struct sub *s, int argc, char **argv, struct box_args *a)
{
	int opt, idx;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "", all_opts, &idx)) != -1) {
		if (opt == '?' || !takes(s, all_opts[idx].name) || set_opt(a, opt, optarg) < 0)
			return usage_error(box_cmd(), "box %s: unknown option `%s`", s->name,
					   argv[optind - 1]);
	}
	a->npos = argc - optind;
	a->pos = argv + optind;
	if (a->npos < s->min_pos || a->npos > s->max_pos)
		return usage_error(box_cmd(), "box %s takes %d to %d arguments, not %d", s->name,
				   s->min_pos, s->max_pos, a->npos);
	return 0;
}

/* With --json a line among the event lines: {"event": "box", "result": what, ...}. */
static void print_ref(const char *what, const struct box_ref *r)
{
	if (!log_opts()->json) {
		printf("%s %s %s (%s, %s)\n", what, r->name, r->version, r->provider, r->arch);
		return;
	}
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event", "box", "result", what,
			      "name", r->name, "version", r->version, "provider", r->provider,
			      "architecture", r->arch);
	char *s = json_dumps(o, JSON_COMPACT);
	puts(s);
	free(s);
	json_decref(o);
}

static void warn_insecure(bool insecure)
{
	if (insecure)
		log_warn("--insecure: TLS certificates are not verified for this command's downloads");
}

static int box_add(struct ctx *c, struct box_args *a)
{
	(void)c;
	if (a->npos == 2 && a->name)
		return usage_error(box_cmd(), "box add NAME URL takes the name once: drop --name");
	const char *providers[] = {a->provider, NULL};
	struct box_add_opts o = {
		.name = a->npos == 2 ? a->pos[0] : a->name, .source = a->pos[a->npos - 1],
		.constraint = a->version, .providers = a->provider ? providers : NULL,
		.arch = a->arch, .checksum = a->checksum, .signature = a->signature, .force = a->force, .insecure = a->insecure,
		.checksum_file = a->checksum_file, .checksum_signature = a->checksum_signature,
	};
	warn_insecure(a->insecure);
	struct box_ref r;
	enum box_added how;
	struct diag d = {0};
	if (boxstore_add(&o, &r, &how, &d) < 0)
		return report_exit(&d);
	static const char *const said[] = {"added box", "already present: box", "replaced box"};
	print_ref(said[how], &r);
	box_ref_free(&r);
	return EXIT_OK;
}

static void print_strs(const char *label, json_t *v)
{
	size_t i;
	json_t *s;
	printf("    %-11s", label);
	json_array_foreach(v, i, s)
		printf(" %s", json_string_value(s) ? json_string_value(s) : "?");
	putchar('\n');
}

/* -v: an OCI image's reference, digests and config. */
static void print_oci(json_t *oci)
{
	printf("    %-11s %s\n", "Reference", json_string_value(json_object_get(oci, "reference")));
	printf("    %-11s %s\n", "Digest", json_string_value(json_object_get(oci, "manifest_digest")));
	print_strs("Env", json_object_get(oci, "env"));
	printf("    %-11s %s\n", "WorkingDir", json_string_value(json_object_get(oci, "working_dir")));
	printf("    %-11s %s\n", "User", json_string_value(json_object_get(oci, "user")));
	print_strs("Entrypoint", json_object_get(oci, "entrypoint"));
	print_strs("Cmd", json_object_get(oci, "cmd"));
}

static void list_one(struct ctx *c, json_t *arr, const struct box_ref *r)
{
	json_t *oci = c->verbose || c->json ? oci_box_info(r->dir) : NULL;
	if (c->json)
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:O*}", "name", r->name,
						     "version", r->version, "provider", r->provider,
						     "architecture", r->arch, "dir", r->dir, "store",
						     r->vagrant ? "vagrant" : "corral", "oci", oci));
	else
		printf("%-32s %-12s %-12s %s%s\n", r->name, r->version, r->provider, r->arch,
		       r->vagrant ? "  (Vagrant's)" : "");
	if (!c->json && oci)
		print_oci(oci);
	json_decref(oci);
}

/* corral's boxes, then Vagrant's (~/.vagrant.d/boxes), which `up` uses as they are. */
static int box_list(struct ctx *c, struct box_args *a)
{
	(void)a;
	struct box_list l, v;
	struct diag d = {0};
	if (boxstore_list(&l, &d) < 0)
		return report_exit(&d);
	vagrant_box_list(NULL, &v);
	json_t *arr = json_array();
	for (size_t i = 0; i < l.n; i++)
		list_one(c, arr, &l.v[i]);
	for (size_t i = 0; i < v.n; i++)
		list_one(c, arr, &v.v[i]);
	if (c->json) {
		char *s = json_dumps(arr, JSON_INDENT(2));
		puts(s);
		free(s);
	} else if (!l.n && !v.n) {
		puts("no boxes yet; add one with `corral box add`");
	}
	json_decref(arr);
	box_list_free(&l);
	box_list_free(&v);
	return EXIT_OK;
}

/* Image layers no box lists any more go with the last box that had them. */
static int collect_layers(int rc)
{
	unsigned removed;
	struct diag d = {0};
	if (oci_layers_gc(&removed, &d) < 0)
		return report_exit(&d);
	if (removed)
		printf("removed %u image layer%s no box uses\n", removed, removed == 1 ? "" : "s");
	return rc;
}

static int box_remove(struct ctx *c, struct box_args *a)
{
	(void)c;
	struct box_filter f = {a->pos[0], a->version, a->provider, a->arch, a->all};
	struct box_list l;
	struct diag d = {0};
	if (boxstore_select(&f, &l, &d) < 0)
		return report_exit(&d);
	int rc = EXIT_OK;
	for (size_t i = 0; i < l.n; i++) {
		if (boxstore_remove(&l.v[i], a->force, &d) < 0)
			rc = report_exit(&d);
		else
			print_ref("removed box", &l.v[i]);
	}
	box_list_free(&l);
	return collect_layers(rc);
}

static int box_prune(struct ctx *c, struct box_args *a)
{
	(void)c;
	struct prune_item *v;
	size_t n, acted = 0;
	struct diag d = {0};
	if (boxstore_prune_plan(&v, &n, &d) < 0)
		return report_exit(&d);
	int rc = EXIT_OK;
	for (size_t i = 0; i < n; i++) {
		const struct box_ref *r = &v[i].box;
		if (v[i].action == PRUNE_IN_USE) {
			printf("keeping box %s %s (%s, %s): in use by %s\n", r->name, r->version,
			       r->provider, r->arch, v[i].who);
		} else if (v[i].action == PRUNE_REMOVE) {
			acted++;
			if (a->dry_run)
				print_ref("would remove box", r);
			else if (boxstore_remove(r, false, &d) < 0)
				rc = report_exit(&d);
			else
				print_ref("removed box", r);
		}
	}
	if (!acted)
		puts("nothing to prune: only the newest version of each box is installed");
	prune_plan_free(v, n);
	return a->dry_run ? rc : collect_layers(rc);
}

static bool newer(const struct box_status *s)
{
	return s->latest && version_cmp(s->latest, s->box.version) > 0;
}

static void print_status(const struct box_status *s)
{
	const struct box_ref *r = &s->box;
	printf("%s %s (%s, %s): ", r->name, r->version, r->provider, r->arch);
	if (!s->catalog_url)
		puts("added from a file or URL, no catalog to compare with");
	else if (!s->latest)
		printf("its catalog %s no longer offers %s/%s\n", s->catalog_url, r->provider, r->arch);
	else if (newer(s))
		printf("version %s is available; `corral box update %s` adds it\n", s->latest, r->name);
	else
		puts("up to date");
}

static json_t *status_json(const struct box_status *s)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:b}", "name", s->box.name, "provider",
			 s->box.provider, "architecture", s->box.arch, "current", s->box.version,
			 "latest", s->latest, "catalog_url", s->catalog_url, "outdated", newer(s));
}

static int outdated_list(struct box_args *a, struct box_status **v, size_t *n)
{
	struct diag_list errs = {0};
	struct diag d = {0};
	warn_insecure(a->insecure);
	if (boxstore_outdated(a->npos ? a->pos[0] : NULL, a->insecure, v, n, &errs, &d) < 0)
		return report_exit(&d);
	for (size_t i = 0; i < errs.n; i++)
		report(&errs.v[i]);
	int rc = errs.n ? EXIT_FAIL : EXIT_OK;
	diag_list_free(&errs);
	return rc;
}

static int box_outdated(struct ctx *c, struct box_args *a)
{
	struct box_status *v = NULL;
	size_t n = 0;
	int rc = outdated_list(a, &v, &n);
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		if (c->json)
			json_array_append_new(arr, status_json(&v[i]));
		else
			print_status(&v[i]);
	}
	if (c->json) {
		char *s = json_dumps(arr, JSON_INDENT(2));
		puts(s);
		free(s);
	}
	json_decref(arr);
	box_status_free(v, n);
	return rc;
}

static int update_one(const struct box_status *s, bool insecure)
{
	const char *providers[] = {s->box.provider, NULL};
	_cleanup_free_ char *exact = xasprintf("= %s", s->latest);
	struct box_add_opts o = {.name = s->box.name, .source = s->catalog_url, .constraint = exact,
				 .providers = providers, .arch = s->box.arch, .insecure = insecure};
	struct box_ref r;
	enum box_added how;
	struct diag d = {0};
	if (boxstore_add(&o, &r, &how, &d) < 0)
		return report_exit(&d);
	printf("updated box %s (%s, %s): %s -> %s\n", r.name, r.provider, r.arch, s->box.version,
	       r.version);
	box_ref_free(&r);
	return EXIT_OK;
}

static int box_update(struct ctx *c, struct box_args *a)
{
	(void)c;
	struct box_status *v = NULL;
	size_t n = 0, updated = 0;
	int rc = outdated_list(a, &v, &n);
	for (size_t i = 0; i < n; i++) {
		if (!newer(&v[i]) || (a->provider && strcmp(a->provider, v[i].box.provider) != 0))
			continue;
		updated++;
		if (update_one(&v[i], a->insecure) != EXIT_OK)
			rc = EXIT_FAIL;
	}
	if (!updated && rc == EXIT_OK)
		puts("every box added from a catalog is up to date");
	box_status_free(v, n);
	return rc;
}

static int box_verify(struct ctx *c, struct box_args *a)
{
	(void)c;
	(void)a;
	struct box_list l;
	struct diag d = {0};
	if (boxstore_list(&l, &d) < 0)
		return report_exit(&d);
	int rc = EXIT_OK;
	for (size_t i = 0; i < l.n; i++) {
		struct diag_list problems = {0};
		if (boxstore_verify(&l.v[i], &problems, &d) < 0) {
			rc = report_exit(&d);
			continue;
		}
		print_ref(problems.n ? "MODIFIED box" : "ok box", &l.v[i]);
		for (size_t j = 0; j < problems.n; j++)
			printf("  %s\n", problems.v[j].msg);
		if (problems.n)
			rc = EXIT_FAIL;
		diag_list_free(&problems);
	}
	if (!l.n)
		puts("no boxes to verify");
	box_list_free(&l);
	return rc;
}

static int box_sign_cmd(struct ctx *c, struct box_args *a)
{
	(void)c;
	char *sig;
	struct diag d = {0};
	if (box_sign(a->pos[0], a->pos[1], &sig, &d) < 0)
		return report_exit(&d);
	puts(sig);
	free(sig);
	return EXIT_OK;
}

static json_t *distro_json(const struct distro *x)
{
	json_t *keys = json_array();
	for (size_t i = 0; i < x->keys.n; i++)
		json_array_append_new(keys, json_string(x->keys.v[i]));
	return json_pack("{s:s, s:s, s:s?, s:s, s:s, s:s?, s:o, s:s?}", "name", x->name,
			 "architecture", x->arch, "description", x->description, "image",
			 x->image, "checksum_file", x->sums_url, "signature", x->signature_url,
			 "keys", keys, "note", x->note);
}

/* The short names of distributions' cloud images (core/box/distros.h). */
static int box_search(struct ctx *c, struct box_args *a)
{
	struct distro_list l;
	struct diag d = {0};
	if (distros_list(a->npos ? a->pos[0] : NULL, &l, &d) < 0)
		return report_exit(&d);
	json_t *arr = json_array();
	for (size_t i = 0; i < l.n; i++) {
		const struct distro *x = &l.v[i];
		if (c->json)
			json_array_append_new(arr, distro_json(x));
		else
			printf("%-16s %-6s %-9s %s\n", x->name, x->arch,
			       x->keys.n ? "signed" : "unsigned", x->description ? x->description : "");
	}
	if (c->json) {
		char *s = json_dumps(arr, JSON_INDENT(2));
		puts(s);
		free(s);
	} else if (!l.n) {
		puts("no distribution matches; `corral box search` lists them all");
	}
	json_decref(arr);
	distro_list_free(&l);
	return EXIT_OK;
}

static void print_published(struct ctx *c, const struct box_args *a, const struct published *v,
			    size_t n, const char *catalog)
{
	json_t *arr = json_array();
	for (size_t i = 0; i < n; i++) {
		if (c->json)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s?, s:s, s:s, s:b}",
				"name", a->name, "version", a->pub_version, "provider", v[i].provider,
				"architecture", v[i].arch, "path", v[i].path, "sha256", v[i].sha256,
				"signed", v[i].signature != NULL));
		else
			printf("published %s %s (%s, %s)%s: %s\n", a->name, a->pub_version,
			       v[i].provider, v[i].arch ? v[i].arch : "any architecture",
			       v[i].signature ? ", signed" : "", v[i].path);
	}
	if (c->json) {
		char *s = json_dumps(arr, JSON_INDENT(2));
		puts(s);
		free(s);
	} else {
		printf("catalog %s\nserve %s, then: CORRAL_BOX_SERVER=URL-of-it corral box add %s\n",
		       catalog, a->pos[0], a->name);
	}
	json_decref(arr);
}

static int box_publish_cmd(struct ctx *c, struct box_args *a)
{
	struct publish_opts o = {.dir = a->pos[0], .name = a->name, .version = a->pub_version,
				 .provider = a->provider, .arch = a->arch, .key = a->key,
				 .base_url = a->base_url};
	struct published *v;
	char *catalog;
	struct diag d = {0};
	size_t n = (size_t)a->npos - 1;
	if (box_publish(&o, a->pos + 1, n, &v, &catalog, &d) < 0)
		return d.code == DIAG_USAGE ? usage_error(box_cmd(), "%s", d.msg) : report_exit(&d);
	print_published(c, a, v, n, catalog);
	published_free(v, n);
	free(catalog);
	return EXIT_OK;
}

static const struct sub subs[] = {
	{"add", box_add, "name,box-version,provider,architecture,checksum,signature,force,insecure,"
	 "checksum-file,checksum-signature", 1, 2},
	{"search", box_search, "", 0, 1},
	{"list", box_list, "", 0, 0},
	{"remove", box_remove, "box-version,provider,architecture,all,force", 1, 1},
	{"prune", box_prune, "dry-run", 0, 0},
	{"outdated", box_outdated, "insecure", 0, 1},
	{"update", box_update, "provider,insecure", 0, 1},
	{"verify", box_verify, "", 0, 0},
	{"sign", box_sign_cmd, "", 2, 2},
	{"publish", box_publish_cmd, "name,version,provider,architecture,arch,key,base-url", 2, 4096},
};

int cmd_box(struct ctx *c)
{
	const size_t n = sizeof(subs) / sizeof(subs[0]);
	if (c->argc < 2)
		return usage_error(box_cmd(), "box needs a subcommand");
	for (size_t i = 0; i < n; i++) {
		if (strcmp(subs[i].name, c->argv[1]) != 0)
			continue;
		struct box_args a = {0};
		optind = 0;
		int rc = parse_args(&subs[i], c->argc - 1, c->argv + 1, &a);
		return rc ? rc : subs[i].run(c, &a);
	}
	const char *names[sizeof(subs) / sizeof(subs[0])];
	for (size_t i = 0; i < n; i++)
		names[i] = subs[i].name;
	const char *s = str_suggest(c->argv[1], names, n);
	return usage_error(box_cmd(), "no box subcommand `%s`%s%s%s", c->argv[1],
			   s ? "; did you mean `" : "", s ? s : "", s ? "`?" : "");
}
