#include "provisioners/step.h"

#include <string.h>
#include <sys/random.h>

#include "core/base/log.h"

/* Room left in a diag for the output tail once run.c has put the machine
 * and step in front: the end of the output matters most, so it is the part
 * kept. */
#define TAIL_BUDGET 640

static const char *const kind_names[] = {
	[STEP_SHELL] = "shell",
	[STEP_FILE] = "file",
	[STEP_ANSIBLE] = "ansible",
};

char *step_prefix(const char *machine, const struct step *s)
{
	if (!s->name || strcmp(s->name, kind_names[s->kind]) == 0)
		return xstrdup(machine);
	return xasprintf("%s:%s", machine, s->name);
}

int step_exit_fail(struct diag *d, int status, const struct buf *tail)
{
	_cleanup_free_ char *t = log_redact(tail && tail->s ? tail->s : "");
	const char *start = t;
	while (strlen(start) > TAIL_BUDGET) {
		const char *nl = strchr(start + strlen(start) - TAIL_BUDGET, '\n');
		start = nl ? nl + 1 : start + strlen(start) - TAIL_BUDGET;
	}
	struct buf lines = {0};
	for (const char *p = start; *p;) {
		size_t n = strcspn(p, "\n");
		buf_puts(&lines, "\n    ");
		buf_add(&lines, p, n);
		p += n + (p[n] == '\n');
	}
	if (status > 255)
		diag_fail(d, "killed by signal %d", status - 255);
	else
		diag_fail(d, "exit code %d", status);
	if (lines.s) {
		size_t used = strlen(d->msg);
		snprintf(d->msg + used, sizeof(d->msg) - used, "; last lines:%s", lines.s);
	}
	buf_free(&lines);
	return -1;
}

char *step_guest_tmp(const struct step *s, const char *kind, const char *suffix)
{
	unsigned r = 0;
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (unsigned)now_ms();
	return xasprintf("/tmp/corral-%s-%.8s-%08x%s", kind, s->id, r, suffix);
}

void step_tail_push(struct buf *tail, const char *line, unsigned max)
{
	if (tail->len)
		buf_puts(tail, "\n");
	buf_puts(tail, line);
	unsigned count = 1;
	for (size_t i = 0; i < tail->len; i++)
		count += tail->s[i] == '\n';
	if (count <= max)
		return;
	char *nl = strchr(tail->s, '\n');
	size_t drop = (size_t)(nl - tail->s) + 1;
	memmove(tail->s, tail->s + drop, tail->len - drop + 1);
	tail->len -= drop;
}
