/* The envfile parser and validator: every feature and every error of
 * docs/envfile.md, through envfile_load_buffer with a scratch project
 * directory (scripts and playbooks exist there, so file checks are real). */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/config/envfile.h"
#include "core/base/util.h"
#include "tests/unit/t.h"

static char dir[64];  /* the scratch project */
static char name[96]; /* dir/corral.yaml: what errors name */

static void put(const char *rel, const char *text)
{
	_cleanup_free_ char *p = path_join(dir, rel), *d = path_dirname(p);
	struct diag e;
	mkdir_p(d, 0755, &e);
	write_file_atomic(p, text, strlen(text), 0644, &e);
}

static struct diag_list errs;

/* Loads text; NULL when it has errors (left in errs). */
static struct env *load(const char *text)
{
	struct env *e = NULL;
	diag_list_free(&errs);
	envfile_load_buffer(name, text, strlen(text), 0, &e, &errs);
	return e;
}

static const struct diag *find_err(const char *msg)
{
	for (size_t i = 0; i < errs.n; i++)
		if (strcmp(errs.v[i].msg, msg) == 0)
			return &errs.v[i];
	return NULL;
}

static void show_errs(void)
{
	for (size_t i = 0; i < errs.n; i++)
		printf("#     got %d:%d %s | %s\n", errs.v[i].line, errs.v[i].col, errs.v[i].msg,
		       errs.v[i].hint);
}

/* The text fails with this exact message at line:col (0: any position),
 * and, when hint is not NULL, this exact hint. */
static bool fails(const char *text, const char *msg, int line, int col, const char *hint)
{
	struct env *e = load(text);
	const struct diag *d = find_err(msg);
	bool ok = !e && d && (!line || (d->line == line && d->col == col)) &&
		  (!hint || strcmp(d->hint, hint) == 0) && strcmp(d->file, name) == 0;
	if (!ok) {
		printf("#   wanted %d:%d %s | %s\n", line, col, msg, hint ? hint : "");
		show_errs();
	}
	env_free(e);
	return ok;
}

#define FAILS(text, msg, line, col, hint) CHECK(fails(text, msg, line, col, hint))

static struct env *ok_load(const char *text)
{
	struct env *e = load(text);
	if (!e)
		show_errs();
	return e;
}

#define ONE "machines:\n  m:\n    box: corral/debian-12\n"

/* ---- sizes, durations, addresses ---- */

static void sizes(void)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{"0", 0}, {"1024", 1024}, {"512B", 512}, {"1K", 1024}, {"1KB", 1024},
		{"1KiB", 1024}, {"512M", 512ull << 20}, {"512m", 512ull << 20},
		{"2G", 2ull << 30}, {"2GiB", 2ull << 30}, {"3T", 3ull << 40},
	};
	static const char *const bad[] = {"", "M", "1.5G", "12X", "1iB", "-1", " 1M", "1 M",
					  "99999999999999999999", "16777216T", "1MBB"};
	uint64_t v;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(parse_size(good[i].s, &v) == 0 && v == good[i].v);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(parse_size(bad[i], &v) < 0);
}

static void durations(void)
{
	static const struct {
		const char *s;
		uint64_t ms;
	} good[] = {
		{"30s", 30000}, {"5m", 300000}, {"1h", 3600000}, {"500ms", 500},
		{"90", 90000}, {"1h30m", 5400000}, {"2d", 172800000}, {"0", 0},
	};
	static const char *const bad[] = {"", "5x", "s", "1h30", "1.5s", "-1s", "30 s"};
	uint64_t v;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		CHECK(parse_duration(good[i].s, &v) == 0 && v == good[i].ms);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK(parse_duration(bad[i], &v) < 0);
}

static void addresses(void)
{
	uint32_t a, net;
	unsigned p;
	CHECK(parse_ipv4("10.20.0.5", &a) == 0 && a == 0x0a140005);
	CHECK(parse_ipv4("10.20.0", &a) < 0);
	CHECK(parse_ipv4("10.20.0.256", &a) < 0);
	CHECK(parse_cidr("10.20.0.0/24", &net, &p) == 0 && net == 0x0a140000 && p == 24);
	CHECK(parse_cidr("0.0.0.0/0", &net, &p) == 0 && p == 0);
	CHECK(parse_cidr("10.20.0.1/24", &net, &p) < 0); /* host bits set */
	CHECK(parse_cidr("10.20.0.0/33", &net, &p) < 0);
	CHECK(parse_cidr("10.20.0.0/", &net, &p) < 0);
	CHECK(parse_cidr("10.20.0.0", &net, &p) < 0);
	CHECK(parse_cidr("10.20.0.0/2x", &net, &p) < 0);
}

/* ---- the basics ---- */

static void minimal_defaults(void)
{
	struct env *e = ok_load(ONE);
	CHECK(e && e->nmachines == 1 && e->version == 1);
	if (!e)
		return;
	const struct machine_cfg *m = &e->machines[0];
	CHECK_STR(m->name, "m");
	CHECK_STR(m->base_name, "m");
	CHECK_STR(m->hostname, "m");
	CHECK_STR(m->provider, "auto");
	CHECK(m->cpus == 1 && m->memory == 512ull << 20 && m->disk == 0 && m->autostart);
	CHECK(m->index == 0 && m->count == 0 && m->pos.line == 2 && m->pos.col == 3);
	CHECK_STR(m->ssh.user, "vagrant");
	CHECK(m->ssh.port == 22 && m->ssh.boot_timeout_ms == 300000 && !m->ssh.private_key);
	CHECK_STR(m->kvm.machine, "q35");
	CHECK_STR(m->kvm.accel, "auto");
	CHECK(m->kvm.firmware == NULL); /* the box's metadata decides */
	CHECK(m->vbox.linked_clone && !m->vbox.gui);
	CHECK_STR(m->container.init, "auto");
	CHECK(m->graceful_halt_timeout_ms == 60000);
	_cleanup_free_ char *state = path_join(dir, ".corral");
	CHECK_STR(e->path, name);
	CHECK_STR(e->dir, dir);
	CHECK_STR(e->state_dir, state);
	CHECK(env_primary(e) == m && env_machine(e, "m") == m && !env_machine(e, "x"));
	env_free(e);
}

