#include "core/base/digest.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/util.h"

#define CHUNK (1 << 20) /* bytes read at a time */

struct hash {
	EVP_MD_CTX *ctx;
};

static const struct {
	const char *name;
	const EVP_MD *(*md)(void);
} hash_types[] = {
	{"sha256", EVP_sha256}, {"sha384", EVP_sha384}, {"sha512", EVP_sha512},
	{"sha1", EVP_sha1},     {"md5", EVP_md5},
};

static const EVP_MD *hash_md(const char *type)
{
	for (size_t i = 0; type && i < sizeof(hash_types) / sizeof(hash_types[0]); i++)
		if (strcmp(hash_types[i].name, type) == 0)
			return hash_types[i].md();
	return NULL;
}

bool hash_known(const char *type) { return hash_md(type) != NULL; }

struct hash *hash_new(const char *type)
{
	const EVP_MD *md = hash_md(type);
	if (!md)
		return NULL;
	struct hash *h = xcalloc(1, sizeof(*h));
	h->ctx = EVP_MD_CTX_new();
	if (!h->ctx || !EVP_DigestInit_ex(h->ctx, md, NULL))
		abort(); /* only on allocation failure */
	return h;
}

void hash_update(struct hash *h, const void *p, size_t n) { EVP_DigestUpdate(h->ctx, p, n); }

void hash_zeros(struct hash *h, long long n)
{
	static const unsigned char zeros[1 << 16];
	for (; n > 0; n -= (long long)sizeof(zeros))
		hash_update(h, zeros, n < (long long)sizeof(zeros) ? (size_t)n : sizeof(zeros));
}

size_t hash_final(struct hash *h, unsigned char *raw, char *hex)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0;
	EVP_DigestFinal_ex(h->ctx, md, &n);
	hash_free(h);
	if (raw)
		memcpy(raw, md, n);
	for (unsigned i = 0; hex && i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	return n;
}

void hash_str(const char *s, unsigned char *raw, char *hex)
{
	struct hash *h = hash_new("sha256");
	hash_update(h, s, strlen(s));
	hash_final(h, raw, hex);
}

void hash_free(struct hash *h)
{
	if (!h)
		return;
	EVP_MD_CTX_free(h->ctx);
	free(h);
}

/* Hashes [from, to) of fd, read in chunks; -1 with errno. */
static int hash_range(struct hash *h, int fd, char *chunk, off_t from, off_t to)
{
	while (from < to) {
		size_t want = to - from < CHUNK ? (size_t)(to - from) : CHUNK;
		ssize_t n = pread(fd, chunk, want, from);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			errno = n < 0 ? errno : EIO; /* shorter than fstat said */
			return -1;
		}
		hash_update(h, chunk, (size_t)n);
		from += n;
	}
	return 0;
}

/* Data segments read, holes hashed as zeros (SEEK_DATA/SEEK_HOLE); a file
 * system without them reports the whole file as data. */
