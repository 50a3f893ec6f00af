/* Host ports for QEMU's user-mode hostfwd rules. QEMU binds them itself,
 * so a port is chosen by test-binding it the way QEMU will (SO_REUSEADDR);
 * a port taken in between makes QEMU fail, and up picks again. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/host/state.h"
#include "core/base/util.h"
#include "providers/kvm/kvm.h"

#define SSH_FIRST_PORT 2222 /* Vagrant's */
#define SSH_TRIES 1000
#define AUTO_TRIES 100

/* Binds ip:port (port 0: any); returns the bound port, 0 when taken. */
static unsigned try_bind(const char *ip, unsigned port, bool udp)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, ip, &a.sin_addr) != 1)
		return 0;
	int fd = socket(AF_INET, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	int one = 1;
	socklen_t len = sizeof(a);
	unsigned got = 0;
	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
	    bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		got = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return got;
}

bool port_free(const char *ip, unsigned port)
{
	return port && try_bind(ip, port, false) == port;
}

static int pick_forward(const struct port_fwd *p, const json_t *old, unsigned *out,
			struct diag *d)
{
	const char *ip = p->host_ip ? p->host_ip : "127.0.0.1";
	struct in_addr ignored;
	if (inet_pton(AF_INET, ip, &ignored) != 1)
		return diag_fail(d, "forwarded port %u: host_ip `%s` is not an IPv4 address", p->guest, ip);
	unsigned prev = machine_previous_port(old, p->guest, p->udp);
	if (prev && (p->auto_correct || !p->host) && try_bind(ip, prev, p->udp) == prev) {
		*out = prev;
		return 0;
	}
	if (!p->host) {
		*out = try_bind(ip, 0, p->udp);
		return *out ? 0 : diag_fail(d, "no free port on %s for guest port %u", ip, p->guest);
	}
	for (unsigned i = 0; i <= (p->auto_correct ? AUTO_TRIES : 0) && p->host + i < 65536; i++)
		if (try_bind(ip, p->host + i, p->udp) == p->host + i) {
			*out = p->host + i;
			return 0;
		}
	diag_fail(d, "host port %s:%u (forwarded to guest port %u) is in use", ip, p->host, p->guest);
	return diag_hint(d, p->auto_correct ? "free a port near it" :
			 "choose another host port, or set `auto_correct: true` on the forward");
}

static bool taken_by_forward(const struct machine_cfg *mc, const unsigned *host_ports,
			     unsigned port)
{
	for (size_t i = 0; i < mc->nports; i++)
		if (host_ports[i] == port && !mc->ports[i].udp)
			return true;
	return false;
}

int ports_pick(const struct machine_cfg *mc, const json_t *old_ports, unsigned old_ssh,
	       unsigned *host_ports, unsigned *ssh_port, struct diag *d)
{
	for (size_t i = 0; i < mc->nports; i++)
		if (pick_forward(&mc->ports[i], old_ports, &host_ports[i], d) < 0)
			return -1;
	if (old_ssh && !taken_by_forward(mc, host_ports, old_ssh) && port_free("127.0.0.1", old_ssh)) {
		*ssh_port = old_ssh;
		return 0;
	}
	for (unsigned p = SSH_FIRST_PORT; p < SSH_FIRST_PORT + SSH_TRIES; p++)
		if (!taken_by_forward(mc, host_ports, p) && port_free("127.0.0.1", p)) {
			*ssh_port = p;
			return 0;
		}
	return diag_fail(d, "no free port for SSH on 127.0.0.1 in %d..%d", SSH_FIRST_PORT,
			 SSH_FIRST_PORT + SSH_TRIES - 1);
}
