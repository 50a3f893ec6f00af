/* The kvm provider without booting: golden QEMU argv files (libvirt
 * style), the accelerator choice on nested-PVM hosts, the cidata image
 * the QMP client against a scripted server (host ports: test_ports.c), and
 * whether the `provisioned` checkpoint must be disk-only (a 9p mount).
 *
 * Each tests/golden/kvm/NAME.yaml is loaded by the real envfile parser (no
 * file-system checks, as if at /golden/NAME/corral.yaml); its header
 * comments give the host facts:
 *   # accel: kvm|tcg            # net: tap|socket
 *   # box: {metadata.json}      (kernel/initrd names become /box/NAME)
 *   # tsc_khz: N                (the host's TSC rate; absent: unknown)
 * and every machine's argv (machine directory /m/NAME, SSH port 2222 + its
 * index, host port 0 -> 30000 + i) is compared with NAME.argv.
 * CORRAL_GOLDEN_UPDATE=1 rewrites the .argv files. */
#include <glob.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/base/util.h"
#include "core/host/mstate.h"
#include "providers/kvm/kvm.h"
#include "tests/unit/t.h"

#define GOLDEN "tests/golden/kvm"

struct facts {
	bool kvm, tap;
	unsigned tsc_khz;
	json_t *box;
};

static const char *header(const char *text, const char *key)
{
	const char *p = strstr(text, key);
	return p ? p + strlen(key) : NULL;
}

static void parse_facts(const char *text, struct facts *f)
{
	const char *a = header(text, "# accel: "), *n = header(text, "# net: ");
	const char *b = header(text, "# box: "), *t = header(text, "# tsc_khz: ");
	f->tsc_khz = t ? (unsigned)strtoul(t, NULL, 10) : 0;
	f->kvm = a && str_starts(a, "kvm");
	f->tap = n && str_starts(n, "tap");
	_cleanup_free_ char *line = b ? xstrndup(b, strcspn(b, "\n")) : xstrdup("{}");
	f->box = json_loads(line, 0, NULL);
}

static char *box_path(const json_t *box, const char *key)
{
	const char *v = json_string_value(json_object_get(box, key));
	return v ? xasprintf("/box/%s", v) : NULL;
}

static void render_machine(struct buf *out, const struct machine_cfg *mc, size_t idx,
			   const struct facts *f)
{
	struct kvm_box b = {.disk = xstrdup("/box/box.img"), .kernel = box_path(f->box, "kernel"),
			    .initrd = box_path(f->box, "initrd"),
			    .cmdline = xstrdup(json_string_value(json_object_get(f->box, "cmdline"))),
			    .cloud_init = json_is_true(json_object_get(f->box, "cloud_init")),
			    .firmware = xstrdup(json_string_value(json_object_get(f->box, "firmware")))};
	struct qemu_host h = {.binary = KVM_QEMU, .kvm = f->kvm, .ovmf_code = KVM_OVMF_CODE,
			      .tsc_khz = f->tsc_khz};
	unsigned ports[16] = {0};
	struct qemu_net nets[4] = {0};
	for (size_t i = 0; i < mc->nports && i < 16; i++)
		ports[i] = mc->ports[i].host ? mc->ports[i].host : 30000 + (unsigned)i;
	for (size_t i = 0; i < mc->nnetworks && i < 4; i++) {
		if (f->tap)
			snprintf(nets[i].tap, sizeof(nets[i].tap), "ck%s%zu", mc->name, i);
		else
			snprintf(nets[i].mcast, sizeof(nets[i].mcast), "230.0.1.2:2000%zu", i);
		snprintf(nets[i].ip, sizeof(nets[i].ip), "%s/24",
			 mc->networks[i].ip ? mc->networks[i].ip : "10.213.0.9");
	}
	_cleanup_free_ char *dir = xasprintf("/m/%s", mc->name);
	struct qemu_run r = {.dir = dir, .ssh_port = 2222 + (unsigned)idx, .host_ports = ports,
			     .nets = nets, .cidata = b.cloud_init};
	struct strv argv;
	struct diag d = {0};
	buf_printf(out, "== %s\n", mc->name);
	if (qemu_argv(mc, &b, &h, &r, &argv, &d) < 0) {
		buf_printf(out, "error: %s\nhint: %s\n", d.msg, d.hint);
	} else {
		for (size_t i = 0; i < argv.n; i++)
			buf_printf(out, "%s\n", argv.v[i]);
		CHECK(argv.v[argv.n] == NULL);
		strv_free(&argv);
	}
	kvm_box_free(&b);
}

