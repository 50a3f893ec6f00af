/* Checksum files as publishers write them, and the fetch-verify-lookup
 * that turns a box entry's checksum file into the expected digest. */
#include "core/box/sums.h"

#include <ctype.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/base/util.h"
#include "core/box/download.h"
#include "core/box/fetch.h"
#include "core/box/openpgp.h"

#define SUMS_MAX (4u << 20)
#define SIG_MAX (1u << 20)
#define CLEAR_BEGIN "-----BEGIN PGP SIGNED MESSAGE-----"
#define CLEAR_SIG "-----BEGIN PGP SIGNATURE-----"

static const struct {
	size_t hex_len;
	const char *type;
} by_length[] = {{32, "md5"}, {40, "sha1"}, {64, "sha256"}, {96, "sha384"}, {128, "sha512"}};

/* BSD tag names as the tools write them. */
static const struct {
	const char *tag, *type;
} tags[] = {{"MD5", "md5"}, {"SHA1", "sha1"}, {"SHA256", "sha256"}, {"SHA384", "sha384"},
	    {"SHA512", "sha512"}};

void sums_entry_free(struct sums_entry *e)
{
	free(e->name);
	free(e->type);
	free(e->hex);
	*e = (struct sums_entry){0};
}

bool sums_clearsigned(const char *text, size_t len)
{
	size_t n = strlen(CLEAR_BEGIN);
	while (len && isspace((unsigned char)*text))
		text++, len--;
	return len >= n && memcmp(text, CLEAR_BEGIN, n) == 0;
}

static const char *type_of_length(size_t n)
{
	for (size_t i = 0; i < sizeof(by_length) / sizeof(by_length[0]); i++)
		if (by_length[i].hex_len == n)
			return by_length[i].type;
	return NULL;
}

static bool all_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)s[i]))
			return false;
	return n > 0;
}

/* One parsed line: name and digest point into the line. */
struct line {
	const char *name, *hex, *type;
	size_t name_len, hex_len;
};

/* "SHA256 (NAME) = HEX" */
static bool parse_tag(const char *s, struct line *l)
{
	for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++) {
		size_t n = strlen(tags[i].tag);
		if (strncmp(s, tags[i].tag, n) != 0 || strncmp(s + n, " (", 2) != 0)
			continue;
		const char *name = s + n + 2, *close = strstr(name, ") = ");
		while (close && strstr(close + 1, ") = "))
			close = strstr(close + 1, ") = "); /* a name may hold ") = " */
		if (!close)
			return false;
		*l = (struct line){.name = name, .name_len = (size_t)(close - name),
				   .hex = close + 4, .hex_len = strlen(close + 4), .type = tags[i].type};
		return all_hex(l->hex, l->hex_len) && type_of_length(l->hex_len) &&
		       strcmp(type_of_length(l->hex_len), l->type) == 0;
	}
	return false;
}

/* "HEX  NAME" or "HEX *NAME" (a leading '\' marks an escaped name: skipped). */
static bool parse_gnu(const char *s, struct line *l)
{
	const char *s0 = s[0] == '\\' ? s + 1 : s;
	size_t n = strspn(s0, "0123456789abcdefABCDEF");
	if (!type_of_length(n) || s0[n] != ' ' || (s0[n + 1] != ' ' && s0[n + 1] != '*'))
		return false;
	*l = (struct line){.hex = s0, .hex_len = n, .type = type_of_length(n),
			   .name = s0 + n + 2, .name_len = strlen(s0 + n + 2)};
	return l->name_len > 0;
}

static bool parse_line(char *s, struct line *l)
{
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	if (!parse_tag(s, l) && !parse_gnu(s, l))
		return false;
	if (l->name_len > 2 && strncmp(l->name, "./", 2) == 0)
		l->name += 2, l->name_len -= 2;
	return true;
}

/* The lines a checksum file means: inside a clearsigned message, those
 * between the armor header's blank line and the signature, "- " undone. */
