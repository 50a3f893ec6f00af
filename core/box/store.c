#include "core/box/store.h"

#include <signal.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/box/fetch.h"
#include "core/box/store_priv.h"
#include "core/host/index.h"
#include "core/base/log.h"
#include "core/base/strv.h"
#include "core/base/util.h"
#include "core/box/version.h"

#define VAGRANT_SLASH "-VAGRANTSLASH-"
#define LOCK_WAIT_MS (6u * 3600 * 1000) /* a slow download of a big box by another corral */

char *boxes_root(void) { return path_join(corral_home(), "boxes"); }

bool box_word_valid(const char *w)
{
	if (!w || !*w || w[0] == '.' || strlen(w) > 128)
		return false;
	for (; *w; w++)
		if (!isalnum((unsigned char)*w) && !strchr("-_.", *w))
			return false;
	return true;
}

bool box_name_valid(const char *name)
{
	if (!name || strstr(name, VAGRANT_SLASH))
		return false;
	_cleanup_free_ char *copy = xstrdup(name);
	char *save = NULL;
	size_t parts = 0;
	for (char *p = strtok_r(copy, "/", &save); p; p = strtok_r(NULL, "/", &save), parts++)
		if (!box_word_valid(p))
			return false;
	/* strtok skips empty parts: "a//b", "/a" and "a/" must not pass */
	return parts > 0 && name[0] != '/' && !strstr(name, "//") && !str_ends(name, "/");
}

/* "local/NAME" for a box given as its file or URL: NAME is the file name
 * without its image and compression suffixes, other characters as '-'. */
char *box_name_for_source(const char *src)
{
	static const char *const suffixes[] = {".xz", ".gz", ".zst", ".bz2", ".tar", ".box",
					       ".qcow2", ".img", ".raw", NULL};
	const char *end = src + strcspn(src, "?#");
	const char *base = end;
	while (base > src && base[-1] != '/')
		base--;
	char *name = xstrndup(base, (size_t)(end - base));
	for (bool cut = true; cut;) {
		cut = false;
		for (size_t i = 0; suffixes[i]; i++)
			if (str_ends(name, suffixes[i]) && strlen(name) > strlen(suffixes[i])) {
				name[strlen(name) - strlen(suffixes[i])] = '\0';
				cut = true;
			}
	}
	for (char *c = name; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("-_.", *c))
			*c = '-';
	char *out = xasprintf("local/%s", box_word_valid(name) ? name : "image");
	free(name);
	return out;
}

static char *replace(const char *s, const char *from, const char *to)
{
	struct buf b = {0};
	size_t n = strlen(from);
	buf_puts(&b, "");
	for (const char *p = s; *p;) {
		if (strncmp(p, from, n) == 0) {
			buf_puts(&b, to);
			p += n;
		} else {
			buf_add(&b, p++, 1);
		}
	}
	return b.s;
}

char *box_name_escape(const char *name) { return replace(name, "/", VAGRANT_SLASH); }

char *boxstore_path(const char *name, const char *version, const char *arch,
		    const char *provider)
{
	_cleanup_free_ char *root = boxes_root();
	_cleanup_free_ char *esc = box_name_escape(name);
	return xasprintf("%s/%s/%s/%s/%s", root, esc, version, arch, provider);
}

/* Made private: container boxes keep their setuid programs only in a
 * store no other user can reach (box_store_private). Without root the
 * store is the user's own (~/.corral) and its files the user's: a set-uid
 * bit there gives no one more than the user has, and the container
 * provider copies the tree into the box's owners (providers/container/
 * unshare.c), where sudo needs it. */
static int make_root(const char *root, struct diag *d) { return mkdir_p(root, 0700, d); }

