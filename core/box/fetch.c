/* One pass over the box's bytes: the main thread downloads (or reads the
 * local file) into a ring; a hash thread and an unpack thread consume it at
 * the same time. Only after the stream ends are checksum and signature
 * known, so a failure then removes the already unpacked directory. */
#include "core/box/fetch.h"

#include <glob.h>
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/bytering.h"
#include "core/base/digest.h"
#include "core/box/download.h"
#include "core/box/guard.h"
#include "core/base/log.h"
#include "core/box/unpack.h"
#include "core/base/util.h"

#define STREAM_RING (16u << 20)
#define CHUNK (1u << 20)
enum { HASH_CONSUMER, UNPACK_CONSUMER };

struct pipeline {
	const struct boxfetch_opts *o;
	const char *src, *dest;
	struct ring *ring;
	uint64_t fed; /* bytes given to the ring */
	int part_fd;  /* the resumable download; -1 for a local file */
	struct progress *prog;
	bool restart;   /* the server sent everything again after bytes were used */
	bool bad_bytes; /* the bytes themselves were refused: never resume from them */
	/* the hash thread's results */
	unsigned char sha256[HASH_MAX];
	char sha256_hex[HASH_HEX_MAX], other_hex[HASH_HEX_MAX];
	bool hashed;
	/* the unpack thread's */
	int unpack_rc;
	struct diag unpack_d;
	struct unpack_stats unpack_st;
	_Atomic uint64_t total; /* the archive's size, once known */
};

static const struct {
	size_t hex_len;
	const char *type;
} checksum_lengths[] = {{32, "md5"}, {40, "sha1"}, {64, "sha256"}, {96, "sha384"}, {128, "sha512"}};

/* The checksum type, given or guessed from the digest's length. */
static const char *checksum_type(const struct boxfetch_opts *o)
{
	if (o->checksum_type && *o->checksum_type)
		return o->checksum_type;
	for (size_t i = 0; i < sizeof(checksum_lengths) / sizeof(checksum_lengths[0]); i++)
		if (strlen(o->checksum) == checksum_lengths[i].hex_len)
			return checksum_lengths[i].type;
	return "?";
}

const char *boxfetch_signature_policy(void)
{
	const char *p = getenv("CORRAL_VERIFY_SIGNATURES");
	return p && *p ? p : "if-present";
}

/* Everything that can be refused before a byte is fetched. */
static int check_opts(const struct boxfetch_opts *o, const char *dest, struct diag *d)
{
	const char *policy = boxfetch_signature_policy();
	if (o->checksum && !hash_known(checksum_type(o))) {
		diag_fail(d, "unknown checksum type `%s`", checksum_type(o));
		return diag_hint(d, "use one of sha256, sha384, sha512, sha1, md5");
	}
	if (strcmp(policy, "required") != 0 && strcmp(policy, "if-present") != 0 &&
	    strcmp(policy, "off") != 0) {
		diag_fail(d, "CORRAL_VERIFY_SIGNATURES=%s is not a policy", policy);
		return diag_hint(d, "use required, if-present or off");
	}
	if (strcmp(policy, "required") == 0 && !o->signature &&
	    o->vouch == BOXFETCH_BY_SIGNATURE) {
		diag_fail(d, "the box has no signature and CORRAL_VERIFY_SIGNATURES=required");
		return diag_hint(d, "ask the publisher for a signed box, or give its signature");
	}
	if (path_exists(dest))
		return diag_fail(d, "%s already exists", dest);
	struct box_limits lim; /* a typo in a limit fails before the download */
	return box_limits_get(&lim, d);
}

static void *hash_thread(void *arg)
{
	struct pipeline *p = arg;
	const char *type = p->o->checksum ? checksum_type(p->o) : NULL;
	struct hash *sha = hash_new("sha256");
	struct hash *other = type && strcmp(type, "sha256") != 0 ? hash_new(type) : NULL;
	const void *buf;
	ssize_t n;
	while ((n = ring_read(p->ring, HASH_CONSUMER, &buf)) > 0) {
		hash_update(sha, buf, (size_t)n);
		if (other)
			hash_update(other, buf, (size_t)n);
	}
	p->hashed = n == 0;
	hash_final(sha, p->sha256, p->sha256_hex);
	if (other)
		hash_final(other, NULL, p->other_hex);
	else
		memcpy(p->other_hex, p->sha256_hex, sizeof(p->other_hex));
	return NULL;
}

static ssize_t unpack_read(void *ctx, const void **buf)
{
	struct pipeline *p = ctx;
	return ring_read(p->ring, UNPACK_CONSUMER, buf);
}

