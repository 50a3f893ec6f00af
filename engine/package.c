/* `corral package` below the command line (see package.h): the checks on
 * the machine's state, the provider's `package` entry writing a temporary
 * file, then the checksum file and the rename into place. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "engine/package.h"
#include "engine/lifecycle.h"
#include "core/base/log.h"
#include "core/base/util.h"
#include "core/host/mstate.h"
#include "providers/provider.h"

/* The checksum file, then the box: FILE.sha256 names the file by its base name. */
static int finish(const char *tmp, const char *out, char hex[HASH_HEX_MAX], struct diag *d)
{
	if (hash_file(tmp, "sha256", NULL, hex, d) < 0)
		return -1;
	const char *base = strrchr(out, '/') ? strrchr(out, '/') + 1 : out;
	_cleanup_free_ char *sumf = xasprintf("%s.sha256", out);
	_cleanup_free_ char *line = xasprintf("%s  %s\n", hex, base);
	if (write_file_atomic(sumf, line, strlen(line), 0644, d) < 0)
		return -1;
	if (rename(tmp, out) < 0)
		return diag_errno(d, "rename %s to %s", tmp, out);
	return 0;
}

static int package_one(const struct provider *p, struct machine *m, const char *out,
		       char hex[HASH_HEX_MAX], struct diag *d)
{
	_cleanup_free_ char *dir = path_dirname(out);
	_cleanup_free_ char *tmp = xasprintf("%s/.%s.tmp-%d", dir, strrchr(out, '/') + 1,
					     (int)getpid());
	unlink(tmp);
	m->box_dir = xstrdup(machine_str(m, MK_BOX_DIR));
	int r = p->package(m, tmp, d);
	if (r == 0)
		r = finish(tmp, out, hex, d);
	if (r < 0)
		unlink(tmp);
	return r;
}

/* Refuses what cannot be packaged: not created, running, no `package`. */
static int can_package(const struct provider *p, enum mstate s, const char *name,
		       struct diag *d)
{
	if (!p || s == MS_NOT_CREATED) {
		diag_fail(d, "%s is not created: nothing to package", name);
		return diag_hint(d, "`corral up %s`, change it, `corral halt %s`, then package it",
				 name, name);
	}
	if (s != MS_STOPPED) {
		diag_fail(d, "%s is %s: package takes a stopped machine", name, mstate_name(s));
		return diag_hint(d, "`corral halt %s` first", name);
	}
	if (!p->package)
		return diag_fail(d, "the %s provider does not support package", p->name);
	return 0;
}

int package_run(const struct env *e, const struct machine_cfg *mc, const char *out,
		char hex[HASH_HEX_MAX], const char **prov, struct diag *d)
{
	struct machine m;
	if (machine_open(&m, e, mc, d) < 0)
		return -1;
	enum mstate s = MS_NOT_CREATED;
	const struct provider *p = lifecycle_state(&m, &s);
	int r = can_package(p, s, mc->name, d);
	if (r == 0 && path_exists(out))
		r = diag_fail(d, "%s exists; remove it or give another name with -o", out);
	if (r == 0)
		log_machine(mc->name, "packaging");
	if (r == 0 && (r = package_one(p, &m, out, hex, d)) < 0)
		diag_wrap(d, "%s: package", mc->name);
	if (r == 0)
		*prov = p->name;
	machine_close(&m);
	return r;
}