bool box_store_private(char *why, size_t n)
{
	_cleanup_free_ char *root = boxes_root();
	struct stat st;
	if (stat(root, &st) < 0)
		snprintf(why, n, "%s cannot be read: %s", root, strerror(errno));
	else if (st.st_uid != geteuid() || (st.st_mode & 077))
		snprintf(why, n, "%s is mode %04o owned by uid %u, not 0700 owned by uid %u", root,
			 (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, (unsigned)geteuid());
	else
		return true;
	return false;
}

int box_name_lock(const char *name, struct lock *l, struct diag *d)
{
	_cleanup_free_ char *root = boxes_root();
	_cleanup_free_ char *esc = box_name_escape(name);
	_cleanup_free_ char *path = xasprintf("%s/.lock-%s", root, esc);
	if (make_root(root, d) < 0)
		return -1;
	if (lock_acquire(path, 0, l, d) == 0)
		return 0;
	log_info("waiting for another corral working on box %s", name);
	if (lock_acquire(path, LOCK_WAIT_MS, l, d) < 0)
		return diag_wrap(d, "box %s", name);
	return 0;
}

/* A `box add` killed mid-way (Ctrl-C, kill -9) leaves its temp dir; the
 * next one removes those whose owner (the pid in the name) is gone. */
static void sweep_tmpdirs(const char *root)
{
	DIR *dir = opendir(root);
	struct dirent *e;
	while (dir && (e = readdir(dir))) {
		char *end;
		if (!str_starts(e->d_name, ".tmp-"))
			continue;
		long pid = strtol(e->d_name + 5, &end, 10);
		if (pid <= 0 || *end != '-' || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		_cleanup_free_ char *debris = path_join(root, e->d_name);
		struct diag ignored;
		rm_rf(debris, &ignored);
	}
	if (dir)
		closedir(dir);
}

char *box_tmpdir(struct diag *d)
{
	_cleanup_free_ char *root = boxes_root();
	if (make_root(root, d) < 0)
		return NULL;
	sweep_tmpdirs(root);
	char *t = xasprintf("%s/.tmp-%ld-XXXXXX", root, (long)getpid());
	if (!mkdtemp(t)) {
		diag_errno(d, "create a temporary directory in %s", root);
		free(t);
		return NULL;
	}
	return t;
}

void box_ref_free(struct box_ref *r)
{
	free(r->name);
	free(r->version);
	free(r->provider);
	free(r->arch);
	free(r->dir);
	*r = (struct box_ref){0};
}

void box_list_free(struct box_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		box_ref_free(&l->v[i]);
	free(l->v);
	*l = (struct box_list){0};
}

static void list_add(struct box_list *l, const struct box_ref *r)
{
	l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
	l->v[l->n++] = (struct box_ref){xstrdup(r->name), xstrdup(r->version), xstrdup(r->provider),
					xstrdup(r->arch), xstrdup(r->dir), r->vagrant};
}

/* The subdirectories of dir that do not start with a dot. */
static struct strv subdirs(const char *dir)
{
	struct strv out = {0};
	DIR *dh = opendir(dir);
	if (!dh)
		return out;
	struct dirent *e;
	while ((e = readdir(dh))) {
		_cleanup_free_ char *p = path_join(dir, e->d_name);
		if (e->d_name[0] != '.' && path_is_dir(p))
			strv_push(&out, e->d_name);
	}
	closedir(dh);
	return out;
}

/* The PROVIDER directories (those with a metadata.json) under one version:
 * VERSION/ARCH/PROVIDER, or VERSION/PROVIDER (Vagrant before 2.4; arch
 * "unknown"). An ARCH directory never holds a metadata.json itself. */
static void scan_version(const char *vdir, struct box_ref *r, struct box_list *l)
{
	struct strv subs = subdirs(vdir);
	for (size_t j = 0; j < subs.n; j++) {
		_cleanup_free_ char *sdir = path_join(vdir, subs.v[j]);
		_cleanup_free_ char *smeta = path_join(sdir, "metadata.json");
		if (r->vagrant && path_exists(smeta)) {
			struct box_ref b = *r;
			b.provider = subs.v[j], b.arch = "unknown", b.dir = sdir;
			list_add(l, &b);
			continue;
		}
		struct strv provs = subdirs(sdir);
		for (size_t k = 0; k < provs.n; k++) {
			_cleanup_free_ char *pdir = path_join(sdir, provs.v[k]);
			_cleanup_free_ char *meta = path_join(pdir, "metadata.json");
			struct box_ref b = *r;
			b.provider = provs.v[k], b.arch = subs.v[j], b.dir = pdir;
			if (path_exists(meta))
				list_add(l, &b);
		}
		strv_free(&provs);
	}
	strv_free(&subs);
}

/* The boxes of one name directory (escaped name) under root. */
static void scan_name(const char *root, const char *esc, bool vagrant, struct box_list *l)
{
	_cleanup_free_ char *ndir = path_join(root, esc);
	_cleanup_free_ char *name = replace(esc, VAGRANT_SLASH, "/");
	struct strv vers = subdirs(ndir);
	for (size_t i = 0; i < vers.n; i++) {
		_cleanup_free_ char *vdir = path_join(ndir, vers.v[i]);
		struct box_ref r = {.name = name, .version = vers.v[i], .vagrant = vagrant};
		if (version_valid(vers.v[i]))
			scan_version(vdir, &r, l);
	}
	strv_free(&vers);
}

static int ref_cmp(const void *a, const void *b)
{
	const struct box_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (!c)
		c = version_cmp(x->version, y->version);
	if (!c)
		c = strcmp(x->arch, y->arch);
	return c ? c : strcmp(x->provider, y->provider);
}

static int ref_cmp_newest(const void *a, const void *b) { return ref_cmp(b, a); }

static void scan_root(const char *root, bool vagrant, struct box_list *l)
{
	struct strv names = subdirs(root);
	for (size_t i = 0; i < names.n; i++)
		scan_name(root, names.v[i], vagrant, l);
	strv_free(&names);
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), ref_cmp);
}

