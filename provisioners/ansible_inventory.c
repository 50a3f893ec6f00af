/* The inventory and known_hosts corral hands Ansible. The inventory is
 * JSON, read by Ansible's YAML inventory plugin (JSON is YAML; its loader
 * tries JSON first), so every value reaches the playbook exactly as the
 * envfile gave it: strings with spaces, quotes or newlines, numbers,
 * booleans, null, lists and nested mappings, with their types. Group and
 * variable names Ansible could not use as names are refused. */
#include <stdlib.h>
#include <string.h>

#include "core/ssh/ssh.h"
#include "provisioners/ansible.h"

char *ansible_ssh_args(const char *known_hosts)
{
	_cleanup_free_ char *q = ssh_quote(known_hosts);
	return xasprintf("-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes"
			 " -o IdentitiesOnly=yes",
			 q);
}

/* Ansible reads a host's ssh_extra_args from ansible_ssh_extra_args, and
 * an inventory's host variable outranks the playbook's own group_vars: set
 * there, it would silently replace a user's group_vars/all.yml value. So
 * each host's options go into corral_ssh_extra_args, and `all`'s vars (the
 * lowest rank there is) say ansible_ssh_extra_args is that: any value the
 * user sets (group_vars, host_vars, the envfile's group vars) wins, and
 * can name {{ corral_ssh_extra_args }} to keep corral's. */
#define CORRAL_EXTRA_ARGS "corral_ssh_extra_args"
#define EXTRA_ARGS_DEFAULT "{{ " CORRAL_EXTRA_ARGS " | default('') }}"

static bool plain_word(const char *s)
{
	return s[0] && strcspn(s, " \t\r\n[]:=#;'\",") == strlen(s);
}

/* A host's connection variables, and its own ssh options (agent
 * forwarding, the key exchange: ssh_endpoint_opts, as `corral ssh` gets
 * them) as `-o Key=value` arguments in corral_ssh_extra_args. */
static json_t *host_vars(const struct prov_target *t)
{
	json_t *v = json_pack("{s:s, s:I, s:s, s:s}", "ansible_host", t->ep.host, "ansible_port",
			      (json_int_t)t->ep.port, "ansible_user", t->ep.user,
			      "ansible_ssh_private_key_file", t->ep.key_path);
	struct ssh_opt eo[SSH_ENDPOINT_OPTS];
	size_t n = ssh_endpoint_opts(&t->ep, eo);
	struct buf extra = {0};
	for (size_t i = 0; i < n; i++)
		buf_printf(&extra, "%s-o %s=%s", i ? " " : "", eo[i].key, eo[i].value);
	json_object_set_new(v, CORRAL_EXTRA_ARGS, json_string(extra.s));
	buf_free(&extra);
	return v;
}

static bool is_host(const struct prov_target *hosts, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(hosts[i].m->cfg->name, name) == 0)
			return true;
	return false;
}

static int check_group(const struct ansible_group *g, struct diag *d)
{
	if (!plain_word(g->name)) {
		diag_fail(d, "ansible groups: `%s` is not a usable group name", g->name);
		return diag_hint(d, "use letters, digits and _ in group names");
	}
	for (size_t i = 0; i < g->children.n; i++)
		if (!plain_word(g->children.v[i]))
			return diag_fail(d, "ansible groups: %s:children: `%s` is not a group name",
					 g->name, g->children.v[i]);
	const char *key;
	json_t *v;
	json_object_foreach(g->vars, key, v)
		if (!plain_word(key))
			return diag_fail(d, "ansible groups: %s:vars: `%s` is not a variable name",
					 g->name, key);
	return 0;
}

/* obj[key], an object, created when missing. */
static json_t *section(json_t *obj, const char *key)
{
	json_t *s = json_object_get(obj, key);
	if (!s)
		json_object_set_new(obj, key, s = json_object());
	return s;
}

/* A group's members, children and vars into `into` (the group's own entry,
 * or `all` itself for the group named all). Members that are not running
 * machines are left out, as Vagrant does: Ansible would otherwise try to
 * resolve their names. A child is named with an empty entry: its own
 * entry, when the step defines it, fills it. */
static void add_group(json_t *all, json_t *into, const struct ansible_group *g,
		      const struct prov_target *hosts, size_t n)
{
	for (size_t i = 0; i < g->hosts.n; i++)
		if (is_host(hosts, n, g->hosts.v[i]) && into != all)
			json_object_set_new(section(into, "hosts"), g->hosts.v[i], json_object());
	json_t *groups = section(all, "children");
	for (size_t i = 0; i < g->children.n; i++) {
		if (!json_object_get(groups, g->children.v[i]))
			json_object_set_new(groups, g->children.v[i], json_object());
		if (into != all)
			json_object_set_new(section(into, "children"), g->children.v[i], json_object());
	}
	if (json_object_size(g->vars))
		json_object_update(section(into, "vars"), g->vars);
}

