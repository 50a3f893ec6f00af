/* A fake provider for engine tests, registered by the test program with
 * provider_register_test(&fk_provider) (name "test", box provider "test").
 * Its machines live in a table (the "hypervisor": not created, stopped,
 * running, keyed by machine directory); every call is recorded in order
 * with its time (up twice: when it begins and when it returns), and up's
 * concurrency is measured. Per machine, up can be told to fail (leaving
 * the machine created but stopped, as a VM that did not boot), hang until
 * a stop is requested (core/base/cancel.h, polled as a real wait loop
 * does), take a while, or wait for others to be in up at the same time.
 *
 * SSH is real: every machine's endpoint is one sshd on loopback that the
 * test starts (fk_sshd_start), logging in as the current user with the
 * machine's own key, which up authorizes and whose host key it pins — as
 * the container provider does before boot. So the engine's connect, guest
 * set-up and provisioning run unchanged. */
#ifndef CORRAL_T_PROVIDER_H
#define CORRAL_T_PROVIDER_H
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/base/cancel.h"
#include "core/base/util.h"
#include "core/ssh/ssh.h"
#include "providers/provider.h"
#include "tests/unit/t_net.h"

enum fk_up {
	FK_OK,
	FK_FAIL, /* fails; the machine is created, stopped */
	FK_HANG, /* until a stop is requested, then fails "interrupted" */
	FK_SLOW, /* takes arg ms */
	FK_MEET, /* waits (up to 2 s) until arg machines are in up, then takes 30 ms */
	FK_MUTE, /* boots, but its endpoint is a port where nothing listens */
};

struct fk_event {
	char op[16]; /* up, halt, destroy, state, ssh_endpoint */
	char name[64];
	bool end; /* up: returned (else: began) */
	uint64_t ms;
};

#define FK_MAX 32
#define FK_EVENTS 1024

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	unsigned port, mute_port; /* the sshd; a port nobody listens on */
	pid_t sshd;
	char user[64];
	char *host_pub;        /* the sshd's host key line */
	char *authorized_keys; /* the file the sshd reads */
	struct {
		char name[64];
		enum fk_up up;
		unsigned arg;
	} plan[FK_MAX];
	size_t nplan;
	struct {
		char dir[512];
		enum mstate st;
	} vm[FK_MAX];
	size_t nvm;
	struct fk_event ev[FK_EVENTS];
	size_t nev;
	unsigned inflight, max_inflight; /* machines in up */
} fk = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* Forgets the plan and the record (not the machines). */
static inline void fk_reset(void)
{
	pthread_mutex_lock(&fk.mu);
	fk.nplan = fk.nev = 0;
	fk.inflight = fk.max_inflight = 0;
	pthread_mutex_unlock(&fk.mu);
}

static inline void fk_plan(const char *name, enum fk_up up, unsigned arg)
{
	pthread_mutex_lock(&fk.mu);
	size_t i = 0;
	while (i < fk.nplan && strcmp(fk.plan[i].name, name) != 0)
		i++;
	if (i == fk.nplan && fk.nplan < FK_MAX)
		snprintf(fk.plan[fk.nplan++].name, sizeof(fk.plan[0].name), "%s", name);
	if (i < FK_MAX) {
		fk.plan[i].up = up;
		fk.plan[i].arg = arg;
	}
	pthread_mutex_unlock(&fk.mu);
}

/* Called with fk.mu held. */
static inline enum fk_up fk_planned(const char *name, unsigned *arg)
{
	for (size_t i = 0; i < fk.nplan; i++)
		if (strcmp(fk.plan[i].name, name) == 0) {
			*arg = fk.plan[i].arg;
			return fk.plan[i].up;
		}
	*arg = 0;
	return FK_OK;
}

static inline void fk_record(const char *op, const char *name, bool end)
{
	pthread_mutex_lock(&fk.mu);
	if (fk.nev < FK_EVENTS) {
		struct fk_event *e = &fk.ev[fk.nev++];
		snprintf(e->op, sizeof(e->op), "%s", op);
		snprintf(e->name, sizeof(e->name), "%s", name);
		e->end = end;
		e->ms = now_ms();
	}
	pthread_cond_broadcast(&fk.cv);
	pthread_mutex_unlock(&fk.mu);
}

/* The position of the first such event in the record, or -1. */
static inline long fk_pos(const char *op, const char *name, bool end)
{
	long pos = -1;
	pthread_mutex_lock(&fk.mu);
	for (size_t i = 0; i < fk.nev && pos < 0; i++)
		if (strcmp(fk.ev[i].op, op) == 0 && strcmp(fk.ev[i].name, name) == 0 &&
		    fk.ev[i].end == end)
			pos = (long)i;
	pthread_mutex_unlock(&fk.mu);
	return pos;
}

