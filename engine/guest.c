#include "engine/guest.h"

#include <stdlib.h>
#include <string.h>

#include "core/base/log.h"
#include "core/host/mstate.h"
#include "core/host/proc.h"
#include "core/base/util.h"

#define RSYNC_HOST "corral-guest" /* the Host of the ssh_config rsync's ssh reads */
#define TAIL_LINES 20

static const char *const type_names[] = {
	[SYNC_AUTO] = "auto", [SYNC_BIND] = "bind", [SYNC_9P] = "9p",
	[SYNC_RSYNC] = "rsync", [SYNC_VBOXSF] = "vboxsf",
};

/* Every script starts so: S CMD... runs CMD as root (itself when it is
 * root, else through sudo -n), used only for a change; whether it is root
 * is asked then, not up front (a fork costs a TCG guest 50-130 ms, and an
 * `up` with nothing to change runs five of these scripts). */
#define PROLOGUE "S() { if [ \"$(id -u)\" = 0 ]; then \"$@\"; else sudo -n \"$@\"; fi; }\n"

/* $1: the host name. hostnamectl needs a running hostnamed (D-Bus), hence the probe. */
static const char identity_sh[] = PROLOGUE
	"h=$1\n"
	"if [ \"$(hostname)\" != \"$h\" ]; then\n"
	"  if command -v hostnamectl >/dev/null 2>&1 && hostnamectl >/dev/null 2>&1; then\n"
	"    S hostnamectl set-hostname \"$h\" || exit\n"
	"  else\n"
	"    printf '%s\\n' \"$h\" | S tee /etc/hostname >/dev/null && S hostname \"$h\" || exit\n"
	"  fi\n"
	"  echo \"host name set to $h\"\n"
	"fi\n"
	"awk -v h=\"$h\" '$1 == \"127.0.1.1\" && $2 == h { f = 1 } END { exit !f }' /etc/hosts "
	"2>/dev/null && exit\n"
	"new=$(grep -v '^127\\.0\\.1\\.1[[:space:]]' /etc/hosts 2>/dev/null; "
	"printf '127.0.1.1\\t%s' \"$h\")\n"
	"printf '%s\\n' \"$new\" | S tee /etc/hosts >/dev/null || exit\n"
	"echo \"/etc/hosts: 127.0.1.1 is $h\"\n";

/* Pairs MAC ADDR/PREFIX: the NIC with that MAC gets exactly that address,
 * up, and a file that gives it again on the next boot. */
static const char nics_sh[] = PROLOGUE
	"while [ $# -ge 2 ]; do\n"
	"  mac=$1 addr=$2; shift 2\n"
	"  dev=$(ip -o link | awk -v m=\"link/ether $mac \" 'index(tolower($0), m) "
	"{ d = $2; sub(/:$/, \"\", d); sub(/@.*/, \"\", d); print d; exit }')\n"
	"  [ -n \"$dev\" ] || { echo \"no network interface has MAC $mac\" >&2; exit 3; }\n"
	"  if ! ip -o -4 addr show dev \"$dev\" | awk -v a=\"$addr\" '$4 == a { f = 1 } "
	"END { exit !f }'; then\n"
	"    S ip addr flush dev \"$dev\" scope global && S ip addr add \"$addr\" dev \"$dev\" "
	"|| exit\n"
	"    echo \"$dev ($mac): $addr\"\n"
	"  fi\n"
	"  ip -o link show dev \"$dev\" | grep -q '[<,]UP[,>]' || S ip link set dev \"$dev\" up "
	"|| exit\n"
	"  if [ -d /run/systemd/system ] && systemctl -q is-enabled systemd-networkd 2>/dev/null; "
	"then\n"
	"    f=/etc/systemd/network/50-corral-$(printf %s \"$mac\" | tr -d :).network\n"
	"    want=$(printf '[Match]\\nMACAddress=%s\\n\\n[Network]\\nAddress=%s' \"$mac\" \"$addr\")\n"
	"  elif [ -d /etc/network ]; then\n"
	"    S mkdir -p /etc/network/interfaces.d || exit\n"
	"    f=/etc/network/interfaces.d/corral-$dev\n"
	"    want=$(printf 'auto %s\\niface %s inet static\\n\\taddress %s' \"$dev\" \"$dev\" "
	"\"$addr\")\n"
	"  else\n"
	"    continue\n"
	"  fi\n"
	"  [ \"$(cat \"$f\" 2>/dev/null)\" = \"$want\" ] || "
	"printf '%s\\n' \"$want\" | S tee \"$f\" >/dev/null || exit\n"
	"done\n";