static void every_key(void)
{
	struct env *e = ok_load(
		"version: 1\n"
		"networks: { backend: { subnet: 10.20.0.0/24 } }\n"
		"machines:\n"
		"  web:\n"
		"    box: corral/debian-12\n"
		"    box_version: \">= 1.2, < 2\"\n"
		"    box_url: https://boxes.example.org/debian-12.json\n"
		"    box_checksum: sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
		"    hostname: web.example.org\n"
		"    provider: kvm\n"
		"    cpus: 2\n"
		"    memory: 1G\n"
		"    disk: 20G\n"
		"    primary: true\n"
		"    autostart: false\n"
		"    networks: [{ network: backend, ip: 10.20.0.5 }]\n"
		"    ports: [{ guest: 53, host: 5353, host_ip: 0.0.0.0, protocol: udp, auto_correct: yes }]\n"
		"    synced_folders: [{ host: ./src, guest: /srv/app, type: 9p }]\n"
		"    ssh: { user: deploy, private_key: ./first.key, forward_agent: true, port: 2222, boot_timeout: 5m }\n"
		"    provider_options:\n"
		"      kvm: { machine: microvm, accel: tcg, firmware: uefi }\n"
		"      virtualbox: { linked_clone: false, gui: true }\n"
		"      container: { init: systemd }\n"
		"      incus: { remote: \"unix:///var/lib/incus/unix.socket\", project: ci, target: node2,\n"
		"               type: container, network: incusbr0, image: debian/12, ssh: forward,\n"
		"               network_type: ovn, uplink: UPLINK }\n"
		"    graceful_halt_timeout: 90s\n");
	CHECK(e != NULL);
	if (!e)
		return;
	const struct machine_cfg *m = &e->machines[0];
	_cleanup_free_ char *src = path_join(dir, "src"), *key = path_join(dir, "first.key");
	CHECK_STR(m->box_version, ">= 1.2, < 2");
	CHECK_STR(m->hostname, "web.example.org");
	CHECK_STR(m->provider, "kvm");
	CHECK(m->cpus == 2 && m->memory == 1ull << 30 && m->disk == 20ull << 30);
	CHECK(m->primary && !m->autostart);
	CHECK(m->nnetworks == 1 && strcmp(m->networks[0].ip, "10.20.0.5") == 0);
	CHECK(m->networks[0].pos.line == 16);
	CHECK(m->nports == 1 && m->ports[0].guest == 53 && m->ports[0].host == 5353);
	CHECK(m->ports[0].udp && m->ports[0].auto_correct);
	CHECK_STR(m->ports[0].host_ip, "0.0.0.0");
	CHECK(m->nsynced == 1 && m->synced[0].type == SYNC_9P);
	CHECK_STR(m->synced[0].host, src);
	CHECK_STR(m->ssh.user, "deploy");
	CHECK_STR(m->ssh.private_key, key);
	CHECK(m->ssh.forward_agent && m->ssh.port == 2222 && m->ssh.boot_timeout_ms == 300000);
	CHECK_STR(m->kvm.machine, "microvm");
	CHECK_STR(m->kvm.firmware, "uefi");
	CHECK(!m->vbox.linked_clone && m->vbox.gui);
	CHECK_STR(m->container.init, "systemd");
	CHECK_STR(m->incus.remote, "unix:///var/lib/incus/unix.socket");
	CHECK_STR(m->incus.project, "ci");
	CHECK_STR(m->incus.target, "node2");
	CHECK_STR(m->incus.type, "container");
	CHECK_STR(m->incus.network, "incusbr0");
	CHECK_STR(m->incus.image, "debian/12");
	CHECK_STR(m->incus.ssh, "forward");
	CHECK_STR(m->incus.network_type, "ovn");
	CHECK_STR(m->incus.uplink, "UPLINK");
	CHECK(m->graceful_halt_timeout_ms == 90000);
	CHECK(e->nnetworks == 1 && e->networks[0].pos.line == 2);
	CHECK_STR(e->networks[0].name, "backend");
	env_free(e);
}

static void version_rules(void)
{
	struct env *e = ok_load("version: 1\n" ONE);
	CHECK(e && e->version == 1);
	env_free(e);
	FAILS("version: 2\n" ONE, "version: \"2\" is not an envfile version this corral reads", 1,
	      10, "write version: 1, or upgrade corral");
}

static void defaults_merge(void)
{
	struct env *e = ok_load(
		"defaults:\n"
		"  box: corral/debian-12\n"
		"  memory: 1G\n"
		"  ssh: { user: deploy, port: 2222 }\n"
		"  ports: [{ guest: 80 }, { guest: 443 }]\n"
		"  provision: [{ shell: { inline: a } }]\n"
		"machines:\n"
		"  a: {}\n"
		"  b:\n"
		"    memory: 2G\n"
		"    ssh: { port: 22 }\n"
		"    ports: [{ guest: 22 }]\n"
		"    provision: []\n");
	CHECK(e && e->nmachines == 2);
	if (!e)
		return;
	const struct machine_cfg *a = &e->machines[0], *b = &e->machines[1];
	CHECK(a->memory == 1ull << 30 && b->memory == 2ull << 30);
	CHECK_STR(b->box, "corral/debian-12");
	CHECK_STR(b->ssh.user, "deploy"); /* mappings merge key by key */
	CHECK(a->ssh.port == 2222 && b->ssh.port == 22);
	CHECK(a->nports == 2 && b->nports == 1 && b->ports[0].guest == 22); /* lists replace */
	CHECK(a->nsteps == 1 && b->nsteps == 0);
	env_free(e);
	FAILS("defaults: { count: 2 }\n" ONE, "defaults.count: not allowed in `defaults`", 1, 13,
	      "set it on each machine");
	FAILS("defaults: [1]\n" ONE, "defaults: expected a mapping, got a list", 1, 11, NULL);
}

static void no_machines(void)
{
	FAILS("version: 1\n", "no `machines:`", 1, 1, NULL);
	FAILS("machines: {}\n", "machines: no machines", 1, 11, NULL);
	FAILS("machines:\n", "machines: no machines", 0, 0, NULL);
	FAILS("machines: [a]\n", "machines: expected a mapping of names, got a list", 1, 11, NULL);
	FAILS("machines:\n  m: { box: corral/debian-12 }\n  n: {}\n", "machines.n: no box", 3, 3,
	      "set `box:` on the machine or in `defaults`");
}

/* ---- count, names, depends_on ---- */

static void count_expansion(void)
{
	struct env *e = ok_load("defaults: { box: b }\n"
				"machines:\n"
				"  db: {}\n"
				"  web: { count: 3, depends_on: [db] }\n"
				"  lb: { depends_on: [web, web-2] }\n");
	CHECK(e && e->nmachines == 5);
	if (!e)
		return;
	static const char *const names[] = {"db", "web-1", "web-2", "web-3", "lb"};
	for (size_t i = 0; i < 5; i++)
		CHECK_STR(e->machines[i].name, names[i]);
	const struct machine_cfg *w2 = &e->machines[2], *lb = &e->machines[4];
	CHECK_STR(w2->base_name, "web");
	CHECK_STR(w2->hostname, "web-2");
	CHECK(w2->index == 2 && w2->count == 3 && w2->pos.line == 4);
	CHECK(w2->depends_on.n == 1 && strcmp(w2->depends_on.v[0], "db") == 0);
	CHECK(lb->depends_on.n == 3);
	CHECK_STR(lb->depends_on.v[0], "web-1");
	CHECK_STR(lb->depends_on.v[2], "web-3");
	env_free(e);
	CHECK(!load("machines:\n  w: { box: b, count: 3, memory: lots }\n") && errs.n == 1);
	e = ok_load("machines:\n  w: { box: b, count: 1 }\n");
	CHECK(e && e->nmachines == 1 && strcmp(e->machines[0].name, "w-1") == 0);
	env_free(e);
	FAILS("machines:\n  w: { box: b, count: 0 }\n", "machines.w.count: \"0\" is not a number from 1 to 100",
	      2, 23, "count: N makes machines NAME-1 .. NAME-N");
}

