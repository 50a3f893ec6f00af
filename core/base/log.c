#include "core/base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/base/event.h"
#include "core/base/strv.h"
#include "core/base/util.h"

static struct log_opts opts;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static struct progress *shown; /* the bar currently on screen, cleared before any line */

struct progress {
	char label[128];
	uint64_t total, done, start_ms, drawn_ms, event_ms;
	/* timers only: the thread redrawing the elapsed time */
	pthread_t ticker;
	bool ticking, stop;
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

void log_setup(const struct log_opts *o) { opts = *o; }
const struct log_opts *log_opts(void) { return &opts; }

static const char *col(const char *code) { return opts.color ? code : ""; }

static void clear_bar(void)
{
	if (shown)
		fputs("\r\033[K", stderr);
}

/* The calling thread's secrets, longest first: a secret holding a shorter
 * one is masked whole. */
static _Thread_local struct strv secrets;

static int longest_first(const void *a, const void *b)
{
	size_t la = strlen(*(char *const *)a), lb = strlen(*(char *const *)b);
	return la < lb ? 1 : la > lb ? -1 : 0;
}

void log_secrets_set(const char *const *v, size_t n)
{
	log_secrets_clear();
	for (size_t i = 0; i < n; i++)
		for (const char *p = v[i]; p && *p;) {
			size_t len = strcspn(p, "\r\n");
			if (len)
				strv_take(&secrets, xstrndup(p, len));
			p += len + (p[len] != '\0');
		}
	if (secrets.n)
		qsort(secrets.v, secrets.n, sizeof(*secrets.v), longest_first);
}

void log_secrets_clear(void)
{
	strv_free(&secrets);
}

static char *mask(char *s, const char *secret)
{
	const char *p = s, *hit;
	struct buf out = {0};
	if (!strstr(s, secret))
		return s;
	while ((hit = strstr(p, secret))) {
		buf_add(&out, p, (size_t)(hit - p));
		buf_puts(&out, "***");
		p = hit + strlen(secret);
	}
	buf_puts(&out, p);
	free(s);
	return out.s;
}

char *log_redact(const char *s)
{
	char *r = xstrdup(s);
	for (size_t i = 0; i < secrets.n; i++)
		r = mask(r, secrets.v[i]);
	return r;
}

static void vline(const char *tag, const char *colour, const char *fmt, va_list ap)
{
	char *msg = NULL;
	if (vasprintf(&msg, fmt, ap) < 0)
		abort();
	_cleanup_free_ char *text = log_redact(msg);
	free(msg);
	pthread_mutex_lock(&out_lock);
	clear_bar();
	if (tag)
		fprintf(stderr, "%s%s%s", col(colour), tag, col("\033[0m"));
	fputs(text, stderr);
	fputc('\n', stderr);
	fflush(stderr);
	pthread_mutex_unlock(&out_lock);
}

void log_debug(const char *fmt, ...)
{
	if (!opts.verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	vline("debug: ", "\033[2m", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline(NULL, "", fmt, ap);
	va_end(ap);
}

void log_warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vline("warning: ", "\033[33m", fmt, ap);
	va_end(ap);
}

void log_machine(const char *machine, const char *fmt, ...)
{
	char tag[256];
	snprintf(tag, sizeof(tag), "%s: ", machine);
	va_list ap;
	va_start(ap, fmt);
	vline(tag, "\033[1;36m", fmt, ap);
	va_end(ap);
}

void log_stream(const char *prefix, const char *line, bool is_stderr)
{
	_cleanup_free_ char *text = log_redact(line);
	pthread_mutex_lock(&out_lock);
	clear_bar();
	FILE *f = opts.json ? stderr : stdout;
	if (prefix)
		fprintf(f, "%s%s |%s ", col(is_stderr ? "\033[33m" : "\033[2m"), prefix, col("\033[0m"));
	fputs(text, f);
	fputc('\n', f);
	fflush(f);
	pthread_mutex_unlock(&out_lock);
}

void human_bytes(char *out, size_t n, double v)
{
	const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	snprintf(out, n, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void draw(struct progress *p)
{
	char done[32], rate[32] = "", eta[32] = "";
	double secs = (double)(now_ms() - p->start_ms) / 1000.0;
	human_bytes(done, sizeof(done), (double)p->done);
	if (secs > 0.2) {
		double r = (double)p->done / secs;
		human_bytes(rate, sizeof(rate), r);
		strcat(rate, "/s");
		if (p->total > p->done && r > 0)
			snprintf(eta, sizeof(eta), "ETA %.0fs", (double)(p->total - p->done) / r);
	}
	if (p->total) {
		int width = 30, fill = (int)((double)width * (double)p->done / (double)p->total);
		char bar[31];
		memset(bar, '#', (size_t)fill);
		memset(bar + fill, '-', (size_t)(width - fill));
		bar[width] = '\0';
		fprintf(stderr, "\r\033[K%s [%s] %3.0f%% %s %s %s", p->label, bar,
			100.0 * (double)p->done / (double)p->total, done, rate, eta);
	} else {
		fprintf(stderr, "\r\033[K%s %s %s", p->label, done, rate);
	}
	fflush(stderr);
	shown = p;
}

/* A download event (done so far of total), at most every half second. */
static void progress_event(struct progress *p)
{
	p->event_ms = now_ms();
	event_emit(&(struct corral_event){.kind = EV_DOWNLOAD, .name = p->label,
					  .exit_status = -1, .done = p->done, .total = p->total});
}

struct progress *progress_start(const char *label, uint64_t total)
{
	struct progress *p = xcalloc(1, sizeof(*p));
	snprintf(p->label, sizeof(p->label), "%s", label);
	p->total = total;
	p->start_ms = now_ms();
	if (!opts.tty)
		log_info("%s ...", label);
	progress_event(p);
	return p;
}

void progress_set(struct progress *p, uint64_t done)
{
	p->done = done;
	if (now_ms() - p->event_ms >= 500)
		progress_event(p);
	if (!opts.tty)
		return;
	uint64_t t = now_ms();
	if (t - p->drawn_ms < 100)
		return;
	p->drawn_ms = t;
	pthread_mutex_lock(&out_lock);
	draw(p);
	pthread_mutex_unlock(&out_lock);
}

void progress_end(struct progress *p, bool ok)
{
	char done[32];
	human_bytes(done, sizeof(done), (double)p->done);
	double secs = (double)(now_ms() - p->start_ms) / 1000.0;
	pthread_mutex_lock(&out_lock);
	clear_bar();
	if (shown == p)
		shown = NULL;
	pthread_mutex_unlock(&out_lock);
	log_info("%s %s (%s in %.1fs)", p->label, ok ? "done" : "failed", done, secs);
	event_emit(&(struct corral_event){.kind = EV_DOWNLOAD, .phase = EV_END, .name = p->label,
					  .status = ok ? EV_OK : EV_FAILED, .exit_status = -1,
					  .ms = now_ms() - p->start_ms, .done = p->done,
					  .total = p->total});
	free(p);
}

static void *tick(void *arg)
{
	struct progress *p = arg;
	pthread_mutex_lock(&p->mu);
	while (!p->stop) {
		uint64_t ms = now_ms() - p->start_ms;
		if (ms >= 1000) {
			pthread_mutex_lock(&out_lock);
			fprintf(stderr, "\r\033[K%s %llus", p->label, (unsigned long long)(ms / 1000));
			fflush(stderr);
			shown = p;
			pthread_mutex_unlock(&out_lock);
		}
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 250 * 1000000L;
		until.tv_sec += until.tv_nsec / 1000000000L;
		until.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&p->cv, &p->mu, &until);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct progress *progress_timer_start(const char *label)
{
	struct progress *p = xcalloc(1, sizeof(*p));
	snprintf(p->label, sizeof(p->label), "%s", label);
	p->start_ms = now_ms();
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->ticking = opts.tty && pthread_create(&p->ticker, NULL, tick, p) == 0;
	return p;
}

void progress_timer_end(struct progress *p)
{
	if (p->ticking) {
		pthread_mutex_lock(&p->mu);
		p->stop = true;
		pthread_cond_signal(&p->cv);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->ticker, NULL);
	}
	pthread_mutex_lock(&out_lock);
	if (shown == p) {
		clear_bar();
		shown = NULL;
	}
	pthread_mutex_unlock(&out_lock);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}
