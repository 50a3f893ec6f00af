/* The syntax of single envfile values: sizes, durations, addresses, names,
 * and ${VAR} expansion. Pure functions of their input (and, for ${VAR},
 * the environment). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/config/envfile.h"
#include "core/config/yamltree.h"

/* Leading decimal digits into *v; returns how many, 0 on none or overflow. */
static size_t digits(const char *s, uint64_t *v)
{
	size_t i = 0;
	*v = 0;
	for (; isdigit((unsigned char)s[i]); i++) {
		uint64_t d = (uint64_t)(s[i] - '0');
		if (*v > (UINT64_MAX - d) / 10)
			return 0;
		*v = *v * 10 + d;
	}
	return i;
}

static int scale(uint64_t v, uint64_t unit, uint64_t *out)
{
	if (unit && v > UINT64_MAX / unit)
		return -1;
	*out = v * unit;
	return 0;
}

/* 512, 512B, 512K, 512KB, 512KiB ... T: binary units, case-insensitive. */
int parse_size(const char *s, uint64_t *bytes)
{
	static const char units[] = "KMGT";
	uint64_t v;
	size_t n = digits(s, &v);
	if (!n)
		return -1;
	const char *u = s + n, *p = *u ? strchr(units, toupper((unsigned char)*u)) : NULL;
	uint64_t mult = p ? (uint64_t)1 << (10 * (p - units + 1)) : 1;
	if (p)
		u++;
	if (strcasecmp(u, "") != 0 && strcasecmp(u, "b") != 0 && !(p && strcasecmp(u, "ib") == 0))
		return -1;
	return scale(v, mult, bytes);
}

/* 30s, 5m, 1h, 500ms, 1h30m; a plain number is seconds. */
int parse_duration(const char *s, uint64_t *ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
	uint64_t v, total = 0, part;
	size_t n = digits(s, &v);
	if (n && !s[n])
		return scale(v, 1000, ms);
	while (n) {
		s += n;
		size_t best = 0, len = 0;
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			size_t l = strlen(units[i].suffix);
			if (strncmp(s, units[i].suffix, l) == 0 && l > len)
				best = i, len = l;
		}
		if (!len || scale(v, units[best].ms, &part) < 0 || part > UINT64_MAX - total)
			return -1;
		total += part;
		s += len;
		if (!*s) {
			*ms = total;
			return 0;
		}
		n = digits(s, &v);
	}
	return -1;
}

int parse_ipv4(const char *s, uint32_t *addr)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		return -1;
	*addr = ntohl(a.s_addr);
	return 0;
}

int parse_cidr(const char *s, uint32_t *net, unsigned *prefix)
{
	const char *slash = strchr(s, '/');
	uint64_t len;
	if (!slash || slash - s > 15 || digits(slash + 1, &len) != strlen(slash + 1) || len > 32 ||
	    !slash[1])
		return -1;
	char ip[16];
	memcpy(ip, s, (size_t)(slash - s));
	ip[slash - s] = '\0';
	uint32_t a, mask = len ? ~(uint32_t)0 << (32 - len) : 0;
	if (parse_ipv4(ip, &a) < 0 || (a & ~mask))
		return -1;
	*net = a;
	*prefix = (unsigned)len;
	return 0;
}

/* Every byte of s in the set, first byte in `first`, length 1..max. */
static bool charset_ok(const char *s, const char *first, const char *rest, size_t max)
{
	size_t n = strlen(s);
	return n && n <= max && strchr(first, s[0]) && strspn(s, rest) == n;
}

#define LOWER "abcdefghijklmnopqrstuvwxyz"
#define UPPER "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
#define DIGIT "0123456789"

bool valid_name(const char *s)
{
	return charset_ok(s, LOWER DIGIT, LOWER DIGIT "-", 63);
}

bool valid_server_name(const char *s)
{
	return charset_ok(s, LOWER UPPER DIGIT, LOWER UPPER DIGIT "-_.", 63);
}

bool valid_user(const char *s)
{
	return charset_ok(s, LOWER "_", LOWER DIGIT "_-", 32);
}

bool valid_ident(const char *s)
{
	return charset_ok(s, LOWER UPPER "_", LOWER UPPER DIGIT "_", 128);
}