static void names(void)
{
	FAILS("machines:\n  Web: { box: b }\n", "machines.Web: not a valid machine name", 2, 3,
	      "use lowercase letters, digits and -, at most 63");
	FAILS("machines:\n  web_1: { box: b }\n", "machines.web_1: not a valid machine name", 2, 3,
	      NULL);
	FAILS("machines:\n  -web: { box: b }\n", "machines.-web: not a valid machine name", 0, 0,
	      NULL);
	char a64[65], a62[63];
	memset(a64, 'a', 64);
	a64[64] = '\0';
	memset(a62, 'a', 62);
	a62[62] = '\0';
	_cleanup_free_ char *text = xasprintf("machines:\n  %s: {box: b}\n", a64);
	CHECK(!load(text) && errs.n == 1);
	_cleanup_free_ char *text2 = xasprintf("machines:\n  %s: {box: b, count: 10}\n", a62);
	CHECK(!load(text2) && errs.n == 1 && strstr(errs.v[0].msg, "-10 is longer than 63"));
	_cleanup_free_ char *text3 = xasprintf("machines:\n  %s: {box: b}\n", a62);
	struct env *e = ok_load(text3);
	CHECK(e != NULL);
	env_free(e);
	FAILS("machines:\n  web: { box: b, count: 2 }\n  web-1: { box: b }\n",
	      "machines.web-1: two machines are named `web-1` (the other: machines.web, line 2)", 3,
	      3, NULL);
	FAILS("machines:\n  a: { box: b }\n  a: { box: c }\n",
	      "machines.a: duplicate key (first at line 2, column 3)", 3, 3,
	      "remove one of the two");
}

static void depends_on(void)
{
	FAILS("machines:\n  db: { box: b }\n  web: { box: b, depends_on: [dbb] }\n",
	      "machines.web.depends_on: unknown machine `dbb`", 3, 31, "did you mean `db`?");
	FAILS("machines:\n  a: { box: b, depends_on: [b] }\n  b: { box: b, depends_on: [a] }\n",
	      "machines.a.depends_on: dependency cycle: a -> b -> a", 2, 28,
	      "remove one of these dependencies");
	FAILS("machines:\n  a: { box: b, depends_on: [a] }\n",
	      "machines.a.depends_on: dependency cycle: a -> a", 2, 28, NULL);
	FAILS("machines:\n  x: { box: b, depends_on: [a] }\n  a: { box: b, depends_on: [c] }\n"
	      "  c: { box: b, count: 2, depends_on: [x] }\n",
	      "machines.x.depends_on: dependency cycle: x -> a -> c-1 -> x", 2, 28, NULL);
	FAILS("machines:\n  a: { box: b, depends_on: db }\n",
	      "machines.a.depends_on: expected a list, got a string", 2, 28, NULL);
	FAILS("defaults: { depends_on: [a] }\n" ONE, "defaults.depends_on: not allowed in `defaults`",
	      1, 13, NULL);
}

/* ---- YAML features and failures ---- */

static void anchors_and_merges(void)
{
	struct env *e = load(
		"x-base: &base { box: corral/debian-12, memory: 1G, cpus: 2 }\n"
		"x-big: &big { memory: 4G, disk: 40G }\n"
		"machines:\n"
		"  a: { <<: *base, cpus: 4 }\n"
		"  b: { <<: [*big, *base] }\n"
		"  c: *base\n");
	CHECK(!e); /* x-base is not a key of the schema */
	CHECK(find_err("x-base: unknown key") != NULL);
	env_free(e);
	e = ok_load("defaults: &d { box: corral/debian-12, memory: 1G, cpus: 2 }\n"
		    "machines:\n"
		    "  a: { <<: *d, cpus: 4 }\n"
		    "  b: { <<: [{ memory: 4G, disk: 40G }, *d] }\n"
		    "  c: *d\n");
	CHECK(e && e->nmachines == 3);
	if (!e)
		return;
	CHECK(e->machines[0].cpus == 4 && e->machines[0].memory == 1ull << 30); /* explicit wins */
	CHECK(e->machines[1].memory == 4ull << 30 && e->machines[1].cpus == 2); /* earlier wins */
	CHECK(e->machines[1].disk == 40ull << 30);
	CHECK(e->machines[2].cpus == 2);
	env_free(e);
	FAILS("machines:\n  a: { <<: 5, box: b }\n",
	      "`<<` merges a mapping or a list of mappings, not a string", 2, 12, NULL);
	e = ok_load("machines:\n  a: { <<: [], box: b }\n  c: { <<: {}, box: b }\n");
	CHECK(e && e->nmachines == 2);
	env_free(e);
	FAILS("machines:\n  a: { <<: [1], box: b }\n",
	      "`<<` merges a mapping or a list of mappings, not a list", 2, 12, NULL);
	FAILS("machines:\n  a: *nope\n", "unknown alias `*nope`", 2, 6, NULL);
	FAILS("a: &a [*a]\n", "unknown alias `*a`", 1, 8, NULL);
}

static void duplicate_keys(void)
{
	FAILS("machines:\n  m:\n    box: b\n    memory: 1G\n    memory: 2G\n",
	      "machines.m.memory: duplicate key (first at line 4, column 5)", 5, 5,
	      "remove one of the two");
	FAILS("machines:\n  m:\n    ports:\n      - { guest: 1, guest: 2 }\n    box: b\n",
	      "machines.m.ports[1].guest: duplicate key (first at line 4, column 11)", 4, 21, NULL);
	/* merged keys are overridden, never duplicates */
	struct env *e = ok_load("defaults: &d { box: b }\nmachines:\n  m: { <<: *d, box: c }\n");
	CHECK(e && strcmp(e->machines[0].box, "c") == 0);
	env_free(e);
}

static void bad_text(void)
{
	FAILS("", "the envfile is empty", 0, 0,
	      "start from `corral init` or examples/quickstart/corral.yaml");
	FAILS("# only a comment\n", "the envfile is empty", 0, 0, NULL);
	FAILS("~\n", "the envfile is empty", 0, 0, NULL);
	FAILS("just some words\n",
	      "the top level must be a mapping (version, networks, machines...), not a string", 1, 1,
	      NULL);
	FAILS("machines: [\n", "not valid YAML: did not find expected node content "
	      "while parsing a flow node", 2, 1, "check the indentation, colons and quotes here");
	FAILS("a: b\n  c: d\n", "not valid YAML: mapping values are not allowed in this context", 2,
	      4, NULL);
	FAILS("a: 1\n---\nb: 2\n", "more than one YAML document", 2, 1, NULL);
	FAILS("a: !include x.yaml\n", "unsupported YAML tag `!include`", 1, 4,
	      "an envfile is plain YAML: remove the tag");
	struct env *e = NULL;
	static const char bin[] = "machines:\n  m: {box: b}\n\0\x01\x02";
	envfile_load_buffer(name, bin, sizeof(bin), 0, &e, &errs);
	CHECK(!e && find_err("a binary file, not YAML text: NUL byte"));
	CHECK(errs.n && errs.v[errs.n - 1].line == 3 && errs.v[errs.n - 1].col == 1);
	diag_list_free(&errs);
	FAILS("machines:\n  m: {box: \xff}\n", "not UTF-8 text: byte 0xff", 2, 12,
	      "an envfile is YAML text in UTF-8");
	FAILS("a: \xc0\xaf\n", "not UTF-8 text: byte 0xc0", 1, 4, NULL); /* overlong */
	FAILS("a: \xed\xa0\x80\n", "not UTF-8 text: byte 0xed", 1, 4, NULL); /* surrogate */
	struct env *ok = ok_load("machines:\n  m: { box: b, hostname: h }  # \xc3\xa9t\xc3\xa9 \xf0\x9f\x90\x84\n");
	CHECK(ok != NULL);
	env_free(ok);
}

