/* The host-port picker of every provider (the rule is in ports.h): QEMU
 * and VirtualBox bind the ports it picks later, the container binds them
 * itself through a port_binder as they are picked. */
#include "core/host/ports.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

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
	return r < 0 && (e == EADDRINUSE || e == EACCES) ? 0 : r;
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
	bool udp, auto_correct;
};

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

/* The candidates in the rule's order; stops at the first taken. */
static int pick_one(const struct want *w, struct port_set *taken, const struct port_binder *b,
		    unsigned *out, struct diag *d)
{
	struct in_addr ignored;
	if (inet_pton(AF_INET, w->ip, &ignored) != 1)
		return diag_fail(d, "forwarded port %u: host_ip `%s` is not an IPv4 address", w->guest,
				 w->ip);
	int r = take(w, w->host, taken, b);
	if (r < 0)
		return diag_errno(d, "bind host port %s:%u", w->ip, w->host);
	*out = w->host;
	if (r == 0 && w->auto_correct && take(w, w->prev, taken, b) == 1)
		return *out = w->prev, 0;
	for (unsigned p = PORT_AUTO_FIRST; r != 1 && w->auto_correct && p <= PORT_AUTO_LAST; p++)
		r = take(w, *out = p, taken, b);
	return r == 1 ? 0 : no_port(w, d);
}

static int pick_forwards(struct machine *m, struct port_set *taken, const struct port_binder *b,
			 struct port_plan *out, struct diag *d)
{
	const struct machine_cfg *c = m->cfg;
	for (size_t i = 0; i < c->nports; i++) {
		const struct port_fwd *pf = &c->ports[i];
		struct want w = {.i = i, .ip = pf->host_ip ? pf->host_ip : DEFAULT_IP, .guest = pf->guest,
				 .host = pf->host, .prev = machine_previous_port(m, pf->guest, pf->udp),
				 .udp = pf->udp, .auto_correct = pf->auto_correct || !pf->host};
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
	int rc = pick_forwards(m, taken ? taken : &mine, b, out, d);
	struct want w = {.i = PORT_SSH, .ip = DEFAULT_IP, .guest = mcfg_ssh_port(m->cfg),
			 .host = PORT_SSH_HOST, .prev = (unsigned)machine_int(m, MK_SSH_PORT),
			 .auto_correct = true};
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
