/* The NoCloud seed for boxes with cloud-init: an ISO9660 image labelled
 * CIDATA (cloud-init looks for either case) holding meta-data, user-data and
 * network-config, written by libarchive's iso9660 writer. The YAML files are
 * written as JSON, which is YAML, so no value needs quoting by hand. */
#include <archive.h>
#include <archive_entry.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"
#include "providers/kvm/kvm.h"

static char *cloud_config(const struct cidata *c)
{
	json_t *user = json_pack("{s:s, s:s, s:s, s:[s]}", "name", c->user, "shell", "/bin/sh",
				 "sudo", "ALL=(ALL) NOPASSWD:ALL", "ssh_authorized_keys", c->pubkey);
	json_t *cfg = json_pack("{s:[o], s:b, s:s}", "users", user, "ssh_pwauth", 0,
				"hostname", c->hostname);
	char *body = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(cfg);
	char *s = xasprintf("#cloud-config\n%s\n", body);
	free(body);
	return s;
}

static char *meta_data(const struct cidata *c)
{
	json_t *o = json_pack("{s:s, s:s}", "instance-id", c->instance_id, "local-hostname",
			      c->hostname);
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

/* Version 2: the first NIC by DHCP (user-mode networking), private ones static. */
static char *network_config(const struct cidata *c)
{
	char mac[18];
	json_t *eths = json_object();
	qemu_mac(c->dir, 0, mac);
	json_object_set_new(eths, "nic0", json_pack("{s:{s:s}, s:b}", "match", "macaddress", mac,
						     "dhcp4", 1));
	for (size_t i = 0; i < c->nnets; i++) {
		if (!c->nets[i].ip[0])
			continue;
		char name[16];
		snprintf(name, sizeof(name), "nic%zu", i + 1);
		qemu_mac(c->dir, (unsigned)i + 1, mac);
		json_object_set_new(eths, name, json_pack("{s:{s:s}, s:[s]}", "match", "macaddress",
							  mac, "addresses", c->nets[i].ip));
	}
	json_t *o = json_pack("{s:i, s:o}", "version", 2, "ethernets", eths);
	char *s = json_dumps(o, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(o);
	return s;
}

static int add_file(struct archive *a, const char *name, const char *data)
{
	struct archive_entry *e = archive_entry_new();
	archive_entry_set_pathname(e, name);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)strlen(data));
	int r = archive_write_header(a, e);
	if (r == ARCHIVE_OK && archive_write_data(a, data, strlen(data)) < 0)
		r = ARCHIVE_FATAL;
	archive_entry_free(e);
	return r;
}

int cidata_write(const char *path, const struct cidata *c, struct diag *d)
{
	const char *names[] = {"meta-data", "user-data", "network-config"};
	char *files[] = {meta_data(c), cloud_config(c), network_config(c)};
	struct archive *a = archive_write_new();
	int r = archive_write_set_format_iso9660(a);
	if (r == ARCHIVE_OK)
		r = archive_write_set_format_option(a, "iso9660", "volume-id", "CIDATA");
	if (r == ARCHIVE_OK)
		r = archive_write_open_filename(a, path);
	for (size_t i = 0; i < 3 && r == ARCHIVE_OK; i++)
		r = add_file(a, names[i], files[i]);
	if (r == ARCHIVE_OK)
		r = archive_write_close(a);
	int rc = r == ARCHIVE_OK ? 0 : diag_fail(d, "cidata %s: %s", path, archive_error_string(a));
	archive_write_free(a);
	for (size_t i = 0; i < 3; i++)
		free(files[i]);
	return rc;
}
