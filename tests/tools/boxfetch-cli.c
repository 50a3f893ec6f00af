/* Drives core/box/fetch from the integration tests and the benchmark:
 *   boxfetch-cli fetch SRC DEST [--insecure] [--private] [--checksum TYPE:HEX]
 *                [--signature B64] [--token-url URL]
 * (--private: DEST counts as a private store, see boxfetch_opts)
 *   boxfetch-cli text URL [--insecure] [--token-url URL]
 *   boxfetch-cli sign KEY BOXFILE
 *   boxfetch-cli verify DIR
 * Errors go to stderr as "error: ..." and "hint: ..." with exit status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/box/fetch.h"
#include "core/base/log.h"
#include "core/base/util.h"

static int fail(const struct diag *d)
{
	fprintf(stderr, "error: %s\n", d->msg);
	if (d->hint[0])
		fprintf(stderr, "hint: %s\n", d->hint);
	return 1;
}

static int parse_opts(int argc, char **argv, int i, struct boxfetch_opts *o, char **sum)
{
	for (; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--insecure") == 0 || strcmp(a, "--private") == 0) {
			*(strcmp(a, "--insecure") == 0 ? &o->insecure : &o->private_store) = true;
			continue;
		}
		if (!v)
			return -1;
		if (strcmp(a, "--checksum") == 0 && strchr(v, ':')) {
			*sum = xstrdup(v);
			*strchr(*sum, ':') = '\0';
			o->checksum_type = *sum;
			o->checksum = *sum + strlen(*sum) + 1;
		} else if (strcmp(a, "--signature") == 0) {
			o->signature = v;
		} else if (strcmp(a, "--token-url") == 0) {
			o->token_url = v;
		} else {
			return -1;
		}
		i++;
	}
	return 0;
}

static int run(int argc, char **argv)
{
	struct boxfetch_opts o = {.label = "box"};
	struct diag d = {0};
	_cleanup_free_ char *sum = NULL;
	const char *cmd = argc > 1 ? argv[1] : "";
	if (strcmp(cmd, "fetch") == 0 && argc >= 4 && parse_opts(argc, argv, 4, &o, &sum) == 0) {
		struct boxfetch_result r;
		if (boxfetch(argv[2], argv[3], &o, &r, &d) < 0)
			return fail(&d);
		printf("sha256 %s bytes %llu signature %s\n", r.sha256, (unsigned long long)r.bytes,
		       r.signature_checked ? "checked" : "unchecked");
		return 0;
	}
	if (strcmp(cmd, "text") == 0 && argc >= 3 && parse_opts(argc, argv, 3, &o, &sum) == 0) {
		_cleanup_free_ char *text = NULL;
		if (fetch_text(argv[2], 1 << 20, &o, &text, NULL, &d) < 0)
			return fail(&d);
		fputs(text, stdout);
		return 0;
	}
	if (strcmp(cmd, "sign") == 0 && argc == 4) {
		_cleanup_free_ char *sig = NULL;
		if (box_sign(argv[2], argv[3], &sig, &d) < 0)
			return fail(&d);
		puts(sig);
		return 0;
	}
	if (strcmp(cmd, "verify") == 0 && argc == 3) {
		struct diag_list problems = {0};
		if (boxfetch_verify_dir(argv[2], &problems, &d) < 0)
			return fail(&d);
		for (size_t i = 0; i < problems.n; i++)
			printf("problem: %s\n", problems.v[i].msg);
		int rc = problems.n ? 1 : 0;
		diag_list_free(&problems);
		return rc;
	}
	fprintf(stderr, "usage: boxfetch-cli fetch SRC DEST [options] | text URL | sign KEY BOX | verify DIR\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct log_opts lo = {0};
	log_setup(&lo);
	return run(argc, argv);
}
