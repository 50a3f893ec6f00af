/* Parsers of VBoxManage's output formats (providers/virtualbox/README.md,
 * "The VBoxManage contract"). Pure functions over text:
 * tests/unit/test_vbox_virtualbox.c feeds them real
 * VirtualBox output. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "providers/virtualbox/vbox.h"

/* The line starting at s, without its newline; *next is the following one. */
static char *line_at(const char *s, const char **next)
{
	size_t n = strcspn(s, "\n");
	*next = s[n] ? s + n + 1 : s + n;
	while (n && s[n - 1] == '\r')
		n--;
	return xstrndup(s, n);
}

/* A "WARNING:" line and the indented (or blank) lines that continue it. */
static bool warning_line(const char *l, bool *in_block)
{
	if (str_starts(l, "WARNING:"))
		return *in_block = true;
	if (!l[0] || (*in_block && (l[0] == ' ' || l[0] == '\t')))
		return true;
	return *in_block = false;
}

int vbox_parse_version(const char *out, struct vbox_version *v)
{
	bool in_block = false;
	*v = (struct vbox_version){0};
	for (const char *p = out, *next; *p; p = next) {
		_cleanup_free_ char *l = line_at(p, &next);
		if (warning_line(l, &in_block))
			continue;
		if (!isdigit((unsigned char)l[0]) ||
		    sscanf(l, "%d.%d.%d", &v->major, &v->minor, &v->patch) < 2)
			return -1;
		snprintf(v->text, sizeof(v->text), "%s", l);
		return 0;
	}
	return -1;
}

/* "Details: code VBOX_E_X (0x...)" or "Code E_X (0x...) - ..." -> "VBOX_E_X". */
static bool code_line(const char *rest, char *code, size_t coden)
{
	char c[64];
	if (sscanf(rest, "Details: code %63[A-Za-z0-9_]", c) != 1 &&
	    sscanf(rest, "Code %63[A-Za-z0-9_] (0x", c) != 1)
		return false;
	if (!code[0])
		snprintf(code, coden, "%s", c);
	return str_starts(rest, "Details: ");
}

void vbox_parse_error(const char *err, char *msg, size_t msgn, char *code, size_t coden)
{
	static const char prefix[] = "VBoxManage: error: ";
	struct buf b = {0};
	msg[0] = code[0] = '\0';
	for (const char *p = err, *next; *p; p = next) {
		_cleanup_free_ char *l = line_at(p, &next);
		if (!str_starts(l, prefix))
			continue;
		const char *rest = l + sizeof(prefix) - 1;
		if (code_line(rest, code, coden) || str_starts(rest, "Context: ") ||
		    str_starts(rest, "Details: ") || !rest[0])
			continue;
		if (b.len)
			buf_add(&b, "; ", 2);
		buf_add(&b, rest, strlen(rest));
	}
	snprintf(msg, msgn, "%.*s", (int)b.len, b.s ? b.s : "");
	buf_free(&b);
}

/* A quoted token: "..." with \" and \\ escapes, or up to `stop`. */
static char *token(const char **s, char stop)
{
	struct buf b = {0};
	const char *p = *s;
	if (*p == '"') {
		for (p++; *p && *p != '"'; p++) {
			if (*p == '\\' && (p[1] == '"' || p[1] == '\\'))
				p++;
			buf_add(&b, p, 1);
		}
		if (*p == '"')
			p++;
	} else {
		size_t n = strcspn(p, stop ? (char[]){stop, '\n', 0} : "\n");
		buf_add(&b, p, n);
		p += n;
	}
	buf_add(&b, "", 0);
	*s = p;
	return b.s;
}

void vbox_kv_parse(const char *text, struct vbox_kvs *out)
{
	*out = (struct vbox_kvs){0};
	size_t cap = 0;
	for (const char *p = text, *next; *p; p = next) {
		_cleanup_free_ char *l = line_at(p, &next);
		const char *q = l;
		char *key = token(&q, '=');
		if (*q != '=' || !key[0]) {
			free(key);
			continue;
		}
		q++;
		if (out->n == cap)
			out->v = xrealloc(out->v, (cap = cap ? cap * 2 : 32) * sizeof(*out->v));
		out->v[out->n++] = (struct vbox_kv){key, token(&q, 0)};
	}
}

const char *vbox_kv_get(const struct vbox_kvs *k, const char *key)
{
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->v[i].key, key) == 0)
			return k->v[i].value;
	return NULL;
}

void vbox_kv_free(struct vbox_kvs *k)
{
	for (size_t i = 0; i < k->n; i++) {
		free(k->v[i].key);
		free(k->v[i].value);
	}
	free(k->v);
	*k = (struct vbox_kvs){0};
}

