/* docs/envfile.md against the envfile's key table (core/config/envkeys.c): every
 * key path the table knows has a row in the reference, every row names a
 * key the table knows, and every ```yaml example in it is a valid
 * envfile. A row is a table line whose first cell holds the key path in
 * backticks: | `machines.NAME.ports[].host_ip` | ... Run from the
 * repository's top directory (tests/run does). */
#include <stdlib.h>
#include <string.h>

#include "core/config/envfile.h"
#include "core/base/util.h"
#include "tests/unit/t.h"

#define DOC "docs/envfile.md"

struct paths {
	char **v;
	size_t n;
};

static void paths_add(struct paths *p, const char *s, size_t n)
{
	p->v = xrealloc(p->v, (p->n + 1) * sizeof(*p->v));
	p->v[p->n++] = xstrndup(s, n);
}

static bool paths_has(const struct paths *p, const char *s)
{
	for (size_t i = 0; i < p->n; i++)
		if (strcmp(p->v[i], s) == 0)
			return true;
	return false;
}

static void paths_free(struct paths *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->v[i]);
	free(p->v);
	*p = (struct paths){0};
}

static void collect(const char *path, void *arg)
{
	paths_add(arg, path, strlen(path));
}

static char *doc;
static struct paths table, top, documented;

/* A backticked word starts a key path when its first name is a top-level key. */
static bool is_key_path(const char *s, size_t n)
{
	size_t first = strcspn(s, ".[`");
	if (first > n)
		first = n;
	for (size_t i = 0; i < top.n; i++)
		if (strlen(top.v[i]) == first && strncmp(top.v[i], s, first) == 0)
			return true;
	return false;
}

/* The key paths in the first cell of each table row. */
static void read_rows(void)
{
	for (const char *l = doc; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		if (l[0] != '|')
			continue;
		const char *end = strpbrk(l + 1, "|\n");
		for (const char *p = l + 1; end && (p = memchr(p, '`', (size_t)(end - p)));) {
			const char *close = memchr(p + 1, '`', (size_t)(end - p - 1));
			if (!close)
				break;
			if (is_key_path(p + 1, (size_t)(close - p - 1)))
				paths_add(&documented, p + 1, (size_t)(close - p - 1));
			p = close + 1;
		}
	}
}

static void every_key_is_documented(void)
{
	for (size_t i = 0; i < table.n; i++)
		if (!paths_has(&documented, table.v[i])) {
			printf("#   %s has no row for `%s`\n", DOC, table.v[i]);
			t_case_failed = 1;
		}
}

static void every_row_is_a_key(void)
{
	CHECK(documented.n > 0);
	for (size_t i = 0; i < documented.n; i++)
		if (!paths_has(&table, documented.v[i])) {
			printf("#   %s documents `%s`, which the key table does not know\n", DOC,
			       documented.v[i]);
			t_case_failed = 1;
		}
}

/* Each ```yaml block, loaded without touching files (paths need not exist). */
static void yaml_examples_load(void)
{
	static const char open[] = "\n```yaml\n", close[] = "\n```";
	size_t blocks = 0;
	for (const char *p = doc ? strstr(doc, open) : NULL; p; p = strstr(p, open)) {
		const char *body = p + strlen(open), *end = strstr(body - 1, close);
		if (!end)
			break;
		struct diag_list errs = {0};
		struct env *e = NULL;
		int line = 1;
		for (const char *q = doc; q < body; q++)
			line += *q == '\n';
		if (envfile_load_buffer(DOC, body, (size_t)(end + 1 - body), ENVFILE_NO_FS, &e,
					&errs) < 0) {
			printf("#   the example at %s:%d does not load:\n", DOC, line);
			for (size_t i = 0; i < errs.n; i++)
				printf("#     line %d: %s\n", line - 1 + errs.v[i].line, errs.v[i].msg);
			t_case_failed = 1;
		}
		env_free(e);
		diag_list_free(&errs);
		blocks++;
		p = end + 1;
	}
	CHECK(blocks > 0);
}

int main(void)
{
	struct diag d = {0};
	size_t len;
	if (read_file(DOC, 1 << 20, &doc, &len, &d) < 0) {
		printf("not ok - %s: %s (run from the repository's top directory)\n", __FILE__, d.msg);
		return 1;
	}
	envfile_key_paths(collect, &table);
	for (size_t i = 0; i < table.n; i++)
		if (!strpbrk(table.v[i], ".["))
			paths_add(&top, table.v[i], strlen(table.v[i]));
	read_rows();
	RUN(every_key_is_documented);
	RUN(every_row_is_a_key);
	RUN(yaml_examples_load);
	paths_free(&table);
	paths_free(&top);
	paths_free(&documented);
	free(doc);
	return T_END();
}
