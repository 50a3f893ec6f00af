/* Signature checks through gpgv: the keyring is made from the trusted key
 * files (armored ones decoded here, as gpgv reads binary keyrings only),
 * gpgv runs with its status lines on stdout, and the verdict comes from
 * those lines, never from gpgv's messages. */
#include "core/box/openpgp.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/digest.h"
#include "core/base/log.h"
#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/box/distros.h"
#include "core/host/proc.h"

#define KEY_MAX (4u << 20)
#define ARMOR_BEGIN "-----BEGIN PGP PUBLIC KEY BLOCK-----"

static const char *const key_exts[] = {".asc", ".gpg", ".pgp"};

bool pgp_fpr_normal(const char *in, char out[PGP_FPR_LEN + 1])
{
	size_t n = 0;
	for (const char *p = in; *p; p++) {
		if (*p == ' ')
			continue;
		if (!isxdigit((unsigned char)*p) || n == PGP_FPR_LEN)
			return false;
		out[n++] = (char)toupper((unsigned char)*p);
	}
	out[n] = '\0';
	return n == PGP_FPR_LEN;
}

/* The base64 body of an armored key: after the header lines and the blank
 * line, up to the checksum line ("=XXXX") or the end line. */
static int dearmor(const char *text, unsigned char **out, size_t *n)
{
	const char *p = strstr(text, ARMOR_BEGIN);
	if (!p)
		return -1;
	p = strchr(p, '\n');
	while (p && p[1] && p[1] != '\n' && !(p[1] == '\r' && p[2] == '\n'))
		p = strchr(p + 1, '\n'); /* header lines ("Comment: ...") */
	if (!p || !p[1])
		return -1;
	struct buf b = {0};
	buf_add(&b, "", 0);
	for (p = strchr(p + 1, '\n'); p && p[1] && p[1] != '=' && p[1] != '-'; p = strchr(p + 1, '\n'))
		for (const char *c = p + 1; *c && *c != '\n'; c++)
			if (!isspace((unsigned char)*c))
				buf_add(&b, c, 1);
	int r = b.len ? b64_decode(b.s, out, n) : -1;
	buf_free(&b);
	return r;
}

