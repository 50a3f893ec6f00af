/* Hashing against known vectors, base64, Ed25519 sign/verify with PEM and
 * raw trusted keys, and the byte ring that feeds hash and unpack threads. */
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/bytering.h"
#include "core/base/digest.h"
#include "core/base/util.h"
#include "tests/unit/t.h"

static char tmp[64];

static const char *hex_of(const char *type, const char *msg)
{
	static char hex[HASH_HEX_MAX];
	struct hash *h = hash_new(type);
	hash_update(h, msg, strlen(msg));
	hash_final(h, NULL, hex);
	return hex;
}

static void test_hash_vectors(void)
{
	CHECK_STR(hex_of("sha256", "abc"),
		  "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK_STR(hex_of("sha1", "abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
	CHECK_STR(hex_of("md5", ""), "d41d8cd98f00b204e9800998ecf8427e");
	CHECK(strlen(hex_of("sha384", "abc")) == 96);
	CHECK(strlen(hex_of("sha512", "abc")) == 128);
	CHECK(!hash_known("crc32") && !hash_known(NULL) && hash_known("sha512"));
	CHECK(hash_new("sha3") == NULL);
	CHECK(hash_hex_equal("ABCdef", "abcDEF") && !hash_hex_equal("ab", "abc"));
	_cleanup_free_ char *f = xasprintf("%s/abc", tmp);
	struct diag d;
	char hex[HASH_HEX_MAX];
	CHECK(write_file_atomic(f, "abc", 3, 0644, &d) == 0);
	CHECK(hash_file(f, "sha256", NULL, hex, &d) == 0);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	CHECK(hash_file("/nonexistent", "sha256", NULL, hex, &d) < 0);
}

/* hash_file of sparse files equals the hash of the bytes they read as:
 * holes at the start, between data and to the end; a file of holes only;
 * a pipe (no SEEK_DATA) read as a stream. */
static void sparse_case(const char *name, const long long *at, size_t nat, long long size)
{
	_cleanup_free_ char *f = xasprintf("%s/%s", tmp, name);
	_cleanup_close_ int fd = open(f, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0 && ftruncate(fd, size) == 0);
	unsigned char *all = xcalloc(1, (size_t)size);
	for (size_t i = 0; i < nat; i++) {
		char blk[5000];
		memset(blk, 'a' + (int)i, sizeof(blk));
		CHECK(pwrite(fd, blk, sizeof(blk), at[i]) == (ssize_t)sizeof(blk));
		memcpy(all + at[i], blk, sizeof(blk));
	}
	char want[HASH_HEX_MAX], got[HASH_HEX_MAX];
	struct hash *h = hash_new("sha256");
	hash_update(h, all, (size_t)size);
	hash_final(h, NULL, want);
	struct diag d;
	CHECK(hash_file(f, "sha256", NULL, got, &d) == 0);
	CHECK_STR(got, want);
	free(all);
}

static void test_hash_sparse(void)
{
	const long long mid[] = {3 << 20, 7 << 20};
	sparse_case("mid", mid, 2, 10 << 20);
	const long long ends[] = {0, (10 << 20) - 5000};
	sparse_case("ends", ends, 2, 10 << 20);
	sparse_case("holes", NULL, 0, 4 << 20);
	const long long odd[] = {12345};
	sparse_case("odd", odd, 1, 1234567);
	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "abc", 3) == 3);
	close(p[1]);
	_cleanup_free_ char *path = xasprintf("/proc/self/fd/%d", p[0]);
	char hex[HASH_HEX_MAX];
	struct diag d;
	CHECK(hash_file(path, "sha256", NULL, hex, &d) == 0);
	CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	close(p[0]);
}

static void test_base64(void)
{
	unsigned char *out = NULL;
	size_t n = 0;
	_cleanup_free_ char *s = b64_encode((const unsigned char *)"hello!?", 7);
	CHECK_STR(s, "aGVsbG8hPw==");
	CHECK(b64_decode("aGVsbG8hPw==\n", &out, &n) == 0 && n == 7 && memcmp(out, "hello!?", 7) == 0);
	free(out);
	CHECK(b64_decode("not base64!", &out, &n) < 0);
	CHECK(b64_decode("", &out, &n) < 0);
}

/* A fresh key pair: the private key as PEM in tmp/name.key, the public one in
 * keys/name.pub as PEM or as raw base64. */
