/* What leaves this module as text: shell-quoted values for remote command
 * lines, and OpenSSH client options equivalent to how corral connects. */
#include <stdlib.h>
#include <string.h>

#include "core/ssh/ssh_priv.h"
#include "core/base/util.h"

char *ssh_quote(const char *s)
{
	struct buf b = {0};
	buf_puts(&b, "'");
	for (const char *p = s; *p; p++) {
		if (*p == '\'')
			buf_puts(&b, "'\\''");
		else
			buf_add(&b, p, 1);
	}
	buf_puts(&b, "'");
	return b.s;
}

/* A value OpenSSH reads back unchanged: double-quoted (spaces), with %
 * doubled (IdentityFile and UserKnownHostsFile expand %-tokens). */
static int config_value(const char *what, const char *v, bool percent, struct buf *out,
			struct diag *d)
{
	if (!v[0])
		return diag_fail(d, "ssh %s is empty", what);
	buf_puts(out, "\"");
	for (const char *p = v; *p; p++) {
		if (*p == '"' || (unsigned char)*p < 0x20 || *p == 0x7f)
			return diag_fail(d, "ssh %s `%s` has a character OpenSSH cannot read back",
					 what, v);
		buf_add(out, p, 1);
		if (*p == '%' && percent)
			buf_add(out, p, 1);
	}
	buf_puts(out, "\"");
	return 0;
}

size_t ssh_endpoint_opts(const struct endpoint *ep, struct ssh_opt out[SSH_ENDPOINT_OPTS])
{
	size_t n = 0;
	out[n++] = (struct ssh_opt){"ForwardAgent", ep->forward_agent ? "yes" : "no"};
	if (ep->on_host)
		out[n++] = (struct ssh_opt){"KexAlgorithms", SSH_KEX_ON_HOST};
	return n;
}

int ssh_client_options(const struct endpoint *ep, struct strv *opts, struct diag *d)
{
	const struct {
		const char *key, *what, *value;
		bool percent;
	} quoted[] = {
		{"HostName", "host", ep->host, false},
		{"User", "user", ep->user, true},
		{"IdentityFile", "key path", ep->key_path, true},
		{"UserKnownHostsFile", "known_hosts path", ep->known_hosts, true},
	};
	for (size_t i = 0; i < sizeof(quoted) / sizeof(quoted[0]); i++) {
		struct buf b = {0};
		buf_printf(&b, "%s ", quoted[i].key);
		if (config_value(quoted[i].what, quoted[i].value, quoted[i].percent, &b, d) < 0) {
			buf_free(&b);
			return -1;
		}
		strv_take(opts, b.s);
	}
	static const char *const fixed[] = {
		"IdentitiesOnly yes",       "StrictHostKeyChecking yes",
		("HostKeyAlias " SSH_HOST_ALIAS), "GlobalKnownHostsFile /dev/null",
		"UpdateHostKeys no",        "PasswordAuthentication no",
		"KbdInteractiveAuthentication no", "LogLevel ERROR",
	};
	strv_take(opts, xasprintf("Port %u", ep->port));
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		strv_take(opts, xstrdup(fixed[i]));
	struct ssh_opt eo[SSH_ENDPOINT_OPTS];
	size_t n = ssh_endpoint_opts(ep, eo);
	for (size_t i = 0; i < n; i++)
		strv_take(opts, xasprintf("%s %s", eo[i].key, eo[i].value));
	return 0;
}
