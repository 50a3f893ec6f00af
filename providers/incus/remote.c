/* `remote: NAME`: a remote of the user's own incus or lxc client
 * configuration, as `incus remote add` / `lxc remote add` wrote it. The
 * first of $INCUS_CONF, ~/.config/incus, $LXD_CONF, ~/.config/lxc that
 * has a config.yml naming the remote gives
 *   remotes: { NAME: { addr: https://HOST:PORT | unix://[PATH], protocol } }
 * and, beside it, the client certificate client.crt / client.key and the
 * server's certificate servercerts/NAME.crt (the one pinned when the
 * remote was added; without it, the system's CAs). The envfile's own
 * client_cert, client_key and server_cert win over those files. The file
 * is read with libyaml; only the few keys above are looked at. */
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "providers/incus/incus.h"

#define CONFIG_MAX (1u << 20)

/* Where a client keeps its configuration: an environment variable, else
 * a directory under the home. */
static const struct {
	const char *var, *home_dir;
} conf_dirs[] = {
	{"INCUS_CONF", ".config/incus"},
	{"LXD_CONF", ".config/lxc"},
};

/* Protocols of a server corral can run instances on (not image servers). */
static const char *const api_protocols[] = {"incus", "lxd", NULL};

/* The value of key in mapping node map, or NULL. */
static yaml_node_t *map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

static char *scalar(yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? xstrdup((const char *)n->data.scalar.value)
						 : NULL;
}

/* remotes.NAME's addr and protocol from config.yml text; 1 when found, 0
 * when the file has no such remote, -1 when it is not YAML. */
static int lookup(const char *text, size_t len, const char *name, char **addr, char **proto)
{
	yaml_parser_t p;
	yaml_document_t doc;
	if (!yaml_parser_initialize(&p))
		return -1;
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	if (!yaml_parser_load(&p, &doc)) {
		yaml_parser_delete(&p);
		return -1;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	yaml_node_t *r = map_get(&doc, map_get(&doc, root, "remotes"), name);
	*addr = scalar(map_get(&doc, r, "addr"));
	*proto = scalar(map_get(&doc, r, "protocol"));
	yaml_document_delete(&doc);
	yaml_parser_delete(&p);
	return *addr ? 1 : 0;
}

/* The configuration directories, in order; caller frees each. */
static void config_dirs(struct strv *dirs)
{
	for (size_t i = 0; i < sizeof(conf_dirs) / sizeof(conf_dirs[0]); i++) {
		const char *v = getenv(conf_dirs[i].var);
		if (v && *v)
			strv_push(dirs, v);
		else if (user_home())
			strv_take(dirs, path_join(user_home(), conf_dirs[i].home_dir));
	}
}

/* The first directory whose config.yml names the remote. */
static int find(const char *name, char **dir, char **addr, char **proto, struct diag *d)
{
	struct strv dirs = {0};
	config_dirs(&dirs);
	int rc = 0;
	for (size_t i = 0; i < dirs.n && !rc; i++) {
		_cleanup_free_ char *f = path_join(dirs.v[i], "config.yml"), *text = NULL;
		size_t len;
		struct diag ignored = {0};
		if (!path_exists(f) || read_file(f, CONFIG_MAX, &text, &len, &ignored) < 0)
			continue;
		rc = lookup(text, len, name, addr, proto);
		if (rc < 0)
			diag_fail(d, "incus: %s is not a YAML client configuration", f);
		if (rc > 0)
			*dir = xstrdup(dirs.v[i]);
	}
	if (rc == 0) {
		diag_fail(d, "incus: no remote %s in the client configuration", name);
		diag_hint(d, "add it with `incus remote add %s https://HOST:8443` (looked in "
			     "$INCUS_CONF, ~/.config/incus, $LXD_CONF, ~/.config/lxc)", name);
	}
	strv_free(&dirs);
	return rc > 0 ? 0 : -1;
}

/* The envfile's file, else the configuration directory's when it exists. */
static char *pick_file(const char *given, const char *dir, const char *file)
{
	if (given)
		return xstrdup(given);
	char *p = path_join(dir, file);
	if (path_exists(p))
		return p;
	free(p);
	return NULL;
}

int incus_remote_named(struct incus_client *c, const struct incus_opts *o, struct diag *d)
{
	_cleanup_free_ char *dir = NULL, *addr = NULL, *proto = NULL;
	if (find(o->remote, &dir, &addr, &proto, d) < 0)
		return -1;
	if (proto && !str_in_list(proto, api_protocols)) {
		diag_fail(d, "incus: remote %s is a %s image server, not an Incus or LXD server",
			  o->remote, proto);
		return diag_hint(d, "name a remote added with `incus remote add NAME https://HOST:8443`");
	}
	if (strncmp(addr, "unix://", 7) == 0) {
		c->socket = addr[7] ? xstrdup(addr + 7) : incus_default_socket();
		return 0;
	}
	c->url = xstrdup(addr);
	_cleanup_free_ char *sc = xasprintf("servercerts/%s.crt", o->remote);
	c->cert = pick_file(o->client_cert, dir, "client.crt");
	c->key = pick_file(o->client_key, dir, "client.key");
	c->server_cert = pick_file(o->server_cert, dir, sc);
	if (c->cert && c->key)
		return 0;
	diag_fail(d, "incus: remote %s: no client certificate (client.crt and client.key in %s)",
		  o->remote, dir);
	return diag_hint(d, "set provider_options.incus.client_cert and client_key");
}
