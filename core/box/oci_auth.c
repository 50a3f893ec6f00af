/* Registry credentials and the answer to a 401: user and password from
 * $REGISTRY_AUTH_FILE, else $DOCKER_CONFIG/config.json, else
 * ~/.docker/config.json ("auths": {"HOST": {"auth": base64("user:pass")}},
 * also keyed by https://HOST and, for Docker Hub, its v1 index URL); a
 * `Basic` challenge is answered with them, a `Bearer realm=,service=,scope=`
 * challenge by asking the realm for a token (with them when there are any,
 * anonymously otherwise). A host with no "auths" entry asks the credential
 * helper the file names (credHelpers, credsStore). Secrets never reach a
 * log line. */
#include "core/box/oci_priv.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/box/fetch.h"
#include "core/base/util.h"
#include "core/host/proc.h"

#define TOKEN_MAX (64u << 10)

static char *auth_file(void)
{
	const char *f = getenv("REGISTRY_AUTH_FILE");
	if (f && *f)
		return xstrdup(f);
	const char *dc = getenv("DOCKER_CONFIG");
	if (dc && *dc)
		return path_join(dc, "config.json");
	const char *home = getenv("HOME");
	return home && *home ? xasprintf("%s/.docker/config.json", home) : NULL;
}

static const char *auth_of(json_t *auths, const char *key)
{
	return json_string_value(json_object_get(json_object_get(auths, key), "auth"));
}

/* A credential helper's answer for host, as base64("user:secret"), or
 * NULL: `docker-credential-NAME get` with the server on stdin (Docker
 * Hub's by its v1 index URL), answering {"Username": ..., "Secret": ...}.
 * NAME is credHelpers[host], else credsStore; it is a program name, never
 * a path. A helper that fails (no credentials stored) means none. */
static char *helper_credentials(json_t *doc, const char *host, bool hub)
{
	const char *name = json_string_value(json_object_get(json_object_get(doc, "credHelpers"), host));
	if (!name)
		name = json_string_value(json_object_get(doc, "credsStore"));
	if (!name || !*name || strpbrk(name, "/ ") || name[0] == '.')
		return NULL;
	_cleanup_free_ char *prog = xasprintf("docker-credential-%s", name);
	_cleanup_free_ char *server = xasprintf("%s\n", hub ? "https://index.docker.io/v1/" : host);
	const char *const argv[] = {prog, "get", NULL};
	struct proc_cmd c = {.argv = argv, .input = server, .split = true};
	struct diag d = {0};
	char *r = NULL;
	if (proc_cmd_run(&c, &d) == 0 && c.status == 0 && c.out.s) {
		json_t *o = json_loads(c.out.s, 0, NULL);
		const char *u = json_string_value(json_object_get(o, "Username"));
		const char *sec = json_string_value(json_object_get(o, "Secret"));
		if (u && sec && *sec) {
			_cleanup_free_ char *pair = xasprintf("%s:%s", u, sec);
			r = b64_encode((const unsigned char *)pair, strlen(pair));
			explicit_bzero(pair, strlen(pair));
		}
		json_decref(o);
	} else {
		log_debug("credential helper %s for %s: none (%s)", prog, host,
			  d.msg[0] ? d.msg : "it failed");
	}
	if (c.out.s)
		explicit_bzero(c.out.s, c.out.len);
	proc_cmd_free(&c);
	return r;
}

/* base64("user:password") for host, or NULL. */
char *oci_credentials(const char *host)
{
	_cleanup_free_ char *file = auth_file();
	if (!file || !path_exists(file))
		return NULL;
	json_t *doc = json_load_file(file, 0, NULL);
	json_t *auths = json_object_get(doc, "auths");
	_cleanup_free_ char *https = xasprintf("https://%s", host);
	_cleanup_free_ char *v1 = xasprintf("https://%s/v1/", host);
	const char *hub = strcmp(host, "docker.io") == 0 || strcmp(host, "registry-1.docker.io") == 0
				  ? auth_of(auths, "https://index.docker.io/v1/") : NULL;
	const char *a = auth_of(auths, host);
	if (!a)
		a = auth_of(auths, https);
	if (!a)
		a = auth_of(auths, v1);
	if (!a)
		a = hub;
	char *r = a && *a ? xstrdup(a) : helper_credentials(doc, host, hub != NULL || strcmp(host, "docker.io") == 0);
	json_decref(doc);
	return r;
}

