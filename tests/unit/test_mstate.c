/* state.json through its typed accessors (core/host/mstate.h): every kind
 * of key survives save and load; missing keys and keys of the wrong type
 * in a hand-written file read as defaults and are replaced on write, never
 * crash; the machine id's rule and its legacy form; the SSH endpoint of
 * each provider's kind; process identities. */
#include <stdlib.h>
#include <unistd.h>

#include "core/base/digest.h"
#include "core/base/util.h"
#include "core/host/mstate.h"
#include "tests/unit/t.h"

static char dir[] = "/tmp/corral-mstate-XXXXXX";
static struct env env;
static struct machine_cfg cfg = {.name = (char *)"web", .ssh = {.user = (char *)"deploy", .port = 2200}};

static void open_m(struct machine *m)
{
	struct diag d = {0};
	CHECK(machine_open(m, &env, &cfg, &d) == 0);
}

static void write_state(const char *json)
{
	struct machine m;
	open_m(&m);
	struct diag d = {0};
	CHECK(mkdir_p(m.dir, 0700, &d) == 0);
	_cleanup_free_ char *p = machine_path(&m, "state.json");
	CHECK(write_file_atomic(p, json, strlen(json), 0644, &d) == 0);
	machine_close(&m);
}

static void test_roundtrip(void)
{
	struct machine m;
	struct diag d = {0};
	write_state("{}");
	open_m(&m);
	machine_set_str(&m, MK_PROVIDER, "kvm");
	machine_set_int(&m, MK_SSH_PORT, 2222);
	machine_set_flag(&m, MK_CREATED, true);
	machine_list_add(&m, MK_BRIDGES, "corral0");
	machine_list_add(&m, MK_BRIDGES, "corral-1a2b");
	machine_map_set(&m, MK_SYNCED, "/vagrant", "9p");
	struct mport p[2] = {{.guest = 22, .host = 2222, .host_ip = "127.0.0.1"},
			     {.guest = 53, .host = 5353, .host_ip = "0.0.0.0", .udp = true}};
	machine_set_ports(&m, p, 2);
	CHECK(machine_save(&m, &d) == 0);
	machine_close(&m);

	open_m(&m);
	CHECK_STR(machine_str(&m, MK_PROVIDER), "kvm");
	CHECK(machine_int(&m, MK_SSH_PORT) == 2222 && machine_flag(&m, MK_CREATED));
	CHECK(machine_list_len(&m, MK_BRIDGES) == 2);
	CHECK_STR(machine_list_get(&m, MK_BRIDGES, 1), "corral-1a2b");
	CHECK(machine_list_has(&m, MK_BRIDGES, "corral0") && !machine_list_has(&m, MK_BRIDGES, "x"));
	CHECK_STR(machine_map_get(&m, MK_SYNCED, "/vagrant"), "9p");
	struct mport *v;
	CHECK(machine_ports(&m, &v) == 2 && v[1].udp && v[1].host == 5353);
	CHECK_STR(v[1].host_ip, "0.0.0.0");
	free(v);
	/* unsetting removes the key */
	machine_set_flag(&m, MK_CREATED, false);
	machine_set_str(&m, MK_PROVIDER, NULL);
	CHECK(!json_object_get(m.state, "created") && !json_object_get(m.state, "provider"));
	machine_list_clear(&m, MK_BRIDGES);
	CHECK(machine_list_len(&m, MK_BRIDGES) == 0 && json_is_array(json_object_get(m.state, "bridges")));
	machine_state_clear(&m);
	CHECK(json_object_size(m.state) == 0);
	machine_close(&m);
}

static void test_missing_keys(void)
{
	struct machine m;
	write_state("{}");
	open_m(&m);
	CHECK(machine_str(&m, MK_IP) == NULL && machine_int(&m, MK_PID) == 0);
	CHECK(!machine_flag(&m, MK_SSH_KEY_INSTALLED) && machine_list_len(&m, MK_PROVISIONED) == 0);
	CHECK(machine_list_get(&m, MK_PROVISIONED, 0) == NULL);
	CHECK(machine_map_get(&m, MK_SYNCED, "/x") == NULL);
	struct mport *v;
	CHECK(machine_ports(&m, &v) == 0);
	free(v);
	CHECK(machine_previous_port(&m, 80, false) == 0);
	struct proc_ident p = machine_proc(&m, MP_PORTFWD);
	CHECK(p.pid == 0 && p.start == 0 && !machine_proc_alive(&m, MP_MACHINE));
	machine_close(&m);
}

