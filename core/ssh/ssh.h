/* SSH to machines, through libssh: per-machine keys, wait-for-ready with
 * host-key pinning, command execution with streamed output, SFTP upload,
 * and the OpenSSH client options `corral ssh` and `ssh-config` hand out.
 * Connections are independent: several may be used from different
 * threads at once (one connection per thread). */
#ifndef CORRAL_SSH_H
#define CORRAL_SSH_H
#include <stddef.h>
#include <stdint.h>

#include "core/base/diag.h"
#include "core/config/envfile.h"
#include "core/host/machine.h"
#include "core/base/util.h"

struct ssh_conn;

/* Creates machine_dir/id_ed25519 (0600) if missing, and (re)writes
 * id_ed25519.pub; *pub (caller frees) gets the OpenSSH public line
 * "ssh-ed25519 AAAA... corral". */
int ssh_machine_key(const char *machine_dir, char **pub, struct diag *d);
/* A host key pair for guests whose host key corral writes before boot
 * (containers): the private key in OpenSSH format at `path` (0600), the
 * public line in *pub (caller frees). */
int ssh_host_key_generate(const char *path, char **pub, struct diag *d);
/* The OpenSSH public line of the private key at `path` (caller frees). */
int ssh_public_line(const char *path, char **pub, struct diag *d);
/* Pins `pub` (a host's public line) as the only key of known_hosts file
 * `path`, in the form ssh_wait_ready and ssh_client_options check: for
 * providers that write the guest's host key before boot. */
int ssh_known_hosts_pin(const char *path, const char *pub, struct diag *d);

/* Connects to ep, polling fast at first (20 ms, doubling to 500 ms) until
 * timeout_ms: refused connections, an sshd not yet answering and a key not
 * yet authorized are retried. The host key is pinned in ep->known_hosts on
 * first contact (file absent or empty), under the name "corral-machine"
 * rather than host:port (the file is the machine's own and its forwarded
 * port may change); a different key later is refused at
 * once, with `reset_hint` (default "corral ssh --reset-host-key") in the
 * hint. On timeout the diag says what was awaited, and the last lines of
 * console_log (if non-NULL). Gives up early once a stop is requested
 * (core/base/cancel.h). */
int ssh_wait_ready(const struct endpoint *ep, uint64_t timeout_ms, const char *console_log,
		   const char *reset_hint, struct ssh_conn **out, struct diag *d);
/* The last lines of a guest's console log at path, made printable,
 * appended to b after "; last console lines (PATH):". */
void ssh_console_tail(const char *path, struct buf *b);
/* `up` on a machine's first boot: ssh_wait_ready trying ep->key_path and
 * first_key (NULL: Vagrant's insecure keys), then the key swap below. */
int ssh_wait_ready_first_boot(const struct endpoint *ep, const char *first_key,
			      uint64_t timeout_ms, const char *console_log,
			      const char *reset_hint, struct ssh_conn **out, struct diag *d);
/* First-boot key swap, as Vagrant does: logs in with first_key (NULL:
 * Vagrant's well-known insecure key), appends the public key of
 * ep->key_path to the user's authorized_keys, drops the insecure keys from
 * it, and replaces *c with a connection made with ep->key_path. *c NULL:
 * it first logs in once, without waiting (with either key). Idempotent. */
int ssh_replace_first_boot_key(struct ssh_conn **c, const struct endpoint *ep,
			       const char *first_key, struct diag *d);

/* Runs cmd (a whole command line; every value in it quoted with ssh_quote),
 * streaming each stdout/stderr line to log_stream(prefix, line, is_stderr)
 * as it arrives. tail (if non-NULL) is set to the last tail_lines lines,
 * '\n'-separated, for error reports. *status: the exit status, or 255 +
 * the signal number when the command was killed (so > 255). stdin is empty. */
int ssh_exec(struct ssh_conn *c, const char *cmd, const char *prefix, int *status,
	     struct buf *tail, unsigned tail_lines, struct diag *d);
/* Same, printing nothing: the output only in tail (probes, watchers). */
int ssh_exec_quiet(struct ssh_conn *c, const char *cmd, int *status, struct buf *tail,
		   unsigned tail_lines, struct diag *d);
/* Same, with `in` fed to the command's stdin, then EOF. */
int ssh_exec_input(struct ssh_conn *c, const char *cmd, const void *in, size_t in_len,
		   const char *prefix, int *status, struct buf *tail, unsigned tail_lines,
		   struct diag *d);
/* Runs cmd printing nothing, calling line(ctx, text) with each stdout line
 * as it arrives, until the command ends or the connection is lost: one
 * channel that a watcher keeps open for as long as it watches. */
int ssh_exec_lines(struct ssh_conn *c, const char *cmd, void (*line)(void *ctx, const char *text),
		   void *ctx, int *status, struct diag *d);

/* SFTP: a file or a whole directory tree (modes and symlinks kept) becomes
 * `remote`, like `cp -r LOCAL REMOTE` into a fresh REMOTE; missing parent
 * directories are created; "~/x" is relative to the login's home. */
int ssh_upload(struct ssh_conn *c, const char *local, const char *remote, struct diag *d);
int ssh_upload_data(struct ssh_conn *c, const void *data, size_t len, const char *remote,
		    unsigned mode, struct diag *d);
void ssh_close(struct ssh_conn *c);

/* POSIX-shell single quoting: 'it'\''s'. The only way a value may enter a
 * remote command line. Caller frees. */
char *ssh_quote(const char *s);

/* OpenSSH's KexAlgorithms for a guest on this host (ep->on_host): first
 * the exchanges corral's own libssh connections make. OpenSSH 9's default,
 * the post-quantum hybrid sntrup761x25519, costs the client about 75 ms
 * more CPU a connection (85 ms against 10 ms all told) and a TCG guest's
 * sshd more; what it guards against, traffic recorded now and decrypted
 * later, does not reach a connection that never leaves the host. */
#define SSH_KEX_ON_HOST "^curve25519-sha256,curve25519-sha256@libssh.org"

/* The OpenSSH options that follow from the endpoint beyond where, who and
 * which keys: ForwardAgent (ep->forward_agent, yes or no) and, for a guest
 * on this host, KexAlgorithms SSH_KEX_ON_HOST. One list for both ways they
 * leave corral: ssh_client_options' lines and the -o arguments Ansible gets.
 * Fills out; returns how many. */
struct ssh_opt {
	const char *key, *value;
};
#define SSH_ENDPOINT_OPTS 2
size_t ssh_endpoint_opts(const struct endpoint *ep, struct ssh_opt out[SSH_ENDPOINT_OPTS]);

/* The OpenSSH client options for ep, one "Key value" per element (HostName,
 * Port, User, IdentityFile, IdentitiesOnly, UserKnownHostsFile,
 * HostKeyAlias, StrictHostKeyChecking, PasswordAuthentication, LogLevel,
 * KexAlgorithms when on_host...; values double-quoted, % doubled), for
 * `ssh -o` and for ssh-config Host blocks. Appended to opts; free with
 * strv_free. */
int ssh_client_options(const struct endpoint *ep, struct strv *opts, struct diag *d);

#endif
