/* libcurl, libarchive and libssh, loaded on first use.
 *
 * Why: linking them pulls ~40 shared objects (GnuTLS, Kerberos, LDAP, ICU,
 * libxml2 ...) into every start of corral, measured here at +6 ms per run —
 * several times what `corral status` needs in total. Commands that never
 * download, unpack or log in (status, validate, init) should not pay it. So
 * the binary does not link them; these definitions take their place and
 * bind to the real functions with dlopen/dlsym the first time one is
 * called. Callers use the libraries' own headers and API unchanged. A
 * function used without a row here fails at link time, so nothing can
 * silently go missing. */
#include <archive.h>
#include <archive_entry.h>
#include <curl/curl.h>
#include <dlfcn.h>
#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

enum lib { LIB_CURL, LIB_ARCHIVE, LIB_SSH, LIB_COUNT };

static const char *const sonames[LIB_COUNT] = {"libcurl.so.4", "libarchive.so.13", "libssh.so.4"};
static void *handles[LIB_COUNT];
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;

static void *lib_sym(enum lib lib, const char *name)
{
	pthread_mutex_lock(&load_lock);
	if (!handles[lib])
		handles[lib] = dlopen(sonames[lib], RTLD_NOW | RTLD_LOCAL);
	void *h = handles[lib];
	pthread_mutex_unlock(&load_lock);
	void *fn = h ? dlsym(h, name) : NULL;
	if (!fn) {
		/* a broken installation, not a user error: nothing sensible to return */
		fprintf(stderr, "corral: cannot load %s from %s: %s\n(reinstall it: make deps)\n",
			name, sonames[lib], dlerror());
		abort();
	}
	return fn;
}

/* Defines `ret name params` forwarding to the library's own function. The
 * parenthesised name keeps curl's type-checking macros from expanding. */
#define LAZY(lib, ret, name, params, args) LAZY_AS(lib, ret, name, #name, params, args)
#define LAZY_AS(lib, ret, name, sym, params, args)                                  \
	ret(name) params                                                            \
	{                                                                           \
		static ret(*cached) params;                                           \
		ret(*real) params = __atomic_load_n(&cached, __ATOMIC_ACQUIRE);          \
		if (!real) {                                                        \
			real = (ret(*) params)lib_sym(lib, sym);                    \
			__atomic_store_n(&cached, real, __ATOMIC_RELEASE);               \
		}                                                                   \
		return real args;                                                    \
	}

#define C LIB_CURL
LAZY(C, CURLcode, curl_global_init, (long flags), (flags))
LAZY(C, CURL *, curl_easy_init, (void), ())
LAZY(C, CURLcode, curl_easy_perform, (CURL *c), (c))
LAZY(C, void, curl_easy_cleanup, (CURL *c), (c))
LAZY(C, const char *, curl_easy_strerror, (CURLcode e), (e))
LAZY(C, void, curl_free, (void *p), (p))
LAZY(C, struct curl_slist *, curl_slist_append, (struct curl_slist *l, const char *s), (l, s))
LAZY(C, void, curl_slist_free_all, (struct curl_slist *l), (l))
LAZY(C, CURLU *, curl_url, (void), ())
LAZY(C, void, curl_url_cleanup, (CURLU *u), (u))
LAZY(C, CURLUcode, curl_url_get, (CURLU *u, CURLUPart w, char **p, unsigned int f), (u, w, p, f))
LAZY(C, CURLUcode, curl_url_set, (CURLU *u, CURLUPart w, const char *p, unsigned int f), (u, w, p, f))
#undef C

/* The two variadic calls take exactly one more argument: a long, a
 * curl_off_t or a pointer, all passed in one integer register on the LP64
 * ABIs corral builds for, so forwarding it as a pointer-sized word is exact. */
_Static_assert(sizeof(long) == sizeof(void *) && sizeof(curl_off_t) == sizeof(void *),
	       "curl option forwarding assumes LP64");

static LAZY_AS(LIB_CURL, CURLcode, curl_easy_setopt_real, "curl_easy_setopt", (CURL *c, CURLoption o, void *v), (c, o, v))
static LAZY_AS(LIB_CURL, CURLcode, curl_easy_getinfo_real, "curl_easy_getinfo", (CURL *c, CURLINFO i, void *v), (c, i, v))