/* This process's CPU time in ms: what a check of "refused fast" measures,
 * as wall time grows with whatever else the machine runs (tests/run runs
 * several test programs and boots at once). */
static uint64_t cpu_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void too_big(void)
{
	size_t n = (4u << 20) + 1;
	char *big = xmalloc(n);
	memset(big, '#', n);
	struct env *e = NULL;
	diag_list_free(&errs);
	CHECK(envfile_load_buffer(name, big, n, 0, &e, &errs) < 0 && !e);
	CHECK(errs.n == 1 && strstr(errs.v[0].msg, "too large"));
	free(big);
	/* billion laughs: 10 levels of 10 aliases */
	struct buf b = {0};
	buf_puts(&b, "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
	for (int i = 1; i < 10; i++)
		buf_printf(&b, "a%d: &a%d [*a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d, *a%d]\n",
			   i, i, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1, i - 1);
	uint64_t t0 = cpu_ms();
	CHECK(!load(b.s) && errs.n >= 1 && strstr(errs.v[0].msg, "aliases expand to more than"));
	CHECK(cpu_ms() - t0 < 1000);
	buf_free(&b);
	/* deep nesting */
	char deep[400];
	memset(deep, '[', sizeof(deep) - 1);
	deep[sizeof(deep) - 1] = '\0';
	CHECK(!load(deep) && strstr(errs.v[0].msg, "nested too deeply"));
	/* many small nodes */
	struct buf many = {0};
	buf_puts(&many, "x: [");
	for (int i = 0; i < 120000; i++)
		buf_puts(&many, "1,");
	buf_puts(&many, "1]\n");
	CHECK(!load(many.s) && strstr(errs.v[0].msg, "more than 100000 YAML nodes"));
	buf_free(&many);
	/* one big mapping merged many times: refused while it grows */
	struct buf merges = {0};
	buf_puts(&merges, "big: &b {");
	for (int i = 0; i < 40000; i++)
		buf_printf(&merges, "k%d: 1, ", i);
	buf_puts(&merges, "z: 1}\nl: [");
	for (int i = 0; i < 5000; i++)
		buf_puts(&merges, "{<<: *b}, ");
	buf_puts(&merges, "{}]\n");
	t0 = cpu_ms();
	CHECK(!load(merges.s) && errs.n == 1 && strstr(errs.v[0].msg, "aliases expand to more than"));
	CHECK(cpu_ms() - t0 < 2000);
	buf_free(&merges);
}

static void error_cap(void)
{
	struct buf b = {0};
	buf_puts(&b, "machines:\n  m:\n    box: b\n");
	for (int i = 0; i < 300; i++)
		buf_printf(&b, "    bad%d: 1\n", i);
	CHECK(!load(b.s) && errs.n == 100);
	CHECK(errs.v[0].line == 4 && errs.v[99].line == 103); /* in file order */
	buf_free(&b);
}

/* ---- ${VAR} ---- */

static void env_vars(void)
{
	setenv("T_BOX", "corral/debian-12", 1);
	setenv("T_EMPTY", "", 1);
	setenv("T_NL", "a\nb", 1);
	unsetenv("T_UNSET");
	struct env *e = ok_load("machines:\n"
				"  m:\n"
				"    box: ${T_BOX}\n"
				"    memory: ${T_UNSET:-2G}\n"
				"    cpus: ${T_EMPTY:-3}\n"
				"    provision:\n"
				"      - shell: { inline: \"echo $$HOME $x ${T_BOX}-$$\" }\n");
	CHECK(e != NULL);
	if (e) {
		CHECK_STR(e->machines[0].box, "corral/debian-12");
		CHECK(e->machines[0].memory == 2ull << 30 && e->machines[0].cpus == 3);
		CHECK_STR(e->machines[0].steps[0].shell.inline_script,
			  "echo $HOME $x corral/debian-12-$");
	}
	env_free(e);
	FAILS("machines:\n  m: { box: \"${T_UNSET}\" }\n", "machines.m.box: ${T_UNSET} is not set", 2,
	      13, "export T_UNSET=..., or give a default: ${T_UNSET:-value}");
	FAILS("machines:\n  m: { box: \"${T-x}\" }\n", "machines.m.box: bad variable reference `${T-x`",
	      2, 13, "write ${NAME} or ${NAME:-default}, and $$ for a literal $");
	FAILS("machines:\n  m: { box: \"${1A}\" }\n", "machines.m.box: bad variable reference `${1A`",
	      2, 13, NULL);
	FAILS("machines:\n  m: { box: \"${T_BOX\" }\n",
	      "machines.m.box: bad variable reference `${T_BOX`", 2, 13, NULL);
	FAILS("machines:\n  m: { box: \"${T_NL}\" }\n", "machines.m.box: must be a single line", 2, 13,
	      "write it on one line");
}

/* ---- values ---- */

static void value_errors(void)
{
	FAILS("machines:\n  m: { box: b, memory: lots }\n", "machines.m.memory: \"lots\" is not a size",
	      2, 24, "use a size like 512M or 2G");
	FAILS("machines:\n  m: { box: b, memory: 512 }\n",
	      "machines.m.memory: 512 is less than the minimum, 16M", 2, 24,
	      "a size without a unit is in bytes: write 512M or 2G");
	FAILS("machines:\n  m: { box: b, memroy: 1G }\n", "machines.m.memroy: unknown key", 2, 16,
	      "did you mean `memory`?");
	FAILS("machines:\n  m: { box: b, zzzzzzzz: 1 }\n", "machines.m.zzzzzzzz: unknown key", 2, 16,
	      NULL);
	FAILS("machines:\n  m: { box: b, \"%s%n\": 1 }\n", "machines.m.%s%n: unknown key", 2, 16,
	      NULL); /* keys are text, never a format */
	FAILS("machines:\n  m: { box: b, cpus: two }\n",
	      "machines.m.cpus: \"two\" is not a number from 1 to 1024", 2, 22, NULL);
	FAILS("machines:\n  m: { box: b, cpus: [1] }\n",
	      "machines.m.cpus: expected a number, got a list", 2, 22, NULL);
	FAILS("machines:\n  m: { box: b, primary: maybe }\n",
	      "machines.m.primary: \"maybe\" is not true or false", 2, 25, "write true or false");
	FAILS("machines:\n  m: { box: b, provider: kvmm }\n",
	      "machines.m.provider: \"kvmm\" is not one of container, kvm, virtualbox, incus, auto", 2, 26,
	      "did you mean `kvm`?");
	FAILS("machines:\n  m: { box: b, hostname: -web }\n",
	      "machines.m.hostname: \"-web\" is not a hostname", 2, 26, NULL);
	FAILS("machines:\n  m: { box: b, hostname: a..b }\n",
	      "machines.m.hostname: \"a..b\" is not a hostname", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, ssh: { user: \"root;rm\" } }\n",
	      "machines.m.ssh.user: \"root;rm\" is not a safe user name", 2, 29, NULL);
	FAILS("machines:\n  m: { box: b, ssh: { boot_timeout: soon } }\n",
	      "machines.m.ssh.boot_timeout: \"soon\" is not a duration", 2, 37,
	      "use a duration like 30s, 5m or 1h");
	FAILS("machines:\n  m: { box: \"\" }\n", "machines.m.box: is empty", 2, 13, NULL);
	FAILS("machines:\n  m: { box: ~ }\n", "machines.m.box: expected a string, got nothing", 2,
	      13, NULL);
	FAILS("machines:\n  m: { box: \"a\\nb\" }\n", "machines.m.box: must be a single line", 2, 13,
	      NULL);
	FAILS("machines:\n  m: { box: \"a\\0b\" }\n", "machines.m.box: contains a NUL byte", 2, 13,
	      NULL);
	FAILS("machines:\n  m: { box: \"-oProxyCommand=x\" }\n",
	      "machines.m.box: \"-oProxyCommand=x\" is not a box name", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, box_checksum: sha256:abc }\n",
	      "machines.m.box_checksum: \"sha256:abc\" is not a checksum", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, box_version: \"$(rm)\" }\n",
	      "machines.m.box_version: \"$(rm)\" is not a version constraint", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, box_url: \"-x\" }\n",
	      "machines.m.box_url: \"-x\" is not a URL or path", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, provider_options: { kvm: { accel: hvf } } }\n",
	      "machines.m.provider_options.kvm.accel: \"hvf\" is not one of auto, kvm, tcg", 0, 0,
	      NULL);
	FAILS("machines:\n  m: { box: b, provider_options: { incus: { remote: \"ftp://x\" } } }\n",
	      "machines.m.provider_options.incus.remote: \"ftp://x\" is not an Incus remote", 0, 0,
	      NULL);
	FAILS("machines:\n  m: { box: b, provider_options: { incus: { remote: \"unix://\" } } }\n",
	      "machines.m.provider_options.incus.remote: \"unix://\" is not an Incus remote", 0, 0,
	      NULL);
	FAILS("machines:\n  m: { box: b, provider_options: { incus: { remote: \"Ci Cluster\" } } }\n",
	      "machines.m.provider_options.incus.remote: \"Ci Cluster\" is not an Incus remote", 0, 0,
	      NULL);
	FAILS("machines:\n  m: { box: b, provider_options: { incus: { ssh: tunnel } } }\n",
	      "machines.m.provider_options.incus.ssh: \"tunnel\" is not one of auto, address, "
	      "forward", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, provider_options: { incus: { image: \"a b\" } } }\n",
	      "machines.m.provider_options.incus.image: \"a b\" is not an image alias", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, provider_options: { incus: { network_type: vxlan } } }\n",
	      "machines.m.provider_options.incus.network_type: \"vxlan\" is not one of auto, bridge, "
	      "ovn", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, provider_options: { incus: { uplink: \"up/link\" } } }\n",
	      "machines.m.provider_options.incus.uplink: \"up/link\" is not a network name", 0, 0,
	      NULL);
	FAILS("machines:\n  m: { box: b, provider_options: { incus: { type: vm } } }\n",
	      "machines.m.provider_options.incus.type: \"vm\" is not one of container, "
	      "virtual-machine", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, synced_folders: [{ host: ., guest: srv }] }\n",
	      "machines.m.synced_folders[1].guest: \"srv\" is not an absolute guest path", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, synced_folders: [{ guest: /srv, type: nfs }] }\n",
	      "machines.m.synced_folders[1]: missing `host`", 2, 33, NULL);
	setenv("HOME", dir, 1);
	struct env *home = ok_load("machines:\n  m: { box: b, ssh: { private_key: ~/first.key } }\n");
	_cleanup_free_ char *key = path_join(dir, "first.key");
	CHECK(home && strcmp(home->machines[0].ssh.private_key, key) == 0);
	env_free(home);
	FAILS("machines:\n  m: { box: b, ssh: { private_key: \"~x/key\" } }\n",
	      "machines.m.ssh.private_key: can't expand `~` (only ~/... with $HOME set)", 0, 0, NULL);
}

static void ports(void)
{
	FAILS("machines:\n  m: { box: b, ports: [{ guest: 0 }] }\n",
	      "machines.m.ports[1].guest: \"0\" is not a number from 1 to 65535", 2, 33,
	      "a port is a number from 1 to 65535");
	FAILS("machines:\n  m: { box: b, ports: [{ guest: 80, host: 65536 }] }\n",
	      "machines.m.ports[1].host: \"65536\" is not a number from 1 to 65535", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, ports: [{ host: 80 }] }\n",
	      "machines.m.ports[1]: missing `guest`", 2, 24, NULL);
	FAILS("machines:\n  m: { box: b, ports: [{ guest: 80, protocol: sctp }] }\n",
	      "machines.m.ports[1].protocol: \"sctp\" is not one of tcp, udp", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, ports: [{ guest: 80, host_ip: localhost }] }\n",
	      "machines.m.ports[1].host_ip: \"localhost\" is not an IPv4 address (forwards bind IPv4 host addresses only)", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, ports: [80] }\n",
	      "machines.m.ports[1]: expected a mapping, got a string", 2, 24, NULL);
	FAILS("machines:\n  w: { box: b, count: 2, ports: [{ guest: 80, host: 8080 }] }\n",
	      "machines.w.ports[1].host: 127.0.0.1:8080/tcp is forwarded for both w-1 and w-2", 2, 34,
	      "use another host port, or set `auto_correct: true`");
	struct env *e = ok_load(
		"machines:\n  w: { box: b, count: 2, ports: [{ guest: 80, host: 8080, auto_correct: true }] }\n"
		"  m: { box: b, ports: [{ guest: 53, host: 8080, protocol: udp }, { guest: 81 }, { guest: 82 }] }\n");
	CHECK(e && e->machines[2].nports == 3 && e->machines[2].ports[2].host == 0);
	CHECK(e && strcmp(e->machines[0].ports[0].host_ip, "127.0.0.1") == 0);
	env_free(e);
}

