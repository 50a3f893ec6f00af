/* What corral writes into a created, never started instance through the
 * file API (POST /1.0/instances/NAME/files?path=...): the machine's own
 * key as the SSH user's authorized_keys (owner from the image's
 * /etc/passwd), an ed25519 host key made here and pinned in the machine's
 * known_hosts (so the first contact is already verified), /etc/hostname
 * and /etc/hosts with the name on 127.0.1.1 (the server names the
 * container after the instance; systemd and the inittab below set the
 * machine's hostname from /etc/hostname), and, when the
 * image's init is busybox's and it has no /etc/inittab, one that keeps
 * sshd running. Paths are corral's own; nothing is read back from the
 * guest but /etc/passwd and whether three files exist. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/ssh/ssh.h"
#include "providers/incus/incus.h"

/* busybox init without an inittab runs /etc/init.d/rcS and shells on
 * ttys; this one starts sshd and keeps it running. */
static const char inittab[] =
	"::sysinit:/bin/hostname -F /etc/hostname\n"
	"::sysinit:/bin/mkdir -p /run/sshd /var/run/sshd\n"
	"::respawn:/usr/sbin/sshd -D -e\n"
	"::ctrlaltdel:/sbin/reboot\n";

struct owner {
	unsigned uid, gid;
	char home[256];
};

static int push(struct incus_client *c, const char *name, const char *path, const char *type,
		const struct owner *o, unsigned mode, const char *data, size_t len, struct diag *d)
{
	_cleanup_free_ char *u = xasprintf("X-LXD-uid: %u", o->uid);
	_cleanup_free_ char *g = xasprintf("X-LXD-gid: %u", o->gid);
	_cleanup_free_ char *m = xasprintf("X-LXD-mode: %04o", mode);
	_cleanup_free_ char *t = xasprintf("X-LXD-type: %s", type);
	_cleanup_free_ char *iu = xasprintf("X-Incus-uid: %u", o->uid);
	_cleanup_free_ char *ig = xasprintf("X-Incus-gid: %u", o->gid);
	_cleanup_free_ char *im = xasprintf("X-Incus-mode: %04o", mode);
	_cleanup_free_ char *it = xasprintf("X-Incus-type: %s", type);
	const char *hdrs[] = {"Content-Type: application/octet-stream", u, g, m, t, iu, ig, im, it,
			      NULL};
	return incus_file_put(c, name, path, hdrs, data, len, d);
}

/* user's uid, gid and home from the image's /etc/passwd. */
static int owner_of(struct incus_client *c, const char *name, const char *user, struct owner *o,
		    struct diag *d)
{
	struct buf pw = {0};
	long st;
	int rc = incus_file_get(c, name, "/etc/passwd", &pw, &st, d);
	size_t ul = strlen(user);
	const char *line = pw.s;
	for (; rc == 0 && line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
		char home[256];
		if (strncmp(line, user, ul) != 0 || line[ul] != ':')
			continue;
		if (sscanf(line + ul, ":%*[^:]:%u:%u:%*[^:]:%255[^:\n]", &o->uid, &o->gid, home) == 3 ||
		    sscanf(line + ul, ":%*[^:]:%u:%u::%255[^:\n]", &o->uid, &o->gid, home) == 3) {
			snprintf(o->home, sizeof(o->home), "%s", home);
			buf_free(&pw);
			return 0;
		}
	}
	buf_free(&pw);
	if (rc < 0)
		return -1;
	diag_fail(d, "incus: the image has no user %s in /etc/passwd", user);
	return diag_hint(d, "set ssh.user to a user of the box");
}

int incus_user_ids(struct incus_client *c, const struct machine *m, const char *name,
		   unsigned *uid, unsigned *gid, struct diag *d)
{
	struct owner o = {0};
	if (owner_of(c, name, mcfg_ssh_user(m->cfg), &o, d) < 0)
		return -1;
	*uid = o.uid;
	*gid = o.gid;
	return 0;
}

/* A safe home: absolute, no "..", no characters a query string changes. */
static bool plain_path(const char *p)
{
	return p[0] == '/' && !strstr(p, "..") && strcspn(p, "?&#% \t") == strlen(p);
}