/* How many times op was called for name (up: begun). */
static inline unsigned fk_calls(const char *op, const char *name)
{
	unsigned n = 0;
	pthread_mutex_lock(&fk.mu);
	for (size_t i = 0; i < fk.nev; i++)
		n += strcmp(fk.ev[i].op, op) == 0 && strcmp(fk.ev[i].name, name) == 0 &&
		     !fk.ev[i].end;
	pthread_mutex_unlock(&fk.mu);
	return n;
}

/* Waits up to timeout_ms for the event; true when it happened. */
static inline bool fk_wait_for(const char *op, const char *name, bool end, uint64_t timeout_ms)
{
	uint64_t deadline = now_ms() + timeout_ms;
	while (fk_pos(op, name, end) < 0) {
		if (now_ms() >= deadline)
			return false;
		sleep_ms(2);
	}
	return true;
}

/* Called with fk.mu held: the machine in the hypervisor (added, not created). */
static inline enum mstate *fk_vm(const struct machine *m)
{
	for (size_t i = 0; i < fk.nvm; i++)
		if (strcmp(fk.vm[i].dir, m->dir) == 0)
			return &fk.vm[i].st;
	if (fk.nvm == FK_MAX)
		abort();
	snprintf(fk.vm[fk.nvm].dir, sizeof(fk.vm[0].dir), "%s", m->dir);
	fk.vm[fk.nvm].st = MS_NOT_CREATED;
	return &fk.vm[fk.nvm++].st;
}

static inline enum mstate fk_vm_state(const struct machine *m)
{
	pthread_mutex_lock(&fk.mu);
	enum mstate s = *fk_vm(m);
	pthread_mutex_unlock(&fk.mu);
	return s;
}

static inline void fk_timedwait(unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (long)ms * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(&fk.cv, &fk.mu, &ts);
}

/* What the plan says up does before the machine boots. Called with fk.mu held. */
static inline int fk_behave(const char *name, struct diag *d)
{
	unsigned arg;
	uint64_t deadline = now_ms() + 2000;
	switch (fk_planned(name, &arg)) {
	case FK_FAIL:
		return diag_fail(d, "%s: the fake provider's up fails", name);
	case FK_HANG:
		while (!cancel_requested())
			fk_timedwait(5);
		return diag_fail(d, "%s: interrupted while booting", name);
	case FK_SLOW:
		pthread_mutex_unlock(&fk.mu);
		sleep_ms(arg);
		pthread_mutex_lock(&fk.mu);
		return 0;
	case FK_MEET:
		while (fk.inflight < arg && now_ms() < deadline)
			fk_timedwait(5);
		pthread_mutex_unlock(&fk.mu);
		sleep_ms(30);
		pthread_mutex_lock(&fk.mu);
		return 0;
	default:
		return 0;
	}
}

/* The machine's key authorized by the sshd, its host key pinned. */
static inline int fk_authorize(struct machine *m, struct diag *d)
{
	_cleanup_free_ char *pub = NULL, *kh = machine_path(m, "known_hosts");
	if (ssh_machine_key(m->dir, &pub, d) < 0 || ssh_known_hosts_pin(kh, fk.host_pub, d) < 0)
		return -1;
	pthread_mutex_lock(&fk.mu);
	char *old = NULL;
	read_file(fk.authorized_keys, 1 << 20, &old, NULL, d);
	_cleanup_free_ char *all = xasprintf("%s%s\n", old ? old : "", pub);
	int rc = old && strstr(old, pub) ? 0
					  : write_file_atomic(fk.authorized_keys, all, strlen(all), 0644, d);
	free(old);
	pthread_mutex_unlock(&fk.mu);
	json_object_set_new(m->state, "ssh_key_installed", json_true());
	return rc;
}

static inline int fk_up_fn(struct machine *m, struct diag *d)
{
	const char *name = m->cfg->name;
	fk_record("up", name, false);
	pthread_mutex_lock(&fk.mu);
	if (++fk.inflight > fk.max_inflight)
		fk.max_inflight = fk.inflight;
	pthread_cond_broadcast(&fk.cv);
	*fk_vm(m) = MS_STOPPED;
	int rc = fk_behave(name, d);
	pthread_mutex_unlock(&fk.mu);
	if (rc == 0)
		rc = fk_authorize(m, d);
	pthread_mutex_lock(&fk.mu);
	fk.inflight--;
	if (rc == 0)
		*fk_vm(m) = MS_RUNNING;
	pthread_mutex_unlock(&fk.mu);
	fk_record("up", name, true);
	return rc;
}