static void networks(void)
{
	static const char head[] = "networks: { backend: { subnet: 10.20.0.0/24 } }\nmachines:\n";
	struct env *e;
	_cleanup_free_ char *t1 = xasprintf("%s  m: { box: b, networks: [{ network: backend, ip: 10.30.0.5 }] }\n", head);
	FAILS(t1, "machines.m.networks[1].ip: 10.30.0.5 is outside backend's subnet 10.20.0.0/24",
	      3, 27, "pick a host address in the subnet, or leave ip out");
	_cleanup_free_ char *t2 = xasprintf("%s  m: { box: b, networks: [{ network: backend, ip: 10.20.0.255 }] }\n", head);
	FAILS(t2, "machines.m.networks[1].ip: 10.20.0.255 is reserved in backend's subnet 10.20.0.0/24",
	      3, 27, NULL);
	_cleanup_free_ char *t3 = xasprintf("%s  m: { box: b, networks: [{ network: bakend }] }\n", head);
	FAILS(t3, "machines.m.networks[1].network: unknown network `bakend`", 3, 27,
	      "did you mean `backend`?");
	_cleanup_free_ char *t4 = xasprintf("%s  w: { box: b, count: 2, networks: [{ network: backend, ip: 10.20.0.5 }] }\n", head);
	FAILS(t4, "machines.w.networks[1].ip: 10.20.0.5 is used by both w-1 and w-2", 3, 37,
	      "give each machine its own address, or leave ip out to allocate one");
	_cleanup_free_ char *t5 = xasprintf("%s  m: { box: b, networks: [{ network: backend, ip: 10.20.0 }] }\n", head);
	FAILS(t5, "machines.m.networks[1].ip: \"10.20.0\" is not an IPv4 address", 0, 0, NULL);
	FAILS("networks: { n: { subnet: 10.0.0.1/8 } }\n" ONE,
	      "networks.n.subnet: \"10.0.0.1/8\" is not an IPv4 subnet", 1, 26,
	      "write network/prefix with the host bits zero, like 10.20.0.0/24");
	FAILS("networks: { n: {} }\n" ONE, "networks.n: missing `subnet`", 1, 16, NULL);
	FAILS("networks: { N_1: { subnet: 10.0.0.0/8 } }\n" ONE,
	      "networks.N_1: \"N_1\" is not a valid network name", 1, 13, NULL);
	_cleanup_free_ char *t6 = xasprintf("%s  a: { box: b, networks: [{ network: backend, ip: 10.20.0.5 }] }\n"
					    "  b: { box: b, networks: [{ network: backend }] }\n", head);
	e = ok_load(t6);
	CHECK(e && e->machines[1].networks[0].ip == NULL);
	size_t n = 9;
	_cleanup_free_ uint32_t *fixed = e ? env_fixed_ips(e, "backend", &n) : NULL;
	CHECK(n == 1 && fixed && fixed[0] == 0x0a140005); /* what automatic allocation passes over */
	_cleanup_free_ uint32_t *none = e ? env_fixed_ips(e, "other", &n) : NULL;
	CHECK(none != NULL); /* an empty list, not NULL */
	CHECK(n == 0);
	env_free(e);
}