static void *unpack_thread(void *arg)
{
	struct pipeline *p = arg;
	struct unpack_opts uo = {.compressed = &p->total, .private_store = p->o->private_store,
				 .layer = p->o->layer, .source = p->src};
	p->unpack_rc = unpack_stream(unpack_read, p, p->dest, &uo, &p->unpack_st, &p->unpack_d);
	if (p->unpack_rc < 0)
		ring_abort(p->ring); /* stop the download: the box is unusable */
	else
		ring_detach(p->ring, UNPACK_CONSUMER); /* bytes after the archive's end */
	return NULL;
}

/* A blob longer or shorter than its descriptor says is refused. */
static int size_fail(struct pipeline *p, uint64_t got, struct diag *d)
{
	p->bad_bytes = true;
	diag_fail(d, "size mismatch for %s: the descriptor says %llu bytes, got %s%llu",
		  p->o->label ? p->o->label : p->src, (unsigned long long)p->o->size,
		  got > p->o->size ? "at least " : "", (unsigned long long)got);
	return diag_hint(d, "the registry or the image is damaged; nothing was installed");
}

static int feed(struct pipeline *p, const void *buf, size_t n, struct diag *d)
{
	if (p->o->size && p->fed + n > p->o->size)
		return size_fail(p, p->fed + n, d);
	if (ring_write(p->ring, buf, n) < 0)
		return diag_code(d, DIAG_STOPPED, "stopped"); /* a consumer gave up first */
	p->fed += n;
	progress_set(p->prog, p->fed);
	return 0;
}

/* The stream after a resume begins with the partial file's bytes. */
static int replay_partial(struct pipeline *p, uint64_t upto, struct diag *d)
{
	_cleanup_free_ char *buf = xmalloc(CHUNK);
	while (p->fed < upto) {
		size_t want = upto - p->fed < CHUNK ? (size_t)(upto - p->fed) : CHUNK;
		ssize_t n = pread(p->part_fd, buf, want, (off_t)p->fed);
		if (n <= 0)
			return diag_errno(d, "read the partial download");
		if (feed(p, buf, (size_t)n, d) < 0)
			return -1;
	}
	return 0;
}

/* What the partial download still adds to the file system the box is
 * unpacked on, when it is on the same one. */
static uint64_t part_to_come(const struct pipeline *p, uint64_t total, bool resumed)
{
	struct stat part, dest;
	if (p->part_fd < 0 || fstat(p->part_fd, &part) < 0 || stat(p->dest, &dest) < 0 ||
	    part.st_dev != dest.st_dev)
		return 0;
	uint64_t have = resumed ? (uint64_t)part.st_size : 0;
	return total > have ? total - have : 0;
}

/* The archive's size is known: the unpacked box is at least as large, so
 * a file system with less room refuses it before a byte is fetched. */
static int know_total(struct pipeline *p, uint64_t total, bool resumed, struct diag *d)
{
	atomic_store(&p->total, total);
	if (p->o->size && total != p->o->size)
		return size_fail(p, total, d);
	if (room_check(p->dest, total + part_to_come(p, total, resumed), d) < 0) {
		p->bad_bytes = true; /* the partial file takes space too; a resume would not help */
		return diag_wrap(d, "%s is %llu MiB compressed", p->o->label ? p->o->label : p->src,
				 (unsigned long long)((total + (1u << 20) - 1) >> 20));
	}
	return 0;
}

static int dl_start(void *ctx, bool resumed, uint64_t total, struct diag *d)
{
	struct pipeline *p = ctx;
	if (!p->prog)
		p->prog = progress_start(p->o->label ? p->o->label : p->src, total);
	if (total && know_total(p, total, resumed, d) < 0)
		return -1;
	if (resumed) {
		struct stat st;
		if (fstat(p->part_fd, &st) < 0)
			return diag_errno(d, "stat the partial download");
		return replay_partial(p, (uint64_t)st.st_size, d);
	}
	if (p->fed > 0) {
		p->restart = true;
		return diag_fail(d, "the server does not resume downloads; starting over");
	}
	if (ftruncate(p->part_fd, 0) < 0)
		return diag_errno(d, "truncate the partial download");
	return 0;
}

static int dl_write(void *ctx, const void *buf, size_t n, struct diag *d)
{
	struct pipeline *p = ctx;
	if (pwrite(p->part_fd, buf, n, (off_t)p->fed) != (ssize_t)n)
		return diag_errno(d, "write the partial download");
	return feed(p, buf, n, d);
}

static char *partial_path(const char *url)
{
	struct hash *h = hash_new("sha256");
	char hex[HASH_HEX_MAX];
	hash_update(h, url, strlen(url));
	hash_final(h, NULL, hex);
	return xasprintf("%s/cache/%s.part", corral_home(), hex);
}