static int parse_port(const char *s, unsigned *port)
{
	char *end;
	long v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

int vbox_parse_natpf(const char *rule, struct vbox_natpf *out)
{
	char f[6][64];
	const char *p = rule;
	for (int i = 0; i < 6; i++) {
		size_t n = strcspn(p, ",");
		if (n >= sizeof(f[i]) || (i < 5 && p[n] != ',') || (i == 5 && p[n]))
			return -1;
		snprintf(f[i], sizeof(f[i]), "%.*s", (int)n, p);
		p += n + (i < 5);
	}
	*out = (struct vbox_natpf){0};
	snprintf(out->name, sizeof(out->name), "%s", f[0]);
	snprintf(out->proto, sizeof(out->proto), "%s", f[1]);
	snprintf(out->host_ip, sizeof(out->host_ip), "%s", f[2]);
	snprintf(out->guest_ip, sizeof(out->guest_ip), "%s", f[4]);
	return parse_port(f[3], &out->host_port) < 0 || parse_port(f[5], &out->guest_port) < 0 ? -1 : 0;
}

size_t vbox_forwards(const struct vbox_kvs *k, struct vbox_natpf **v)
{
	size_t n = 0;
	*v = NULL;
	for (size_t i = 0; i < k->n; i++) {
		struct vbox_natpf f;
		if (!str_starts(k->v[i].key, "Forwarding(") || vbox_parse_natpf(k->v[i].value, &f) < 0)
			continue;
		*v = xrealloc(*v, (n + 1) * sizeof(**v));
		(*v)[n++] = f;
	}
	return n;
}

/* The text between `open` and the next `close` in s, or NULL. */
static char *between(const char *s, const char *open, const char *close)
{
	const char *a = strstr(s, open);
	if (!a)
		return NULL;
	a += strlen(open);
	const char *b = strstr(a, close);
	return b ? xstrndup(a, (size_t)(b - a)) : NULL;
}

int vbox_parse_import(const char *out, struct vbox_import *imp, struct diag *d)
{
	*imp = (struct vbox_import){0};
	imp->name = between(out, "Suggested VM name \"", "\"");
	imp->settings_file = between(out, "Suggested VM settings file name \"", "\"");
	if (!imp->name)
		return diag_fail(d, "the import dry run suggested no VM name");
	for (const char *p = out, *next; *p; p = next) {
		_cleanup_free_ char *l = line_at(p, &next);
		unsigned unit;
		int off = 0;
		if (sscanf(l, " %u: Hard disk image: source image=%*[^,], target path=%n", &unit, &off) < 1 || !off)
			continue;
		const char *t = l + off, *end = strrchr(t, ',');
		imp->disks = xrealloc(imp->disks, (imp->ndisks + 1) * sizeof(*imp->disks));
		imp->disks[imp->ndisks++] = (struct vbox_disk){
			unit, end ? xstrndup(t, (size_t)(end - t)) : xstrdup(t)};
	}
	return 0;
}

char *vbox_disk_target(const struct vbox_import *imp, size_t i, const char *name)
{
	if (!imp->settings_file || i >= imp->ndisks)
		return NULL;
	const char *t = imp->disks[i].target, *base = strrchr(t, '/');
	const char *slash = strrchr(imp->settings_file, '/');
	if (!slash || !*(base = base ? base + 1 : t))
		return NULL;
	_cleanup_free_ char *path = xasprintf("%.*s/%s", (int)(slash - imp->settings_file),
					      imp->settings_file, base);
	_cleanup_free_ char *pat = xasprintf("/%s/", imp->name);
	const char *hit = NULL;
	for (const char *p = strstr(path, pat); p; p = strstr(p + 1, pat))
		hit = p;
	if (!hit)
		return xstrdup(path);
	return xasprintf("%.*s/%s/%s", (int)(hit - path), path, name, hit + strlen(pat));
}

void vbox_import_free(struct vbox_import *imp)
{
	free(imp->name);
	free(imp->settings_file);
	for (size_t i = 0; i < imp->ndisks; i++)
		free(imp->disks[i].target);
	free(imp->disks);
	*imp = (struct vbox_import){0};
}

/* `"name" {uuid}` -> name and uuid (caller frees); false for other lines. */
static bool vm_line(const char *l, char **name, char **uuid)
{
	const char *q = l;
	if (*q != '"')
		return false;
	char *n = token(&q, 0);
	const char *open = strrchr(q, '{'), *close = open ? strchr(open, '}') : NULL;
	if (!close) {
		free(n);
		return false;
	}
	*name = n;
	*uuid = xstrndup(open + 1, (size_t)(close - open - 1));
	return true;
}

char *vbox_vms_find(const char *out, const char *name)
{
	for (const char *p = out, *next; *p; p = next) {
		_cleanup_free_ char *l = line_at(p, &next);
		char *n, *u;
		if (!vm_line(l, &n, &u))
			continue;
		bool hit = strcmp(n, name) == 0;
		free(n);
		if (hit)
			return u;
		free(u);
	}
	return NULL;
}

char **vbox_vms_uuids(const char *out)
{
	char **v = xcalloc(1, sizeof(char *));
	size_t n = 0;
	for (const char *p = out, *next; *p; p = next) {
		_cleanup_free_ char *l = line_at(p, &next);
		char *name, *u;
		if (!vm_line(l, &name, &u))
			continue;
		free(name);
		v = xrealloc(v, (n + 2) * sizeof(char *));
		v[n++] = u;
		v[n] = NULL;
	}
	return v;
}

/* "Key:   value" -> value into out when the key matches. */
static void field(const char *l, const char *key, char *out, size_t n)
{
	size_t k = strlen(key);
	if (strncmp(l, key, k) != 0 || l[k] != ':')
		return;
	const char *v = l + k + 1;
	while (isspace((unsigned char)*v))
		v++;
	snprintf(out, n, "%s", v);
}

size_t vbox_parse_hostifs(const char *out, struct vbox_hostif *v, size_t max)
{
	size_t n = 0;
	bool in_block = false;
	for (const char *p = out, *next; *p; p = next) {
		_cleanup_free_ char *l = line_at(p, &next);
		if (!l[0]) {
			in_block = false;
			continue;
		}
		if (str_starts(l, "Name:") && n < max) {
			v[n++] = (struct vbox_hostif){0};
			in_block = true;
		}
		if (!in_block)
			continue;
		field(l, "Name", v[n - 1].name, sizeof(v[n - 1].name));
		field(l, "IPAddress", v[n - 1].ip, sizeof(v[n - 1].ip));
		field(l, "NetworkMask", v[n - 1].mask, sizeof(v[n - 1].mask));
	}
	return n;
}

/* `snapshot list --machinereadable` prints names raw (no escaping, unlike
 * showvminfo): the value is everything between `="` and the line's last `"`. */
void vbox_snapshot_names(const char *out, struct strv *names)
{
	*names = (struct strv){0};
	for (const char *p = out, *next; *p; p = next) {
		_cleanup_free_ char *l = line_at(p, &next);
		size_t k = strcspn(l, "=");
		const char *v = l + k + 1, *end = strrchr(l, '"');
		bool key = str_starts(l, "SnapshotName") &&
			   (k == 12 || (l[12] == '-' && strspn(l + 12, "-0123456789") == k - 12));
		if (key && l[k] == '=' && *v == '"' && end > v)
			strv_pushf(names, "%.*s", (int)(end - v - 1), v + 1);
	}
}

/* "10.0.0.0/8" (host bits allowed, as VirtualBox masks them) -> range. */
static bool range_of(const char *tok, struct vbox_range *r)
{
	char ip[16];
	unsigned prefix;
	int off = 0;
	struct in_addr a;
	if (sscanf(tok, "%15[0-9.]/%u%n", ip, &prefix, &off) != 2 || tok[off] || prefix > 32 ||
	    inet_pton(AF_INET, ip, &a) != 1)
		return false;
	uint32_t mask = prefix ? ~(uint32_t)0 << (32 - prefix) : 0;
	*r = (struct vbox_range){ntohl(a.s_addr) & mask, prefix};
	return true;
}

size_t vbox_parse_ranges(const char *text, struct vbox_range *v, size_t max)
{
	size_t n = 0;
	for (const char *p = text, *next; *p; p = next) {
		_cleanup_free_ char *l = line_at(p, &next);
		const char *q = l + strspn(l, " \t");
		if (*q != '*')
			continue;
		for (char *save = NULL, *tok = strtok_r((char *)q + 1, " \t", &save); tok && n < max;
		     tok = strtok_r(NULL, " \t", &save))
			n += range_of(tok, &v[n]);
	}
	return n;
}

bool vbox_ranges_allow(const struct vbox_range *v, size_t n, uint32_t net, unsigned prefix)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t mask = v[i].prefix ? ~(uint32_t)0 << (32 - v[i].prefix) : 0;
		if (prefix >= v[i].prefix && (net & mask) == v[i].net)
			return true;
	}
	return false;
}

bool vbox_resolver_local(const char *resolv)
{
	for (const char *p = resolv, *next; *p; p = next) {
		_cleanup_free_ char *l = line_at(p, &next);
		if (strcmp(l, "nameserver 127.0.0.1") == 0 || strcmp(l, "nameserver 127.0.1.1") == 0)
			return true;
	}
	return false;
}

/* "NAT: Failed to redirect TCP 127.0.0.1:2222 -> 0.0.0.0:22 (...)". */
bool vbox_log_redirect_failed(const char *log, unsigned port, bool udp)
{
	static const char mark[] = "NAT: Failed to redirect ";
	for (const char *p = strstr(log, mark); p; p = strstr(p + 1, mark)) {
		const char *r = p + strlen(mark);
		if (strncmp(r, udp ? "UDP " : "TCP ", 4) != 0)
			continue;
		const char *colon = r + 4 + strcspn(r + 4, ": \n");
		char *end;
		if (*colon == ':' && strtoul(colon + 1, &end, 10) == port && *end == ' ')
			return true;
	}
	return false;
}