/* $1 type (9p | vboxsf), $2 the tag or share name, $3 the guest path. */
static const char mount_sh[] = PROLOGUE
	"t=$1 src=$2 g=$3\n"
	"awk -v s=\"$src\" -v g=\"$g\" -v t=\"$t\" '$1 == s && $2 == g && $3 == t { f = 1 } "
	"END { exit !f }' /proc/mounts && exit\n"
	"S mkdir -p \"$g\" || exit\n"
	"case $t in\n"
	"9p) S mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 \"$src\" \"$g\" ;;\n"
	"vboxsf) S mount -t vboxsf -o \"uid=$(id -u),gid=$(id -g)\" \"$src\" \"$g\" ;;\n"
	"esac\n";

/* $1 the guest path: made, and owned by the login user, who rsync runs as. */
static const char rsync_prep_sh[] = PROLOGUE
	"g=$1\n"
	"command -v rsync >/dev/null || { echo 'rsync is not installed in the guest' >&2; exit 4; }\n"
	"[ -d \"$g\" ] && [ -w \"$g\" ] && exit\n"
	"S mkdir -p \"$g\" && S chown \"$(id -u):$(id -g)\" \"$g\"\n";

static const char *last_line(struct buf *tail)
{
	if (!tail->s)
		return "";
	while (tail->len && tail->s[tail->len - 1] == '\n')
		tail->s[--tail->len] = '\0';
	const char *nl = strrchr(tail->s, '\n');
	return nl ? nl + 1 : tail->s;
}

/* `sh -c SCRIPT corral-guest ARGS...`, output streamed under the machine's name. */
static int run_script(struct ssh_conn *c, const char *prefix, const char *script,
		      const char *const *args, size_t nargs, struct diag *d)
{
	struct buf cmd = {0}, tail = {0};
	char *q = ssh_quote(script);
	buf_printf(&cmd, "sh -c %s corral-guest", q);
	free(q);
	for (size_t i = 0; i < nargs; i++) {
		q = ssh_quote(args[i]);
		buf_printf(&cmd, " %s", q);
		free(q);
	}
	int status = 0;
	int rc = ssh_exec(c, cmd.s, prefix, &status, &tail, TAIL_LINES, d);
	if (rc == 0 && status != 0) {
		const char *last = last_line(&tail);
		rc = diag_fail(d, "exit status %d%s%s", status, last[0] ? ": " : "", last);
		if (strstr(last, "sudo"))
			diag_hint(d, "the guest's login user needs root or password-less sudo");
	}
	buf_free(&cmd);
	buf_free(&tail);
	return rc;
}

static int identity(struct machine *m, struct ssh_conn *c, struct diag *d)
{
	const char *h = m->cfg->hostname ? m->cfg->hostname : m->cfg->name;
	if (run_script(c, m->cfg->name, identity_sh, &h, 1, d) < 0)
		return diag_wrap(d, "set the host name");
	return 0;
}

static int nics(const struct provider *p, struct machine *m, struct ssh_conn *c, struct diag *d)
{
	struct guest_nic *v = NULL;
	size_t n = 0;
	if (!p->guest_nics || !m->cfg->nnetworks)
		return 0;
	if (p->guest_nics(m, &v, &n, d) < 0) {
		free(v);
		return diag_wrap(d, "find the private networks' NICs");
	}
	const char **args = xcalloc(2 * n + 1, sizeof(*args));
	for (size_t i = 0; i < n; i++) {
		args[2 * i] = v[i].mac;
		args[2 * i + 1] = v[i].addr;
	}
	int rc = n ? run_script(c, m->cfg->name, nics_sh, args, 2 * n, d) : 0;
	free(args);
	free(v);
	return rc < 0 ? diag_wrap(d, "configure the private networks") : 0;
}

static enum sync_type resolved(const struct provider *p, const struct machine *m,
			       const struct synced_folder *sf)
{
	if (sf->type != SYNC_AUTO)
		return sf->type;
	return p->sync_auto_for ? p->sync_auto_for(m) : p->sync_auto;
}

static int folder_fail(const struct machine *m, const struct synced_folder *sf, struct diag *d)
{
	if (m->env)
		diag_at(d, m->env->path, sf->pos.line, sf->pos.col);
	return -1;
}

int guest_check_folders(const struct provider *p, const struct machine *m, struct diag *d)
{
	for (size_t i = 0; i < m->cfg->nsynced; i++) {
		const struct synced_folder *sf = &m->cfg->synced[i];
		if (!(p->sync_types & (1u << resolved(p, m, sf)))) {
			struct buf ok = {0};
			for (unsigned t = 0; t < sizeof(type_names) / sizeof(type_names[0]); t++)
				if (t == SYNC_AUTO || p->sync_types & (1u << t))
					buf_printf(&ok, "%s%s", ok.len ? ", " : "", type_names[t]);
			diag_fail(d, "%s: synced folder %s: the %s provider does not take type %s",
				  m->cfg->name, sf->guest, p->name, type_names[sf->type]);
			diag_hint(d, "use one of: %s", ok.s);
			buf_free(&ok);
			return folder_fail(m, sf, d);
		}
		if (!path_is_dir(sf->host)) {
			diag_fail(d, "%s: synced folder %s: host directory %s does not exist",
				  m->cfg->name, sf->guest, sf->host);
			diag_hint(d, "create it, or correct `host:`");
			return folder_fail(m, sf, d);
		}
	}
	return 0;
}