static char *body(const char *text, size_t len)
{
	_cleanup_free_ char *all = xstrndup(text, len);
	if (!sums_clearsigned(text, len))
		return xstrdup(all);
	char *p = strstr(all, CLEAR_BEGIN);
	char *blank = strstr(p, "\n\n"), *blank_cr = strstr(p, "\n\r\n");
	if (blank_cr && (!blank || blank_cr < blank))
		blank = blank_cr + 1;
	if (!blank)
		return xstrdup("");
	char *start = blank + 2, *end = strstr(start, CLEAR_SIG);
	if (end)
		*end = '\0';
	struct buf b = {0};
	buf_add(&b, "", 0);
	for (char *save = NULL, *ln = strtok_r(start, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
		buf_puts(&b, str_starts(ln, "- ") ? ln + 2 : ln);
		buf_puts(&b, "\n");
	}
	return b.s;
}

static bool is_pattern(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* Keeps the line when it is the file's (for a pattern: the greatest name). */
static int consider(const struct line *l, const char *file, struct sums_entry *e,
		    struct diag *d)
{
	_cleanup_free_ char *name = xstrndup(l->name, l->name_len);
	bool pat = is_pattern(file);
	if (pat ? fnmatch(file, name, FNM_PATHNAME) != 0 : strcmp(name, file) != 0)
		return 0;
	if (e->name && strcmp(e->name, name) == 0 && strcmp(e->type, l->type) == 0 &&
	    (strlen(e->hex) != l->hex_len || strncasecmp(e->hex, l->hex, l->hex_len) != 0))
		return diag_fail(d, "the checksum file lists two different %s digests for %s",
				 l->type, name);
	if (e->name && strcmp(e->name, name) >= 0)
		return 0; /* of one name the first line; of a pattern's names the greatest */
	sums_entry_free(e);
	e->name = xstrdup(name);
	e->type = xstrdup(l->type);
	e->hex = xstrndup(l->hex, l->hex_len);
	for (char *c = e->hex; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return 0;
}

int sums_find(const char *text, size_t len, const char *file, struct sums_entry *e,
	      struct diag *d)
{
	*e = (struct sums_entry){0};
	_cleanup_free_ char *b = body(text, len);
	int r = 0;
	for (char *save = NULL, *ln = strtok_r(b, "\n", &save); ln && r == 0;
	     ln = strtok_r(NULL, "\n", &save)) {
		struct line l;
		if (ln[0] != '#' && parse_line(ln, &l))
			r = consider(&l, file, e, d);
	}
	if (r == 0 && !e->name)
		r = diag_code(d, DIAG_SUMS_NO_ENTRY, "the checksum file has no entry for %s", file);
	if (r < 0)
		sums_entry_free(e);
	return r;
}

/* The name the checksum file lists the box under: the URL's last path part. */
static char *lookup_name(const struct sums_source *s)
{
	if (s->file)
		return xstrdup(s->file);
	_cleanup_free_ char *path = download_is_remote(s->image_url)
					    ? download_url_part(s->image_url, CURLUPART_PATH)
					    : xstrdup(s->image_url);
	const char *slash = path ? strrchr(path, '/') : NULL;
	return xstrdup(slash ? slash + 1 : path ? path : "");
}

static char *work_dir(struct diag *d)
{
	const char *tmp = getenv("TMPDIR");
	char *dir = xasprintf("%s/corral-sums-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(dir)) {
		diag_errno(d, "create %s", dir);
		free(dir);
		return NULL;
	}
	return dir;
}

/* Verifies the checksum file (saved in work) and replaces *text with what
 * the signature covers. */
static int verify(const struct sums_source *s, const char *work, const struct boxfetch_opts *fo,
		  char **text, size_t *len, struct sums_result *r, struct diag *d)
{
	_cleanup_free_ char *sums = path_join(work, "sums");
	_cleanup_free_ char *sig = path_join(work, "sums.sig");
	_cleanup_free_ char *out = path_join(work, "verified");
	char *sig_data = NULL;
	size_t sig_len = 0;
	if (write_file_atomic(sums, *text, *len, 0600, d) < 0)
		return -1;
	if (s->signature_url) {
		if (fetch_text(s->signature_url, SIG_MAX, fo, &sig_data, &sig_len, d) < 0)
			return diag_wrap(d, "signature %s", s->signature_url);
		int w = write_file_atomic(sig, sig_data, sig_len, 0600, d);
		free(sig_data);
		if (w < 0)
			return -1;
	}
	struct pgp_check c = {.sig_path = s->signature_url ? sig : sums,
			      .data_path = s->signature_url ? sums : NULL,
			      .out_path = s->signature_url ? NULL : out, .keys = s->keys,
			      .workdir = work};
	if (pgp_verify(&c, r->signer, d) < 0)
		return diag_wrap(d, "checksum file %s", s->sums_url);
	r->signature_checked = true;
	if (s->signature_url)
		return 0;
	free(*text);
	*text = NULL;
	return read_file(out, SUMS_MAX, text, len, d);
}

/* Whether and how the checksum file is to be verified, by the policy. */
static int check_policy(const struct sums_source *s, bool clear, bool *check, struct diag *d)
{
	const char *policy = boxfetch_signature_policy();
	*check = strcmp(policy, "off") != 0 && (s->signature_url || clear);
	if (*check || strcmp(policy, "off") == 0)
		return 0;
	if (strcmp(policy, "required") == 0) {
		diag_code(d, DIAG_SIG_MISSING, "the checksum file %s is not signed and "
			  "CORRAL_VERIFY_SIGNATURES=required", s->sums_url);
		return diag_hint(d, "name its signature (--checksum-signature URL), or allow "
				    "unsigned ones with CORRAL_VERIFY_SIGNATURES=if-present");
	}
	log_warn("the checksum file %s is not signed: the box is checked against it, and it is "
		 "only as trustworthy as the TLS connection it came over", s->sums_url);
	return 0;
}

int sums_resolve(const struct sums_source *s, struct sums_result *r, struct diag *d)
{
	*r = (struct sums_result){0};
	struct boxfetch_opts fo = {.insecure = s->insecure, .token_url = s->token_url};
	char *text = NULL;
	size_t len = 0;
	bool check;
	if (fetch_text(s->sums_url, SUMS_MAX, &fo, &text, &len, d) < 0)
		return diag_wrap(d, "checksum file");
	int rc = check_policy(s, sums_clearsigned(text, len), &check, d);
	_cleanup_free_ char *work = rc == 0 && check ? work_dir(d) : NULL;
	if (rc == 0 && check)
		rc = work ? verify(s, work, &fo, &text, &len, r, d) : -1;
	_cleanup_free_ char *name = lookup_name(s);
	if (rc == 0 && (rc = sums_find(text, len, name, &r->e, d)) < 0)
		diag_wrap(d, "%s", s->sums_url);
	free(text);
	struct diag ignored;
	if (work)
		rm_rf(work, &ignored);
	return rc;
}
