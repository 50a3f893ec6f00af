#include "core/base/cancel.h"

#include <stdatomic.h>

/* Lock-free, so the signal handler may set it. */
static atomic_bool requested;

void cancel_request(void) { atomic_store(&requested, true); }

bool cancel_requested(void) { return atomic_load(&requested); }

void cancel_reset(void) { atomic_store(&requested, false); }

int cancel_check(const char *what, struct diag *d)
{
	if (!cancel_requested())
		return 0;
	return diag_fail(d, "%s: interrupted", what);
}
