/* Whether corral turns Ansible's pipelining on: a module then goes to the
 * guest's Python on stdin, not as a file put over SFTP and run by a second
 * SSH command, which saves round trips on every task. Ansible leaves it
 * off only for sudoers with `requiretty`; corral turns it on unless the
 * user chose, in the environment or in the one ansible.cfg that
 * ansible-playbook reads (found as Ansible 2.14's config/manager.py finds
 * it; the key as its config/base.yml and the ssh connection plugin name
 * it). An envfile `pipelining:` wins over both. */
#include "provisioners/ansible.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define ANSIBLE_CFG_MAX (1u << 20)

/* The variables Ansible reads pipelining from (the ssh plugin's list). */
static const char *const pipelining_env[] = {"ANSIBLE_PIPELINING", "ANSIBLE_SSH_PIPELINING", NULL};
/* Sections that hold it; configparser's DEFAULT applies to every section. */
static const char *const pipelining_sections[] = {"defaults", "connection", "ssh_connection",
						  "DEFAULT", NULL};

/* "~/x" as Ansible's unfrackpath (Python's expanduser) expands it. */
static char *expand_home(const char *p)
{
	if (p[0] == '~' && (p[1] == '/' || !p[1]))
		return path_join(user_home(), p[1] ? p + 2 : ".");
	return xstrdup(p);
}

/* $ANSIBLE_CONFIG (a directory: its ansible.cfg), then ./ansible.cfg unless
 * the directory is world-writable, ~/.ansible.cfg, /etc/ansible/ansible.cfg:
 * the first that exists and is readable. */
char *ansible_cfg_path(void)
{
	struct strv cand = {0};
	struct stat st;
	const char *env = getenv("ANSIBLE_CONFIG");
	if (env) {
		char *p = expand_home(*env ? env : "."); /* "": Python's abspath, the cwd */
		if (stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			strv_take(&cand, path_join(p, "ansible.cfg"));
			free(p);
		} else {
			strv_take(&cand, p);
		}
	}
	if (stat(".", &st) == 0 && !(st.st_mode & S_IWOTH))
		strv_push(&cand, "ansible.cfg");
	strv_take(&cand, expand_home("~/.ansible.cfg"));
	strv_push(&cand, "/etc/ansible/ansible.cfg");
	char *found = NULL;
	for (size_t i = 0; i < cand.n && !found; i++)
		if (access(cand.v[i], R_OK) == 0)
			found = xstrdup(cand.v[i]);
	strv_free(&cand);
	return found;
}

static size_t trim_end(const char *s, size_t n)
{
	while (n && isspace((unsigned char)s[n - 1]))
		n--;
	return n;
}

/* Whether INI text sets key (any case) in one of sections, as Python's
 * configparser reads it: `#`/`;` comments, `key = v` or `key: v`, an
 * indented line after a key continues its value. */
static bool ini_has_key(const char *text, const char *const *sections, const char *key)
{
	bool in = false, after_key = false;
	for (const char *l = text; *l;) {
		size_t n = strcspn(l, "\n");
		const char *next = l[n] ? l + n + 1 : l + n;
		bool indented = *l == ' ' || *l == '\t';
		while (n && isspace((unsigned char)*l))
			l++, n--;
		n = trim_end(l, n);
		if (!n || *l == '#' || *l == ';') {
			l = next;
			continue;
		}
		if (*l == '[' && l[n - 1] == ']') {
			_cleanup_free_ char *name = xstrndup(l + 1, n - 2);
			in = str_in_list(name, sections);
			after_key = false;
		} else if (!(indented && after_key)) {
			size_t kn = trim_end(l, strcspn(l, "=:\n"));
			after_key = true;
			if (in && kn == strlen(key) && strncasecmp(l, key, kn) == 0)
				return true;
		}
		l = next;
	}
	return false;
}

/* Whether the user's environment or ansible.cfg sets pipelining. */
static bool user_chose(void)
{
	for (size_t i = 0; pipelining_env[i]; i++)
		if (getenv(pipelining_env[i]))
			return true;
	_cleanup_free_ char *path = ansible_cfg_path();
	char *text = NULL;
	struct diag d = {0};
	if (!path || read_file(path, ANSIBLE_CFG_MAX, &text, NULL, &d) < 0)
		return false;
	bool set = ini_has_key(text, pipelining_sections, "pipelining");
	free(text);
	return set;
}

const char *ansible_pipelining(const struct ansible_step *a)
{
	if (a->pipelining != OPT_UNSET)
		return a->pipelining == OPT_TRUE ? "True" : "False";
	return user_chose() ? NULL : "True";
}

void ansible_pipelining_env(const struct ansible_step *a, struct strv *env)
{
	const char *v = ansible_pipelining(a);
	for (size_t i = 0; v && pipelining_env[i]; i++)
		strv_pushf(env, "%s=%s", pipelining_env[i], v);
}