CURLcode(curl_easy_setopt)(CURL *c, CURLoption o, ...)
{
	va_list ap;
	va_start(ap, o);
	void *v = va_arg(ap, void *);
	va_end(ap);
	return curl_easy_setopt_real(c, o, v);
}

CURLcode(curl_easy_getinfo)(CURL *c, CURLINFO i, ...)
{
	va_list ap;
	va_start(ap, i);
	void *v = va_arg(ap, void *);
	va_end(ap);
	return curl_easy_getinfo_real(c, i, v);
}

#define A LIB_ARCHIVE
LAZY(A, struct archive *, archive_read_new, (void), ())
LAZY(A, int, archive_read_free, (struct archive *a), (a))
LAZY(A, int, archive_read_support_filter_all, (struct archive *a), (a))
LAZY(A, int, archive_read_support_format_tar, (struct archive *a), (a))
LAZY(A, int, archive_read_support_format_raw, (struct archive *a), (a))
LAZY(A, int, archive_read_open,
     (struct archive *a, void *d, archive_open_callback *o, archive_read_callback *r,
      archive_close_callback *c),
     (a, d, o, r, c))
LAZY(A, int, archive_read_open_filename, (struct archive *a, const char *f, size_t b), (a, f, b))
LAZY(A, int, archive_read_next_header, (struct archive *a, struct archive_entry **e), (a, e))
LAZY(A, int, archive_read_data_block,
     (struct archive *a, const void **b, size_t *s, la_int64_t *o), (a, b, s, o))
LAZY(A, int, archive_errno, (struct archive *a), (a))
LAZY(A, const char *, archive_error_string, (struct archive *a), (a))
LAZY(A, struct archive *, archive_write_new, (void), ())
LAZY(A, struct archive *, archive_write_disk_new, (void), ())
LAZY(A, int, archive_write_disk_set_options, (struct archive *a, int f), (a, f))
LAZY(A, int, archive_write_add_filter, (struct archive *a, int f), (a, f))
LAZY(A, int, archive_write_add_filter_gzip, (struct archive *a), (a))
LAZY(A, int, archive_write_set_format_pax_restricted, (struct archive *a), (a))
LAZY(A, int, archive_write_set_format_iso9660, (struct archive *a), (a))
LAZY(A, int, archive_write_set_format_raw, (struct archive *a), (a))
LAZY(A, int, archive_write_set_format_option,
     (struct archive *a, const char *m, const char *o, const char *v), (a, m, o, v))
LAZY(A, int, archive_write_open_filename, (struct archive *a, const char *f), (a, f))
LAZY(A, int, archive_write_open_fd, (struct archive *a, int fd), (a, fd))
LAZY(A, int, archive_write_header, (struct archive *a, struct archive_entry *e), (a, e))
LAZY(A, la_ssize_t, archive_write_data, (struct archive *a, const void *b, size_t n), (a, b, n))
LAZY(A, la_ssize_t, archive_write_data_block,
     (struct archive *a, const void *b, size_t n, la_int64_t o), (a, b, n, o))
LAZY(A, int, archive_write_finish_entry, (struct archive *a), (a))
LAZY(A, int, archive_write_close, (struct archive *a), (a))
LAZY(A, int, archive_write_free, (struct archive *a), (a))
LAZY(A, struct archive_entry *, archive_entry_new, (void), ())
LAZY(A, void, archive_entry_free, (struct archive_entry *e), (e))
LAZY(A, const char *, archive_entry_pathname, (struct archive_entry *e), (e))
LAZY(A, const char *, archive_entry_hardlink, (struct archive_entry *e), (e))
LAZY(A, const char *, archive_entry_symlink, (struct archive_entry *e), (e))
LAZY(A, __LA_MODE_T, archive_entry_filetype, (struct archive_entry *e), (e))
LAZY(A, __LA_MODE_T, archive_entry_perm, (struct archive_entry *e), (e))
LAZY(A, la_int64_t, archive_entry_size, (struct archive_entry *e), (e))
LAZY(A, la_int64_t, archive_entry_uid, (struct archive_entry *e), (e))
LAZY(A, la_int64_t, archive_entry_gid, (struct archive_entry *e), (e))
LAZY(A, void, archive_entry_set_pathname, (struct archive_entry *e, const char *p), (e, p))
LAZY(A, void, archive_entry_set_hardlink, (struct archive_entry *e, const char *p), (e, p))
LAZY(A, void, archive_entry_set_symlink, (struct archive_entry *e, const char *p), (e, p))
LAZY(A, void, archive_entry_set_filetype, (struct archive_entry *e, unsigned int t), (e, t))
LAZY(A, void, archive_entry_set_perm, (struct archive_entry *e, __LA_MODE_T m), (e, m))
LAZY(A, void, archive_entry_set_size, (struct archive_entry *e, la_int64_t s), (e, s))
LAZY(A, void, archive_entry_set_uid, (struct archive_entry *e, la_int64_t u), (e, u))
LAZY(A, void, archive_entry_set_gid, (struct archive_entry *e, la_int64_t g), (e, g))
LAZY(A, void, archive_entry_set_mtime, (struct archive_entry *e, time_t t, long ns), (e, t, ns))
LAZY(A, int, archive_entry_xattr_reset, (struct archive_entry *e), (e))
LAZY(A, int, archive_entry_xattr_next,
     (struct archive_entry *e, const char **n, const void **v, size_t *s), (e, n, v, s))