static void check_case(const char *yaml)
{
	char *text;
	size_t len;
	struct diag d = {0};
	CHECK(read_file(yaml, 1 << 20, &text, &len, &d) == 0);
	struct facts f;
	parse_facts(text, &f);
	const char *base = strrchr(yaml, '/') + 1;
	_cleanup_free_ char *name = xasprintf("/golden/%.*s/corral.yaml", (int)(strlen(base) - 5), base);
	struct env *e = NULL;
	struct diag_list errs = {0};
	if (envfile_load_buffer(name, text, len, ENVFILE_NO_FS, &e, &errs) < 0) {
		for (size_t i = 0; i < errs.n; i++)
			printf("#   %s:%d:%d: %s\n", yaml, errs.v[i].line, errs.v[i].col, errs.v[i].msg);
		diag_list_free(&errs);
		t_case_failed = 1;
	} else {
		struct buf got = {0};
		for (size_t i = 0; i < e->nmachines; i++)
			render_machine(&got, &e->machines[i], i, &f);
		_cleanup_free_ char *argvp = xasprintf("%.*s.argv", (int)(strlen(yaml) - 5), yaml);
		if (getenv("CORRAL_GOLDEN_UPDATE"))
			write_file_atomic(argvp, got.s, got.len, 0644, &d);
		char *want = NULL;
		if (read_file(argvp, 1 << 20, &want, NULL, &d) < 0)
			printf("#   %s\n", d.msg);
		if (!want || strcmp(got.s, want) != 0) {
			printf("#   %s: argv differs from %s; got:\n%s", yaml, argvp, got.s);
			t_case_failed = 1;
		}
		free(want);
		buf_free(&got);
		env_free(e);
	}
	json_decref(f.box);
	free(text);
}

static void test_golden_files(void)
{
	glob_t g;
	CHECK(glob(GOLDEN "/*.yaml", 0, NULL, &g) == 0 && g.gl_pathc >= 5);
	for (size_t i = 0; i < g.gl_pathc; i++)
		check_case(g.gl_pathv[i]);
	globfree(&g);
}

static void pick(const char *want, struct accel_facts f, bool kvm, const char *why_part, int rc)
{
	bool got = !kvm;
	char why[256];
	struct diag d = {0};
	CHECK(accel_pick(want, &f, &got, why, sizeof(why), &d) == rc);
	if (rc == 0)
		CHECK(got == kvm);
	if (why_part && !strstr(rc ? d.msg : why, why_part)) {
		printf("#   accel %s: \"%s\" lacks \"%s\"\n", want, rc ? d.msg : why, why_part);
		t_case_failed = 1;
	}
	if (!why_part && rc == 0 && why[0]) {
		printf("#   accel %s: unexpected warning \"%s\"\n", want, why);
		t_case_failed = 1;
	}
}

static void test_accel(void)
{
	struct accel_facts good = {.dev_kvm = true}, none = {0};
	struct accel_facts pvm = {.dev_kvm = true, .pvm_module = true, .nested_pvm = true};
	struct accel_facts pvm_cmdline = {.dev_kvm = true, .nested_pvm = true};
	struct accel_facts denied = {.dev_kvm_denied = true}; /* not in group kvm */
	pick("auto", good, true, NULL, 0);
	pick(NULL, good, true, NULL, 0);
	pick("auto", none, false, "missing or unusable", 0);
	pick("auto", pvm, false, "nested PVM (kvm_pvm is loaded and nested_pvm=1", 0);
	pick("auto", pvm_cmdline, false, "nested_pvm=1 is on the host's command line", 0);
	pick("tcg", good, false, NULL, 0);
	pick("kvm", good, true, NULL, 0);
	pick("kvm", pvm, true, "may hang", 0);
	pick("kvm", none, false, "/dev/kvm is missing", -1);
	pick("auto", denied, false, "you may not open /dev/kvm; for KVM, join the group", 0);
	pick(NULL, denied, false, "usermod -aG kvm", 0);
	pick("kvm", denied, false, "you may not open /dev/kvm", -1);
	pick("tcg", denied, false, NULL, 0);
	/* this very host: whatever it is, the probe and the choice agree */
	struct accel_facts here;
	accel_probe(&here);
	bool kvm;
	char why[256];
	struct diag d = {0};
	CHECK(accel_pick("auto", &here, &kvm, why, sizeof(why), &d) == 0);
	CHECK(!kvm || (!here.pvm_module && !here.nested_pvm));
	printf("# this host: /dev/kvm %s, kvm_pvm %s, nested_pvm %s -> %s\n",
	       here.dev_kvm ? "usable" : here.dev_kvm_denied ? "denied" : "no", here.pvm_module ? "yes" : "no",
	       here.nested_pvm ? "yes" : "no", kvm ? "KVM" : "TCG");
}