static inline int fk_halt_fn(struct machine *m, bool force, struct diag *d)
{
	(void)force, (void)d;
	fk_record("halt", m->cfg->name, false);
	pthread_mutex_lock(&fk.mu);
	if (*fk_vm(m) != MS_NOT_CREATED)
		*fk_vm(m) = MS_STOPPED;
	pthread_mutex_unlock(&fk.mu);
	return 0;
}

static inline int fk_destroy_fn(struct machine *m, struct diag *d)
{
	(void)d;
	fk_record("destroy", m->cfg->name, false);
	pthread_mutex_lock(&fk.mu);
	*fk_vm(m) = MS_NOT_CREATED;
	pthread_mutex_unlock(&fk.mu);
	return 0;
}

static inline int fk_state_fn(struct machine *m, enum mstate *s, struct diag *d)
{
	(void)d;
	fk_record("state", m->cfg ? m->cfg->name : "?", false);
	*s = fk_vm_state(m);
	return 0;
}

static inline int fk_endpoint_fn(struct machine *m, struct endpoint *ep, struct diag *d)
{
	(void)d;
	unsigned arg;
	fk_record("ssh_endpoint", m->cfg->name, false);
	pthread_mutex_lock(&fk.mu);
	bool mute = fk_planned(m->cfg->name, &arg) == FK_MUTE;
	pthread_mutex_unlock(&fk.mu);
	_cleanup_free_ char *key = machine_path(m, "id_ed25519");
	_cleanup_free_ char *kh = machine_path(m, "known_hosts");
	*ep = (struct endpoint){.port = mute ? fk.mute_port : fk.port};
	snprintf(ep->host, sizeof(ep->host), "127.0.0.1");
	snprintf(ep->user, sizeof(ep->user), "%s", fk.user);
	snprintf(ep->key_path, sizeof(ep->key_path), "%s", key);
	snprintf(ep->known_hosts, sizeof(ep->known_hosts), "%s", kh);
	return 0;
}

static inline int fk_usable(struct diag *why)
{
	(void)why;
	return 0;
}

static const struct provider fk_provider = {
	.name = "test",
	.box_provider = {"test", NULL},
	.usable = fk_usable,
	.up = fk_up_fn,
	.halt = fk_halt_fn,
	.destroy = fk_destroy_fn,
	.state = fk_state_fn,
	.ssh_endpoint = fk_endpoint_fn,
	.configures_guest_network = true,
	.sync_types = 1u << SYNC_RSYNC,
	.sync_auto = SYNC_RSYNC,
};

/* The sshd every machine's endpoint names, in dir: a host key, an empty
 * authorized_keys, logins for the current user only. */
static inline bool fk_sshd_start(const char *dir)
{
	struct diag d = {0};
	_cleanup_free_ char *hostkey = path_join(dir, "sshd_host_key");
	_cleanup_free_ char *conf = path_join(dir, "sshd_config");
	_cleanup_free_ char *log = path_join(dir, "sshd.log");
	struct passwd *pw = getpwuid(getuid());
	snprintf(fk.user, sizeof(fk.user), "%s", pw ? pw->pw_name : "root");
	fk.authorized_keys = path_join(dir, "authorized_keys");
	_cleanup_free_ char *text = xasprintf(
		"ListenAddress 127.0.0.1\nHostKey %s\nAuthorizedKeysFile %s\nStrictModes no\n"
		"UsePAM no\nPidFile none\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
		"PermitRootLogin prohibit-password\nAllowUsers %s\n",
		hostkey, fk.authorized_keys, fk.user);
	t_sshd_prepare();
	if (ssh_host_key_generate(hostkey, &fk.host_pub, &d) < 0 ||
	    write_file_atomic(fk.authorized_keys, "", 0, 0644, &d) < 0 ||
	    write_file_atomic(conf, text, strlen(text), 0644, &d) < 0) {
		printf("# fake provider's sshd: %s\n", d.msg);
		return false;
	}
	fk.port = t_free_port();
	do
		fk.mute_port = t_free_port();
	while (fk.mute_port == fk.port);
	fk.sshd = t_sshd_start(conf, fk.port, log, 0);
	return fk.sshd > 0;
}

static inline void fk_sshd_stop(void)
{
	if (fk.sshd > 0) {
		kill(fk.sshd, SIGTERM);
		waitpid(fk.sshd, NULL, 0);
	}
	fk.sshd = -1;
	free(fk.host_pub);
	free(fk.authorized_keys);
}

#endif