LAZY(A, void, archive_entry_xattr_clear, (struct archive_entry *e), (e))
LAZY(A, void, archive_entry_xattr_add_entry,
     (struct archive_entry *e, const char *n, const void *v, size_t s), (e, n, v, s))
LAZY(A, int, archive_entry_sparse_reset, (struct archive_entry *e), (e))
LAZY(A, int, archive_entry_sparse_next, (struct archive_entry *e, la_int64_t *o, la_int64_t *l),
     (e, o, l))
#undef A

/* archive_set_error is printf-like: format here, hand over as "%s". */
static LAZY_AS(LIB_ARCHIVE, void, archive_set_error_real, "archive_set_error",
	       (struct archive *a, int e, const char *fmt, const char *msg), (a, e, fmt, msg))

void(archive_set_error)(struct archive *a, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	archive_set_error_real(a, err, "%s", msg);
}

#define S LIB_SSH
LAZY(S, void, sftp_attributes_free, (sftp_attributes file), (file))
LAZY(S, char *, sftp_canonicalize_path, (sftp_session sftp, const char *path), (sftp, path))
LAZY(S, int, sftp_chmod, (sftp_session sftp, const char *file, mode_t mode), (sftp, file, mode))
LAZY(S, int, sftp_close, (sftp_file file), (file))
LAZY(S, void, sftp_free, (sftp_session sftp), (sftp))
LAZY(S, int, sftp_get_error, (sftp_session sftp), (sftp))
LAZY(S, int, sftp_init, (sftp_session sftp), (sftp))
LAZY(S, int, sftp_mkdir, (sftp_session sftp, const char *directory, mode_t mode), (sftp, directory, mode))
LAZY(S, sftp_session, sftp_new, (ssh_session session), (session))
LAZY(S, sftp_file, sftp_open, (sftp_session session, const char *file, int accesstype, mode_t mode), (session, file, accesstype, mode))
LAZY(S, sftp_attributes, sftp_stat, (sftp_session session, const char *path), (session, path))
LAZY(S, int, sftp_symlink, (sftp_session sftp, const char *target, const char *dest), (sftp, target, dest))
LAZY(S, int, sftp_unlink, (sftp_session sftp, const char *file), (sftp, file))
LAZY(S, ssize_t, sftp_write, (sftp_file file, const void *buf, size_t count), (file, buf, count))
LAZY(S, int, ssh_channel_close, (ssh_channel channel), (channel))
LAZY(S, void, ssh_channel_free, (ssh_channel channel), (channel))
LAZY(S, int, ssh_channel_is_closed, (ssh_channel channel), (channel))
LAZY(S, int, ssh_channel_is_eof, (ssh_channel channel), (channel))
LAZY(S, ssh_channel, ssh_channel_new, (ssh_session session), (session))
LAZY(S, int, ssh_channel_open_session, (ssh_channel channel), (channel))
LAZY(S, int, ssh_channel_request_exec, (ssh_channel channel, const char *cmd), (channel, cmd))
LAZY(S, int, ssh_channel_send_eof, (ssh_channel channel), (channel))
LAZY(S, uint32_t, ssh_channel_window_size, (ssh_channel channel), (channel))
LAZY(S, int, ssh_channel_write, (ssh_channel channel, const void *data, uint32_t len), (channel, data, len))
LAZY(S, void, ssh_clean_pubkey_hash, (unsigned char **hash), (hash))
LAZY(S, int, ssh_connect, (ssh_session session), (session))
LAZY(S, void, ssh_disconnect, (ssh_session session), (session))
LAZY(S, int, ssh_event_add_session, (ssh_event event, ssh_session session), (event, session))
LAZY(S, int, ssh_event_add_fd,
     (ssh_event event, socket_t fd, short events, ssh_event_callback cb, void *userdata),
     (event, fd, events, cb, userdata))
