/* Host ports other VMs hold. VirtualBox binds a NAT rule's port only while
 * its VM runs, so the picker (core/host/ports.c) is told every port any
 * registered VM (running or not) has a rule for — Vagrant's check too. */
#include <stdlib.h>
#include <string.h>

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