/* ---- provisioning ---- */

static void steps(void)
{
	struct env *e = ok_load(
		"machines:\n"
		"  m:\n"
		"    box: b\n"
		"    provision:\n"
		"      - shell: { inline: \"apt-get update\", env: { A_B: \"1\" }, args: [--fast, \"a b\"] }\n"
		"      - shell: { path: scripts/setup.sh, privileged: false, run: always, name: setup }\n"
		"      - file: { source: conf/app.ini, destination: /etc/app.ini }\n"
		"      - file: { source: conf, destination: ~/conf, run: never }\n"
		"      - ansible:\n"
		"          playbook: site.yml\n"
		"          inventory: conf/hosts\n"
		"          groups: { web: [m], \"all:children\": [web], \"web:vars\": { port: \"80\" } }\n"
		"          extra_vars: { n: 5, f: 1.5, b: true, s: \"5\", l: [1, x], o: { k: ~ }, h: 0x1f }\n"
		"          limit: m\n"
		"          become: true\n"
		"          tags: [a]\n"
		"          skip_tags: [b]\n"
		"          raw_arguments: [--diff]\n"
		"          verbose: 2\n");
	CHECK(e && e->machines[0].nsteps == 5);
	if (!e)
		return;
	const struct step *s = e->machines[0].steps;
	_cleanup_free_ char *script = path_join(dir, "scripts/setup.sh");
	CHECK(s[0].kind == STEP_SHELL && s[0].index == 1 && s[0].run == RUN_ONCE);
	CHECK_STR(s[0].name, "shell");
	CHECK(s[0].shell.privileged && s[0].shell.nenv == 1 && s[0].shell.args.n == 2);
	CHECK_STR(s[0].shell.env[0].key, "A_B");
	CHECK_STR(s[0].shell.args.v[1], "a b");
	CHECK(s[0].pos.line == 5 && s[0].pos.col == 9);
	CHECK_STR(s[1].name, "setup");
	CHECK_STR(s[1].shell.path, script);
	CHECK(!s[1].shell.privileged && s[1].run == RUN_ALWAYS && s[1].index == 2);
	CHECK(s[2].kind == STEP_FILE && s[3].run == RUN_NEVER);
	CHECK_STR(s[3].file.destination, "~/conf");
	const struct ansible_step *a = &s[4].ansible;
	CHECK(s[4].kind == STEP_ANSIBLE && a->become && a->verbose == 2 && a->ngroups == 2);
	CHECK_STR(a->groups[0].name, "web");
	CHECK(json_object_size(a->groups[0].vars) == 1 && a->groups[1].children.n == 1);
	CHECK(a->groups[0].pos.line == 12);
	char *ev = json_dumps(a->extra_vars, JSON_SORT_KEYS | JSON_COMPACT);
	CHECK_STR(ev, "{\"b\":true,\"f\":1.5,\"h\":\"0x1f\",\"l\":[1,\"x\"],\"n\":5,\"o\":{\"k\":null},\"s\":\"5\"}");
	free(ev);
	CHECK(a->targets.n == 0); /* machine steps have none */
	env_free(e);
}

