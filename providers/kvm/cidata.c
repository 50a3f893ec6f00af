/* The NoCloud seed for boxes with cloud-init: an ISO9660 image labelled
 * CIDATA (cloud-init looks for either case) holding meta-data, user-data and
 * network-config, written by libarchive's iso9660 writer. The YAML files are
 * written as JSON, which is YAML, so no value needs quoting by hand. */
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include <string.h>

#include "core/base/digest.h"
#include "core/base/util.h"
#include "providers/kvm/kvm.h"

/* $0 the tag, $1 the guest path (arguments: no shell parses the paths). A
 * kernel without 9p (Debian's cloud kernel) is no cloud-init failure:
 * engine/guest.c then copies the folder with rsync instead. */
static const char mount_9p[] =
	"mountpoint -q \"$1\" || { mkdir -p \"$1\" && "
	"mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 \"$0\" \"$1\"; } || true";

/* 9p synced folders, mounted by cloud-init's runcmd; engine/guest.c finds
 * them mounted, and mounts or copies the rest. */
static json_t *mounts(const struct cidata *c)
{
	json_t *cmds = json_array();
	for (size_t i = 0; i < c->nsynced; i++) {
		const struct synced_folder *s = &c->synced[i];
		if (!kvm_folder_9p(s))
			continue;
		char tag[32];
		snprintf(tag, sizeof(tag), "corral%zu", i);
		json_array_append_new(cmds, json_pack("[s, s, s, s, s]", "sh", "-c", mount_9p, tag,
						      s->guest));
	}
	return cmds;
}

static char *cloud_config(const struct cidata *c)
{
	json_t *user = json_pack("{s:s, s:s, s:s, s:[s]}", "name", c->user, "shell", "/bin/sh",
				 "sudo", "ALL=(ALL) NOPASSWD:ALL", "ssh_authorized_keys", c->pubkey);
	json_t *cfg = json_pack("{s:[o], s:b, s:s, s:b}", "users", user, "ssh_pwauth", 0,
				"hostname", c->hostname, "manage_etc_hosts", 1);
	if (c->host_key && c->host_pub) {
		/* only corral's key, the one pinned in known_hosts: the image's
		 * are deleted, and the one type to make exists already */
		json_object_set_new(cfg, "ssh_keys", json_pack("{s:s, s:s}", "ed25519_private",
							       c->host_key, "ed25519_public",
							       c->host_pub));
		json_object_set_new(cfg, "ssh_deletekeys", json_true());
		json_object_set_new(cfg, "ssh_genkeytypes", json_pack("[s]", "ed25519"));
	}
	json_t *cmds = mounts(c);
	if (json_array_size(cmds))
		json_object_set(cfg, "runcmd", cmds);
	json_decref(cmds);
	char *body = json_dumps(cfg, JSON_INDENT(2) | JSON_SORT_KEYS);
	json_decref(cfg);
	char *s = xasprintf("#cloud-config\n%s\n", body);
	free(body);
	return s;
}

static const struct {
	const char *starts, *type;
} part_types[] = {
	{"#cloud-config", "text/cloud-config"},
	{"#!", "text/x-shellscript"},
	{"#cloud-boothook", "text/cloud-boothook"},
	{"#include", "text/x-include-url"},
};

/* corral's cloud-config, then the envfile's user-data as a second part of
 * a MIME multipart: its lists are appended to corral's, and corral's keys
 * (user, keys, host name) win over its own. */
static char *user_data(const struct cidata *c)
{
	char *ours = cloud_config(c);
	if (!c->user_data)
		return ours;
	const char *type = "text/plain";
	for (size_t i = 0; i < sizeof(part_types) / sizeof(part_types[0]); i++)
		if (strncmp(c->user_data, part_types[i].starts, strlen(part_types[i].starts)) == 0) {
			type = part_types[i].type;
			break;
		}
	char hex[HASH_HEX_MAX];
	hash_str(c->user_data, NULL, hex); /* a boundary that the parts do not hold */
	char *s = xasprintf(
		"Content-Type: multipart/mixed; boundary=\"corral-%.32s\"\nMIME-Version: 1.0\n\n"
		"--corral-%.32s\nContent-Type: text/cloud-config; charset=\"utf-8\"\n\n%s\n"
		"--corral-%.32s\nContent-Type: %s; charset=\"utf-8\"\n"
		"Merge-Type: list(append)+dict(no_replace,recurse_list)+str()\n\n%s\n"
		"--corral-%.32s--\n",
		hex, hex, ours, hex, type, c->user_data, hex);
	free(ours);
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

/* Version 2: the first NIC by DHCP (user-mode networking), private ones
 * static and deaf to router advertisements: no router ever sends one on a
 * corral network, and systemd-networkd would otherwise hold the link
 * "configuring" through its three router solicitations (about 12 s), and
 * network-online.target (cloud-init's next stage, sshd) with it. */
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
		json_object_set_new(eths, name, json_pack("{s:{s:s}, s:[s], s:b}", "match", "macaddress",
							  mac, "addresses", c->nets[i].ip, "accept-ra", 0));
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
	char *files[] = {meta_data(c), user_data(c), network_config(c)};
	struct archive *a = archive_write_new();
	int r = archive_write_set_format_iso9660(a);
	if (r == ARCHIVE_OK)
		r = archive_write_set_format_option(a, "iso9660", "volume-id", "CIDATA");
	/* 0600 before a byte is written: the seed holds the guest's host key */
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || fchmod(fd, 0600) < 0)
		r = ARCHIVE_FATAL;
	if (fd >= 0)
		close(fd);
	if (r == ARCHIVE_OK)
		r = archive_write_open_filename(a, path);
	for (size_t i = 0; i < 3 && r == ARCHIVE_OK; i++)
		r = add_file(a, names[i], files[i]);
	if (r == ARCHIVE_OK)
		r = archive_write_close(a);
	int rc = r == ARCHIVE_OK ? 0 : diag_fail(d, "cidata %s: %s", path, archive_error_string(a));
	archive_write_free(a);
	explicit_bzero(files[1], strlen(files[1]));
	for (size_t i = 0; i < 3; i++)
		free(files[i]);
	return rc;
}