LAZY(S, int, ssh_event_remove_fd, (ssh_event event, socket_t fd), (event, fd))
LAZY(S, int, ssh_event_dopoll, (ssh_event event, int timeout), (event, timeout))
LAZY(S, void, ssh_event_free, (ssh_event event), (event))
LAZY(S, ssh_event, ssh_event_new, (void), ())
LAZY(S, int, ssh_event_remove_session, (ssh_event event, ssh_session session), (event, session))
LAZY(S, void, ssh_free, (ssh_session session), (session))
LAZY(S, const char *, ssh_get_error, (void *error), (error))
LAZY(S, socket_t, ssh_get_fd, (ssh_session session), (session))
LAZY(S, char *, ssh_get_fingerprint_hash, (enum ssh_publickey_hash_type type, unsigned char *hash, size_t len), (type, hash, len))
LAZY(S, int, ssh_get_publickey_hash, (const ssh_key key, enum ssh_publickey_hash_type type, unsigned char **hash, size_t *hlen), (key, type, hash, hlen))
LAZY(S, int, ssh_get_server_publickey, (ssh_session session, ssh_key *key), (session, key))
LAZY(S, int, ssh_init, (void), ())
LAZY(S, void, ssh_key_free, (ssh_key key), (key))
LAZY(S, enum ssh_keytypes_e, ssh_key_type, (const ssh_key key), (key))
LAZY(S, const char *, ssh_key_type_to_char, (enum ssh_keytypes_e type), (type))
LAZY(S, ssh_session, ssh_new, (void), ())
LAZY(S, int, ssh_options_set, (ssh_session session, enum ssh_options_e type, const void *value), (session, type, value))
LAZY(S, int, ssh_pki_export_privkey_base64, (const ssh_key privkey, const char *passphrase, ssh_auth_callback auth_fn, void *auth_data, char **b64_key), (privkey, passphrase, auth_fn, auth_data, b64_key))
LAZY(S, int, ssh_pki_export_privkey_to_pubkey, (const ssh_key privkey, ssh_key *pkey), (privkey, pkey))
LAZY(S, int, ssh_pki_export_pubkey_base64, (const ssh_key key, char **b64_key), (key, b64_key))
LAZY(S, int, ssh_pki_generate, (enum ssh_keytypes_e type, int parameter, ssh_key *pkey), (type, parameter, pkey))
LAZY(S, int, ssh_pki_import_privkey_base64, (const char *b64_key, const char *passphrase, ssh_auth_callback auth_fn, void *auth_data, ssh_key *pkey), (b64_key, passphrase, auth_fn, auth_data, pkey))
LAZY(S, int, ssh_pki_import_privkey_file, (const char *filename, const char *passphrase, ssh_auth_callback auth_fn, void *auth_data, ssh_key *pkey), (filename, passphrase, auth_fn, auth_data, pkey))
LAZY(S, enum ssh_known_hosts_e, ssh_session_is_known_server, (ssh_session session), (session))
LAZY(S, int, ssh_session_update_known_hosts, (ssh_session session), (session))
LAZY(S, int, ssh_set_channel_callbacks, (ssh_channel channel, ssh_channel_callbacks cb), (channel, cb))
LAZY(S, int, ssh_set_callbacks, (ssh_session session, ssh_callbacks cb), (session, cb))
LAZY(S, int, ssh_channel_request_auth_agent, (ssh_channel channel), (channel))
LAZY(S, void, ssh_string_free_char, (char *s), (s))
LAZY(S, int, ssh_userauth_publickey, (ssh_session session, const char *username, const ssh_key privkey), (session, username, privkey))
#undef S