int boxstore_list(struct box_list *l, struct diag *d)
{
	(void)d;
	*l = (struct box_list){0};
	_cleanup_free_ char *root = boxes_root();
	scan_root(root, false, l);
	return 0;
}

char *vagrant_boxes_root(void)
{
	const char *vh = getenv("VAGRANT_HOME"), *home = getenv("HOME");
	if (vh && *vh)
		return path_join(vh, "boxes");
	return xasprintf("%s/.vagrant.d/boxes", home && *home ? home : "/");
}

int vagrant_box_list(const char *name, struct box_list *l)
{
	*l = (struct box_list){0};
	_cleanup_free_ char *root = vagrant_boxes_root();
	if (!name) {
		scan_root(root, true, l);
		return 0;
	}
	if (!box_name_valid(name))
		return 0;
	_cleanup_free_ char *esc = box_name_escape(name);
	scan_name(root, esc, true, l);
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), ref_cmp_newest);
	return 0;
}

int boxstore_find_name(const char *name, struct box_list *out, struct diag *d)
{
	*out = (struct box_list){0};
	if (!box_name_valid(name)) {
		diag_fail(d, "`%s` is not a box name", name);
		return diag_hint(d, "box names are like org/name: letters, digits, '-', '_', '.'");
	}
	_cleanup_free_ char *root = boxes_root();
	_cleanup_free_ char *esc = box_name_escape(name);
	scan_name(root, esc, false, out);
	if (out->n)
		qsort(out->v, out->n, sizeof(*out->v), ref_cmp_newest);
	return 0;
}

static bool wanted(const struct box_filter *f, const struct box_ref *r)
{
	return (!f->version || version_cmp(f->version, r->version) == 0) &&
	       (!f->provider || strcmp(f->provider, r->provider) == 0) &&
	       (!f->arch || strcmp(f->arch, r->arch) == 0);
}

static void describe(struct buf *b, const struct box_list *l, bool versions_only)
{
	for (size_t i = 0; i < l->n; i++) {
		if (versions_only && i && strcmp(l->v[i].version, l->v[i - 1].version) == 0)
			continue;
		buf_printf(b, "%s%s", b->len ? ", " : "", l->v[i].version);
		if (!versions_only)
			buf_printf(b, " (%s, %s)", l->v[i].provider, l->v[i].arch);
	}
}

static int ambiguous(const struct box_filter *f, const struct box_list *l, struct diag *d)
{
	bool versions = strcmp(l->v[0].version, l->v[l->n - 1].version) != 0;
	struct buf b = {0};
	describe(&b, l, versions);
	if (versions) {
		diag_fail(d, "box %s has several versions: %s", f->name, b.s);
		diag_hint(d, "say which with --box-version VERSION, or remove them all with --all");
	} else {
		diag_fail(d, "box %s %s exists for several providers/architectures: %s", f->name,
			  l->v[0].version, b.s);
		diag_hint(d, "say which with --provider and --architecture, or remove them all "
			     "with --all");
	}
	buf_free(&b);
	return -1;
}

