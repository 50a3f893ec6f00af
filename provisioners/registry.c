/* The provisioner table: one row per step kind. */
#include "provisioners/provisioner.h"

extern const struct provisioner shell_provisioner, file_provisioner, ansible_provisioner;

static const struct provisioner *const table[] = {
	[STEP_SHELL] = &shell_provisioner,
	[STEP_FILE] = &file_provisioner,
	[STEP_ANSIBLE] = &ansible_provisioner,
};

const struct provisioner *provisioner_for(enum step_kind kind)
{
	if ((unsigned)kind >= sizeof(table) / sizeof(table[0]))
		return NULL;
	return table[kind];
}
