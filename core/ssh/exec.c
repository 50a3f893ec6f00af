/* Running a command in the guest: stdin fed as the channel window allows,
 * stdout and stderr handled as they arrive (neither blocks the other),
 * split into lines for the logger and the caller's error tail. */
#include <libssh/callbacks.h>
#include <signal.h>
#include <string.h>

#include "core/base/log.h"
#include "core/ssh/ssh_priv.h"
#include "core/base/util.h"

enum { MAX_LINE = 65536, WRITE_CHUNK = 32768, POLL_MS = 1000 };

struct run {
	const char *prefix;
	bool quiet;
	struct buf part[2]; /* the unfinished line of stdout, stderr */
	struct buf *tail;
	unsigned tail_lines, tail_count;
	int status;
	bool got_status;
	void (*on_line)(void *ctx, const char *line); /* each stdout line (ssh_exec_lines) */
	void *ctx;
};

static void tail_add(struct run *r, const char *line)
{
	if (!r->tail || !r->tail_lines)
		return;
	buf_printf(r->tail, "%s\n", line);
	if (++r->tail_count > r->tail_lines) {
		size_t cut = strcspn(r->tail->s, "\n") + 1;
		memmove(r->tail->s, r->tail->s + cut, r->tail->len - cut + 1);
		r->tail->len -= cut;
		r->tail_count--;
	}
}

static void flush_line(struct run *r, int is_stderr)
{
	struct buf *p = &r->part[is_stderr];
	if (p->len && p->s[p->len - 1] == '\r')
		p->s[--p->len] = '\0';
	const char *line = p->s ? p->s : "";
	if (!r->quiet)
		log_stream(r->prefix, line, is_stderr);
	if (r->on_line && !is_stderr)
		r->on_line(r->ctx, line);
	tail_add(r, line);
	p->len = 0;
	if (p->s)
		p->s[0] = '\0';
}

static int on_data(ssh_session s, ssh_channel ch, void *data, uint32_t len, int is_stderr,
		   void *userdata)
{
	(void)s, (void)ch;
	struct run *r = userdata;
	int which = is_stderr ? 1 : 0;
	const char *c = data, *end = c + len;
	while (c < end) {
		const char *nl = memchr(c, '\n', (size_t)(end - c));
		const char *stop = nl ? nl : end;
		buf_add(&r->part[which], c, (size_t)(stop - c));
		if (nl || r->part[which].len >= MAX_LINE)
			flush_line(r, which);
		c = nl ? nl + 1 : end;
	}
	return (int)len;
}

static void on_status(ssh_session s, ssh_channel ch, int status, void *userdata)
{
	(void)s, (void)ch;
	struct run *r = userdata;
	r->status = status;
	r->got_status = true;
}