static bool is_key_file(const char *name)
{
	if (name[0] == '.')
		return false;
	for (size_t i = 0; i < sizeof(key_exts) / sizeof(key_exts[0]); i++)
		if (str_ends(name, key_exts[i]))
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* One key file as a binary keyring in workdir, added to argv. A file that
 * is no OpenPGP key is skipped with a warning: one bad file in the keyring
 * would make gpgv miss the good keys after it. */
static int add_key(const char *path, const char *workdir, struct strv *argv, struct diag *d)
{
	_cleanup_free_ char *text = NULL;
	size_t len;
	if (read_file_flags(path, O_NOFOLLOW, KEY_MAX, &text, &len, d) < 0)
		return -1;
	_cleanup_free_ char *ring = xasprintf("%s/ring-%zu.gpg", workdir, argv->n);
	unsigned char *bin = NULL;
	size_t n = len;
	bool armored = strstr(text, ARMOR_BEGIN) != NULL;
	if (armored ? dearmor(text, &bin, &n) < 0 || n == 0 || !(bin[0] & 0x80)
		    : len == 0 || !((unsigned char)text[0] & 0x80)) {
		free(bin);
		log_warn("%s is not an OpenPGP public key (armored or binary): skipped", path);
		return 0;
	}
	int r = write_file_atomic(ring, armored ? (char *)bin : text, n, 0600, d);
	free(bin);
	if (r == 0) {
		strv_push(argv, "--keyring");
		strv_push(argv, ring);
	}
	return r;
}

static int add_dir(const char *dir, const char *workdir, struct strv *argv, struct diag *d)
{
	DIR *dh = opendir(dir);
	if (!dh)
		return 0; /* no such directory: no keys from there */
	struct strv names = {0};
	for (struct dirent *e; (e = readdir(dh));)
		if (is_key_file(e->d_name))
			strv_push(&names, e->d_name);
	closedir(dh);
	if (names.n)
		qsort(names.v, names.n, sizeof(char *), cmp_str);
	int r = 0;
	for (size_t i = 0; i < names.n && r == 0; i++) {
		_cleanup_free_ char *path = path_join(dir, names.v[i]);
		r = add_key(path, workdir, argv, d);
	}
	strv_free(&names);
	return r;
}

struct verdict {
	char signer[PGP_FPR_LEN + 1], subkey[PGP_FPR_LEN + 1];
	char missing[PGP_FPR_LEN + 1]; /* a key gpgv did not have */
	bool bad, valid;
};

/* "[GNUPG:] VALIDSIG SUBFPR date ts exp ver rsv pk hash class PRIMARYFPR" and friends. */
static void status_line(const char *line, void *arg)
{
	struct verdict *v = arg;
	if (!str_starts(line, "[GNUPG:] "))
		return;
	struct strv w = {0};
	_cleanup_free_ char *copy = xstrdup(line + 9);
	char *save = NULL;
	for (char *t = strtok_r(copy, " ", &save); t; t = strtok_r(NULL, " ", &save))
		strv_push(&w, t);
	const char *kw = w.n ? w.v[0] : "";
	if (strcmp(kw, "VALIDSIG") == 0 && w.n >= 11 && !v->valid) {
		v->valid = pgp_fpr_normal(w.v[10], v->signer) && pgp_fpr_normal(w.v[1], v->subkey);
	} else if (strcmp(kw, "BADSIG") == 0 || strcmp(kw, "EXPKEYSIG") == 0 ||
		   strcmp(kw, "REVKEYSIG") == 0) {
		v->bad = true;
	} else if ((strcmp(kw, "NO_PUBKEY") == 0 || strcmp(kw, "ERRSIG") == 0) && w.n >= 2 &&
		   !v->missing[0]) {
		snprintf(v->missing, sizeof(v->missing), "%s", w.n >= 8 ? w.v[7] : w.v[1]);
	}
	strv_free(&w);
}

static bool pinned(const struct verdict *v, const char *const *keys)
{
	for (size_t i = 0; keys && keys[i]; i++) {
		char want[PGP_FPR_LEN + 1];
		if (pgp_fpr_normal(keys[i], want) &&
		    (strcmp(want, v->signer) == 0 || strcmp(want, v->subkey) == 0))
			return true;
	}
	return !keys;
}

static int judge(const struct pgp_check *c, const struct verdict *v, struct diag *d)
{
	if (v->bad || (!v->valid && !v->missing[0]))
		return diag_code(d, DIAG_SIG_BAD, "the OpenPGP signature %s does not verify%s",
				 c->sig_path, v->bad ? ": the signed text was altered" : "");
	if (!v->valid) {
		diag_code(d, DIAG_SIG_UNKNOWN_KEY, "signed by key %s, which is not trusted",
			  v->missing);
		return diag_hint(d, "put the publisher's public key (armored or binary) in "
				    "%s/trusted-keys/, after checking its fingerprint",
				 corral_home());
	}
	if (!pinned(v, c->keys)) {
		diag_code(d, DIAG_SIG_UNKNOWN_KEY, "signed by key %s, not by the publisher's (%s)",
			  v->signer, c->keys[0]);
		return diag_hint(d, "a trusted key that is not the publisher's does not vouch for it");
	}
	return 0;
}

int pgp_verify(const struct pgp_check *c, char signer[PGP_FPR_LEN + 1], struct diag *d)
{
	struct strv argv = {0};
	const char *head[] = {"gpgv", "--homedir", c->workdir, "--status-fd", "1"};
	for (size_t i = 0; i < sizeof(head) / sizeof(head[0]); i++)
		strv_push(&argv, head[i]);
	_cleanup_free_ char *mine = path_join(corral_home(), "trusted-keys");
	_cleanup_free_ char *shipped = distros_data_path("keys");
	int r = add_dir(mine, c->workdir, &argv, d);
	if (r == 0 && shipped)
		r = add_dir(shipped, c->workdir, &argv, d);
	if (r == 0 && c->out_path) {
		strv_push(&argv, "--output");
		strv_push(&argv, c->out_path);
	}
	strv_push(&argv, c->sig_path);
	if (c->data_path)
		strv_push(&argv, c->data_path);
	struct verdict v = {0};
	struct proc_cmd pc = {.argv = (const char *const *)argv.v, .split = true,
			      .line = status_line, .arg = &v};
	if (r == 0 && (r = proc_cmd_run(&pc, d)) < 0)
		diag_hint(d, "OpenPGP signatures are checked by gpgv: apt-get install gpgv");
	if (r == 0)
		r = judge(c, &v, d);
	if (r == 0)
		memcpy(signer, v.signer, sizeof(v.signer));
	proc_cmd_free(&pc);
	strv_free(&argv);
	return r;
}