/* Every key holds what another key type would: defaults, then replaced. */
static void test_wrong_types(void)
{
	struct machine m;
	write_state("{\"provider\": 5, \"pid\": \"12\", \"pid_start\": [1], \"created\": \"yes\","
		    " \"bridges\": \"corral0\", \"provisioned\": [1, \"abc\", null], \"synced\": [],"
		    " \"ports\": [{\"guest\": \"80\", \"host\": 1}, 7, {\"guest\": 80, \"host\": 8080},"
		    " {\"guest\": 81, \"host\": 8081, \"host_ip\": 3, \"protocol\": 9}],"
		    " \"ssh_port\": \"2222\", \"ip\": [\"10.0.0.1\"], \"machine_id\": 12,"
		    " \"net_addrs\": {}}");
	open_m(&m);
	CHECK(machine_str(&m, MK_PROVIDER) == NULL && machine_str(&m, MK_IP) == NULL);
	CHECK(machine_int(&m, MK_PID) == 0 && machine_int(&m, MK_SSH_PORT) == 0);
	CHECK(!machine_flag(&m, MK_CREATED) && !machine_proc_alive(&m, MP_MACHINE));
	CHECK(machine_list_len(&m, MK_BRIDGES) == 0 && machine_list_len(&m, MK_NET_ADDRS) == 0);
	CHECK(machine_list_len(&m, MK_PROVISIONED) == 3);
	CHECK(machine_list_get(&m, MK_PROVISIONED, 0) == NULL);
	CHECK(machine_list_has(&m, MK_PROVISIONED, "abc"));
	CHECK(machine_map_get(&m, MK_SYNCED, "/vagrant") == NULL);
	struct mport *v;
	CHECK(machine_ports(&m, &v) == 2 && v[0].host == 8080 && v[1].host == 8081);
	CHECK(!v[1].udp && v[1].host_ip[0] == '\0');
	free(v);
	CHECK(machine_previous_port(&m, 80, false) == 8080);
	struct endpoint ep;
	struct diag d = {0};
	CHECK(machine_ssh_endpoint(&m, &ep, &d) == -1 && strstr(d.msg, "not created"));
	/* writes replace what was of the wrong type */
	machine_list_add(&m, MK_BRIDGES, "corral1");
	machine_map_set(&m, MK_SYNCED, "/srv", "rsync");
	CHECK_STR(machine_list_get(&m, MK_BRIDGES, 0), "corral1");
	CHECK_STR(machine_map_get(&m, MK_SYNCED, "/srv"), "rsync");
	CHECK(strlen(machine_id(&m)) == MACHINE_ID_LEN);
	machine_close(&m);
}

static void test_machine_id(void)
{
	struct machine m;
	write_state("{}");
	open_m(&m);
	char hex[HASH_HEX_MAX];
	struct hash *h = hash_new("sha256");
	hash_update(h, m.dir, strlen(m.dir));
	hash_final(h, NULL, hex);
	hex[MACHINE_ID_LEN] = '\0';
	CHECK_STR(machine_id(&m), hex);
	CHECK_STR(machine_str(&m, MK_MACHINE_ID), hex); /* recorded */
	machine_close(&m);
	/* a container made before: its 12 digits stay its id */
	write_state("{\"id\": \"0123456789ab\"}");
	open_m(&m);
	CHECK_STR(machine_id(&m), "0123456789ab");
	machine_close(&m);
	/* a VirtualBox VM's uuid is not a machine id */
	write_state("{\"id\": \"0c5f2b6e-1111-2222-3333-444455556666\"}");
	open_m(&m);
	CHECK_STR(machine_id(&m), hex);
	CHECK_STR(machine_str(&m, MK_ID), "0c5f2b6e-1111-2222-3333-444455556666");
	machine_close(&m);
}

static void test_endpoint(void)
{
	struct machine m;
	struct endpoint ep;
	struct diag d = {0};
	write_state("{\"ip\": \"10.213.0.5\"}");
	open_m(&m);
	CHECK(machine_ssh_endpoint(&m, &ep, &d) == 0);
	CHECK_STR(ep.host, "10.213.0.5");
	CHECK(ep.port == 2200);
	CHECK_STR(ep.user, "deploy");
	_cleanup_free_ char *key = machine_path(&m, "id_ed25519");
	_cleanup_free_ char *kh = machine_path(&m, "known_hosts");
	CHECK_STR(ep.key_path, key);
	CHECK_STR(ep.known_hosts, kh);
	/* a forwarded SSH port wins over the address */
	machine_set_int(&m, MK_SSH_PORT, 2233);
	CHECK(machine_ssh_endpoint(&m, &ep, &d) == 0 && ep.port == 2233);
	CHECK_STR(ep.host, "127.0.0.1");
	/* no envfile: the defaults */
	machine_del(&m, MK_SSH_PORT);
	m.cfg = NULL;
	CHECK(machine_ssh_endpoint(&m, &ep, &d) == 0 && ep.port == ENV_SSH_PORT);
	CHECK_STR(ep.user, ENV_SSH_USER);
	machine_close(&m);
}

static void test_proc(void)
{
	struct machine m;
	write_state("{}");
	open_m(&m);
	CHECK(machine_set_proc(&m, MP_PORTFWD, getpid()));
	CHECK(machine_proc_alive(&m, MP_PORTFWD) && !machine_proc_alive(&m, MP_MACHINE));
	CHECK(machine_int(&m, MK_PORTFWD_PID) == getpid() && machine_int(&m, MK_PORTFWD_START) > 0);
	/* the same pid with another start time is another process */
	machine_set_int(&m, MK_PORTFWD_START, machine_int(&m, MK_PORTFWD_START) + 1);
	CHECK(!machine_proc_alive(&m, MP_PORTFWD));
	machine_clear_proc(&m, MP_PORTFWD);
	CHECK(!json_object_get(m.state, "portfwd_pid") && !json_object_get(m.state, "portfwd_start"));
	CHECK(!machine_set_proc(&m, MP_MACHINE, 0x7ffffff0)); /* no such process */
	machine_close(&m);
}

static void test_key_names(void)
{
	/* every key has a name, none twice */
	for (int i = 0; i < MK_COUNT; i++) {
		CHECK(mkey_name((enum mkey)i) && *mkey_name((enum mkey)i));
		for (int j = 0; j < i; j++)
			CHECK(strcmp(mkey_name((enum mkey)i), mkey_name((enum mkey)j)) != 0);
	}
	CHECK_STR(mkey_name(MK_ID), "id");
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	env.state_dir = dir;
	RUN(test_roundtrip);
	RUN(test_missing_keys);
	RUN(test_wrong_types);
	RUN(test_machine_id);
	RUN(test_endpoint);
	RUN(test_proc);
	RUN(test_key_names);
	struct diag d = {0};
	rm_rf(dir, &d);
	return T_END();
}
