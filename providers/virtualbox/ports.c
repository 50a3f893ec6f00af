/* Host ports other VMs hold. VirtualBox binds a NAT rule's port only while
 * its VM runs, so the picker (core/host/ports.c) is told every port any
 * registered VM (running or not) has a rule for — Vagrant's check too.
 * And host ports lost: another program (a QEMU, a container's forwarder)
 * may bind a port between the pick and the VM's power-up; VirtualBox then
 * runs the VM without that forward and says so in VBox.log. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "providers/virtualbox/vbox.h"

/* Each rule's port is taken for TCP and UDP alike. */
static void add_rules(struct port_set *u, const struct vbox_kvs *k)
{
	struct vbox_natpf *f;
	size_t n = vbox_forwards(k, &f);
	for (size_t i = 0; i < n; i++) {
		port_set_add(u, f[i].host_port, false);
		port_set_add(u, f[i].host_port, true);
	}
	free(f);
}

int vbox_used_ports(const char *self, struct port_set *u, struct diag *d)
{
	*u = (struct port_set){0};
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
		port_set_free(u);
	return rc;
}

/* The head of this power-up's VBox.log: its NAT lines come in the first
 * second of a log that may grow to megabytes. */
#define LOG_HEAD (256 * 1024)

static int log_head(const char *dir, char **text, struct diag *d)
{
	_cleanup_free_ char *path = path_join(dir, "VBox.log");
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return diag_errno(d, "open %s", path);
	*text = xmalloc(LOG_HEAD + 1);
	ssize_t n = pread(fd, *text, LOG_HEAD, 0);
	if (n < 0) {
		free(*text);
		return diag_errno(d, "read %s", path);
	}
	(*text)[n] = 0;
	return 0;
}

int vbox_ports_lost(struct machine *m, const char *id, bool *lost, struct diag *d)
{
	*lost = false;
	struct vbox_kvs k;
	bool gone;
	if (vbox_showvminfo(id, &k, &gone, d) < 0)
		return -1;
	/* A log corral cannot read (a VirtualBox on a Windows host behind WSL
	 * names a Windows folder) tells nothing: the wait for SSH decides. */
	const char *dir = gone ? NULL : vbox_kv_get(&k, "LogFldr");
	_cleanup_free_ char *text = NULL;
	struct diag unread = {0};
	if (dir)
		log_head(dir, &text, &unread);
	vbox_kv_free(&k);
	if (!text)
		return 0;
	struct mport *v;
	size_t n = machine_ports(m, &v);
	for (size_t i = 0; i < n && !*lost; i++)
		*lost = vbox_log_redirect_failed(text, v[i].host, v[i].udp);
	free(v);
	return 0;
}
