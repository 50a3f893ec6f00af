#include "core/box/download.h"

#include <ctype.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/base/log.h"
#include "core/base/util.h"

#define MAX_TRIES 5
#define MAX_REDIRECTS 10

struct attempt {
	struct download *dl;
	CURL *c;
	long code;
	bool started, sink_failed;
	bool have_range;
	uint64_t range_start;
	struct diag sink_d;
};

static unsigned env_uint(const char *name, unsigned def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n = v && *v ? strtoul(v, &end, 10) : def;
	return v && *v && *end ? def : (unsigned)n;
}

bool download_is_remote(const char *url)
{
	return str_starts(url, "http://") || str_starts(url, "https://");
}

char *download_url_part(const char *url, CURLUPart part)
{
	CURLU *u = curl_url();
	char *v = NULL, *r = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, part, &v, 0) == CURLUE_OK)
		r = xstrdup(v);
	curl_free(v);
	curl_url_cleanup(u);
	return r;
}

/* The URL as errors show it: without user:password@. */
static char *url_shown(const char *url)
{
	CURLU *u = curl_url();
	char *v = NULL, *r;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &v, 0) == CURLUE_OK)
		r = xstrdup(v);
	else
		r = xstrdup("(unparsable URL)");
	curl_free(v);
	curl_url_cleanup(u);
	return r;
}

/* "scheme://host:port" of url, the port made explicit; NULL if unparsable. */
static char *origin(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *r = NULL;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK)
		r = xasprintf("%s://%s:%s", scheme, host, port);
	for (char *p = r; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return r;
}

/* The token goes only where scheme, host and port all match the box server. */
static bool token_allowed(const char *url, const char *token_url)
{
	if (!token_url)
		return false;
	_cleanup_free_ char *a = origin(url), *b = origin(token_url);
	return a && b && strcmp(a, b) == 0;
}

static bool is_https(const char *url) { return strncasecmp(url, "https://", 8) == 0; }

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	struct attempt *a = ud;
	size_t len = size * n;
	unsigned long long start;
	if (len > 5 && strncmp(p, "HTTP/", 5) == 0)
		a->have_range = false; /* a new response (after a redirect or 100) */
	if (len > 14 && strncasecmp(p, "Content-Range:", 14) == 0 &&
	    sscanf(p + 14, " bytes %llu-", &start) == 1) {
		a->have_range = true;
		a->range_start = start;
	}
	if (a->dl->on_header)
		a->dl->on_header(a->dl->ctx, p, len);
	return len;
}

/* The first body byte of a 2xx response: tell the caller what kind it is. */
static int start_body(struct attempt *a)
{
	struct download *dl = a->dl;
	bool resumed = a->code == 206;
	if (resumed && (!a->have_range || a->range_start != dl->offset))
		return diag_fail(&a->sink_d, "the server answered a request for the bytes from %llu "
					     "with a different range", (unsigned long long)dl->offset);
	if (!resumed)
		dl->offset = 0;
	curl_off_t len = -1;
	curl_easy_getinfo(a->c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
	a->started = true;
	return dl->start(dl->ctx, resumed, len >= 0 ? dl->offset + (uint64_t)len : 0, &a->sink_d);
}

static size_t on_write(char *p, size_t size, size_t n, void *ud)
{
	struct attempt *a = ud;
	size_t len = size * n;
	if (!a->started)
		curl_easy_getinfo(a->c, CURLINFO_RESPONSE_CODE, &a->code);
	if (a->code < 200 || a->code > 299)
		return len; /* the body of a redirect or an error page */
	if ((!a->started && start_body(a) < 0) || a->dl->write(a->dl->ctx, p, len, &a->sink_d) < 0) {
		a->sink_failed = true;
		return 0;
	}
	a->dl->offset += len;
	return len;
}

static void init_curl(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

/* Verification on unless insecure; the CA bundle from the environment. */
static void tls_opts(CURL *c, bool insecure)
{
	const char *ca = getenv("CURL_CA_BUNDLE");
	if (!ca || !*ca)
		ca = getenv("SSL_CERT_FILE");
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, insecure ? 0L : 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, insecure ? 0L : 2L);
	if (ca && *ca)
		curl_easy_setopt(c, CURLOPT_CAINFO, ca);
}

static struct curl_slist *setup(CURL *c, struct attempt *a, const char *url, char *err)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init_curl);
	struct download *dl = a->dl;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "corral/0.1");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)env_uint("CORRAL_LOW_SPEED_TIME", 30));
	tls_opts(c, dl->insecure);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
	curl_easy_setopt(c, CURLOPT_BUFFERSIZE, 512L * 1024);
	/* CURLOPT_RANGE, not RESUME_FROM: a 200 answer must reach start_body,
	 * which starts over, instead of failing the transfer. */
	char range[32];
	snprintf(range, sizeof(range), "%llu-", (unsigned long long)dl->offset);
	curl_easy_setopt(c, CURLOPT_RANGE, dl->offset ? range : NULL);
	struct curl_slist *headers = NULL;
	for (const char *const *h = dl->headers; h && *h; h++)
		headers = curl_slist_append(headers, *h);
	if (dl->auth && token_allowed(url, dl->auth_url))
		headers = curl_slist_append(headers, dl->auth);
	const char *token = getenv("CORRAL_BOX_TOKEN");
	if (token && *token && token_allowed(url, dl->token_url)) {
		_cleanup_free_ char *h = xasprintf("Authorization: Bearer %s", token);
		headers = curl_slist_append(headers, h);
	}
	if (headers)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
	return headers;
}