/* RFC 4254 signal names. */
static const struct {
	const char *name;
	int num;
} signals[] = {
	{"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"FPE", SIGFPE},   {"HUP", SIGHUP},
	{"ILL", SIGILL},   {"INT", SIGINT},   {"KILL", SIGKILL}, {"PIPE", SIGPIPE},
	{"QUIT", SIGQUIT}, {"SEGV", SIGSEGV}, {"TERM", SIGTERM}, {"USR1", SIGUSR1},
	{"USR2", SIGUSR2},
};

static void on_signal(ssh_session s, ssh_channel ch, const char *sig, int core,
		      const char *errmsg, const char *lang, void *userdata)
{
	(void)s, (void)ch, (void)core, (void)errmsg, (void)lang;
	struct run *r = userdata;
	r->status = 255;
	for (size_t i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		if (strcmp(signals[i].name, sig) == 0)
			r->status = 255 + signals[i].num;
	r->got_status = true;
}

/* Feeds stdin within the window, then EOF; polls until the command ends. */
static int pump(struct ssh_conn *c, ssh_channel ch, struct run *r, const char *in,
		size_t in_len, struct ssh_agent_fwd *agent, struct diag *d)
{
	ssh_event ev = ssh_event_new();
	if (!ev || ssh_event_add_session(ev, c->s) != SSH_OK) {
		ssh_event_free(ev);
		return diag_fail(d, "cannot poll the ssh session");
	}
	ssh_agent_attach(agent, ev);
	size_t off = 0;
	bool eof_sent = false;
	int rc = 0;
	while (!ssh_channel_is_closed(ch) && !(ssh_channel_is_eof(ch) && r->got_status)) {
		uint32_t win = off < in_len ? ssh_channel_window_size(ch) : 0;
		if (win) {
			size_t n = in_len - off < win ? in_len - off : win;
			int w = ssh_channel_write(ch, in + off, n < WRITE_CHUNK ? (uint32_t)n : WRITE_CHUNK);
			if (w < 0 && !ssh_channel_is_closed(ch) && !ssh_channel_is_eof(ch)) {
				rc = ssh_fail(d, c->s, "sending the command's input");
				break;
			}
			/* A command that ended unread leaves the rest of its input unsent. */
			off = w < 0 ? in_len : off + (size_t)w;
			eof_sent |= w < 0;
		}
		if (off >= in_len && !eof_sent) {
			ssh_channel_send_eof(ch);
			eof_sent = true;
		}
		if (ssh_event_dopoll(ev, off < in_len && win ? 0 : POLL_MS) == SSH_ERROR) {
			rc = ssh_fail(d, c->s, "connection lost while the command ran");
			break;
		}
	}
	ssh_agent_end(agent); /* its fds leave the event before the event goes */
	ssh_event_remove_session(ev, c->s);
	ssh_event_free(ev);
	return rc;
}

/* Callbacks, the agent (if forwarded), then the command itself. */
static int start_command(struct ssh_conn *c, ssh_channel ch, struct ssh_channel_callbacks_struct *cb,
			 const char *cmd, struct ssh_agent_fwd **agent, struct diag *d)
{
	if (ssh_set_channel_callbacks(ch, cb) != SSH_OK)
		return ssh_fail(d, c->s, "starting a command over ssh");
	*agent = ssh_agent_request(c, ch);
	if (ssh_channel_request_exec(ch, cmd) == SSH_OK)
		return 0;
	ssh_agent_end(*agent);
	*agent = NULL;
	return ssh_fail(d, c->s, "starting a command over ssh");
}

/* One command on its own channel, its output to r. */
static int exec_with(struct ssh_conn *c, const char *cmd, const void *in, size_t in_len,
		     struct run *rp, int *status, struct diag *d)
{
	struct run r = *rp;
	struct buf *tail = r.tail;
	struct ssh_channel_callbacks_struct cb = {
		.userdata = &r,
		.channel_data_function = on_data,
		.channel_exit_status_function = on_status,
		.channel_exit_signal_function = on_signal,
	};
	ssh_callbacks_init(&cb);
	if (tail)
		tail->len = 0;
	*status = -1;
	if (!c)
		return diag_fail(d, "no ssh connection to run a command on");
	ssh_channel ch = ssh_channel_new(c->s);
	struct ssh_agent_fwd *agent = NULL;
	int rc = 0;
	if (!ch || ssh_channel_open_session(ch) != SSH_OK)
		rc = ssh_fail(d, c->s, "opening an ssh channel");
	else if ((rc = start_command(c, ch, &cb, cmd, &agent, d)) == 0)
		rc = pump(c, ch, &r, in, in_len, agent, d);
	for (int i = 0; i < 2; i++) {
		if (r.part[i].len)
			flush_line(&r, i);
		buf_free(&r.part[i]);
	}
	if (tail && tail->len && tail->s[tail->len - 1] == '\n')
		tail->s[--tail->len] = '\0';
	if (rc == 0 && !r.got_status)
		rc = diag_fail(d, "the command ended without an exit status");
	*status = r.status;
	if (ch) {
		ssh_channel_close(ch);
		ssh_channel_free(ch);
	}
	return rc;
}

int ssh_exec_run(struct ssh_conn *c, const char *cmd, const void *in, size_t in_len,
		 const char *prefix, bool quiet, int *status, struct buf *tail,
		 unsigned tail_lines, struct diag *d)
{
	struct run r = {.prefix = prefix, .quiet = quiet, .tail = tail, .tail_lines = tail_lines};
	return exec_with(c, cmd, in, in_len, &r, status, d);
}

int ssh_exec_lines(struct ssh_conn *c, const char *cmd, void (*line)(void *ctx, const char *text),
		   void *ctx, int *status, struct diag *d)
{
	struct run r = {.quiet = true, .on_line = line, .ctx = ctx};
	return exec_with(c, cmd, NULL, 0, &r, status, d);
}

int ssh_exec(struct ssh_conn *c, const char *cmd, const char *prefix, int *status,
	     struct buf *tail, unsigned tail_lines, struct diag *d)
{
	return ssh_exec_run(c, cmd, NULL, 0, prefix, false, status, tail, tail_lines, d);
}

int ssh_exec_input(struct ssh_conn *c, const char *cmd, const void *in, size_t in_len,
		   const char *prefix, int *status, struct buf *tail, unsigned tail_lines,
		   struct diag *d)
{
	return ssh_exec_run(c, cmd, in, in_len, prefix, false, status, tail, tail_lines, d);
}

int ssh_exec_quiet(struct ssh_conn *c, const char *cmd, int *status, struct buf *tail,
		   unsigned tail_lines, struct diag *d)
{
	return ssh_exec_run(c, cmd, NULL, 0, NULL, true, status, tail, tail_lines, d);
}