int boxstore_select(const struct box_filter *f, struct box_list *out, struct diag *d)
{
	struct box_list all;
	if (boxstore_find_name(f->name, &all, d) < 0)
		return -1;
	*out = (struct box_list){0};
	for (size_t i = 0; i < all.n; i++)
		if (wanted(f, &all.v[i]))
			list_add(out, &all.v[i]);
	int r = 0;
	if (!out->n) {
		struct buf b = {0};
		describe(&b, &all, false);
		diag_fail(d, "box %s%s%s is not in the store%s%s%s", f->name,
			  f->version ? " " : "", f->version ? f->version : "",
			  all.n ? " (it has: " : "", all.n ? b.s : "", all.n ? ")" : "");
		diag_hint(d, "`corral box list` shows the boxes in the store");
		buf_free(&b);
		r = -1;
	} else if (!f->all && out->n > 1) {
		r = ambiguous(f, out, d);
	}
	box_list_free(&all);
	if (r < 0)
		box_list_free(out);
	return r;
}

/* rmdir fails on a directory that still holds something: that is the point. */
static void drop_empty_parents(const struct box_ref *r)
{
	_cleanup_free_ char *adir = path_dirname(r->dir);
	_cleanup_free_ char *vdir = path_dirname(adir);
	_cleanup_free_ char *ndir = path_dirname(vdir);
	rmdir(adir);
	rmdir(vdir);
	struct box_list left;
	struct diag d;
	if (boxstore_find_name(r->name, &left, &d) < 0 || left.n) {
		box_list_free(&left);
		return;
	}
	_cleanup_free_ char *murl = path_join(ndir, "metadata_url");
	unlink(murl);
	rmdir(ndir);
}

static int remove_locked(const struct box_ref *r, struct diag *d)
{
	_cleanup_free_ char *tmp = box_tmpdir(d);
	if (!tmp)
		return -1;
	_cleanup_free_ char *old = path_join(tmp, "old");
	if (rename(r->dir, old) < 0) {
		diag_errno(d, "move %s aside", r->dir);
		rm_rf(tmp, &(struct diag){0});
		return -1;
	}
	drop_empty_parents(r);
	return rm_rf(tmp, d);
}

int boxstore_remove(const struct box_ref *r, bool force, struct diag *d)
{
	char who[1024];
	if (!force && index_box_in_use(r->dir, who, sizeof(who))) {
		diag_fail(d, "box %s %s (%s, %s) is in use by %s", r->name, r->version, r->provider,
			  r->arch, who);
		return diag_hint(d, "destroy that machine first (`corral destroy` in its "
				    "directory), or pass --force");
	}
	struct lock l = {-1};
	if (box_name_lock(r->name, &l, d) < 0)
		return -1;
	int rc = remove_locked(r, d);
	lock_release(&l);
	return rc;
}

bool box_newest_of_kind(const struct box_list *l, size_t i)
{
	for (size_t j = 0; j < l->n; j++)
		if (strcmp(l->v[j].name, l->v[i].name) == 0 &&
		    strcmp(l->v[j].provider, l->v[i].provider) == 0 &&
		    strcmp(l->v[j].arch, l->v[i].arch) == 0 &&
		    version_cmp(l->v[j].version, l->v[i].version) > 0)
			return false;
	return true;
}

int boxstore_prune_plan(struct prune_item **v, size_t *n, struct diag *d)
{
	struct box_list l;
	if (boxstore_list(&l, d) < 0)
		return -1;
	*v = xcalloc(l.n, sizeof(**v));
	*n = l.n;
	for (size_t i = 0; i < l.n; i++) {
		struct prune_item *it = &(*v)[i];
		it->box = l.v[i];
		if (box_newest_of_kind(&l, i))
			it->action = PRUNE_KEEP;
		else if (index_box_in_use(it->box.dir, it->who, sizeof(it->who)))
			it->action = PRUNE_IN_USE;
		else
			it->action = PRUNE_REMOVE;
	}
	free(l.v); /* the refs now belong to the plan */
	return 0;
}

void prune_plan_free(struct prune_item *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		box_ref_free(&v[i].box);
	free(v);
}

int boxstore_verify(const struct box_ref *r, struct diag_list *problems, struct diag *d)
{
	return boxfetch_verify_dir(r->dir, problems, d);
}
