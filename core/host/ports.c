/* The host-port picker of every provider (the rule is in ports.h): QEMU
 * and VirtualBox bind the ports it picks later, the container binds them
 * itself through a port_binder as they are picked. */
#include "core/host/ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/base/util.h"
#include "core/host/mstate.h"

#define DEFAULT_IP "127.0.0.1"

void port_set_add(struct port_set *s, unsigned port, bool udp)
{
	s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
	s->v[s->n++] = (struct port_use){port, udp};
}

void port_set_free(struct port_set *s)
{
	free(s->v);
	*s = (struct port_set){0};
}

static bool in_set(const struct port_set *s, unsigned port, bool udp)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (s->v[i].port == port && s->v[i].udp == udp)
			return true;
	return false;
}

int port_try(const char *ip, unsigned port, bool udp)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		return errno = EINVAL, -1;
	int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	int one = 1, r = -1;
	if (fd >= 0 && (udp || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0))
		r = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 ? 1 : -1;
	int e = errno;
	if (fd >= 0)
		close(fd);
	errno = e;
	return r < 0 && e == EADDRINUSE ? 0 : r;
}

void port_plan_free(struct port_plan *p)
{
	free(p->host);
	*p = (struct port_plan){0};
}

/* One forward to place: what the envfile and the last up say. */
struct want {
	size_t i; /* index in cfg->ports, or PORT_SSH */
	const char *ip;
	unsigned guest, host, prev;
	unsigned start; /* ports_auto_start of the machine */
	bool udp, auto_correct;
};

unsigned ports_auto_start(const char *dir)
{
	if (!dir)
		return PORT_AUTO_FIRST;
	unsigned char raw[HASH_MAX];
	hash_str(dir, raw, NULL);
	unsigned v = (unsigned)raw[0] << 8 | raw[1];
	return PORT_AUTO_FIRST + v % (PORT_AUTO_LAST - PORT_AUTO_FIRST + 1);
}

/* 1: taken for this forward; 0: taken by something; -1: error. */
static int take(const struct want *w, unsigned port, struct port_set *taken,
		const struct port_binder *b)
{
	if (!port || port > 65535 || in_set(taken, port, w->udp))
		return 0;
	int r = b && b->bind ? b->bind(b->arg, w->i, w->ip, port, w->udp) : port_try(w->ip, port, w->udp);
	if (r == 1 && taken)
		port_set_add(taken, port, w->udp);
	return r;
}

static int no_port(const struct want *w, struct diag *d)
{
	const char *proto = w->udp ? "udp" : "tcp";
	if (!w->auto_correct) {
		diag_fail(d, "host port %s:%u/%s (forwarded to guest port %u) is in use", w->ip, w->host,
			  proto, w->guest);
		return diag_hint(d, "choose another `host:` port, or set `auto_correct: true` on the forward");
	}
	diag_fail(d, "no free host port on %s for guest port %u/%s in %u-%u", w->ip, w->guest, proto,
		  PORT_AUTO_FIRST, PORT_AUTO_LAST);
	return diag_hint(d, "free a port in that range");
}

/* EACCES: a port below net.ipv4.ip_unprivileged_port_start (1024 unless
 * changed) for a user without CAP_NET_BIND_SERVICE, i.e. corral without
 * root. With auto_correct the port counts as taken instead. */
static int not_allowed(const struct want *w, struct diag *d)
{
	diag_fail(d, "host port %s:%u/%s (forwarded to guest port %u) is not allowed for this user",
		  w->ip, w->host, w->udp ? "udp" : "tcp", w->guest);
	return diag_hint(d, "ports below 1024 need root: choose a `host:` port of 1024 or more, or "
			    "set `auto_correct: true` on the forward");
}

/* The candidates in the rule's order; stops at the first taken. */
static int pick_one(const struct want *w, struct port_set *taken, const struct port_binder *b,
		    unsigned *out, struct diag *d)
{
	struct in_addr ignored;
	if (inet_pton(AF_INET, w->ip, &ignored) != 1)
		return diag_fail(d, "forwarded port %u: host_ip `%s` is not an IPv4 address", w->guest,
				 w->ip);
	int r = take(w, w->host, taken, b);
	if (r < 0 && errno == EACCES && !w->auto_correct)
		return not_allowed(w, d);
	if (r < 0 && errno != EACCES)
		return diag_errno(d, "bind host port %s:%u", w->ip, w->host);
	r = r < 0 ? 0 : r;
	*out = w->host;
	if (r == 0 && w->auto_correct && take(w, w->prev, taken, b) == 1)
		return *out = w->prev, 0;
	const unsigned span = PORT_AUTO_LAST - PORT_AUTO_FIRST + 1;
	const unsigned from = w->start >= PORT_AUTO_FIRST ? w->start - PORT_AUTO_FIRST : 0;
	for (unsigned k = 0; r != 1 && w->auto_correct && k < span; k++)
		r = take(w, *out = PORT_AUTO_FIRST + (from + k) % span, taken, b);
	return r == 1 ? 0 : no_port(w, d);
}

static int pick_forwards(struct machine *m, unsigned start, struct port_set *taken,
			 const struct port_binder *b, struct port_plan *out, struct diag *d)
{
	const struct machine_cfg *c = m->cfg;
	for (size_t i = 0; i < c->nports; i++) {
		const struct port_fwd *pf = &c->ports[i];
		struct want w = {.i = i, .ip = pf->host_ip ? pf->host_ip : DEFAULT_IP, .guest = pf->guest,
				 .host = pf->host, .prev = machine_previous_port(m, pf->guest, pf->udp),
				 .start = start, .udp = pf->udp,
				 .auto_correct = pf->auto_correct || !pf->host};
		if (pick_one(&w, taken, b, &out->host[i], d) < 0)
			return -1;
		if (pf->host && out->host[i] != pf->host)
			log_machine(c->name, "host port %u is busy; forwarding %u instead", pf->host,
				    out->host[i]);
	}
	return 0;
}

