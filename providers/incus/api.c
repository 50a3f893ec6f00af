/* The Incus/LXD REST client: one libcurl request per call over the
 * server's unix socket or HTTPS (TLS client certificate), answers parsed
 * with jansson. An answer is "sync"
 * (its metadata is the result), "async" (a background operation, followed
 * with GET /1.0/operations/ID/wait until it ends) or "error" (the server's
 * message becomes the diag). Every call names the project when one is set. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "providers/incus/incus.h"

#define WAIT_SLICE_S 30 /* one /wait request; repeated until the deadline */

/* Where the local daemon's socket may be, in order, after $INCUS_DIR and $LXD_DIR. */
static const char *const sockets[] = {
	"/var/lib/incus/unix.socket",
	"/var/lib/lxd/unix.socket",
	"/var/snap/lxd/common/lxd/unix.socket",
	NULL,
};
static const char *const dir_vars[] = {"INCUS_DIR", "LXD_DIR", NULL};

char *incus_default_socket(void)
{
	for (size_t i = 0; dir_vars[i]; i++) {
		const char *v = getenv(dir_vars[i]);
		if (v && *v)
			return xasprintf("%s/unix.socket", v);
	}
	for (size_t i = 0; sockets[i]; i++)
		if (path_exists(sockets[i]))
			return xstrdup(sockets[i]);
	return NULL;
}

void incus_client_set_remote(struct incus_client *c, const char *remote)
{
	free(c->socket);
	free(c->url);
	c->socket = c->url = NULL;
	if (strncmp(remote, "unix://", 7) == 0)
		c->socket = xstrdup(remote + 7);
	else
		c->url = xstrdup(remote);
}

char *incus_client_remote(const struct incus_client *c)
{
	return c->url ? xstrdup(c->url) : xasprintf("unix://%s", c->socket);
}

/* An https remote needs the client's certificate and key. */
static int https_opts(struct incus_client *c, const struct incus_opts *o, struct diag *d)
{
	if (!o->client_cert || !o->client_key) {
		diag_fail(d, "incus: remote %s needs client_cert and client_key", o->remote);
		return diag_hint(d, "give the PEM files of a certificate the server trusts "
				    "(`incus config trust add-certificate FILE` on the server)");
	}
	c->cert = xstrdup(o->client_cert);
	c->key = xstrdup(o->client_key);
	c->server_cert = xstrdup(o->server_cert);
	return 0;
}

int incus_client_open(struct incus_client *c, const struct machine_cfg *cfg, struct diag *d)
{
	const struct incus_opts *o = cfg ? &cfg->incus : NULL;
	*c = (struct incus_client){0};
	if (o && o->remote && !strchr(o->remote, ':')) {
		if (incus_remote_named(c, o, d) < 0) {
			incus_client_close(c);
			return -1;
		}
	} else if (o && o->remote) {
		incus_client_set_remote(c, o->remote);
		if (c->url && https_opts(c, o, d) < 0) {
			incus_client_close(c);
			return -1;
		}
	} else {
		c->socket = incus_default_socket();
	}
	if (!c->socket && !c->url) {
		diag_fail(d, "incus: no Incus or LXD daemon socket found");
		return diag_hint(d, "install and start incus (or lxd), or set "
				    "provider_options.incus.remote: unix:///PATH/unix.socket");
	}
	c->project = o ? xstrdup(o->project) : NULL;
	c->target = o ? xstrdup(o->target) : NULL;
	return 0;
}

void incus_client_close(struct incus_client *c)
{
	free(c->socket);
	free(c->url);
	free(c->cert);
	free(c->key);
	free(c->server_cert);
	free(c->project);
	free(c->target);
	*c = (struct incus_client){0};
}

static void init_curl(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static size_t on_write(char *p, size_t size, size_t n, void *arg)
{
	buf_add(arg, p, size * n);
	return size * n;
}

/* "http://incus/1.0/...?project=P" (the host part is ignored on a
 * socket), or the https remote's. */
static char *url_of(const struct incus_client *c, const char *path)
{
	const char *base = c->url ? c->url : "http://incus";
	if (!c->project)
		return xasprintf("%s%s", base, path);
	return xasprintf("%s%s%sproject=%s", base, path, strchr(path, '?') ? "&" : "?",
			 c->project);
}

/* Where the request goes: the socket, or TLS with the client certificate,
 * the server verified against the system's CAs with its name or address
 * checked, or, when server_cert is given, against that certificate alone
 * (the only trust anchor: no CA path either) whatever address the URL
 * names, as the incus/lxc client trusts a remote's pinned certificate: a
 * cluster's certificate is every member's, and names none of their
 * addresses. */
static void transport(CURL *h, const struct incus_client *c)
{
	if (!c->url) {
		curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, c->socket);
		curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http");
		return;
	}
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, c->server_cert ? 0L : 2L);
	curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert);
	curl_easy_setopt(h, CURLOPT_SSLKEY, c->key);
	if (c->server_cert) {
		curl_easy_setopt(h, CURLOPT_CAINFO, c->server_cert);
		curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	}
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
}