bool valid_hostname(const char *s)
{
	if (!*s || strlen(s) > 253)
		return false;
	for (const char *p = s;; p++) {
		size_t n = strcspn(p, ".");
		if (!n || n > 63 || p[0] == '-' || p[n - 1] == '-' ||
		    strspn(p, LOWER UPPER DIGIT "-") < n)
			return false;
		p += n;
		if (!*p)
			return true;
	}
}

bool valid_ip(const char *s)
{
	unsigned char a[16];
	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

bool valid_ipv4(const char *s)
{
	uint32_t a;
	return parse_ipv4(s, &a) == 0;
}

bool valid_cidr(const char *s)
{
	uint32_t a;
	unsigned p;
	return parse_cidr(s, &a, &p) == 0;
}

/* A box name, or an OCI image reference (oci://REG/REPO:TAG, debian:12,
 * REPO@sha256:HEX, oci-archive:PATH): core/box/oci.h tells them apart. */
bool box_is_source(const char *s)
{
	return strstr(s, "://") || s[0] == '/' || strncmp(s, "./", 2) == 0 ||
	       strncmp(s, "../", 3) == 0;
}

bool valid_box(const char *s)
{
	if (box_is_source(s))
		return valid_url(s);
	return charset_ok(s, LOWER UPPER DIGIT, LOWER UPPER DIGIT "._/-:@", 255);
}

bool valid_constraint(const char *s)
{
	return charset_ok(s, DIGIT "<>=~!", LOWER UPPER DIGIT ".,<>=~! -", 255);
}

bool valid_url(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return *s && *s != '-';
}

bool valid_checksum(const char *s)
{
	static const struct {
		const char *type;
		size_t hex;
	} types[] = {{"md5", 32}, {"sha1", 40}, {"sha256", 64}, {"sha384", 96}, {"sha512", 128}};
	const char *colon = strchr(s, ':');
	for (size_t i = 0; colon && i < sizeof(types) / sizeof(types[0]); i++)
		if (strncmp(s, types[i].type, (size_t)(colon - s)) == 0 &&
		    !types[i].type[colon - s])
			return strlen(colon + 1) == types[i].hex &&
			       strspn(colon + 1, DIGIT "abcdefABCDEF") == types[i].hex;
	return false;
}

bool valid_abs(const char *s) { return s[0] == '/'; }
bool valid_dest(const char *s) { return s[0] == '/' || s[0] == '~'; }

/* ---- ${VAR} ---- */

static const char *var_default(const char *p, const char **end)
{
	if (p[0] == ':' && p[1] == '-') {
		*end = strchr(p + 2, '}');
		return p + 2;
	}
	*end = p[0] == '}' ? p : NULL;
	return NULL;
}

/* One reference at s ("${"), appended to b; returns its length or 0. */
static size_t expand_one(const char *s, struct buf *b, struct diag *why)
{
	const char *name = s + 2;
	size_t n = strspn(name, LOWER UPPER DIGIT "_");
	const char *end, *def = var_default(name + n, &end);
	if (!n || isdigit((unsigned char)name[0]) || !end) {
		diag_fail(why, "bad variable reference `%.*s`", (int)strcspn(s, "} \t"), s);
		diag_hint(why, "write ${NAME} or ${NAME:-default}, and $$ for a literal $");
		return 0;
	}
	_cleanup_free_ char *var = xstrndup(name, n);
	const char *val = getenv(var);
	if (def && (!val || !*val))
		buf_add(b, def, (size_t)(end - def));
	else if (val)
		buf_puts(b, val);
	else {
		diag_fail(why, "${%s} is not set", var);
		diag_hint(why, "export %s=..., or give a default: ${%s:-value}", var, var);
		return 0;
	}
	return (size_t)(end - s) + 1;
}

char *expand_vars(const char *s, struct diag *why)
{
	struct buf b = {0};
	buf_add(&b, "", 0);
	while (*s) {
		size_t lit = strcspn(s, "$");
		buf_add(&b, s, lit);
		s += lit;
		if (!*s)
			break;
		size_t used = s[1] == '{' ? expand_one(s, &b, why) : 1 + (s[1] == '$');
		if (!used) {
			buf_free(&b);
			return NULL;
		}
		if (s[1] != '{')
			buf_add(&b, "$", 1);
		s += used;
	}
	return b.s;
}