struct strv guest_rsync_argv(const char *ssh_config, const char *host, const char *guest,
			     const char *state_dir)
{
	struct strv v = {0};
	size_t hl = strlen(host);
	static const char *const fixed[] = {"rsync", "-az", "--delete", "-e"};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		strv_push(&v, fixed[i]);
	strv_pushf(&v, "ssh -F %s", ssh_config);
	/* .corral holds the machines' private keys: never copied into a guest. */
	if (state_dir && strncmp(state_dir, host, hl) == 0 && state_dir[hl] == '/')
		strv_pushf(&v, "--exclude=%s/", state_dir + hl);
	strv_pushf(&v, "%s/", host);
	strv_pushf(&v, RSYNC_HOST ":%s", guest);
	return v;
}

static int write_ssh_config(const struct endpoint *ep, const char *path, struct diag *d)
{
	struct strv o = {0};
	if (ssh_client_options(ep, &o, d) < 0) {
		strv_free(&o);
		return -1;
	}
	struct buf b = {0};
	buf_puts(&b, "Host " RSYNC_HOST "\n\tBatchMode yes\n");
	for (size_t i = 0; i < o.n; i++)
		buf_printf(&b, "\t%s\n", o.v[i]);
	strv_free(&o);
	int rc = write_file_atomic(path, b.s, b.len, 0600, d);
	buf_free(&b);
	return rc;
}

/* The config lives in a fresh directory under /tmp: its path goes into
 * rsync's -e, which splits on spaces. */
static int rsync_one(const struct machine *m, struct ssh_conn *c, const struct endpoint *ep,
		     const struct synced_folder *sf, struct diag *d)
{
	const char *args[] = {sf->guest};
	if (run_script(c, m->cfg->name, rsync_prep_sh, args, 1, d) < 0) {
		if (!d->hint[0])
			diag_hint(d, "the guest needs rsync, and root or password-less sudo to "
				     "create %s", sf->guest);
		return diag_wrap(d, "rsync to %s", sf->guest);
	}
	char dir[] = "/tmp/corral-rsync.XXXXXX";
	if (!mkdtemp(dir))
		return diag_errno(d, "mkdtemp %s", dir);
	_cleanup_free_ char *cfg = path_join(dir, "ssh_config");
	int rc = write_ssh_config(ep, cfg, d);
	if (rc == 0) {
		struct strv argv = guest_rsync_argv(cfg, sf->host, sf->guest,
						    m->env ? m->env->state_dir : NULL);
		rc = proc_run((const char *const *)argv.v, NULL, d);
		strv_free(&argv);
	}
	struct diag ignored = {0};
	rm_rf(dir, &ignored);
	if (rc < 0)
		return diag_wrap(d, "rsync %s to %s", sf->host, sf->guest);
	log_machine(m->cfg->name, "synced folder %s: copied from %s (rsync)", sf->guest, sf->host);
	return 0;
}

/* One folder; *t may turn from 9p into rsync (auto on a guest without 9p). */
static int sync_one(const struct provider *p, struct machine *m, struct ssh_conn *c,
		    const struct endpoint *ep, const struct synced_folder *sf, size_t i,
		    enum sync_type *t, struct diag *d)
{
	const char *name = m->cfg->name;
	if (*t == SYNC_BIND)
		return 0; /* the provider's runtime mounted it at boot */
	if (*t == SYNC_RSYNC)
		return rsync_one(m, c, ep, sf, d);
	_cleanup_free_ char *tag = p->sync_tag ? p->sync_tag(m, i) : NULL;
	if (!tag)
		return diag_fail(d, "synced folder %s: the %s provider names no %s share", sf->guest,
				 p->name, type_names[*t]);
	const char *args[] = {type_names[*t], tag, sf->guest};
	if (run_script(c, name, mount_sh, args, 3, d) == 0) {
		log_machine(name, "synced folder %s: %s mounted (%s)", sf->guest, sf->host,
			    type_names[*t]);
		return 0;
	}
	if (sf->type != SYNC_AUTO || *t != SYNC_9P)
		return diag_wrap(d, "mount synced folder %s (%s)", sf->guest, type_names[*t]);
	log_warn("%s: synced folder %s: the guest cannot mount 9p (%s); using rsync instead", name,
		 sf->guest, d->msg);
	*d = (struct diag){0};
	*t = SYNC_RSYNC;
	return rsync_one(m, c, ep, sf, d);
}