static int hash_sparse(struct hash *h, int fd, off_t size, char *chunk)
{
	off_t pos = 0;
	while (pos < size) {
		off_t data = lseek(fd, pos, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			data = size; /* a hole to the end */
		else if (data < 0)
			return -1;
		hash_zeros(h, data - pos);
		if (data >= size)
			break;
		off_t hole = lseek(fd, data, SEEK_HOLE);
		if (hole < 0 || hole > size)
			hole = size;
		if (hash_range(h, fd, chunk, data, hole) < 0)
			return -1;
		pos = hole;
	}
	return 0;
}

/* A stream (not a regular file): read to its end. */
static int hash_stream(struct hash *h, int fd, char *chunk)
{
	for (;;) {
		ssize_t n = read(fd, chunk, CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (int)n;
		hash_update(h, chunk, (size_t)n);
	}
}

int hash_file(const char *path, const char *type, unsigned char *raw, char *hex,
	      struct diag *d)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return diag_errno(d, "open %s", path);
	struct hash *h = hash_new(type);
	if (!h)
		return diag_fail(d, "unknown checksum type `%s`", type);
	struct stat st;
	_cleanup_free_ char *chunk = xmalloc(CHUNK);
	int rc = fstat(fd, &st) < 0 ? -1
		 : S_ISREG(st.st_mode) ? hash_sparse(h, fd, st.st_size, chunk)
				       : hash_stream(h, fd, chunk);
	if (rc < 0) {
		hash_free(h);
		return diag_errno(d, "read %s", path);
	}
	hash_final(h, raw, hex);
	return 0;
}

bool hash_hex_equal(const char *a, const char *b) { return strcasecmp(a, b) == 0; }

char *b64_encode(const unsigned char *p, size_t n)
{
	char *s = xmalloc(4 * ((n + 2) / 3) + 1);
	EVP_EncodeBlock((unsigned char *)s, p, (int)n);
	return s;
}

int b64_decode(const char *s, unsigned char **out, size_t *n)
{
	size_t len = strlen(s);
	while (len && isspace((unsigned char)s[len - 1]))
		len--;
	if (len == 0 || len % 4)
		return -1;
	unsigned char *o = xmalloc(len / 4 * 3 + 1);
	int r = EVP_DecodeBlock(o, (const unsigned char *)s, (int)len);
	if (r < 0) {
		free(o);
		return -1;
	}
	/* DecodeBlock counts the '=' padding as zero bytes. */
	size_t pad = (s[len - 1] == '=') + (s[len - 2] == '=');
	*out = o;
	*n = (size_t)r - pad;
	return 0;
}

static EVP_PKEY *read_pem(const char *path, bool private_key, struct diag *d)
{
	FILE *f = fopen(path, "re");
	if (!f)
		return diag_errno(d, "open %s", path), NULL;
	EVP_PKEY *k = private_key ? PEM_read_PrivateKey(f, NULL, NULL, NULL)
				  : PEM_read_PUBKEY(f, NULL, NULL, NULL);
	fclose(f);
	if (!k)
		return diag_fail(d, "%s is not a PEM %s key", path,
				 private_key ? "private" : "public"), NULL;
	if (EVP_PKEY_get_id(k) != EVP_PKEY_ED25519) {
		EVP_PKEY_free(k);
		return diag_fail(d, "%s is not an Ed25519 key", path), NULL;
	}
	return k;
}

int sig_sign(const char *key_path, const unsigned char *msg, size_t n, char **sig_b64,
	     struct diag *d)
{
	EVP_PKEY *k = read_pem(key_path, true, d);
	if (!k)
		return diag_hint(d, "create one with: openssl genpkey -algorithm ed25519 -out KEY");
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char sig[64];
	size_t len = sizeof(sig);
	int ok = ctx && EVP_DigestSignInit(ctx, NULL, NULL, NULL, k) == 1 &&
		 EVP_DigestSign(ctx, sig, &len, msg, n) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(k);
	if (!ok)
		return diag_fail(d, "signing with %s failed", key_path);
	*sig_b64 = b64_encode(sig, len);
	return 0;
}

/* A trusted key file: PEM, or the raw 32-byte public key in base64. */
static EVP_PKEY *read_public(const char *path, struct diag *d)
{
	_cleanup_free_ char *text = NULL;
	if (read_file(path, 64 * 1024, &text, NULL, d) < 0)
		return NULL;
	if (strstr(text, "-----BEGIN"))
		return read_pem(path, false, d);
	unsigned char *raw = NULL;
	size_t n = 0;
	EVP_PKEY *k = NULL;
	if (b64_decode(text, &raw, &n) == 0 && n == 32)
		k = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw, n);
	free(raw);
	if (!k)
		diag_fail(d, "%s is neither a PEM public key nor a base64 Ed25519 key", path);
	return k;
}

static bool verify_one(EVP_PKEY *k, const unsigned char *msg, size_t n,
		       const unsigned char *sig, size_t sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = ctx && EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, k) == 1 &&
		  EVP_DigestVerify(ctx, sig, sig_len, msg, n) == 1;
	EVP_MD_CTX_free(ctx);
	return ok;
}

/* Visits keys_dir/NAME.pub in name order; stops at the first key that verifies. */
static int verify_keys(const char *keys_dir, const unsigned char *msg, size_t n,
		       const unsigned char *sig, size_t sig_len, char **key_name,
		       size_t *tried, struct diag *d)
{
	struct dirent **ents = NULL;
	int cnt = scandir(keys_dir, &ents, NULL, alphasort);
	if (cnt < 0)
		return errno == ENOENT ? 0 : diag_errno(d, "read %s", keys_dir);
	int rc = 0;
	for (int i = 0; i < cnt; i++) {
		const char *name = ents[i]->d_name;
		if (rc == 0 && !*key_name && str_ends(name, ".pub") && name[0] != '.') {
			_cleanup_free_ char *p = path_join(keys_dir, name);
			EVP_PKEY *k = read_public(p, d);
			if (!k)
				rc = -1;
			else if (verify_one(k, msg, n, sig, sig_len))
				*key_name = xstrdup(name);
			EVP_PKEY_free(k);
			(*tried)++;
		}
		free(ents[i]);
	}
	free(ents);
	return rc;
}

int sig_verify(const char *keys_dir, const unsigned char *msg, size_t n, const char *sig_b64,
	       char **key_name, struct diag *d)
{
	unsigned char *sig = NULL;
	size_t sig_len = 0, tried = 0;
	*key_name = NULL;
	if (b64_decode(sig_b64, &sig, &sig_len) < 0 || sig_len != 64) {
		free(sig);
		return diag_fail(d, "the signature is not a base64 Ed25519 signature (64 bytes)");
	}
	int rc = verify_keys(keys_dir, msg, n, sig, sig_len, key_name, &tried, d);
	free(sig);
	if (rc < 0)
		return -1;
	if (tried == 0) {
		diag_fail(d, "the box is signed but there are no trusted keys in %s", keys_dir);
		return diag_hint(d, "add the publisher's Ed25519 public key there as NAME.pub, "
				    "or set CORRAL_VERIFY_SIGNATURES=off");
	}
	if (!*key_name) {
		diag_fail(d, "the signature does not match any trusted key in %s (%zu tried)",
			  keys_dir, tried);
		return diag_hint(d, "the box was altered or signed by someone else; "
				    "do not use it unless you know why");
	}
	return 0;
}