static void test_cidata(void)
{
	char dir[] = "/tmp/corral-cidata.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	_cleanup_free_ char *iso = path_join(dir, "cidata.iso");
	struct qemu_net net = {.ip = "10.20.0.5/24"};
	struct cidata c = {.user = "vagrant", .pubkey = "ssh-ed25519 AAAAC3Nza corral",
			   .hostname = "web-1", .instance_id = "abc123", .nets = &net, .nnets = 1,
			   .dir = dir};
	struct diag d = {0};
	CHECK(cidata_write(iso, &c, &d) == 0);
	char *data = NULL;
	size_t len = 0;
	CHECK(read_file(iso, 4 << 20, &data, &len, &d) == 0);
	/* the primary volume descriptor at sector 16, with the label cloud-init looks for */
	CHECK(len > 0x8030 && memcmp(data + 0x8001, "CD001", 5) == 0);
	CHECK(len > 0x8030 && memcmp(data + 0x8028, "CIDATA ", 7) == 0);
	CHECK(memmem(data, len, "ssh-ed25519 AAAAC3Nza corral", 28) != NULL);
	CHECK(memmem(data, len, "#cloud-config", 13) != NULL);
	CHECK(memmem(data, len, "10.20.0.5/24", 12) != NULL);
	CHECK(memmem(data, len, "\"accept-ra\": false", 18) != NULL); /* private NIC: no RA wait */
	CHECK(memmem(data, len, "\"local-hostname\": \"web-1\"", 25) != NULL);
	CHECK(memmem(data, len, "Content-Type: multipart", 23) == NULL);
	CHECK(memmem(data, len, "ssh_keys", 8) == NULL);
	free(data);
	/* the host key corral made, 9p mounts, and the envfile's user-data merged */
	struct synced_folder sf[2] = {{.host = "/h", .guest = "/srv/nine", .type = SYNC_AUTO},
				      {.host = "/h2", .guest = "/srv/copy", .type = SYNC_RSYNC}};
	c.host_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n";
	c.host_pub = "ssh-ed25519 AAAAhost corral-host";
	c.user_data = "#cloud-config\nruncmd: [[touch, /etc/from-user]]\n";
	c.synced = sf, c.nsynced = 2;
	CHECK(unlink(iso) == 0);
	CHECK(cidata_write(iso, &c, &d) == 0);
	struct stat st;
	CHECK(stat(iso, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(read_file(iso, 4 << 20, &data, &len, &d) == 0);
	CHECK(memmem(data, len, "\"ed25519_public\": \"ssh-ed25519 AAAAhost corral-host\"", 51));
	CHECK(memmem(data, len, "BEGIN OPENSSH PRIVATE KEY", 25) != NULL);
	CHECK(memmem(data, len, "\"ssh_genkeytypes\": [\n", 20) != NULL);
	CHECK(memmem(data, len, "Content-Type: multipart/mixed", 29) != NULL);
	CHECK(memmem(data, len, "Merge-Type: list(append)", 24) != NULL);
	CHECK(memmem(data, len, "runcmd: [[touch, /etc/from-user]]", 33) != NULL);
	CHECK(memmem(data, len, "\"corral0\",", 10) != NULL);
	CHECK(memmem(data, len, "|| true", 7) != NULL); /* no 9p in the kernel: rsync instead */
	CHECK(memmem(data, len, "\"/srv/nine\"", 11) != NULL);
	CHECK(memmem(data, len, "/srv/copy", 9) == NULL); /* rsync: copied over SSH instead */
	free(data);
	rm_rf(dir, &d);
}

/* A QMP server that greets, acknowledges capabilities, sends an event
 * before each reply, and answers "boom" with an error. */
static void *fake_qmp(void *arg)
{
	int l = *(int *)arg, c = accept(l, NULL, NULL);
	char buf[4096];
	const char *hello = "{\"QMP\": {\"version\": {}, \"capabilities\": []}}\r\n";
	if (c < 0 || write(c, hello, strlen(hello)) < 0)
		return NULL;
	ssize_t n;
	while ((n = read(c, buf, sizeof(buf) - 1)) > 0) {
		buf[n] = '\0';
		const char *ev = "{\"event\": \"RESUME\", \"timestamp\": {}}\r\n";
		const char *rep = strstr(buf, "boom") ? "{\"error\": {\"class\": \"GenericError\", \"desc\": \"it broke\"}}\r\n"
			: strstr(buf, "human-monitor") ? "{\"return\": \"Error: no snapshot\\r\\n\"}\r\n"
			: "{\"return\": {\"status\": \"running\"}}\r\n";
		if (write(c, ev, strlen(ev)) < 0 || write(c, rep, strlen(rep)) < 0)
			break;
	}
	close(c);
	return NULL;
}

static void test_qmp(void)
{
	char dir[] = "/tmp/corral-qmp.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	_cleanup_free_ char *path = path_join(dir, "qmp.sock");
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	CHECK(bind(l, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(l, 1) == 0);
	pthread_t th;
	pthread_create(&th, NULL, fake_qmp, &l);
	struct qmp *q;
	struct diag d = {0};
	CHECK(qmp_open(path, 2000, &q, &d) == 0);
	json_t *ret = NULL;
	CHECK(qmp_exec(q, "query-status", NULL, &ret, &d) == 0);
	CHECK(ret && strcmp(json_string_value(json_object_get(ret, "status")), "running") == 0);
	json_decref(ret);
	CHECK(qmp_exec(q, "boom", NULL, NULL, &d) == -1 && strstr(d.msg, "it broke"));
	CHECK(qmp_hmp(q, "loadvm x", &d) == -1 && strstr(d.msg, "loadvm x: Error: no snapshot"));
	qmp_close(q);
	pthread_join(th, NULL);
	close(l);
	rm_rf(dir, &d);
}

/* Disk-only (kvm_guest_9p) from what the guest set-up recorded, not from
 * the envfile: an `auto` folder that fell back to rsync keeps savevm. */
static void test_checkpoint_9p(void)
{
	struct synced_folder sf[2] = {{.host = (char *)"/h/a", .guest = (char *)"/a", .type = SYNC_AUTO},
				      {.host = (char *)"/h/b", .guest = (char *)"/b", .type = SYNC_RSYNC}};
	struct machine_cfg mc = {.name = (char *)"m", .synced = sf, .nsynced = 2};
	struct env e = {.state_dir = (char *)"/nonexistent"};
	struct machine m;
	machine_open_blank(&m, &e, &mc);
	CHECK(kvm_guest_9p(&m)); /* no record yet: the configured type (auto is 9p) */
	machine_map_set(&m, MK_SYNCED, "/a", "rsync");
	machine_map_set(&m, MK_SYNCED, "/b", "rsync");
	CHECK(!kvm_guest_9p(&m)); /* auto fell back to rsync: a full checkpoint */
	machine_map_set(&m, MK_SYNCED, "/a", "9p");
	CHECK(kvm_guest_9p(&m)); /* mounted over 9p: disk only */
	sf[0].type = SYNC_RSYNC;
	machine_map_clear(&m, MK_SYNCED);
	CHECK(!kvm_guest_9p(&m)); /* rsync only */
	mc.nsynced = 0;
	CHECK(!kvm_guest_9p(&m));
	machine_close(&m);
}

int main(void)
{
	RUN(test_golden_files);
	RUN(test_accel);
	RUN(test_cidata);
	RUN(test_qmp);
	RUN(test_checkpoint_9p);
	return T_END();
}
