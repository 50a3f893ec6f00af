/* libFuzzer target for corral import: any bytes in, a parse error or a
 * corral.yaml out, never a crash, a leak or unbounded time; and every
 * corral.yaml it makes loads without error (what `corral validate` checks;
 * ENVFILE_NO_FS: the fuzzer's paths are not looked up). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/config/envfile.h"
#include "core/vagrant/vagrantfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct vf_opts o = {.name = "Vagrantfile", .src_dir = "/nonexistent/fuzz"};
	struct vf_result r;
	struct diag d;
	if (vagrantfile_import(&o, (const char *)data, size, &r, &d) < 0)
		return 0;
	struct env *e = NULL;
	struct diag_list errs = {0};
	if (envfile_load_buffer("/fuzz/corral.yaml", r.yaml, strlen(r.yaml), ENVFILE_NO_FS, &e,
				&errs) < 0) {
		fprintf(stderr, "%s\n", r.yaml);
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%d:%d: %s\n", errs.v[i].line, errs.v[i].col, errs.v[i].msg);
		__builtin_trap();
	}
	env_free(e);
	diag_list_free(&errs);
	vf_result_free(&r);
	return 0;
}
