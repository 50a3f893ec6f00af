/* Agent forwarding for commands corral runs over libssh, when the
 * machine's `ssh.forward_agent` is on (as OpenSSH's ForwardAgent): the
 * command's channel asks for it, and each agent channel the guest's sshd
 * opens back is joined to the host's agent ($SSH_AUTH_SOCK) for as long as
 * the command runs. Without SSH_AUTH_SOCK nothing is forwarded. */
#include <errno.h>
#include <libssh/callbacks.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/base/log.h"
#include "core/base/util.h"
#include "core/ssh/ssh_priv.h"

enum { AGENT_LINKS = 8, AGENT_CHUNK = 16384 };

struct agent_link {
	ssh_channel ch;
	int fd;
	struct ssh_channel_callbacks_struct cb;
};

struct ssh_agent_fwd {
	struct ssh_callbacks_struct cb; /* the session's: agent channel requests */
	ssh_session s;
	ssh_event ev;
	struct agent_link links[AGENT_LINKS];
	size_t n;
};

static int connect_agent(void)
{
	const char *path = getenv("SSH_AUTH_SOCK");
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (!path || !*path || strlen(path) >= sizeof(a.sun_path))
		return -1;
	memcpy(a.sun_path, path, strlen(path) + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void link_close(struct ssh_agent_fwd *a, struct agent_link *l)
{
	if (l->fd < 0)
		return;
	if (a->ev)
		ssh_event_remove_fd(a->ev, l->fd);
	close(l->fd);
	l->fd = -1;
	if (!ssh_channel_is_closed(l->ch)) {
		ssh_channel_send_eof(l->ch);
		ssh_channel_close(l->ch);
	}
}

/* Guest -> host agent. */
static int on_channel_data(ssh_session s, ssh_channel ch, void *data, uint32_t len,
			   int is_stderr, void *userdata)
{
	(void)s, (void)ch, (void)is_stderr;
	struct agent_link *l = userdata;
	if (l->fd >= 0)
		write_all(l->fd, data, len); /* an agent gone away: the guest's client fails */
	return (int)len;
}

/* Host agent -> guest. */
static int on_agent_readable(socket_t fd, int revents, void *userdata)
{
	struct agent_link *l = userdata;
	char buf[AGENT_CHUNK];
	ssize_t n = revents & POLLIN ? read(fd, buf, sizeof(buf)) : 0;
	if (n > 0 && ssh_channel_write(l->ch, buf, (uint32_t)n) == (int)n)
		return 0;
	ssh_channel_send_eof(l->ch);
	return 0;
}

/* The host agent's socket, watched by the command's poll loop. */
static void link_watch(struct ssh_agent_fwd *a, struct agent_link *l)
{
	ssh_event_add_fd(a->ev, l->fd, POLLIN, on_agent_readable, l);
}

/* May come before ssh_agent_attach: libssh handles every packet it has
 * read while it waits for the exec request's reply, and a quick command
 * (`ssh-add -l`) opens its agent channel right behind that reply; the
 * link then joins the event when it is attached. */
static ssh_channel on_agent_open(ssh_session s, void *userdata)
{
	struct ssh_agent_fwd *a = userdata;
	if (a->n == AGENT_LINKS)
		return NULL;
	int fd = connect_agent();
	ssh_channel ch = fd >= 0 ? ssh_channel_new(s) : NULL;
	if (!ch) {
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	struct agent_link *l = &a->links[a->n++];
	*l = (struct agent_link){.ch = ch, .fd = fd};
	l->cb.userdata = l;
	l->cb.channel_data_function = on_channel_data;
	ssh_callbacks_init(&l->cb);
	ssh_set_channel_callbacks(ch, &l->cb);
	if (a->ev)
		link_watch(a, l);
	return ch;
}

struct ssh_agent_fwd *ssh_agent_request(struct ssh_conn *c, ssh_channel ch)
{
	if (!c->ep.forward_agent)
		return NULL;
	if (!getenv("SSH_AUTH_SOCK") || !*getenv("SSH_AUTH_SOCK")) {
		log_debug("ssh.forward_agent is on but SSH_AUTH_SOCK is not set: no agent to forward");
		return NULL;
	}
	struct ssh_agent_fwd *a = xcalloc(1, sizeof(*a));
	a->s = c->s;
	a->cb.userdata = a;
	a->cb.channel_open_request_auth_agent_function = on_agent_open;
	ssh_callbacks_init(&a->cb);
	ssh_set_callbacks(c->s, &a->cb);
	if (ssh_channel_request_auth_agent(ch) != SSH_OK)
		log_warn("the guest's sshd refused agent forwarding (AllowAgentForwarding?)");
	return a;
}

void ssh_agent_attach(struct ssh_agent_fwd *a, ssh_event ev)
{
	if (!a)
		return;
	a->ev = ev;
	for (size_t i = 0; i < a->n; i++)
		if (a->links[i].fd >= 0)
			link_watch(a, &a->links[i]);
}

void ssh_agent_end(struct ssh_agent_fwd *a)
{
	if (!a)
		return;
	for (size_t i = 0; i < a->n; i++) {
		link_close(a, &a->links[i]);
		ssh_channel_free(a->links[i].ch);
	}
	static struct ssh_callbacks_struct none = {.size = sizeof(struct ssh_callbacks_struct)};
	ssh_set_callbacks(a->s, &none);
	free(a);
}
