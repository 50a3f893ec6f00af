/* Errors as values: functions return 0 or -1 and fill a struct diag. What
 * went wrong is text for people (msg, hint) and a code for programs: a
 * caller that acts on the kind of error tests d->code, never the wording. */
#ifndef CORRAL_DIAG_H
#define CORRAL_DIAG_H
#include <stddef.h>

/* Kinds of error that are no errno value. Above every errno, so a code is
 * either an errno (set by diag_errno) or one of these; 0: no particular kind. */
enum diag_code {
	DIAG_STOPPED = 0x10000, /* a stage stopped because another one failed first */
	DIAG_USAGE,             /* the command line or the working directory is wrong */
	DIAG_PORT_TAKEN,        /* a host port was taken by another program meanwhile */
	DIAG_BAD_STATE,         /* a state file is damaged (not the JSON corral wrote) */
	DIAG_SIG_BAD,           /* an OpenPGP signature does not verify (or is no signature) */
	DIAG_SIG_UNKNOWN_KEY,   /* signed by a key that is not trusted or not the one pinned */
	DIAG_SIG_MISSING,       /* no signature, and CORRAL_VERIFY_SIGNATURES=required */
	DIAG_SUMS_NO_ENTRY,     /* the checksum file lists no digest for the file */
	DIAG_CHECKSUM_MISMATCH, /* the bytes' digest is not the expected one */
	DIAG_NO_SUBID,          /* not root, and no /etc/subuid or /etc/subgid range for the user */
	DIAG_NO_IDMAP_TOOL,     /* not root, and newuidmap or newgidmap is missing */
	DIAG_USERNS_OFF,        /* unprivileged user namespaces are disabled by a sysctl */
	DIAG_NO_DELEGATION,     /* not root, and corral's cgroup is not delegated to the user */
};

struct diag {
	int code;        /* errno, enum diag_code, or 0; kept by diag_wrap, diag_hint, diag_at */
	char msg[1024];  /* what failed, with context prefixes ("box add: download: ...") */
	char hint[512];  /* what to do about it; may be empty */
	char file[512];  /* set for errors that point into a file */
	int line, col;   /* 1-based; 0 when unknown */
};

/* Each sets or changes *d and returns -1, so `return diag_fail(d, ...)` reads naturally. */
int diag_fail(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* msg: ": strerror(errno)" appended; code: errno. */
int diag_errno(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* diag_fail with a code. */
int diag_code(struct diag *d, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int diag_hint(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int diag_wrap(struct diag *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int diag_at(struct diag *d, const char *file, int line, int col);

/* Many errors at once (envfile validation reports all of them). */
struct diag_list {
	struct diag *v;
	size_t n, cap;
};
void diag_list_add(struct diag_list *l, const struct diag *d);
void diag_list_free(struct diag_list *l);

#endif