/* One request; the body in out, the HTTP status in *http. */
static int perform(struct incus_client *c, const char *method, const char *path,
		   const struct incus_raw *raw, struct buf *out, long *http, struct diag *d)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init_curl);
	CURL *h = curl_easy_init();
	if (!h)
		return diag_fail(d, "incus: libcurl could not start a request");
	_cleanup_free_ char *url = url_of(c, path);
	char err[CURL_ERROR_SIZE] = "";
	FILE *f = NULL;
	struct curl_slist *hdrs = NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	transport(h, c);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	for (const char *const *x = raw ? raw->headers : NULL; x && *x; x++)
		hdrs = curl_slist_append(hdrs, *x);
	if (raw && raw->file) {
		struct stat st;
		f = fopen(raw->file, "rbe");
		if (!f || fstat(fileno(f), &st) < 0) {
			if (f)
				fclose(f);
			curl_slist_free_all(hdrs);
			curl_easy_cleanup(h);
			return diag_errno(d, "incus: %s", raw->file);
		}
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_READDATA, f);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)st.st_size);
	} else if (raw && raw->data) {
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, raw->data);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)raw->len);
	}
	/* No "Expect: 100-continue" round trip on uploads. */
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, http);
	if (f)
		fclose(f);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		diag_fail(d, "incus: %s %s%s: %s", method, c->url ? c->url : "", path,
			  err[0] ? err : curl_easy_strerror(rc));
		if (c->url)
			return diag_hint(d, "is the server up, and are its certificate and ours right?");
		return diag_hint(d, "is the daemon running, and is %s its socket?", c->socket);
	}
	buf_add(out, "", 0);
	return 0;
}

