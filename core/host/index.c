#include "core/host/index.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/host/lock.h"
#include "core/host/state.h"
#include "core/base/util.h"

static char *index_path(const char *leaf) { return path_join(corral_home(), leaf); }

static int with_index_locked(int (*fn)(json_t *list, void *arg), void *arg, struct diag *d)
{
	_cleanup_free_ char *lp = index_path("index.lock");
	_cleanup_free_ char *ip = index_path("index.json");
	struct lock l;
	if (lock_acquire(lp, 10000, &l, d) < 0)
		return diag_wrap(d, "index");
	json_t *o;
	int r = state_load(ip, &o, d);
	if (r == 0) {
		json_t *list = json_object_get(o, "machines");
		if (!json_is_array(list)) {
			list = json_array();
			json_object_set_new(o, "machines", list);
		}
		r = fn(list, arg);
		if (r == 1)
			r = state_save(ip, o, d);
		json_decref(o);
	}
	lock_release(&l);
	return r;
}

/* The threads of one `up` queue here and are woken at once, rather than
 * each polling the file lock (which backs off to 200 ms naps): the lock is
 * for other corral processes. */
static pthread_mutex_t index_mu = PTHREAD_MUTEX_INITIALIZER;

/* Runs fn on the index object under the index lock, saving when fn returns 1. */
static int with_index(int (*fn)(json_t *list, void *arg), void *arg, struct diag *d)
{
	pthread_mutex_lock(&index_mu);
	int r = with_index_locked(fn, arg, d);
	pthread_mutex_unlock(&index_mu);
	return r;
}

static void remove_dir_entry(json_t *list, const char *dir)
{
	for (size_t i = json_array_size(list); i-- > 0;)
		if (strcmp(state_str(json_array_get(list, i), "dir", ""), dir) == 0)
			json_array_remove(list, i);
}

struct record_arg {
	const struct machine *m;
	const char *provider;
};

static int do_record(json_t *list, void *arg)
{
	struct record_arg *a = arg;
	remove_dir_entry(list, a->m->dir);
	json_array_append_new(list, json_pack("{s:s, s:s, s:s, s:s, s:s}",
					      "envfile", a->m->env->path, "name", a->m->cfg->name,
					      "dir", a->m->dir, "provider", a->provider,
					      "box_dir", a->m->box_dir ? a->m->box_dir : ""));
	return 1;
}

int index_record(const struct machine *m, const char *provider, struct diag *d)
{
	struct record_arg a = {m, provider};
	return with_index(do_record, &a, d);
}

static int do_forget(json_t *list, void *arg)
{
	remove_dir_entry(list, arg);
	return 1;
}

int index_forget(const char *machine_dir, struct diag *d)
{
	return with_index(do_forget, (void *)machine_dir, d);
}

int index_load(struct index_entry **v, size_t *n, struct diag *d)
{
	_cleanup_free_ char *ip = index_path("index.json");
	json_t *o;
	if (state_load(ip, &o, d) < 0)
		return -1;
	json_t *list = json_object_get(o, "machines");
	size_t cnt = json_array_size(list);
	*v = xcalloc(cnt, sizeof(**v));
	for (size_t i = 0; i < cnt; i++) {
		json_t *e = json_array_get(list, i);
		(*v)[i] = (struct index_entry){
			.envfile = xstrdup(state_str(e, "envfile", "")),
			.name = xstrdup(state_str(e, "name", "")),
			.dir = xstrdup(state_str(e, "dir", "")),
			.provider = xstrdup(state_str(e, "provider", "")),
			.box_dir = xstrdup(state_str(e, "box_dir", "")),
		};
	}
	*n = cnt;
	json_decref(o);
	return 0;
}

void index_free(struct index_entry *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].envfile);
		free(v[i].name);
		free(v[i].dir);
		free(v[i].provider);
		free(v[i].box_dir);
	}
	free(v);
}

bool index_box_in_use(const char *box_dir, char *who, size_t who_len)
{
	struct index_entry *v;
	size_t n;
	struct diag d;
	if (index_load(&v, &n, &d) < 0)
		return true; /* unreadable index: assume in use rather than delete a live box */
	bool used = false;
	for (size_t i = 0; i < n && !used; i++) {
		if (strcmp(v[i].box_dir, box_dir) != 0 || !path_is_dir(v[i].dir))
			continue;
		used = true;
		snprintf(who, who_len, "%s:%s", v[i].envfile, v[i].name);
	}
	index_free(v, n);
	return used;
}
