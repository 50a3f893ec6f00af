/* Box versions and Vagrant's version constraints (RubyGems semantics):
 * "1.2.3" compares by segments, a missing segment counts as 0, a letter
 * segment ("1.0.rc1", "1.0-beta") sorts before any number (a pre-release).
 * Constraints: "=", "!=", ">", "<", ">=", "<=", "~>" and comma lists where
 * every clause must hold; a bare version means "=". */
#ifndef CORRAL_VERSION_H
#define CORRAL_VERSION_H
#include <stdbool.h>
#include <stddef.h>

#include "core/base/diag.h"

bool version_valid(const char *v);
/* <0, 0, >0 like strcmp; both must be valid. */
int version_cmp(const char *a, const char *b);

enum vop { VOP_EQ, VOP_NE, VOP_GT, VOP_LT, VOP_GE, VOP_LE };

struct vclause {
	enum vop op;
	char *version;
};

/* "~> 1.2" is stored as its two clauses ">= 1.2" and "< 2". */
struct vconstraint {
	struct vclause *v;
	size_t n;
};

/* NULL or "" is the constraint every version meets. */
int vconstraint_parse(const char *s, struct vconstraint *out, struct diag *d);
bool vconstraint_match(const struct vconstraint *c, const char *version);
void vconstraint_free(struct vconstraint *c);

/* One-shot: parse s and test version. -1 on a syntax error. */
int version_satisfies(const char *constraint, const char *version, bool *ok, struct diag *d);

#endif