static const char *jstr(const json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static int server_error(const char *method, const char *path, const char *msg, long code,
			long *status, struct diag *d)
{
	if (status)
		*status = code;
	return diag_fail(d, "incus: %s %s: %s (%ld)", method, path, *msg ? msg : "failed", code);
}

/* Follows operation `op` ("/1.0/operations/ID") until it ends. */
static int wait_op(struct incus_client *c, const char *method, const char *path, const char *op,
		   json_t **meta, long *status, struct diag *d)
{
	uint64_t end = now_ms() + INCUS_OP_TIMEOUT_MS;
	_cleanup_free_ char *wait = xasprintf("%s/wait?timeout=%d", op, WAIT_SLICE_S);
	for (;;) {
		json_t *m = NULL;
		if (incus_call(c, "GET", wait, NULL, &m, status, d) < 0)
			return diag_wrap(d, "%s %s", method, path);
		const char *st = jstr(m, "status");
		long code = (long)json_integer_value(json_object_get(m, "status_code"));
		if (strcmp(st, "Success") == 0) {
			if (meta)
				*meta = json_incref(json_object_get(m, "metadata"));
			json_decref(m);
			return 0;
		}
		if (code >= 400 || strcmp(st, "Failure") == 0 || strcmp(st, "Cancelled") == 0) {
			server_error(method, path, jstr(m, "err"), code, status, d);
			json_decref(m);
			return -1;
		}
		json_decref(m);
		if (now_ms() >= end)
			return diag_fail(d, "incus: %s %s: still running after %us", method, path,
					 INCUS_OP_TIMEOUT_MS / 1000);
	}
}

/* An answer's envelope: its result, an operation to follow, or an error. */
static int answer(struct incus_client *c, const char *method, const char *path,
		  const struct buf *out, long http, json_t **meta, long *status, struct diag *d)
{
	json_error_t je;
	json_t *r = json_loads(out->s ? out->s : "", 0, &je);
	if (!r) {
		server_error(method, path, "the answer is not JSON", http, status, d);
		return -1;
	}
	const char *type = jstr(r, "type");
	int rc = 0;
	if (strcmp(type, "error") == 0 || http >= 400) {
		long code = (long)json_integer_value(json_object_get(r, "error_code"));
		rc = server_error(method, path, jstr(r, "error"), code ? code : http, status, d);
	} else if (strcmp(type, "async") == 0) {
		rc = wait_op(c, method, path, jstr(r, "operation"), meta, status, d);
	} else if (meta) {
		*meta = json_incref(json_object_get(r, "metadata"));
	}
	json_decref(r);
	return rc;
}

int incus_call_raw(struct incus_client *c, const char *method, const char *path,
		   const struct incus_raw *raw, json_t **meta, long *status, struct diag *d)
{
	struct buf out = {0};
	long http = 0;
	if (meta)
		*meta = NULL;
	if (status)
		*status = 0;
	int rc = perform(c, method, path, raw, &out, &http, d);
	if (rc == 0)
		rc = answer(c, method, path, &out, http, meta, status, d);
	buf_free(&out);
	return rc;
}

int incus_call(struct incus_client *c, const char *method, const char *path, json_t *body,
	       json_t **meta, long *status, struct diag *d)
{
	_cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	static const char *const json_hdr[] = {"Content-Type: application/json", NULL};
	struct incus_raw raw = {.data = text, .len = text ? strlen(text) : 0, .headers = json_hdr};
	return incus_call_raw(c, method, path, text ? &raw : NULL, meta, status, d);
}

/* One file call on p: a GET's bytes (not JSON) into out, or (out NULL)
 * the POST of raw. */
static int file_once(struct incus_client *c, const char *p, const struct incus_raw *raw,
		     struct buf *out, long *status, struct diag *d)
{
	if (!out)
		return incus_call_raw(c, "POST", p, raw, NULL, status, d);
	long http = 0;
	*status = 0;
	buf_free(out);
	if (perform(c, "GET", p, NULL, out, &http, d) < 0)
		return -1;
	if (http < 400)
		return 0;
	/* An error answer is the JSON envelope. */
	struct buf copy = {0};
	buf_add(&copy, out->s ? out->s : "", out->len);
	buf_add(&copy, "", 0);
	int rc = answer(c, "GET", p, &copy, http, NULL, status, d);
	buf_free(&copy);
	return rc < 0 ? -1 : server_error("GET", p, "failed", http, status, d);
}

/* file_once on the instance's path, made again after a 500, up to
 * INCUS_FILE_TRIES in all, pausing 200 ms, then 400, then 800. LXD serves
 * the file API through a helper (forkfile) it spawns for the instance on
 * demand; a 500 is a failure of that helper's start. Seen once in a cold
 * test run: the first GET of a just-created container's /etc/passwd, with
 * the host busy, "dial unix /proc/self/fd/41/forkfile.sock: connect: no
 * such file or directory (500)". Any other status, or a 500 that lasts,
 * stands. */
static int file_call(struct incus_client *c, const char *instance, const char *path,
		     const struct incus_raw *raw, struct buf *out, long *status, struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s/files?path=%s", instance, path);
	for (unsigned n = 1;; n++) {
		struct diag e = {0};
		if (file_once(c, p, raw, out, status, &e) == 0)
			return 0;
		if (*status != 500 || n >= INCUS_FILE_TRIES) {
			*d = e;
			return -1;
		}
		sleep_ms(200u << (n - 1));
	}
}

int incus_file_get(struct incus_client *c, const char *instance, const char *path,
		   struct buf *out, long *status, struct diag *d)
{
	return file_call(c, instance, path, NULL, out, status, d);
}

int incus_file_put(struct incus_client *c, const char *instance, const char *path,
		   const char *const *headers, const char *data, size_t len, struct diag *d)
{
	struct incus_raw raw = {.data = data ? data : "", .len = len, .headers = headers};
	long st = 0;
	return file_call(c, instance, path, &raw, NULL, &st, d);
}

/* GET .../state, asked again while the server answers status "Error":
 * LXD says so (with pid 0) when the instance's liblxc monitor has not
 * answered within 5 s, as on a host under load, while the instance runs
 * on. Seen: `corral ssh` right after `up` told "stopped" of a running
 * container during a parallel test run. An "Error" that lasts is kept. */
int incus_state_get(struct incus_client *c, const char *instance, json_t **st, long *status,
		    struct diag *d)
{
	_cleanup_free_ char *p = xasprintf("/1.0/instances/%s/state", instance);
	uint64_t end = now_ms() + INCUS_STATE_ERROR_MS;
	for (;;) {
		*st = NULL;
		if (incus_call(c, "GET", p, NULL, st, status, d) < 0)
			return -1;
		const char *v = json_string_value(json_object_get(*st, "status"));
		if (!v || strcmp(v, "Error") != 0 || now_ms() >= end)
			return 0;
		json_decref(*st);
		sleep_ms(500);
	}
}
