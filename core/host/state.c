#include "core/host/state.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "core/base/util.h"

#define STATE_MAX (16u << 20)

int state_load(const char *path, json_t **obj, struct diag *d)
{
	char *data;
	size_t len;
	if (!path_exists(path)) {
		*obj = json_object();
		return 0;
	}
	if (read_file_flags(path, O_NOFOLLOW, STATE_MAX, &data, &len, d) < 0)
		return -1;
	json_error_t err;
	json_t *o = json_loadb(data, len, 0, &err);
	free(data);
	if (!o || !json_is_object(o)) {
		json_decref(o);
		diag_code(d, DIAG_BAD_STATE, "state file %s is not valid JSON: %s", path,
			  o ? "not an object" : err.text);
		diag_at(d, path, err.line, err.column);
		return diag_hint(d, "for a machine's state, `corral destroy -f NAME` removes the machine "
				 "from what survives elsewhere; or move the file aside");
	}
	*obj = o;
	return 0;
}

int state_save(const char *path, const json_t *obj, struct diag *d)
{
	char *s = json_dumps(obj, JSON_INDENT(2) | JSON_SORT_KEYS);
	if (!s)
		return diag_fail(d, "encode %s", path);
	_cleanup_free_ char *dir = path_dirname(path);
	int r = mkdir_p(dir, 0755, d);
	if (r == 0) {
		size_t n = strlen(s);
		s[n] = '\n';
		r = write_file_atomic(path, s, n + 1, 0644, d);
	}
	free(s);
	return r;
}

const char *state_str(const json_t *o, const char *key, const char *def)
{
	const json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : def;
}

long long state_int(const json_t *o, const char *key, long long def)
{
	const json_t *v = json_object_get(o, key);
	return json_is_integer(v) ? json_integer_value(v) : def;
}