static void step_errors(void)
{
	FAILS("machines:\n  m: { box: b, provision: [{ shell: { inline: a, path: scripts/setup.sh } }] }\n",
	      "machines.m.provision[1].shell: needs exactly one of `inline` and `path`", 2, 37,
	      "give the script in `inline:` or its file in `path:`");
	FAILS("machines:\n  m: { box: b, provision: [{ shell: {} }] }\n",
	      "machines.m.provision[1].shell: needs exactly one of `inline` and `path`", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, provision: [{ shel: { inline: a } }] }\n",
	      "machines.m.provision[1].shel: unknown key", 2, 30, "did you mean `shell`?");
	FAILS("machines:\n  m: { box: b, provision: [{ shell: { inline: a }, file: {} }] }\n",
	      "machines.m.provision[1]: a step is a mapping with one key: its kind", 2, 28, NULL);
	FAILS("machines:\n  m: { box: b, provision: [{ shell: { inline: a, run: twice } }] }\n",
	      "machines.m.provision[1].shell.run: \"twice\" is not one of once, always, never", 0, 0,
	      NULL);
	FAILS("machines:\n  m:\n    box: b\n    provision:\n      - shell: { path: scripts/nope.sh }\n",
	      "machines.m.provision[1].shell.path: scripts/nope.sh does not exist", 5, 24, NULL);
	FAILS("machines:\n  m:\n    box: b\n    provision:\n      - shell: { path: scripts }\n",
	      "machines.m.provision[1].shell.path: scripts is a directory, not a file", 5, 24, NULL);
	FAILS("machines:\n  m: { box: b, provision: [{ file: { source: nope, destination: /x } }] }\n",
	      "machines.m.provision[1].file.source: nope does not exist", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, provision: [{ file: { source: conf/app.ini, destination: etc } }] }\n",
	      "machines.m.provision[1].file.destination: \"etc\" is not an absolute guest path", 0, 0,
	      "start it with / (or ~ for the login user's home)");
	FAILS("machines:\n  m: { box: b, provision: [{ file: { destination: /x } }] }\n",
	      "machines.m.provision[1].file: missing `source`", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, provision: [{ ansible: { playbook: missing.yml } }] }\n",
	      "machines.m.provision[1].ansible.playbook: missing.yml does not exist", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, provision: [{ ansible: { playbook: site.yml, groups: { w: [x] } } }] }\n",
	      "machines.m.provision[1].ansible.groups.w: unknown machine `x`", 2, 71, NULL);
	FAILS("machines:\n  m: { box: b, provision: [{ ansible: { playbook: site.yml, groups: { \"w:kids\": [m] } } }] }\n",
	      "machines.m.provision[1].ansible.groups.w:kids: \"w:kids\" is not a group (letters, digits and _)",
	      0, 0, NULL);
	FAILS("machines:\n  m: { box: b, provision: [{ ansible: { playbook: site.yml, verbose: 5 } }] }\n",
	      "machines.m.provision[1].ansible.verbose: \"5\" is not a number from 0 to 4", 0, 0, NULL);
	FAILS("machines:\n  m: { box: b, provision: [{ shell: { inline: a, env: { 1A: x } } }] }\n",
	      "machines.m.provision[1].shell.env.1A: \"1A\" is not an environment variable name", 0,
	      0, NULL);
	FAILS("machines:\n  m: { box: b, provision: [{ ansible: { playbook: site.yml, extra_vars: [1] } }] }\n",
	      "machines.m.provision[1].ansible.extra_vars: expected a mapping, got a list", 0, 0, NULL);
}

static void top_level_provision(void)
{
	struct env *e = ok_load("defaults: { box: b }\n"
				"machines:\n  db: {}\n  web: { count: 2 }\n  lb: {}\n"
				"provision:\n"
				"  - ansible: { playbook: site.yml, groups: { w: [web], d: [db] } }\n"
				"  - ansible: { playbook: site.yml }\n");
	CHECK(e && e->nsteps == 2);
	if (!e)
		return;
	const struct ansible_step *a = &e->steps[0].ansible, *b = &e->steps[1].ansible;
	CHECK(a->targets.n == 3 && b->targets.n == 4);
	CHECK_STR(a->targets.v[0], "db"); /* envfile order, not group order */
	CHECK_STR(a->targets.v[2], "web-2");
	CHECK(a->groups[0].hosts.n == 2);
	CHECK_STR(a->groups[0].hosts.v[1], "web-2");
	CHECK(strlen(e->steps[0].id) == 64);
	env_free(e);
	FAILS(ONE "provision:\n  - shell: { inline: a }\n",
	      "provision[1]: a top-level step runs across machines, so it must be `ansible`", 5, 5,
	      "move it into a machine's `provision`");
	FAILS(ONE "provision:\n  - ansible: { playbook: site.yml, groups: { g: [nope] } }\n",
	      "provision[1].ansible.groups.g: unknown machine `nope`", 5, 46,
	      "name a machine defined under `machines:`");
	FAILS(ONE "provision:\n  - ansible: { playbook: site.yml, groups: { \"g:children\": [h] } }\n",
	      "provision[1].ansible.groups.g:children: unknown group `h`", 0, 0, NULL);
}

static char *first_id(const char *text)
{
	struct env *e = ok_load(text);
	char *id = e && e->nmachines && e->machines[0].nsteps ? xstrdup(e->machines[0].steps[0].id)
							      : NULL;
	env_free(e);
	return id;
}

static void step_ids(void)
{
	static const char shell_path[] =
		"machines:\n  m: { box: b, provision: [{ shell: { path: scripts/setup.sh } }] }\n";
	_cleanup_free_ char *a = first_id(shell_path), *b = first_id(shell_path);
	CHECK(a && b && strlen(a) == 64 && strspn(a, "0123456789abcdef") == 64);
	CHECK(a && b && strcmp(a, b) == 0); /* stable */
	put("scripts/setup.sh", "#!/bin/sh\necho changed\n");
	_cleanup_free_ char *c = first_id(shell_path);
	CHECK(c && strcmp(a, c) != 0); /* editing the script makes a new step */
	put("scripts/setup.sh", "#!/bin/sh\necho setup\n");
	_cleanup_free_ char *n1 = first_id(
		"machines:\n  m: { box: b, provision: [{ shell: { inline: x, name: one } }] }\n");
	_cleanup_free_ char *n2 = first_id(
		"machines:\n  m: { box: b, provision: [{ shell: { inline: x, name: two, run: always } }] }\n");
	_cleanup_free_ char *n3 = first_id(
		"machines:\n  m: { box: b, provision: [{ shell: { inline: y } }] }\n");
	CHECK(n1 && n2 && strcmp(n1, n2) == 0); /* name and run are not what it does */
	CHECK(n1 && n3 && strcmp(n1, n3) != 0);
	struct env *e = ok_load("machines:\n  m: { box: b, provision: [{ shell: { inline: x } }, "
				"{ shell: { inline: y } }, { shell: { inline: x } }] }\n");
	CHECK(e != NULL);
	if (e) {
		const struct step *s = e->machines[0].steps;
		CHECK(strcmp(s[0].id, s[2].id) != 0 && strcmp(s[0].id, n1) == 0);
		CHECK(strcmp(s[0].id, s[1].id) != 0);
	}
	env_free(e);
}

/* ---- finding the envfile, keys ---- */

static void find(void)
{
	struct diag d = {0};
	char *p = NULL;
	_cleanup_free_ char *deep = path_join(dir, "a/b/c"), *top = path_join(dir, "corral.yaml");
	mkdir_p(deep, 0755, &d);
	put("corral.yaml", ONE);
	CHECK(envfile_find(NULL, deep, &p, &d) == 0);
	CHECK_STR(p, top);
	free(p);
	CHECK(envfile_find(top, "/", &p, &d) == 0);
	CHECK_STR(p, top);
	free(p);
	CHECK(envfile_find("nope.yaml", dir, &p, &d) < 0);
	CHECK_STR(d.msg, "nope.yaml: no such file");
	CHECK(envfile_find(NULL, "/proc/self", &p, &d) < 0);
	CHECK(strstr(d.msg, "no corral.yaml in /proc/self or any parent directory") != NULL);
	CHECK_STR(d.hint, "run `corral init` to create one, or pass -f FILE");
	struct env *e = NULL;
	diag_list_free(&errs);
	CHECK(envfile_load(top, &e, &errs) == 0 && e && e->nmachines == 1);
	env_free(e);
	CHECK(envfile_load(deep, &e, &errs) < 0 && errs.n == 1 && errs.v[0].line == 0);
	diag_list_free(&errs);
}

