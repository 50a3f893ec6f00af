/* Shared by the ssh*.c files only (the public API is core/ssh/ssh.h): the
 * connection struct and libssh error reporting. */
#ifndef CORRAL_SSHINT_H
#define CORRAL_SSHINT_H
#include <libssh/libssh.h>
#include <stdbool.h>

#include "core/ssh/ssh.h"

/* Host keys are pinned under this name, not host:port: the known_hosts
 * file is the machine's own, and its forwarded port may change between
 * boots. `corral ssh` passes the same name as OpenSSH's HostKeyAlias. */
#define SSH_HOST_ALIAS "corral-machine"

struct ssh_conn {
	ssh_session s;
	struct endpoint ep;
	char *home; /* the login's home, looked up by SFTP on first "~/" */
};

/* ssh_init() once per process, from whichever thread comes first. */
void ssh_lib_init(void);
/* diag "what: libssh's error"; returns -1. */
int ssh_fail(struct diag *d, ssh_session s, const char *what);
/* The private key at path; the error names the file. */
int ssh_key_load(const char *path, ssh_key *key, struct diag *d);
/* "TYPE BASE64 comment" of a private or public key (caller frees). */
int ssh_key_line(ssh_key key, const char *comment, char **line, struct diag *d);

/* agent.c: agent forwarding for one command, when c->ep.forward_agent:
 * request asks on the command's channel (NULL: nothing forwarded), attach
 * gives it the poll loop, end closes what it opened. */
struct ssh_agent_fwd;
struct ssh_agent_fwd *ssh_agent_request(struct ssh_conn *c, ssh_channel ch);
void ssh_agent_attach(struct ssh_agent_fwd *a, ssh_event ev);
void ssh_agent_end(struct ssh_agent_fwd *a);

/* ssh_exec_input, optionally without logging the output (quiet). */
int ssh_exec_run(struct ssh_conn *c, const char *cmd, const void *in, size_t in_len,
		 const char *prefix, bool quiet, int *status, struct buf *tail,
		 unsigned tail_lines, struct diag *d);

#endif
