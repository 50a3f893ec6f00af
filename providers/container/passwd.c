/* /etc/passwd of a guest, read as untrusted input: seven colon-separated
 * fields per line as passwd(5) defines them (empty fields allowed, as
 * `useradd` writes an empty GECOS), numeric ids, bounded sizes. No NSS. */
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "providers/container/container.h"

enum { PASSWD_FIELDS = 7, PASSWD_LINE_MAX = 4096 };

/* An id as passwd(5) writes it: decimal digits only, below 2^32 - 1. */
static bool parse_id(const char *s, unsigned *out)
{
	if (!s[0] || strlen(s) > 10 || strspn(s, "0123456789") != strlen(s))
		return false;
	unsigned long v = strtoul(s, NULL, 10);
	if (v >= 0xffffffffUL)
		return false;
	*out = (unsigned)v;
	return true;
}

/* Splits line (changed in place) at ':' into exactly seven fields. */
static bool split_fields(char *line, char *f[PASSWD_FIELDS])
{
	size_t n = 0;
	for (char *p = line;; p++) {
		if (n == PASSWD_FIELDS)
			return false;
		f[n++] = p;
		p += strcspn(p, ":");
		if (!*p)
			break;
		*p = '\0';
	}
	return n == PASSWD_FIELDS;
}

bool passwd_parse_line(char *line, struct passwd_entry *e)
{
	char *f[PASSWD_FIELDS];
	if (strlen(line) > PASSWD_LINE_MAX || !split_fields(line, f) || !f[0][0])
		return false;
	*e = (struct passwd_entry){.name = f[0], .home = f[5], .shell = f[6]};
	return parse_id(f[2], &e->uid) && parse_id(f[3], &e->gid);
}

int passwd_lookup(char *data, const char *user, struct passwd_entry *out)
{
	char *save = NULL;
	for (char *line = strtok_r(data, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		struct passwd_entry e;
		if (line[0] != '#' && passwd_parse_line(line, &e) && strcmp(e.name, user) == 0) {
			*out = e;
			return 0;
		}
	}
	return -1;
}

/* Marks field idx (a number) of each line of text in used[from..to). */
static void mark_ids(const char *text, size_t idx, unsigned from, unsigned to, bool *used)
{
	_cleanup_free_ char *copy = xstrdup(text ? text : "");
	char *save = NULL;
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *p = line[0] == '#' ? NULL : line;
		for (size_t i = 0; i < idx && p; i++)
			p = strchr(p, ':') ? strchr(p, ':') + 1 : NULL;
		unsigned id;
		if (!p)
			continue;
		p[strcspn(p, ":")] = '\0';
		if (parse_id(p, &id) && id >= from && id < to)
			used[id - from] = true;
	}
}

unsigned passwd_free_id(const char *passwd, const char *group, unsigned from, unsigned to)
{
	_cleanup_free_ bool *used = xcalloc(to - from, sizeof(bool));
	mark_ids(passwd, 2, from, to, used);
	mark_ids(passwd, 3, from, to, used);
	mark_ids(group, 2, from, to, used);
	for (unsigned id = from; id < to; id++)
		if (!used[id - from])
			return id;
	return 0;
}