/* The value of key="..." (or key=token) in a challenge's parameters. */
static char *param(const char *params, const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = params; p && *p;) {
		while (*p == ' ' || *p == ',')
			p++;
		const char *eq = strchr(p, '=');
		if (!eq)
			return NULL;
		bool hit = (size_t)(eq - p) == kl && strncasecmp(p, key, kl) == 0;
		const char *v = eq + 1, *end;
		if (*v == '"') {
			end = strchr(++v, '"');
			if (!end)
				return NULL;
		} else {
			end = v + strcspn(v, ",");
		}
		if (hit)
			return xstrndup(v, (size_t)(end - v));
		p = *end == '"' ? end + 1 : end;
	}
	return NULL;
}

static char *url_escape(const char *s)
{
	struct buf b = {0};
	buf_add(&b, "", 0);
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~", *c))
			buf_add(&b, (const char *)c, 1);
		else
			buf_printf(&b, "%%%02X", *c);
	return b.s;
}

static int bearer_token(const char *params, const char *creds, bool insecure, char **auth,
			struct diag *d)
{
	_cleanup_free_ char *realm = param(params, "realm"), *service = param(params, "service");
	_cleanup_free_ char *scope = param(params, "scope");
	if (!realm || !str_starts(realm, "http"))
		return diag_fail(d, "the registry's Bearer challenge names no realm");
	_cleanup_free_ char *es = url_escape(service ? service : ""), *esc = url_escape(scope ? scope : "");
	_cleanup_free_ char *url = xasprintf("%s%sservice=%s%s%s", realm, strchr(realm, '?') ? "&" : "?",
					     es, scope ? "&scope=" : "", scope ? esc : "");
	if (creds && !str_starts(realm, "https://")) {
		diag_fail(d, "the registry sends corral to %s for a token: credentials go only over https", realm);
		return diag_hint(d, "use a registry whose token server is on https");
	}
	_cleanup_free_ char *basic = creds ? xasprintf("Authorization: Basic %s", creds) : NULL;
	struct boxfetch_opts fo = {.insecure = insecure, .auth = basic, .auth_url = realm};
	char *text = NULL;
	size_t len;
	if (fetch_text(url, TOKEN_MAX, &fo, &text, &len, d) < 0)
		return diag_wrap(d, "registry token from %s", realm);
	json_t *doc = json_loadb(text, len, 0, NULL);
	free(text);
	const char *tok = json_string_value(json_object_get(doc, "token"));
	if (!tok)
		tok = json_string_value(json_object_get(doc, "access_token"));
	if (tok && strpbrk(tok, "\r\n"))
		tok = NULL;
	*auth = tok ? xasprintf("Authorization: Bearer %s", tok) : NULL;
	json_decref(doc);
	if (!*auth)
		return diag_fail(d, "the token server %s answered without a token", realm);
	return 0;
}

int oci_answer_challenge(const char *challenge, const char *host, bool insecure, char **auth,
			 struct diag *d)
{
	_cleanup_free_ char *creds = oci_credentials(host);
	*auth = NULL;
	if (challenge && strncasecmp(challenge, "Bearer ", 7) == 0)
		return bearer_token(challenge + 7, creds, insecure, auth, d);
	if (challenge && strncasecmp(challenge, "Basic", 5) == 0 && creds) {
		*auth = xasprintf("Authorization: Basic %s", creds);
		return 0;
	}
	diag_fail(d, "%s asks for credentials%s", host, creds ? " and refused the ones given" : "");
	return diag_hint(d, "log in with `docker login %s` or `skopeo login %s` (corral reads "
			    "~/.docker/config.json or $REGISTRY_AUTH_FILE)", host, host);
}
