/* `remote: NAME` of the incus provider (providers/incus/remote.c): the
 * user's incus/lxc client configuration as `incus remote add` writes it,
 * in a temporary $INCUS_CONF / $LXD_CONF. */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "providers/incus/incus.h"
#include "tests/unit/t.h"

static char dir[64];

static char *put(const char *rel, const char *text)
{
	char *p = path_join(dir, rel);
	_cleanup_free_ char *d = path_dirname(p);
	struct diag e = {0};
	if (mkdir_p(d, 0700, &e) < 0 || write_file_atomic(p, text, strlen(text), 0600, &e) < 0)
		CHECK(!"could not write the fixture");
	return p;
}

/* Resolves name with o's files; *d gets the error. */
static int named(struct incus_client *c, const char *name, struct incus_opts o, struct diag *d)
{
	o.remote = (char *)name;
	*c = (struct incus_client){0};
	*d = (struct diag){0};
	return incus_remote_named(c, &o, d);
}

static const char config[] =
	"default-remote: local\n"
	"remotes:\n"
	"  ci-cluster:\n"
	"    addr: https://10.1.2.3:8443\n"
	"    protocol: incus\n"
	"    auth_type: tls\n"
	"  local:\n"
	"    addr: unix://\n"
	"    public: false\n"
	"  sock: { addr: \"unix:///run/x/unix.socket\", protocol: lxd }\n"
	"  images: { addr: \"https://images.example.org\", protocol: simplestreams }\n"
	"  nocert: { addr: \"https://10.9.9.9:8443\" }\n";

static void incus_config(void)
{
	struct incus_client c;
	struct diag d;
	_cleanup_free_ char *conf = put("incus/config.yml", config);
	(void)conf; /* made for its side effect (a file), freed at exit */
	_cleanup_free_ char *crt = put("incus/client.crt", "C\n"), *key = put("incus/client.key", "K\n");
	_cleanup_free_ char *sc = put("incus/servercerts/ci-cluster.crt", "S\n");
	_cleanup_free_ char *cd = path_join(dir, "incus");
	setenv("INCUS_CONF", cd, 1);
	CHECK(named(&c, "ci-cluster", (struct incus_opts){0}, &d) == 0);
	CHECK_STR(c.url, "https://10.1.2.3:8443");
	CHECK(!c.socket);
	CHECK_STR(c.cert, crt);
	CHECK_STR(c.key, key);
	CHECK_STR(c.server_cert, sc);
	incus_client_close(&c);

	/* The envfile's files win. */
	CHECK(named(&c, "ci-cluster", (struct incus_opts){.client_cert = "/e/c.crt", .server_cert = "/e/s.crt"},
		    &d) == 0);
	CHECK_STR(c.cert, "/e/c.crt");
	CHECK_STR(c.key, key);
	CHECK_STR(c.server_cert, "/e/s.crt");
	incus_client_close(&c);

	/* A unix remote: its socket, or the local daemon's for "unix://". */
	CHECK(named(&c, "sock", (struct incus_opts){0}, &d) == 0);
	CHECK_STR(c.socket, "/run/x/unix.socket");
	CHECK(!c.url && !c.cert);
	incus_client_close(&c);
	setenv("INCUS_DIR", "/run/local-incus", 1);
	CHECK(named(&c, "local", (struct incus_opts){0}, &d) == 0);
	CHECK_STR(c.socket, "/run/local-incus/unix.socket");
	incus_client_close(&c);
	unsetenv("INCUS_DIR");

	/* Not a server to run instances on; no such remote; no certificate. */
	CHECK(named(&c, "images", (struct incus_opts){0}, &d) < 0);
	CHECK(strstr(d.msg, "remote images is a simplestreams image server") != NULL);
	incus_client_close(&c);
	CHECK(named(&c, "nosuch", (struct incus_opts){0}, &d) < 0);
	CHECK(strstr(d.msg, "no remote nosuch in the client configuration") != NULL);
	CHECK(strstr(d.hint, "~/.config/lxc") != NULL);
	incus_client_close(&c);
	unlink(crt);
	CHECK(named(&c, "nocert", (struct incus_opts){0}, &d) < 0);
	CHECK(strstr(d.msg, "no client certificate") != NULL);
	incus_client_close(&c);
	unsetenv("INCUS_CONF");
}

/* Not in the incus client's configuration: the lxc client's. */
static void lxc_config(void)
{
	struct incus_client c;
	struct diag d;
	_cleanup_free_ char *a = put("empty/config.yml", "remotes: {}\n");
	(void)a; /* made for its side effect (a file), freed at exit */
	_cleanup_free_ char *b = put("lxc/config.yml", "remotes:\n  lab: { addr: \"https://[fd00::5]:8443\", protocol: lxd }\n");
	(void)b; /* made for its side effect (a file), freed at exit */
	_cleanup_free_ char *crt = put("lxc/client.crt", "C\n"), *key = put("lxc/client.key", "K\n");
	(void)key; /* made for its side effect (a file), freed at exit */
	_cleanup_free_ char *ed = path_join(dir, "empty"), *ld = path_join(dir, "lxc");
	setenv("INCUS_CONF", ed, 1);
	setenv("LXD_CONF", ld, 1);
	CHECK(named(&c, "lab", (struct incus_opts){0}, &d) == 0);
	CHECK_STR(c.url, "https://[fd00::5]:8443");
	CHECK_STR(c.cert, crt);
	CHECK(!c.server_cert); /* no servercerts/lab.crt: the system's CAs */
	incus_client_close(&c);
	unsetenv("INCUS_CONF");
	unsetenv("LXD_CONF");
}

/* A file that is not YAML says so. */
static void bad_yaml(void)
{
	struct incus_client c;
	struct diag d;
	_cleanup_free_ char *a = put("bad/config.yml", "remotes: [unclosed\n");
	(void)a; /* made for its side effect (a file), freed at exit */
	_cleanup_free_ char *bd = path_join(dir, "bad");
	setenv("INCUS_CONF", bd, 1);
	setenv("LXD_CONF", bd, 1);
	CHECK(named(&c, "x", (struct incus_opts){0}, &d) < 0);
	CHECK(strstr(d.msg, "is not a YAML client configuration") != NULL);
	incus_client_close(&c);
	unsetenv("INCUS_CONF");
	unsetenv("LXD_CONF");
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/corral-incus-remote.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	RUN(incus_config);
	RUN(lxc_config);
	RUN(bad_yaml);
	struct diag ignored = {0};
	rm_rf(dir, &ignored);
	return T_END();
}
