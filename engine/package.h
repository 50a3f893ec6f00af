/* `corral package`: a stopped machine written as a .box for its provider,
 * through the provider's optional `package` entry. */
#ifndef CORRAL_PACKAGE_H
#define CORRAL_PACKAGE_H

#include "core/base/diag.h"
#include "core/base/digest.h"
#include "core/config/envfile.h"

/* Writes machine mc of e as the box `out` (an absolute path that does not
 * exist) with out.sha256 beside it (sha256sum's format), *hex its sha256
 * and *prov the provider's name. The box goes to a temporary name beside
 * out, renamed into place only when complete, the checksum file first:
 * on any failure neither the box nor the temporary file is left. Refuses
 * a machine not created, not stopped, or whose provider cannot package.
 * Returns 0, or -1 with d. */
int package_run(const struct env *e, const struct machine_cfg *mc, const char *out,
		char hex[HASH_HEX_MAX], const char **prov, struct diag *d);

#endif
