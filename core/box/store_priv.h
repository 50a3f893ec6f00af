/* Shared by store.c, add.c and publish.c only: the store's names, lock and
 * temporary directories. */
#ifndef CORRAL_BOXSTORE_PRIV_H
#define CORRAL_BOXSTORE_PRIV_H
#include <stdbool.h>
#include <stddef.h>

#include "core/box/store.h"
#include "core/box/catalog.h"
#include "core/host/lock.h"

char *boxes_root(void); /* $CORRAL_HOME/boxes */
/* Names that become path components: no "..", no leading dot, a safe alphabet. */
bool box_name_valid(const char *name);
bool box_word_valid(const char *word); /* provider, architecture */
/* "org/name" <-> "org-VAGRANTSLASH-name" */
char *box_name_escape(const char *name);
/* Waits (saying so) for the lock that serializes changes to one box name. */
int box_name_lock(const char *name, struct lock *l, struct diag *d);
/* Whether the store is 0700 and root's, with corral running as root: only
 * then may a container box keep setuid bits and file capabilities. *why
 * says what is not so. */
bool box_store_private(char *why, size_t n);
/* A fresh boxes/.tmp-XXXXXX on the store's file system. */
char *box_tmpdir(struct diag *d);
/* The installed boxes of one name, newest version first. */
int boxstore_find_name(const char *name, struct box_list *out, struct diag *d);
/* No other box of l with the same name, provider and arch is newer. */
bool box_newest_of_kind(const struct box_list *l, size_t i);
/* Fetches and parses a catalog with the box server's token rules. */
int box_catalog_fetch(const char *url, bool insecure, struct catalog *c, struct diag *d);

#endif