static void keys(void)
{
	size_t n;
	const char *const *k = envfile_keys(&n);
	static const char *const want[] = {"version", "defaults", "machines", "memory", "inline",
					   "subnet", "private_key", "firmware", "auto_correct",
					   "extra_vars", "ansible"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		bool found = false;
		for (size_t j = 0; j < n; j++)
			found = found || strcmp(k[j], want[i]) == 0;
		CHECK(found);
	}
	for (size_t i = 0; i < n; i++)
		for (size_t j = i + 1; j < n; j++)
			CHECK(strcmp(k[i], k[j]) != 0);
}

static void primary(void)
{
	struct env *e = ok_load("defaults: { box: b }\nmachines:\n  a: {}\n  b: { primary: true }\n");
	CHECK(e && env_primary(e) == &e->machines[1]);
	env_free(e);
	e = ok_load("defaults: { box: b }\nmachines:\n  a: {}\n  b: {}\n");
	CHECK(e && env_primary(e) == NULL);
	env_free(e);
	e = ok_load("defaults: { box: b }\nmachines:\n  a: { primary: true, count: 2 }\n");
	CHECK(e && env_primary(e) == &e->machines[0] && !e->machines[1].primary);
	env_free(e);
	FAILS("defaults: { box: b }\nmachines:\n  a: { primary: true }\n  b: { primary: true }\n",
	      "machines.b.primary: only one machine can be primary (a is too)", 4, 3,
	      "set `primary: true` on one machine");
}

static void probes(void)
{
	struct env *e = ok_load(ONE "    ready:\n      - { tcp: 5432 }\n"
				    "      - { http: \"http://localhost:8080/health\", status: 204, "
				    "timeout: 5s }\n"
				    "      - { command: pg_isready, interval: 200ms }\n");
	CHECK(e && e->machines[0].nready == 3);
	if (e && e->machines[0].nready == 3) {
		const struct probe *p = e->machines[0].ready;
		CHECK(p[0].kind == PROBE_TCP && p[0].tcp == 5432 && p[0].status == ENV_PROBE_STATUS &&
		      p[0].timeout_ms == ENV_PROBE_TIMEOUT_MS &&
		      p[0].interval_ms == ENV_PROBE_INTERVAL_MS);
		CHECK(p[1].kind == PROBE_HTTP && p[1].status == 204 && p[1].timeout_ms == 5000);
		CHECK_STR(p[1].http, "http://localhost:8080/health");
		CHECK(p[2].kind == PROBE_COMMAND && p[2].interval_ms == 200);
		CHECK_STR(p[2].command, "pg_isready");
	}
	env_free(e);
	/* defaults give every machine the probes; a machine's own list replaces them */
	e = ok_load("defaults: { box: b, ready: [{ tcp: 22 }] }\nmachines:\n  a: {}\n"
		    "  b: { ready: [] }\n");
	CHECK(e && e->machines[0].nready == 1 && e->machines[1].nready == 0);
	env_free(e);
	FAILS(ONE "    ready: [{ tcp: 1, command: x }]\n",
	      "machines.m.ready[1]: a probe needs exactly one of `tcp`, `http` and `command`", 4, 13,
	      NULL);
	FAILS(ONE "    ready: [{ timeout: 5s }]\n",
	      "machines.m.ready[1]: a probe needs exactly one of `tcp`, `http` and `command`", 4, 13,
	      NULL);
	FAILS(ONE "    ready: [{ tcp: 1, status: 200 }]\n",
	      "machines.m.ready[1]: `status` belongs to http probes", 4, 13, NULL);
	FAILS(ONE "    ready: [{ http: \"ftp://x/\" }]\n",
	      "machines.m.ready[1].http: \"ftp://x/\" is not an http:// or https:// URL", 0, 0, NULL);
	FAILS(ONE "    ready: [{ tcp: 70000 }]\n",
	      "machines.m.ready[1].tcp: \"70000\" is not a number from 1 to 65535", 0, 0, NULL);
	FAILS(ONE "    ready: [{ tcp: 1, interval: 0s }]\n",
	      "machines.m.ready[1]: `interval` must be more than 0", 0, 0, NULL);
}

static void auto_ports(void)
{
	struct env *e = ok_load(ONE "    ports: auto\n");
	CHECK(e && e->machines[0].ports_auto.on && e->machines[0].nports == 0);
	env_free(e);
	e = ok_load(ONE "    ports: { auto: true, exclude: [22, \"6000-6100\"] }\n");
	CHECK(e && e->machines[0].ports_auto.on && e->machines[0].ports_auto.exclude.n == 2);
	if (e) {
		const struct auto_ports *a = &e->machines[0].ports_auto;
		CHECK(auto_ports_excluded(a, 22) && auto_ports_excluded(a, 6000) &&
		      auto_ports_excluded(a, 6100) && !auto_ports_excluded(a, 6101) &&
		      !auto_ports_excluded(a, 80));
	}
	env_free(e);
	/* a machine's list replaces auto from defaults */
	e = ok_load("defaults: { box: b, ports: auto }\nmachines:\n  a: {}\n"
		    "  b: { ports: [{ guest: 80 }] }\n");
	CHECK(e && e->machines[0].ports_auto.on && !e->machines[1].ports_auto.on &&
	      e->machines[1].nports == 1);
	env_free(e);
	FAILS(ONE "    ports: all\n",
	      "machines.m.ports: expected a list of forwards or `auto`, got \"all\"", 4, 12, NULL);
	FAILS(ONE "    ports: { auto: true, exclude: [\"9-1\"] }\n",
	      "machines.m.ports.exclude[1]: \"9-1\" is not a port or a range of ports", 0, 0, NULL);
	FAILS(ONE "    ports: { auto: true, exlude: [1] }\n", "machines.m.ports.exlude: unknown key",
	      0, 0, "did you mean `exclude`?");
}

static void many_errors_sorted(void)
{
	CHECK(!load("machines:\n  m:\n    memory: x\n    cpus: y\n    box: \"\"\n"));
	CHECK(errs.n == 3); /* not "no box" too: its value was reported */
	for (size_t i = 1; i < errs.n; i++)
		CHECK(errs.v[i - 1].line <= errs.v[i].line);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/corral-envfile.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	snprintf(name, sizeof(name), "%s/corral.yaml", dir);
	put("scripts/setup.sh", "#!/bin/sh\necho setup\n");
	put("conf/app.ini", "[app]\n");
	put("conf/hosts", "m\n");
	put("site.yml", "- hosts: all\n");
	put("first.key", "key\n");
	RUN(sizes);
	RUN(durations);
	RUN(addresses);
	RUN(minimal_defaults);
	RUN(every_key);
	RUN(version_rules);
	RUN(defaults_merge);
	RUN(no_machines);
	RUN(count_expansion);
	RUN(names);
	RUN(depends_on);
	RUN(anchors_and_merges);
	RUN(duplicate_keys);
	RUN(bad_text);
	RUN(too_big);
	RUN(error_cap);
	RUN(env_vars);
	RUN(value_errors);
	RUN(ports);
	RUN(networks);
	RUN(steps);
	RUN(step_errors);
	RUN(top_level_provision);
	RUN(step_ids);
	RUN(find);
	RUN(keys);
	RUN(primary);
	RUN(many_errors_sorted);
	RUN(probes);
	RUN(auto_ports);
	diag_list_free(&errs);
	struct diag d;
	rm_rf(dir, &d);
	return T_END();
}
