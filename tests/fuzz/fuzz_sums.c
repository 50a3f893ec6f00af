/* libFuzzer target for the checksum-file parser (a publisher's SHA256SUMS
 * or CHECKSUM arrives from the network before its signature is known to be
 * good): the input's first line is the file name (or pattern) looked up,
 * the rest the checksum file. Never a crash, a leak or unbounded time. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/box/sums.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	const char *nl = memchr(text, '\n', size);
	size_t name_len = nl ? (size_t)(nl - text) : size;
	char *name = strndup(text, name_len);
	size_t rest = nl ? size - name_len - 1 : 0;
	struct sums_entry e;
	struct diag d = {0};
	if (name && sums_find(nl ? nl + 1 : "", rest, name, &e, &d) == 0)
		sums_entry_free(&e);
	sums_clearsigned(text, size);
	free(name);
	return 0;
}
