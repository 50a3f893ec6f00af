/* The table of providers: found by name (the envfile's `provider:`, the
 * one recorded in a machine's state), picked for `auto`, and asked for
 * their helper entry points. */
#include <string.h>

#include "providers/provider.h"

extern const struct provider provider_container; /* providers/container/container.c */
extern const struct provider provider_kvm;       /* providers/kvm/kvm.c */
extern const struct provider provider_virtualbox; /* providers/virtualbox/virtualbox.c */
extern const struct provider provider_incus;      /* providers/incus/incus.c */

/* Table order is the preference order of provider "auto". */
static const struct provider *const table[] = {
	&provider_container,
	&provider_kvm,
	&provider_virtualbox,
	&provider_incus,
	NULL,
};

const struct provider *const *provider_all(size_t *n)
{
	*n = sizeof(table) / sizeof(table[0]) - 1;
	return table;
}

/* Set only by test programs (provider_register_test). */
static const struct provider *test_provider;

void provider_register_test(const struct provider *p) { test_provider = p; }

const struct provider *provider_find(const char *name)
{
	for (size_t i = 0; table[i]; i++)
		if (strcmp(table[i]->name, name) == 0)
			return table[i];
	if (test_provider && strcmp(test_provider->name, name) == 0)
		return test_provider;
	return NULL;
}

int provider_entry_run(int argc, char **argv)
{
	for (size_t i = 0; table[i]; i++)
		for (const struct provider_entry *e = table[i]->entries; e && e->name; e++)
			if (strcmp(e->name, argv[0]) == 0)
				return e->main(argc, argv);
	return 127;
}

const struct provider *provider_auto(struct diag *d)
{
	struct diag why = {0};
	for (size_t i = 0; table[i]; i++)
		if (table[i]->usable(&why) == 0)
			return table[i];
	diag_fail(d, "no provider is usable on this host%s%s", why.msg[0] ? ": " : "", why.msg);
	diag_hint(d, "set `provider:` in the envfile to one this host supports");
	return NULL;
}