int incus_keys_make(struct machine *m, char **pub, char **host_key, char **host_pub,
		    struct diag *d)
{
	_cleanup_free_ char *hk = machine_path(m, "ssh_host_ed25519_key");
	_cleanup_free_ char *kh = machine_path(m, "known_hosts");
	size_t n;
	*pub = *host_key = *host_pub = NULL;
	unlink(hk);
	if (ssh_machine_key(m->dir, pub, d) < 0 || ssh_host_key_generate(hk, host_pub, d) < 0 ||
	    read_file(hk, 64 << 10, host_key, &n, d) < 0 || ssh_known_hosts_pin(kh, *host_pub, d) < 0) {
		free(*pub);
		free(*host_key);
		free(*host_pub);
		*pub = *host_key = *host_pub = NULL;
		return -1;
	}
	return 0;
}

static int keys(struct incus_client *c, struct machine *m, const char *name, struct diag *d)
{
	struct owner o = {0}, root = {0};
	_cleanup_free_ char *pub = NULL, *host_pub = NULL, *key = NULL;
	if (owner_of(c, name, mcfg_ssh_user(m->cfg), &o, d) < 0)
		return -1;
	if (!plain_path(o.home))
		return diag_fail(d, "incus: home %s of %s is not a plain path", o.home,
				 mcfg_ssh_user(m->cfg));
	if (incus_keys_make(m, &pub, &key, &host_pub, d) < 0)
		return -1;
	_cleanup_free_ char *ssh_dir = xasprintf("%s/.ssh", o.home);
	_cleanup_free_ char *ak = xasprintf("%s/.ssh/authorized_keys", o.home);
	_cleanup_free_ char *ak_line = xasprintf("%s\n", pub);
	_cleanup_free_ char *hp_line = xasprintf("%s\n", host_pub);
	return push(c, name, ssh_dir, "directory", &o, 0700, NULL, 0, d) < 0 ||
			       push(c, name, ak, "file", &o, 0600, ak_line, strlen(ak_line), d) < 0 ||
			       push(c, name, "/etc/ssh/ssh_host_ed25519_key", "file", &root, 0600, key,
				    strlen(key), d) < 0 ||
			       push(c, name, "/etc/ssh/ssh_host_ed25519_key.pub", "file", &root, 0644,
				    hp_line, strlen(hp_line), d) < 0
		       ? -1 : 0;
}

static int has_file(struct incus_client *c, const char *name, const char *path, bool *yes,
		    struct diag *d)
{
	struct buf b = {0};
	long st;
	int rc = incus_file_get(c, name, path, &b, &st, d);
	buf_free(&b);
	*yes = rc == 0;
	return rc == 0 || st == 404 ? 0 : -1;
}

int incus_files_prepare(struct incus_client *c, struct machine *m, const char *name,
			bool *busybox, struct diag *d)
{
	bool systemd, tab, bb;
	struct owner root = {0};
	*busybox = false;
	const char *host = m->cfg->hostname ? m->cfg->hostname : m->cfg->name;
	_cleanup_free_ char *hostname = xasprintf("%s\n", host);
	_cleanup_free_ char *hosts = xasprintf("127.0.0.1\tlocalhost\n127.0.1.1\t%s\n"
					       "::1\tlocalhost ip6-localhost ip6-loopback\n", host);
	if (keys(c, m, name, d) < 0 ||
	    push(c, name, "/etc/hostname", "file", &root, 0644, hostname, strlen(hostname), d) < 0 ||
	    push(c, name, "/etc/hosts", "file", &root, 0644, hosts, strlen(hosts), d) < 0 ||
	    has_file(c, name, "/lib/systemd/systemd", &systemd, d) < 0 ||
	    has_file(c, name, "/etc/inittab", &tab, d) < 0 ||
	    has_file(c, name, "/bin/busybox", &bb, d) < 0)
		return -1;
	if (systemd || tab || !bb)
		return 0;
	*busybox = true;
	return push(c, name, "/etc/inittab", "file", &root, 0644, inittab, sizeof(inittab) - 1, d);
}
