/* vagrantfile_import: tokens, syntax tree, interpretation, corral's model,
 * YAML, and the notes gathered on the way, in one arena freed at the end. */
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "core/vagrant/vf_priv.h"

#define EVAL_BUDGET 2000000ul

static void split_lines(struct interp *I, const char *text)
{
	struct vec v = {0};
	for (const char *p = text; *p;) {
		vec_push(I->ar, &v, (void *)p);
		const char *e = strchr(p, '\n');
		if (!e)
			break;
		p = e + 1;
	}
	I->lines = (const char **)v.v;
	I->nlines = v.n;
}

static void add_notes(struct vec *all, struct arena *a, const struct vec *notes)
{
	for (size_t i = 0; i < notes->n; i++) {
		const struct note *n = notes->v[i];
		bool dup = false;
		for (size_t j = 0; j < all->n && !dup; j++) {
			const struct note *o = all->v[j];
			dup = o->line == n->line && o->imported == n->imported && !strcmp(o->text, n->text);
		}
		if (!dup)
			vec_push(a, all, (void *)n);
	}
}

static void result(struct interp *I, const struct model *m, struct vf_result *out)
{
	struct vec all = {0};
	add_notes(&all, I->ar, &m->notes);
	for (size_t i = 0; i < m->machines.n; i++)
		add_notes(&all, I->ar, &((struct scope *)m->machines.v[i])->notes);
	out->notes = xcalloc(all.n ? all.n : 1, sizeof(*out->notes));
	for (size_t i = 0; i < all.n; i++) {
		const struct note *n = all.v[i];
		size_t j = out->nnotes++;
		while (j > 0 && out->notes[j - 1].line > n->line) {
			out->notes[j] = out->notes[j - 1];
			j--;
		}
		out->notes[j] = (struct vf_note){n->line, n->imported, xstrdup(n->text)};
	}
	out->machines = xcalloc(m->machines.n ? m->machines.n : 1, sizeof(*out->machines));
	for (size_t i = 0; i < m->machines.n; i++) {
		const struct scope *s = m->machines.v[i];
		out->machines[out->nmachines++] =
			s->count ? xasprintf("%s (%s-1..%s-%u)", s->name, s->name, s->name, s->count)
				 : xstrdup(s->name);
	}
}

int vagrantfile_import(const struct vf_opts *o, const char *text, size_t len,
		       struct vf_result *out, struct diag *d)
{
	*out = (struct vf_result){0};
	struct arena ar = {0};
	struct tok *t;
	size_t n;
	struct node *prog = NULL;
	const char *src = ar_strndup(&ar, text, len); /* NUL-padded for look-ahead */
	if (vf_lex(&ar, src, len, 1, 1, &t, &n, d) == 0)
		prog = vf_parse(&ar, t, n, d);
	if (!prog) {
		diag_at(d, o->name, d->line, d->col);
		ar_free(&ar);
		return -1;
	}
	struct frame top = {0};
	struct interp I = {.ar = &ar, .o = o, .top = &top, .fr = &top, .budget = EVAL_BUDGET};
	split_lines(&I, src);
	I.global = I.cur = scope_new(&I, NULL, 0);
	exec_seq(&I, prog);
	I.cur = I.global;
	I.stmt = NULL;
	struct model m = {0};
	model_build(&I, &m);
	out->yaml = emit_yaml(&I, &m);
	result(&I, &m, out);
	ar_free(&ar);
	return 0;
}

void vf_result_free(struct vf_result *r)
{
	free(r->yaml);
	for (size_t i = 0; i < r->nnotes; i++)
		free(r->notes[i].text);
	free(r->notes);
	for (size_t i = 0; i < r->nmachines; i++)
		free(r->machines[i]);
	free(r->machines);
	*r = (struct vf_result){0};
}
