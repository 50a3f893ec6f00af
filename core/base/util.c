#include "core/base/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void *oom(void *p)
{
	if (!p) {
		fputs("corral: out of memory\n", stderr);
		abort();
	}
	return p;
}

void *xmalloc(size_t n) { return oom(malloc(n ? n : 1)); }
void *xcalloc(size_t n, size_t size) { return oom(calloc(n ? n : 1, size ? size : 1)); }
void *xrealloc(void *p, size_t n) { return oom(realloc(p, n ? n : 1)); }
char *xstrdup(const char *s) { return s ? oom(strdup(s)) : NULL; }
char *xstrndup(const char *s, size_t n) { return oom(strndup(s, n)); }

char *xasprintf(const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	return oom(r < 0 ? NULL : s);
}

void freep(void *p) { free(*(void **)p); }

void closep(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

bool str_starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

bool str_ends(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

bool str_in_list(const char *s, const char *const *list)
{
	for (; list && *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

size_t str_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return la > lb ? la : lb;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
			size_t best = diag + cost;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

const char *str_suggest(const char *word, const char *const *cands, size_t n)
{
	const char *best = NULL;
	size_t best_d = (size_t)-1, limit = strlen(word) / 3 + 1;
	if (limit > 3)
		limit = 3;
	for (size_t i = 0; i < n; i++) {
		size_t d = str_distance(word, cands[i]);
		if (d < best_d) {
			best_d = d;
			best = cands[i];
		}
	}
	return best_d <= limit ? best : NULL;
}

void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		b->s = xrealloc(b->s, cap);
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

void buf_puts(struct buf *b, const char *s) { buf_add(b, s, strlen(s)); }

void buf_printf(struct buf *b, const char *fmt, ...)
{
	char *s;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	oom(n < 0 ? NULL : s);
	buf_add(b, s, (size_t)n);
	free(s);
}

void buf_free(struct buf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

char *path_join(const char *a, const char *b)
{
	if (b[0] == '/' || !a[0])
		return xstrdup(b);
	return xasprintf("%s%s%s", a, str_ends(a, "/") ? "" : "/", b);
}

char *path_dirname(const char *p)
{
	const char *slash = strrchr(p, '/');
	if (!slash)
		return xstrdup(".");
	if (slash == p)
		return xstrdup("/");
	return xstrndup(p, (size_t)(slash - p));
}

/* Lexical normalisation: "/a/./b/../c" -> "/a/c"; ".." never climbs above
 * the root of an absolute path, and is kept at the start of a relative one. */
static void path_clean(char *p)
{
	bool abs = p[0] == '/';
	char *parts[512];
	size_t n = 0;
	for (char *save = NULL, *t = strtok_r(p, "/", &save); t; t = strtok_r(NULL, "/", &save)) {
		if (strcmp(t, ".") == 0)
			continue;
		if (strcmp(t, "..") == 0 && n > 0 && strcmp(parts[n - 1], "..") != 0) {
			n--;
			continue;
		}
		if (strcmp(t, "..") == 0 && abs)
			continue;
		if (n < 512)
			parts[n++] = t;
	}
	struct buf b = {0};
	if (abs)
		buf_puts(&b, "/");
	for (size_t i = 0; i < n; i++) {
		if (i)
			buf_puts(&b, "/");
		buf_puts(&b, parts[i]);
	}
	if (!b.len)
		buf_puts(&b, ".");
	memcpy(p, b.s, b.len + 1); /* never longer than the input */
	buf_free(&b);
}

char *path_abs(const char *base_dir, const char *p)
{
	char *r;
	if (p[0] == '/') {
		r = xstrdup(p);
	} else if (base_dir) {
		r = path_join(base_dir, p);
	} else {
		char cwd[4096];
		r = path_join(getcwd(cwd, sizeof(cwd)) ? cwd : ".", p);
	}
	path_clean(r);
	return r;
}

bool path_exists(const char *p)
{
	struct stat st;
	return lstat(p, &st) == 0;
}

bool path_is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

int mkdir_p(const char *path, mode_t mode, struct diag *d)
{
	_cleanup_free_ char *p = xstrdup(path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, mode) < 0 && errno != EEXIST)
			return diag_errno(d, "mkdir %s", p);
		*s = '/';
	}
	if (mkdir(p, mode) < 0 && errno != EEXIST)
		return diag_errno(d, "mkdir %s", p);
	return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	int r = flag == FTW_DP ? rmdir(p) : unlink(p);
	return r < 0 && errno != ENOENT ? -1 : 0;
}

int rm_rf(const char *path, struct diag *d)
{
	if (!path_exists(path))
		return 0;
	if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
		return diag_errno(d, "remove %s", path);
	return 0;
}

int read_file(const char *path, size_t max, char **data, size_t *len, struct diag *d)
{
	return read_file_flags(path, 0, max, data, len, d);
}

int read_file_flags(const char *path, int oflags, size_t max, char **data, size_t *len,
		    struct diag *d)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | oflags);
	if (fd < 0 && errno == ELOOP && (oflags & O_NOFOLLOW))
		return diag_fail(d, "%s is a symbolic link; corral does not follow it here", path);
	if (fd < 0)
		return diag_errno(d, "open %s", path);
	return read_fd(fd, path, max, data, len, d);
}

int read_fd(int fd, const char *name, size_t max, char **data, size_t *len, struct diag *d)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return diag_errno(d, "stat %s", name);
	if (S_ISDIR(st.st_mode))
		return diag_fail(d, "%s is a directory, not a file", name);
	if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > max)
		return diag_fail(d, "%s is too large (%lld bytes; the limit is %zu)", name,
				 (long long)st.st_size, max);
	struct buf b = {0};
	char chunk[65536];
	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			buf_free(&b);
			return diag_errno(d, "read %s", name);
		}
		if (n == 0)
			break;
		if (b.len + (size_t)n > max) {
			buf_free(&b);
			return diag_fail(d, "%s is too large (the limit is %zu bytes)", name, max);
		}
		buf_add(&b, chunk, (size_t)n);
	}
	if (!b.s)
		buf_add(&b, "", 0);
	*data = b.s;
	if (len)
		*len = b.len;
	return 0;
}

int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode,
		      struct diag *d)
{
	/* A fresh name, created exclusively: nothing planted at a guessable
	 * temp path is followed or truncated; rename replaces a link at path
	 * rather than writing through it. */
	_cleanup_free_ char *tmp = xasprintf("%s.tmp.XXXXXX", path);
	_cleanup_free_ char *dir = path_dirname(path);
	int fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return diag_errno(d, "create %s", tmp);
	if (fchmod(fd, mode) < 0) {
		diag_errno(d, "chmod %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	if (write_all(fd, data, len) < 0 || fsync(fd) < 0) {
		diag_errno(d, "write %s", tmp);
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		diag_errno(d, "rename %s", path);
		unlink(tmp);
		return -1;
	}
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		fsync(dfd);
	return 0;
}

const char *corral_home(void)
{
	static char home[4096];
	if (home[0])
		return home;
	const char *h = getenv("CORRAL_HOME");
	if (h && h[0]) {
		snprintf(home, sizeof(home), "%s", h);
		return home;
	}
	snprintf(home, sizeof(home), "%s/.corral", user_home());
	return home;
}

const char *user_home(void)
{
	const char *u = getenv("HOME");
	if (u && u[0])
		return u;
	struct passwd *pw = getpwuid(getuid());
	return pw && pw->pw_dir ? pw->pw_dir : "/tmp";
}

uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