static bool transient_code(CURLcode rc)
{
	static const CURLcode codes[] = {
		CURLE_COULDNT_CONNECT, CURLE_RECV_ERROR,      CURLE_SEND_ERROR,
		CURLE_OPERATION_TIMEDOUT, CURLE_PARTIAL_FILE, CURLE_GOT_NOTHING,
		CURLE_HTTP2, CURLE_HTTP2_STREAM, CURLE_COULDNT_RESOLVE_HOST,
	};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (codes[i] == rc)
			return true;
	return false;
}

/* Turns one finished request into 0 or an error, saying whether to retry. */
static int classify(struct attempt *a, CURLcode rc, const char *full_url, const char *err,
		    bool *transient, struct diag *d)
{
	_cleanup_free_ char *url = url_shown(full_url);
	const char *why = err[0] ? err : curl_easy_strerror(rc);
	*transient = false;
	if (a->sink_failed) {
		*d = a->sink_d;
		return -1;
	}
	if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
		diag_fail(d, "TLS: the certificate of %s is not trusted (%s)", url, why);
		return diag_hint(d, "if the server uses a private CA, set CURL_CA_BUNDLE to its "
				    "certificate file; --insecure turns verification off");
	}
	if (rc != CURLE_OK) {
		*transient = transient_code(rc);
		return diag_fail(d, "%s: %s", url, why);
	}
	if (a->code == 416 && a->dl->offset) {
		a->dl->offset = 0; /* the partial download is stale: start over */
		*transient = true;
		return diag_fail(d, "%s: the partial download does not fit the file any more", url);
	}
	if (a->code >= 400) {
		*transient = a->code >= 500 || a->code == 408 || a->code == 429;
		return diag_fail(d, "HTTP %ld for %s", a->code, url);
	}
	if (!a->started && start_body(a) < 0) /* an empty body */
		return *d = a->sink_d, -1;
	return 0;
}

/* One attempt: follows redirects itself, so the token rule applies per hop. */
static int attempt(struct download *dl, bool *transient, struct diag *d)
{
	_cleanup_free_ char *url = xstrdup(dl->url);
	for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
		struct attempt a = {.dl = dl, .c = curl_easy_init()};
		char err[CURL_ERROR_SIZE] = "";
		if (!a.c)
			return diag_fail(d, "libcurl could not start");
		struct curl_slist *headers = setup(a.c, &a, url, err);
		CURLcode rc = curl_easy_perform(a.c);
		char *next = NULL;
		curl_easy_getinfo(a.c, CURLINFO_RESPONSE_CODE, &a.code);
		dl->status = a.code;
		if (rc == CURLE_OK && a.code >= 300 && a.code < 400 &&
		    curl_easy_getinfo(a.c, CURLINFO_REDIRECT_URL, &next) == CURLE_OK && next)
			next = xstrdup(next);
		int r = next ? 0 : classify(&a, rc, url, err, transient, d);
		curl_slist_free_all(headers);
		curl_easy_cleanup(a.c);
		if (!next)
			return r;
		if (is_https(url) && !is_https(next)) {
			_cleanup_free_ char *from = url_shown(url), *to = url_shown(next);
			free(next);
			diag_fail(d, "%s redirects to %s, which is not https: refused", from, to);
			return diag_hint(d, "ask the server's owner to redirect to https, or use the "
					    "final URL if you trust it over plain http");
		}
		free(url);
		url = next;
	}
	_cleanup_free_ char *shown = url_shown(dl->url);
	return diag_fail(d, "%s: more than %d redirects", shown, MAX_REDIRECTS);
}

int download_run(struct download *dl, struct diag *d)
{
	unsigned backoff = env_uint("CORRAL_RETRY_BACKOFF_MS", 1000);
	for (int try = 1;; try++) {
		bool transient = false;
		if (attempt(dl, &transient, d) == 0)
			return 0;
		if (!transient)
			return -1;
		if (try == MAX_TRIES)
			return diag_wrap(d, "gave up after %d tries", MAX_TRIES);
		log_warn("%s; trying again in %u ms", d->msg, backoff);
		sleep_ms(backoff);
		backoff *= 2;
	}
}

/* ---- readiness probes ---- */

#define PROBE_BODY_MAX 4096

static size_t probe_body(char *p, size_t size, size_t n, void *ud)
{
	struct buf *b = ud;
	size_t len = size * n, room = b->len < PROBE_BODY_MAX ? PROBE_BODY_MAX - b->len : 0;
	buf_add(b, p, len < room ? len : room);
	return len;
}

int download_probe(const char *url, const char *host, unsigned port, uint64_t timeout_ms,
		   long *status, struct buf *body, struct diag *d)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, init_curl);
	CURL *c = curl_easy_init();
	char err[CURL_ERROR_SIZE] = "";
	if (!c)
		return diag_fail(d, "libcurl could not start");
	_cleanup_free_ char *to = host ? xasprintf("::%s:%u", host, port) : NULL;
	struct curl_slist *connect_to = to ? curl_slist_append(NULL, to) : NULL;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "corral/0.1");
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECT_TO, connect_to);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, probe_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
	tls_opts(c, false);
	CURLcode rc = curl_easy_perform(c);
	*status = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
	curl_slist_free_all(connect_to);
	curl_easy_cleanup(c);
	if (rc == CURLE_OK)
		return 0;
	_cleanup_free_ char *shown = url_shown(url);
	return diag_fail(d, "%s: %s", shown, err[0] ? err : curl_easy_strerror(rc));
}
