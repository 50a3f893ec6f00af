/* libFuzzer target for the envfile loader: any bytes in, errors or an env
 * out, never a crash, a leak, or unbounded time. ENVFILE_NO_FS keeps the
 * fuzzer's paths (`source: /`, `/dev/zero`) from reaching the disk. */
#include <stddef.h>
#include <stdint.h>

#include "core/config/envfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct env *e = NULL;
	struct diag_list errs = {0};
	if (envfile_load_buffer("/fuzz/corral.yaml", (const char *)data, size, ENVFILE_NO_FS, &e,
				&errs) == 0)
		env_free(e);
	diag_list_free(&errs);
	return 0;
}