int ports_pick(struct machine *m, bool ssh, struct port_set *taken, const struct port_binder *b,
	       struct port_plan *out, struct diag *d)
{
	struct port_set mine = {0};
	*out = (struct port_plan){.host = xcalloc(m->cfg->nports + 1, sizeof(unsigned))};
	const unsigned start = ports_auto_start(m->dir);
	int rc = pick_forwards(m, start, taken ? taken : &mine, b, out, d);
	struct want w = {.i = PORT_SSH, .ip = DEFAULT_IP, .guest = mcfg_ssh_port(m->cfg),
			 .host = PORT_SSH_HOST, .prev = (unsigned)machine_int(m, MK_SSH_PORT),
			 .start = start, .auto_correct = true};
	if (rc == 0 && ssh)
		rc = pick_one(&w, taken ? taken : &mine, b, &out->ssh, d);
	port_set_free(&mine);
	if (rc < 0)
		port_plan_free(out);
	return rc;
}

void ports_record(struct machine *m, const struct port_plan *p)
{
	const struct machine_cfg *c = m->cfg;
	struct mport *v = xcalloc(c->nports + 1, sizeof(*v));
	size_t n = 0;
	if (p->ssh) {
		v[n] = (struct mport){.guest = mcfg_ssh_port(c), .host = p->ssh};
		snprintf(v[n++].host_ip, sizeof(v->host_ip), "%s", DEFAULT_IP);
	}
	for (size_t i = 0; i < c->nports; i++) {
		v[n] = (struct mport){.guest = c->ports[i].guest, .host = p->host[i],
				      .udp = c->ports[i].udp};
		snprintf(v[n++].host_ip, sizeof(v->host_ip), "%s",
			 c->ports[i].host_ip ? c->ports[i].host_ip : DEFAULT_IP);
	}
	machine_set_ports(m, v, n);
	free(v);
	if (p->ssh)
		machine_set_int(m, MK_SSH_PORT, p->ssh);
	else
		machine_del(m, MK_SSH_PORT);
}

bool ports_lost(const struct machine *m, const struct port_plan *p)
{
	const struct machine_cfg *c = m->cfg;
	if (p->ssh && port_try(DEFAULT_IP, p->ssh, false) == 0)
		return true;
	for (size_t i = 0; i < c->nports; i++)
		if (port_try(c->ports[i].host_ip ? c->ports[i].host_ip : DEFAULT_IP, p->host[i],
			     c->ports[i].udp) == 0)
			return true;
	return false;
}

/* ---- ports: auto ---- */

/* A local address the host reaches through the machine's address: a
 * wildcard or any but loopback. /proc/net/tcp's hex is the address in
 * memory order: 127.x.x.x ends in 7F, ::1 and ::ffff:127.x.x.x are spelled
 * as below. */
static bool reachable(const char *hex, size_t len)
{
	if (len == 8)
		return strncasecmp(hex + 6, "7F", 2) != 0;
	return len == 32 && strncasecmp(hex, "00000000000000000000000001000000", 32) != 0 &&
	       !(strncasecmp(hex, "0000000000000000FFFF0000", 24) == 0 &&
		 strncasecmp(hex + 30, "7F", 2) == 0);
}

size_t ports_listening(const char *text, unsigned *out, size_t max)
{
	size_t n = 0;
	for (const char *l = text; l && *l && n < max; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		char addr[40], st[3];
		unsigned port;
		/* "  0: 00000000:1F90 00000000:0000 0A ..." (the header fails the scan) */
		if (sscanf(l, " %*u: %39[0-9A-Fa-f]:%4x %*39[0-9A-Fa-f]:%*4x %2s", addr, &port, st) != 3 ||
		    strcmp(st, "0A") != 0 || !port || !reachable(addr, strlen(addr)))
			continue;
		bool seen = false;
		for (size_t i = 0; i < n && !seen; i++)
			seen = out[i] == port;
		if (!seen)
			out[n++] = port;
	}
	return n;
}

char *ports_auto_path(const struct machine *m)
{
	return machine_path(m, "auto-ports");
}

size_t ports_auto_load(const struct machine *m, struct mport **v)
{
	_cleanup_free_ char *path = ports_auto_path(m);
	char *text = NULL;
	size_t len, n = 0;
	struct diag d = {0};
	*v = NULL;
	if (read_file(path, 1 << 20, &text, &len, &d) < 0)
		return 0;
	for (char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
		struct mport p = {0};
		if (sscanf(l, "%u %u %63s", &p.guest, &p.host, p.host_ip) != 3)
			continue;
		*v = xrealloc(*v, (n + 1) * sizeof(**v));
		(*v)[n++] = p;
	}
	free(text);
	return n;
}

int ports_auto_save(const char *path, const struct mport *v, size_t n, struct diag *d)
{
	struct buf b = {0};
	buf_add(&b, "", 0);
	for (size_t i = 0; i < n; i++)
		buf_printf(&b, "%u %u %s\n", v[i].guest, v[i].host, v[i].host_ip);
	int rc = write_file_atomic(path, b.s, b.len, 0644, d);
	buf_free(&b);
	return rc;
}
