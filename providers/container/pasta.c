/* A machine's network without root: no bridge, no veth, no nftables (all
 * need host root), but pasta (package passt) attached to the machine's
 * user and network namespaces. It makes the guest's eth0 (CT_PASTA_IP/24,
 * gateway CT_PASTA_GW; not mapped to the host's loopback, whose services
 * stay out of the guest's reach as in root mode), translates the
 * guest's traffic into the user's own sockets on the host (so the guest
 * reaches what the user reaches), forwards DNS sent to CT_PASTA_DNS to the
 * host's resolver, and forwards host ports into the guest: SSH on
 * 127.0.0.1 and the envfile's `ports:` on their host_ip, picked by the
 * one rule of core/host/ports.c. Nothing of the guest is reachable from
 * the host but those ports. pasta runs in the background until killed;
 * its pid is state MP_PORTFWD (ct_ports_stop stops it). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/host/mstate.h"
#include "core/host/ports.h"
#include "core/host/proc.h"
#include "providers/container/container.h"

#define PICK_TRIES 3 /* as kvm: a port taken between the pick and the bind */

static void pasta_argv(const struct machine *m, pid_t pid, const struct port_plan *plan,
		       const char *pidfile, const char *log, struct strv *argv)
{
	static const char *const fixed[] = {
		"pasta", "--config-net", "--quiet", "--ipv4-only", "--ns-ifname", "eth0",
		"--address", CT_PASTA_IP, "--gateway", CT_PASTA_GW, "--dns-forward", CT_PASTA_DNS,
		"--tcp-ns", "none", "--udp-ns", "none", "--no-dhcp", "--no-map-gw",
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		strv_push(argv, fixed[i]);
	strv_pushf(argv, "--netmask=%u", CT_PASTA_PREFIX);
	strv_pushf(argv, "--pid=%s", pidfile);
	strv_pushf(argv, "--log-file=%s", log);
	strv_pushf(argv, "--tcp-ports=127.0.0.1/%u:%u", plan->ssh, mcfg_ssh_port(m->cfg));
	bool udp = false;
	for (size_t i = 0; i < m->cfg->nports; i++) {
		const struct port_fwd *p = &m->cfg->ports[i];
		strv_pushf(argv, "--%s-ports=%s/%u:%u", p->udp ? "udp" : "tcp",
			   p->host_ip ? p->host_ip : "127.0.0.1", plan->host[i], p->guest);
		udp |= p->udp;
	}
	if (!udp)
		strv_push(argv, "--udp-ports=none");
	strv_pushf(argv, "%d", (int)pid);
}

/* pasta's pid from its pid file; 0 when there is none. */
static pid_t read_pid(const char *pidfile)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	struct diag ignored = {0};
	if (read_file(pidfile, 64, &text, &len, &ignored) < 0)
		return 0;
	return (pid_t)strtol(text, NULL, 10);
}

/* One try: the ports picked now, pasta started on them. 1: a port was
 * taken between the pick and pasta's bind (another machine starting). */
static int try_start(struct machine *m, pid_t pid, struct diag *d)
{
	struct port_plan plan = {0};
	if (ports_pick(m, true, NULL, NULL, &plan, d) < 0)
		return diag_wrap(d, "%s", m->cfg->name);
	_cleanup_free_ char *pidfile = machine_path(m, "pasta.pid");
	_cleanup_free_ char *log = machine_path(m, "pasta.log");
	struct strv argv = {0};
	pasta_argv(m, pid, &plan, pidfile, log, &argv);
	unlink(pidfile);
	struct proc_cmd c = {.argv = (const char *const *)argv.v};
	int r = proc_cmd_run(&c, d) < 0 ? -1 : proc_cmd_check(&c, d);
	proc_cmd_free(&c);
	strv_free(&argv);
	if (r < 0 && ports_lost(m, &plan))
		r = 1;
	pid_t daemon = r == 0 ? read_pid(pidfile) : 0;
	if (r == 0 && (daemon <= 0 || !machine_set_proc(m, MP_PORTFWD, daemon)))
		r = diag_fail(d, "pasta did not stay running (see %s)", log);
	if (r == 0)
		ports_record(m, &plan);
	port_plan_free(&plan);
	return r;
}

int ct_pasta_usable(struct diag *why)
{
	if (!proc_have("pasta")) {
		diag_fail(why, "the container provider needs `pasta` for its network without root");
		return diag_hint(why, "apt-get install passt (as root)");
	}
	if (access("/dev/net/tun", R_OK | W_OK) == 0)
		return 0;
	diag_errno(why, "pasta needs /dev/net/tun, which this user cannot open");
	return diag_hint(why, "chmod 0666 /dev/net/tun (as root; the mode Debian's udev gives it)");
}

int ct_pasta_start(struct machine *m, pid_t pid, struct diag *d)
{
	if (ct_pasta_usable(d) < 0)
		return -1;
	int r = 1;
	for (int i = 0; i < PICK_TRIES && r == 1; i++) {
		*d = (struct diag){0};
		r = try_start(m, pid, d);
	}
	return r != 0 ? diag_wrap(d, "pasta") : 0;
}
