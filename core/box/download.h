/* HTTP(S) downloads through libcurl, with the rules every fetch in corral
 * follows: TLS verification on unless insecure; CA bundle from CURL_CA_BUNDLE
 * or SSL_CERT_FILE; proxies from the environment; "Authorization: Bearer
 * $CORRAL_BOX_TOKEN" only on requests whose scheme, host and port are
 * token_url's (checked on every redirect hop); bounded redirects, never
 * from https to anything else; a low-speed timeout
 * (CORRAL_LOW_SPEED_TIME seconds under 1 KB/s, default 30); bounded retries
 * with backoff on transient failures (CORRAL_RETRY_BACKOFF_MS, default 1000,
 * doubling); resume with Range after a cut connection. */
#ifndef CORRAL_DOWNLOAD_H
#define CORRAL_DOWNLOAD_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <curl/curl.h>

#include "core/base/diag.h"

struct download {
	const char *url;
	bool insecure;
	const char *token_url; /* the box server; NULL: the token goes nowhere */
	/* Bytes already had: asked for with Range, and advanced as bytes arrive,
	 * so a retry continues where the last attempt stopped. */
	uint64_t offset;
	/* Before the first byte of each attempt: resumed says whether the server
	 * continues at offset (206) or sends everything again (200: the caller
	 * starts over and offset becomes 0); total is the whole size or 0. */
	int (*start)(void *ctx, bool resumed, uint64_t total, struct diag *d);
	int (*write)(void *ctx, const void *p, size_t n, struct diag *d);
	void *ctx;
	/* Optional, for registries (core/box/oci_*.c). headers: "Name: value"
	 * lines sent on every hop; auth: one more line ("Authorization: ...")
	 * sent only to requests whose scheme, host and port are auth_url's
	 * (checked on every hop, so a registry's credentials never follow a
	 * redirect to blob storage); on_header: each response header line;
	 * status: the last response's HTTP status, also when the run failed. */
	const char *const *headers;
	const char *auth, *auth_url;
	void (*on_header)(void *ctx, const char *line, size_t n);
	long status;
};

/* Runs attempts until the body is complete or a failure is not transient. */
int download_run(struct download *dl, struct diag *d);

/* One part of a URL (CURLUPART_HOST, CURLUPART_PATH, ...), or NULL. */
char *download_url_part(const char *url, CURLUPart part);

/* One GET of url for a readiness probe: no retries, no proxy, done within
 * timeout_ms; connecting to host:port instead of what the URL names when
 * host is non-NULL (the Host header and TLS name stay the URL's). *status:
 * the HTTP status (0: no answer); body gets at most 4 KiB of it. 0 when an
 * answer came, whatever its status. */
struct buf;
int download_probe(const char *url, const char *host, unsigned port, uint64_t timeout_ms,
		   long *status, struct buf *body, struct diag *d);
/* http:// or https:// (anything else is a local path or file:// URL). */
bool download_is_remote(const char *url);

#endif