static int folders(const struct provider *p, struct machine *m, struct ssh_conn *c,
		   const struct endpoint *ep, struct diag *d)
{
	if (guest_check_folders(p, m, d) < 0)
		return -1;
	int rc = 0;
	machine_map_clear(m, MK_SYNCED);
	for (size_t i = 0; rc == 0 && i < m->cfg->nsynced; i++) {
		const struct synced_folder *sf = &m->cfg->synced[i];
		enum sync_type t = resolved(p, m, sf);
		rc = sync_one(p, m, c, ep, sf, i, &t, d);
		machine_map_set(m, MK_SYNCED, sf->guest, type_names[t]);
	}
	return rc < 0 ? -1 : machine_save(m, d);
}

/* $1: seconds. First cloud-init's own record of this boot in /run
 * (status.json from its first stage on, result.json once its last stage
 * has ended, "errors": [] when all went well) polled by the shell: its
 * Python takes seconds to start on a small or emulated guest, on every
 * `up`. Anything else (no record, errors, a timeout) goes to `cloud-init
 * status --wait`, bounded; on failure its log's tail. */
static const char cloud_init_sh[] = PROLOGUE
	"command -v cloud-init >/dev/null || exit 0\n"
	"r=/run/cloud-init i=0\n"
	"while [ -e $r/status.json ] && [ ! -e $r/result.json ] && [ $i -lt \"$1\" ]; do\n"
	"  sleep 1; i=$((i + 1))\n"
	"done\n"
	"grep -qs '\"errors\": \\[\\]' $r/result.json && exit 0\n"
	"timeout $(($1 - i + 1)) cloud-init status --wait >/dev/null; rc=$?\n"
	"[ $rc = 0 ] && exit 0\n"
	"[ $rc = 124 ] && echo \"cloud-init did not finish within $1 s\" >&2 || "
	"echo \"cloud-init failed (cloud-init status: exit $rc)\" >&2\n"
	"S tail -n 15 /var/log/cloud-init-output.log >&2\n"
	"exit 1\n";

/* A guest seeded with cloud-init (cloud images) is set up and provisioned
 * only once cloud-init is done: users, keys, growpart and the user's own
 * user-data have run by then. */
static int cloud_init_wait(struct machine *m, struct ssh_conn *c, struct diag *d)
{
	if (!machine_flag(m, MK_CLOUD_INIT))
		return 0;
	char secs[24];
	snprintf(secs, sizeof(secs), "%llu",
		 (unsigned long long)(m->cfg->ssh.boot_timeout_ms / 1000 + 1));
	uint64_t t0 = now_ms();
	struct buf tail = {0}, cmd = {0};
	char *q = ssh_quote(cloud_init_sh);
	buf_printf(&cmd, "sh -c %s corral-guest %s", q, secs);
	free(q);
	int status = 0;
	int rc = ssh_exec(c, cmd.s, NULL, &status, &tail, TAIL_LINES, d);
	if (rc == 0 && status != 0)
		rc = diag_fail(d, "cloud-init:\n%s", tail.s ? tail.s : "");
	else if (rc == 0)
		log_machine(m->cfg->name, "cloud-init done (%.1fs)", (double)(now_ms() - t0) / 1000.0);
	buf_free(&cmd);
	buf_free(&tail);
	return rc;
}

int guest_setup(const struct provider *p, struct machine *m, struct ssh_conn *c,
		const struct endpoint *ep, struct diag *d)
{
	if (cloud_init_wait(m, c, d) < 0)
		return diag_wrap(d, "%s", m->cfg->name);
	if (!p->configures_guest_network && (identity(m, c, d) < 0 || nics(p, m, c, d) < 0))
		return diag_wrap(d, "%s", m->cfg->name);
	return folders(p, m, c, ep, d) < 0 ? diag_wrap(d, "%s", m->cfg->name) : 0;
}

int guest_rsync(const struct provider *p, struct machine *m, struct ssh_conn *c,
		const struct endpoint *ep, size_t *n, struct diag *d)
{
	*n = 0;
	for (size_t i = 0; i < m->cfg->nsynced; i++) {
		const struct synced_folder *sf = &m->cfg->synced[i];
		const char *t = machine_map_get(m, MK_SYNCED, sf->guest);
		if (!(t ? strcmp(t, "rsync") == 0 : resolved(p, m, sf) == SYNC_RSYNC))
			continue;
		if (rsync_one(m, c, ep, sf, d) < 0)
			return diag_wrap(d, "%s", m->cfg->name);
		(*n)++;
	}
	return 0;
}