static void make_key(const char *name, bool raw_pub)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	_cleanup_free_ char *priv = xasprintf("%s/%s.key", tmp, name);
	_cleanup_free_ char *pub = xasprintf("%s/keys/%s.pub", tmp, name);
	FILE *f = fopen(priv, "w");
	PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	f = fopen(pub, "w");
	if (raw_pub) {
		unsigned char raw[32];
		size_t n = sizeof(raw);
		EVP_PKEY_get_raw_public_key(k, raw, &n);
		char *b = b64_encode(raw, n);
		fprintf(f, "%s\n", b);
		free(b);
	} else {
		PEM_write_PUBKEY(f, k);
	}
	fclose(f);
	EVP_PKEY_free(k);
}

static int sign_with(const char *name, const char *msg, char **sig)
{
	struct diag d;
	_cleanup_free_ char *priv = xasprintf("%s/%s.key", tmp, name);
	return sig_sign(priv, (const unsigned char *)msg, strlen(msg), sig, &d);
}

static void test_signatures(void)
{
	_cleanup_free_ char *keys = xasprintf("%s/keys", tmp);
	_cleanup_free_ char *sig_a = NULL, *sig_b = NULL, *name = NULL;
	struct diag d;
	const unsigned char *msg = (const unsigned char *)"digest";
	CHECK(mkdir(keys, 0755) == 0);
	make_key("a", false);
	make_key("b", true);
	CHECK(sign_with("a", "digest", &sig_a) == 0);
	CHECK(sign_with("b", "digest", &sig_b) == 0);
	CHECK(sig_verify(keys, msg, 6, sig_a, &name, &d) == 0);
	CHECK_STR(name, "a.pub");
	free(name);
	CHECK(sig_verify(keys, msg, 6, sig_b, &name, &d) == 0);
	CHECK_STR(name, "b.pub");
	free(name);
	CHECK(sig_verify(keys, (const unsigned char *)"digesT", 6, sig_a, &name, &d) < 0);
	CHECK(strstr(d.msg, "does not match any trusted key") != NULL);
	CHECK(sig_verify(keys, msg, 6, "AAAA", &name, &d) < 0);
	CHECK(strstr(d.msg, "not a base64 Ed25519 signature") != NULL);
	_cleanup_free_ char *empty = xasprintf("%s/none", tmp);
	CHECK(sig_verify(empty, msg, 6, sig_a, &name, &d) < 0);
	CHECK(strstr(d.msg, "no trusted keys") != NULL);
	CHECK(sig_sign("/nonexistent.key", msg, 6, &sig_a, &d) < 0);
	CHECK(d.hint[0] != '\0');
}

struct consumer {
	struct ring *r;
	unsigned id;
	uint64_t sum, bytes;
	ssize_t last;
};

static void *consume(void *arg)
{
	struct consumer *c = arg;
	const void *p;
	ssize_t n;
	while ((n = ring_read(c->r, c->id, &p)) > 0) {
		for (ssize_t i = 0; i < n; i++)
			c->sum = c->sum * 31 + ((const unsigned char *)p)[i];
		c->bytes += (uint64_t)n;
	}
	c->last = n;
	return NULL;
}

static void test_ring(void)
{
	struct ring *r = ring_new(4096, 2);
	struct consumer c[2] = {{r, 0, 0, 0, 0}, {r, 1, 0, 0, 0}};
	pthread_t t[2];
	uint64_t want = 0;
	unsigned char chunk[1000];
	for (int i = 0; i < 2; i++)
		pthread_create(&t[i], NULL, consume, &c[i]);
	for (int k = 0; k < 3000; k++) {
		for (size_t i = 0; i < sizeof(chunk); i++) {
			chunk[i] = (unsigned char)(k * 7 + i);
			want = want * 31 + chunk[i];
		}
		CHECK(ring_write(r, chunk, sizeof(chunk)) == 0);
	}
	ring_close(r);
	for (int i = 0; i < 2; i++) {
		pthread_join(t[i], NULL);
		CHECK(c[i].sum == want && c[i].bytes == 3000000 && c[i].last == 0);
	}
	ring_free(r);
	/* A consumer that gives up: the producer's next write fails, nobody hangs. */
	r = ring_new(4096, 1);
	struct consumer late = {r, 0, 0, 0, 0};
	ring_abort(r);
	consume(&late);
	CHECK(late.last == -1);
	CHECK(ring_write(r, chunk, sizeof(chunk)) < 0);
	ring_free(r);
}

int main(void)
{
	snprintf(tmp, sizeof(tmp), "/tmp/corral-digest.XXXXXX");
	if (!mkdtemp(tmp))
		return 1;
	RUN(test_hash_vectors);
	RUN(test_hash_sparse);
	RUN(test_base64);
	RUN(test_signatures);
	RUN(test_ring);
	struct diag d;
	rm_rf(tmp, &d);
	return T_END();
}