int ansible_inventory(const struct ansible_step *a, const struct prov_target *hosts, size_t n,
		      const char *known_hosts, struct buf *out, struct diag *d)
{
	for (size_t i = 0; i < a->ngroups; i++)
		if (check_group(&a->groups[i], d) < 0)
			return -1;
	json_t *all = json_object();
	json_t *hv = section(all, "hosts");
	for (size_t i = 0; i < n; i++)
		json_object_set_new(hv, hosts[i].m->cfg->name, host_vars(&hosts[i]));
	/* Before the groups: an envfile's all:vars value replaces it. */
	json_object_set_new(section(all, "vars"), "ansible_ssh_extra_args",
			    json_string(EXTRA_ARGS_DEFAULT));
	json_t *groups = section(all, "children");
	for (size_t i = 0; i < a->ngroups; i++) {
		const char *name = a->groups[i].name;
		json_t *into = all;
		if (strcmp(name, "all") != 0) {
			into = json_object(); /* replaces the empty entry a parent named */
			json_object_set_new(groups, name, into);
		}
		add_group(all, into, &a->groups[i], hosts, n);
	}
	_cleanup_free_ char *args = ansible_ssh_args(known_hosts);
	json_object_set_new(section(all, "vars"), "ansible_ssh_common_args", json_string(args));
	json_t *root = json_pack("{s:o}", "all", all);
	char *text = json_dumps(root, JSON_INDENT(2));
	json_decref(root);
	if (!text)
		return diag_fail(d, "the ansible inventory could not be written as JSON");
	buf_puts(out, text);
	buf_puts(out, "\n");
	free(text);
	return 0;
}

/* The address a host's keys are filed under: "[host]:port", or the bare
 * host on port 22, as OpenSSH looks them up. Caller frees. */
static char *host_pattern(const struct endpoint *ep)
{
	return ep->port == 22 ? xstrdup(ep->host) : xasprintf("[%s]:%u", ep->host, ep->port);
}

/* corral pins each machine's key under an alias in the machine's own file;
 * Ansible's ssh looks keys up by address, so each key is filed again under
 * the address the inventory gives. */
static void rehost(struct buf *out, const char *pattern, const char *data)
{
	for (const char *p = data; *p;) {
		size_t n = strcspn(p, "\n");
		const char *sp = memchr(p, ' ', n);
		if (p[0] != '#' && p[0] != '@' && sp) {
			buf_puts(out, pattern);
			buf_add(out, sp, n - (size_t)(sp - p));
			buf_puts(out, "\n");
		}
		p += n + (p[n] == '\n');
	}
}

static bool filed_under(const char *line, size_t n, const struct prov_target *hosts, size_t nh)
{
	for (size_t i = 0; i < nh; i++) {
		_cleanup_free_ char *pat = host_pattern(&hosts[i].ep);
		size_t k = strlen(pat);
		if (k < n && strncmp(line, pat, k) == 0 && line[k] == ' ')
			return true;
	}
	return false;
}

/* Lines of `old` for other addresses stay: machines provisioned in parallel
 * write this file with different sets of hosts. */
static void keep_others(struct buf *out, const char *old, const struct prov_target *hosts,
			size_t n)
{
	for (const char *p = old; p && *p;) {
		size_t len = strcspn(p, "\n");
		if (len && !filed_under(p, len, hosts, n)) {
			buf_add(out, p, len);
			buf_puts(out, "\n");
		}
		p += len + (p[len] == '\n');
	}
}

int ansible_known_hosts(const struct prov_target *hosts, size_t n, const char *old,
			struct buf *out, struct diag *d)
{
	keep_others(out, old, hosts, n);
	for (size_t i = 0; i < n; i++) {
		const char *name = hosts[i].m->cfg->name;
		char *data;
		if (!hosts[i].ep.known_hosts[0] || !path_exists(hosts[i].ep.known_hosts)) {
			diag_fail(d, "%s: no pinned host key", name);
			return diag_hint(d, "corral pins it on the first connection: run `corral up %s`",
					 name);
		}
		if (read_file(hosts[i].ep.known_hosts, ANSIBLE_KNOWN_HOSTS_MAX, &data, NULL, d) < 0)
			return diag_wrap(d, "%s: pinned host key", name);
		_cleanup_free_ char *pat = host_pattern(&hosts[i].ep);
		rehost(out, pat, data);
		free(data);
	}
	if (!out->s)
		buf_add(out, "", 0);
	return 0;
}
