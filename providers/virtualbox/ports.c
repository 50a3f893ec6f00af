/* Host ports for NAT forwards. VirtualBox binds them only while a VM runs,
 * so a port is taken when a program listens on it now or when any
 * registered VM (running or not) has a rule for it — Vagrant's check too. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "providers/virtualbox/vbox.h"

void vbox_used_free(struct vbox_used *u)
{
	free(u->v);
	*u = (struct vbox_used){0};
}

static void add_rules(struct vbox_used *u, const struct vbox_kvs *k)
{
	struct vbox_natpf *f;
	size_t n = vbox_forwards(k, &f);
	for (size_t i = 0; i < n; i++) {
		u->v = xrealloc(u->v, (u->n + 1) * sizeof(*u->v));
		u->v[u->n++] = f[i].host_port;
	}
	free(f);
}

int vbox_used_ports(const char *self, struct vbox_used *u, struct diag *d)
{
	*u = (struct vbox_used){0};
	struct vbox_res r;
	if (vbox_runv("list VMs for their forwarded ports", &r, d, "list", "vms", NULL) < 0)
		return -1;
	char **ids = vbox_vms_uuids(r.out.s);
	vbox_res_free(&r);
	int rc = 0;
	for (size_t i = 0; ids[i]; i++) {
		struct vbox_kvs k;
		bool gone;
		if (self && strcmp(ids[i], self) == 0)
			continue;
		if (rc == 0 && (rc = vbox_showvminfo(ids[i], &k, &gone, d)) == 0) {
			add_rules(u, &k);
			vbox_kv_free(&k);
		}
	}
	for (size_t i = 0; ids[i]; i++)
		free(ids[i]);
	free(ids);
	if (rc < 0)
		vbox_used_free(u);
	return rc;
}

static bool bindable(const char *ip, unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, *ip ? ip : "0.0.0.0", &a.sin_addr) != 1)
		return false;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	bool ok = fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		  bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

static bool is_free(const struct vbox_used *u, const char *ip, unsigned port)
{
	for (size_t i = 0; i < u->n; i++)
		if (u->v[i] == port)
			return false;
	return port > 0 && bindable(ip, port);
}

static void claim(struct vbox_used *u, unsigned port)
{
	u->v = xrealloc(u->v, (u->n + 1) * sizeof(*u->v));
	u->v[u->n++] = port;
}

int vbox_pick_port(struct vbox_used *u, const char *ip, unsigned want, unsigned prev,
		   bool auto_correct, unsigned from, unsigned to, unsigned *out, struct diag *d)
{
	unsigned first[2] = {prev, want};
	for (int i = 0; i < 2; i++)
		if (first[i] && is_free(u, ip, first[i])) {
			claim(u, *out = first[i]);
			return 0;
		}
	for (unsigned p = from; auto_correct && p && p <= to; p++)
		if (is_free(u, ip, p)) {
			claim(u, *out = p);
			return 0;
		}
	if (!auto_correct) {
		diag_fail(d, "host port %s:%u is in use (by a program or another VM's forward)", ip, want);
		return diag_hint(d, "pick another `host:` port, or set `auto_correct: true`");
	}
	diag_fail(d, "no free host port for the forward of %u (tried %u..%u)", want, from, to);
	return diag_hint(d, "free a port in that range, or remove VMs you no longer need");
}
