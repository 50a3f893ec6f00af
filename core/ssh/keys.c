/* Key files: the machine's login key, host keys corral writes for guests,
 * and pinned host keys. Private key text is wiped from memory after use. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/ssh/ssh_priv.h"
#include "core/base/util.h"

static pthread_once_t lib_once = PTHREAD_ONCE_INIT;

static void lib_init_once(void) { ssh_init(); }

void ssh_lib_init(void) { pthread_once(&lib_once, lib_init_once); }

int ssh_fail(struct diag *d, ssh_session s, const char *what)
{
	return diag_fail(d, "%s: %s", what, s ? ssh_get_error(s) : "libssh error");
}

int ssh_key_load(const char *path, ssh_key *key, struct diag *d)
{
	ssh_lib_init();
	if (!path_exists(path))
		return diag_fail(d, "ssh key %s does not exist", path);
	if (ssh_pki_import_privkey_file(path, NULL, NULL, NULL, key) != SSH_OK) {
		diag_fail(d, "cannot read ssh private key %s", path);
		return diag_hint(d, "it must be an unencrypted OpenSSH or PEM private key "
				    "(passphrases are not supported)");
	}
	return 0;
}

int ssh_key_line(ssh_key key, const char *comment, char **line, struct diag *d)
{
	ssh_key pub = NULL;
	char *b64 = NULL;
	int rc = -1;
	if (ssh_pki_export_privkey_to_pubkey(key, &pub) == SSH_OK &&
	    ssh_pki_export_pubkey_base64(pub, &b64) == SSH_OK) {
		*line = xasprintf("%s %s%s%s", ssh_key_type_to_char(ssh_key_type(pub)), b64,
				  comment ? " " : "", comment ? comment : "");
		rc = 0;
	} else {
		diag_fail(d, "cannot export an ssh public key");
	}
	ssh_string_free_char(b64);
	ssh_key_free(pub);
	return rc;
}

/* A new ed25519 key at path (OpenSSH format, 0600); *pub its public line. */
static int key_generate(const char *path, const char *comment, char **pub, struct diag *d)
{
	ssh_lib_init();
	ssh_key key = NULL;
	char *text = NULL;
	int rc = -1;
	if (ssh_pki_generate(SSH_KEYTYPE_ED25519, 0, &key) != SSH_OK)
		diag_fail(d, "cannot generate an ed25519 key");
	else if (ssh_pki_export_privkey_base64(key, NULL, NULL, NULL, &text) != SSH_OK)
		diag_fail(d, "cannot export the new ed25519 key");
	else if (write_file_atomic(path, text, strlen(text), 0600, d) == 0)
		rc = ssh_key_line(key, comment, pub, d);
	if (text) {
		explicit_bzero(text, strlen(text));
		ssh_string_free_char(text);
	}
	ssh_key_free(key);
	return rc;
}

int ssh_public_line(const char *path, char **pub, struct diag *d)
{
	ssh_key key = NULL;
	if (ssh_key_load(path, &key, d) < 0)
		return -1;
	int rc = ssh_key_line(key, "corral", pub, d);
	ssh_key_free(key);
	return rc;
}

int ssh_machine_key(const char *machine_dir, char **pub, struct diag *d)
{
	_cleanup_free_ char *priv = path_join(machine_dir, "id_ed25519");
	_cleanup_free_ char *pubp = path_join(machine_dir, "id_ed25519.pub");
	if (mkdir_p(machine_dir, 0700, d) < 0)
		return -1;
	int rc = path_exists(priv) ? ssh_public_line(priv, pub, d)
				   : key_generate(priv, "corral", pub, d);
	if (rc < 0)
		return diag_wrap(d, "machine key");
	_cleanup_free_ char *line = xasprintf("%s\n", *pub);
	if (write_file_atomic(pubp, line, strlen(line), 0644, d) < 0) {
		free(*pub);
		*pub = NULL;
		return -1;
	}
	return 0;
}

int ssh_host_key_generate(const char *path, char **pub, struct diag *d)
{
	if (key_generate(path, NULL, pub, d) < 0)
		return diag_wrap(d, "host key %s", path);
	return 0;
}

int ssh_known_hosts_pin(const char *path, const char *pub, struct diag *d)
{
	_cleanup_free_ char *line = xasprintf("%s %s\n", SSH_HOST_ALIAS, pub);
	return write_file_atomic(path, line, strlen(line), 0600, d);
}