static int open_partial(const char *part, struct diag *d)
{
	_cleanup_free_ char *dir = path_dirname(part);
	if (mkdir_p(dir, 0700, d) < 0)
		return -1;
	int fd = open(part, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return diag_errno(d, "open %s", part);
	/* Two processes appending to one partial file would corrupt it. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		close(fd);
		diag_fail(d, "another corral process is downloading the same URL (%s is locked)", part);
		return diag_hint(d, "wait for it to finish, then try again");
	}
	return fd;
}

static int produce_remote(struct pipeline *p, struct diag *d)
{
	struct stat st;
	if (fstat(p->part_fd, &st) < 0)
		return diag_errno(d, "stat the partial download");
	struct download dl = {
		.url = p->src, .insecure = p->o->insecure, .token_url = p->o->token_url,
		.offset = (uint64_t)st.st_size, .start = dl_start, .write = dl_write, .ctx = p,
		.headers = p->o->headers, .auth = p->o->auth, .auth_url = p->o->auth_url,
	};
	if (dl.offset)
		log_info("resuming the download of %s at %llu bytes", p->src, (unsigned long long)dl.offset);
	return download_run(&dl, d);
}

static const char *local_path(const char *src)
{
	if (str_starts(src, "file://localhost/"))
		return src + strlen("file://localhost");
	return str_starts(src, "file://") ? src + strlen("file://") : src;
}

static int produce_local(struct pipeline *p, struct diag *d)
{
	_cleanup_close_ int fd = open(local_path(p->src), O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return diag_errno(d, "box file %s", local_path(p->src));
	p->prog = progress_start(p->o->label ? p->o->label : p->src, (uint64_t)st.st_size);
	if (know_total(p, (uint64_t)st.st_size, false, d) < 0)
		return -1;
	_cleanup_free_ char *buf = xmalloc(CHUNK);
	for (;;) {
		ssize_t n = read(fd, buf, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return diag_errno(d, "read %s", local_path(p->src));
		if (n == 0)
			return 0;
		if (feed(p, buf, (size_t)n, d) < 0)
			return -1;
	}
}

/* Runs producer, hash and unpack over the stream; the first real failure wins. */
static int run_pipeline(struct pipeline *p, struct diag *d)
{
	pthread_t hasher, unpacker;
	if (mkdir(p->dest, 0755) < 0)
		return diag_errno(d, "create %s", p->dest);
	p->ring = ring_new(STREAM_RING, 2);
	if (pthread_create(&hasher, NULL, hash_thread, p) != 0 ||
	    pthread_create(&unpacker, NULL, unpack_thread, p) != 0)
		abort(); /* only when out of memory or threads */
	int rc = p->part_fd >= 0 ? produce_remote(p, d) : produce_local(p, d);
	if (rc == 0 && p->o->size && p->fed != p->o->size)
		rc = size_fail(p, p->fed, d);
	if (rc == 0)
		ring_close(p->ring);
	else
		ring_abort(p->ring);
	pthread_join(hasher, NULL);
	pthread_join(unpacker, NULL);
	ring_free(p->ring);
	p->ring = NULL;
	if (p->unpack_rc < 0 && (rc == 0 || d->code == DIAG_STOPPED)) {
		*d = p->unpack_d;
		p->bad_bytes = true;
		return -1;
	}
	return rc;
}

static int check_checksum(struct pipeline *p, struct diag *d)
{
	const struct boxfetch_opts *o = p->o;
	if (!o->checksum || hash_hex_equal(o->checksum, p->other_hex))
		return 0;
	diag_code(d, DIAG_CHECKSUM_MISMATCH, "checksum mismatch for %s: expected %s %s, got %s",
		  p->src, checksum_type(o), o->checksum, p->other_hex);
	return diag_hint(d, "the download was damaged or the box changed on the server; "
			    "nothing was installed, and running the command again downloads it afresh");
}

/* Whether the user has said whose signatures they trust. */
static bool have_trusted_keys(const char *dir)
{
	glob_t g;
	_cleanup_free_ char *pat = path_join(dir, "*.pub");
	bool any = glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0;
	globfree(&g);
	return any;
}

/* Whether a digest vouched for by someone other than a box signature counts
 * as a checked signature (corral.lock's and box list's `signature_checked`). */
static const bool vouch_signed[] = {
	[BOXFETCH_BY_CHECKSUM_FILE] = true, /* the checksum file's OpenPGP signature */
	[BOXFETCH_BY_MANIFEST] = false,     /* an image layer: its manifest named it */
};

static int check_signature(struct pipeline *p, struct boxfetch_result *r, struct diag *d)
{
	if (strcmp(boxfetch_signature_policy(), "off") == 0)
		return 0;
	if (p->o->vouch != BOXFETCH_BY_SIGNATURE) {
		r->signature_checked = vouch_signed[p->o->vouch];
		return 0;
	}
	if (!p->o->signature) {
		_cleanup_free_ char *keys = path_join(corral_home(), "trusted-keys");
		if (have_trusted_keys(keys))
			log_warn("%s has no signature, so your trusted keys vouch for nothing here "
				 "(CORRAL_VERIFY_SIGNATURES=required refuses such boxes)", p->src);
		return 0;
	}
	_cleanup_free_ char *keys = path_join(corral_home(), "trusted-keys");
	_cleanup_free_ char *key = NULL;
	if (sig_verify(keys, p->sha256, 32, p->o->signature, &key, d) < 0)
		return diag_wrap(d, "signature of %s", p->src);
	log_debug("%s: signature verified with trusted key %s", p->src, key);
	r->signature_checked = true;
	_cleanup_free_ char *base = xstrdup(strrchr(key, '/') ? strrchr(key, '/') + 1 : key);
	if (str_ends(base, ".pub"))
		base[strlen(base) - 4] = '\0';
	snprintf(r->signer, sizeof(r->signer), "%s", base);
	return 0;
}

int boxfetch(const char *src, const char *dest_dir, const struct boxfetch_opts *o,
	     struct boxfetch_result *r, struct diag *d)
{
	if (check_opts(o, dest_dir, d) < 0)
		return -1;
	_cleanup_free_ char *parent = path_dirname(dest_dir);
	_cleanup_free_ char *part = download_is_remote(src) ? partial_path(src) : NULL;
	if (mkdir_p(parent, 0755, d) < 0)
		return -1;
	struct pipeline p = {.o = o, .src = src, .dest = dest_dir, .part_fd = -1};
	if (part && (p.part_fd = open_partial(part, d)) < 0)
		return -1;
	int rc;
	for (int round = 0;; round++) {
		rc = run_pipeline(&p, d);
		if (rc == 0 || !p.restart || round == 1)
			break;
		struct diag ignore;
		rm_rf(dest_dir, &ignore);
		p.fed = 0;
		p.restart = false;
		if (ftruncate(p.part_fd, 0) < 0)
			break;
	}
	bool keep_partial = rc < 0 && !p.bad_bytes; /* a cut download, for the next try */
	if (rc == 0)
		rc = check_checksum(&p, d);
	memset(r, 0, sizeof(*r));
	if (rc == 0)
		rc = check_signature(&p, r, d);
	if (p.prog)
		progress_end(p.prog, rc == 0);
	if (p.part_fd >= 0)
		close(p.part_fd);
	if (part && !keep_partial)
		unlink(part);
	if (rc < 0) {
		struct diag ignore;
		rm_rf(dest_dir, &ignore);
		return -1;
	}
	memcpy(r->sha256, p.sha256_hex, sizeof(r->sha256));
	r->bytes = p.fed;
	r->stripped = p.unpack_st.stripped;
	return 0;
}

struct text_sink {
	struct buf b;
	size_t max;
	const char *url;
};

static int text_start(void *ctx, bool resumed, uint64_t total, struct diag *d)
{
	struct text_sink *t = ctx;
	(void)resumed;
	t->b.len = 0;
	buf_add(&t->b, "", 0);
	if (total > t->max)
		return diag_fail(d, "%s is too large (%llu bytes; the limit is %zu)", t->url,
				 (unsigned long long)total, t->max);
	return 0;
}

static int text_write(void *ctx, const void *p, size_t n, struct diag *d)
{
	struct text_sink *t = ctx;
	if (t->b.len + n > t->max)
		return diag_fail(d, "%s is too large (the limit is %zu bytes)", t->url, t->max);
	buf_add(&t->b, p, n);
	return 0;
}

int fetch_text(const char *url, size_t max, const struct boxfetch_opts *o, char **data,
	       size_t *len, struct diag *d)
{
	if (!download_is_remote(url))
		return read_file(local_path(url), max, data, len, d);
	struct text_sink t = {.max = max, .url = url};
	struct download dl = {.url = url, .insecure = o->insecure, .token_url = o->token_url,
			      .start = text_start, .write = text_write, .ctx = &t,
			      .headers = o->headers, .auth = o->auth, .auth_url = o->auth_url};
	if (download_run(&dl, d) < 0) {
		buf_free(&t.b);
		return -1;
	}
	*data = t.b.s;
	if (len)
		*len = t.b.len;
	return 0;
}

int box_sign(const char *key_path, const char *box_path, char **sig_b64, struct diag *d)
{
	unsigned char sha[HASH_MAX];
	if (hash_file(box_path, "sha256", sha, NULL, d) < 0)
		return -1;
	return sig_sign(key_path, sha, 32, sig_b64, d);
}

int boxfetch_verify_dir(const char *dir, struct diag_list *problems, struct diag *d)
{
	return unpack_verify(dir, problems, d);
}
