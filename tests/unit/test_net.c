/* core/host/net: subnet parsing, the clash check against host routes, and the
 * address pool's choices. The bridge itself is covered by the container
 * integration tests. */
#include <arpa/inet.h>
#include <jansson.h>
#include <string.h>

#include "core/host/net.h"
#include "t.h"

static void subnet_parse(void)
{
	struct subnet s;
	struct diag d = {0};
	char out[20];
	CHECK(net_subnet_parse("10.20.0.0/24", &s, &d) == 0);
	CHECK(s.net == 0x0a140000 && s.prefix == 24);
	net_subnet_format(&s, out, sizeof(out));
	CHECK_STR(out, "10.20.0.0/24");
	CHECK(net_subnet_contains(&s, 0x0a1400fe));
	CHECK(!net_subnet_contains(&s, 0x0a140100));
	CHECK(net_subnet_parse("10.20.0.1/24", &s, &d) < 0 && strstr(d.msg, "host bits"));
	CHECK(net_subnet_parse("10.20.0.0/31", &s, &d) < 0 && strstr(d.hint, "8 to 30"));
	CHECK(net_subnet_parse("10.20.0.0", &s, &d) < 0);
	CHECK(net_subnet_parse("10.20.0.0/", &s, &d) < 0);
	CHECK(net_subnet_parse("nope/24", &s, &d) < 0);
}

/* As the kernel prints it: little-endian hex addresses. */
static const char routes[] =
	"Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
	"eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
	"eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	"corral0\t0000D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
	"vpn0\t0000000A\t00000000\t0001\t0\t0\t0\t000000FF\t0\t0\t0\n";

static void route_clash(void)
{
	struct subnet s;
	struct diag d = {0};
	char clash[64] = "";
	net_subnet_parse("10.213.0.0/24", &s, &d);
	CHECK(net_route_clash(routes, &s, "corral0", clash, sizeof(clash)));
	CHECK_STR(clash, "10.0.0.0/8 dev vpn0"); /* its own bridge's route is not a clash */
	net_subnet_parse("192.0.2.128/25", &s, &d);
	CHECK(net_route_clash(routes, &s, NULL, clash, sizeof(clash)));
	CHECK_STR(clash, "192.0.2.0/24 dev eth0");
	net_subnet_parse("172.16.0.0/12", &s, &d);
	CHECK(!net_route_clash(routes, &s, NULL, clash, sizeof(clash))); /* the default route never clashes */
}

/* The lease a name gets in an empty /24 pool. */
static void first_pick(const char *owner, char *ip)
{
	struct subnet s;
	struct diag d = {0};
	json_t *pool = json_object();
	net_subnet_parse("10.20.0.0/24", &s, &d);
	CHECK(net_pool_pick(pool, &s, owner, NULL, NULL, ip, 16, &d) == 0);
	json_decref(pool);
}

static void pool_pick(void)
{
	struct subnet s;
	struct diag d = {0};
	char ip[16], a_ip[16], b_ip[16], msg[80];
	json_t *pool = json_object();
	net_subnet_parse("10.20.0.0/24", &s, &d);
	CHECK(net_pool_pick(pool, &s, "/a", NULL, NULL, a_ip, sizeof(a_ip), &d) == 0);
	CHECK(strncmp(a_ip, "10.20.0.", 8) == 0 && strcmp(a_ip, "10.20.0.1") != 0);
	CHECK(net_pool_pick(pool, &s, "/b", NULL, NULL, b_ip, sizeof(b_ip), &d) == 0);
	CHECK(strcmp(a_ip, b_ip) != 0);
	CHECK(net_pool_pick(pool, &s, "/a", NULL, NULL, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, a_ip); /* a machine keeps its lease */
	CHECK(net_pool_pick(pool, &s, "/c", b_ip, NULL, ip, sizeof(ip), &d) < 0);
	CHECK(strstr(d.msg, "already used by the machine in /b") != NULL);
	CHECK(net_pool_pick(pool, &s, "/c", "10.20.0.1", NULL, ip, sizeof(ip), &d) < 0);
	CHECK(net_pool_pick(pool, &s, "/c", "10.20.0.255", NULL, ip, sizeof(ip), &d) < 0);
	CHECK(net_pool_pick(pool, &s, "/c", "10.30.0.5", NULL, ip, sizeof(ip), &d) < 0);
	CHECK(strstr(d.msg, "not a usable machine address in 10.20.0.0/24") != NULL);
	snprintf(msg, sizeof(msg), "%s", strcmp(a_ip, "10.20.0.9") && strcmp(b_ip, "10.20.0.9")
						 ? "10.20.0.9" : "10.20.0.10");
	CHECK(net_pool_pick(pool, &s, "/a", msg, NULL, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, msg); /* a static address replaces the old lease */
	CHECK(json_object_get(json_object_get(pool, "leases"), a_ip) == NULL);
	json_decref(pool);
}

/* Whatever order machines come in, each gets the same address, and gets
 * it back after its lease is released (destroy) while others came and went. */
static void pool_stable(void)
{
	struct subnet s;
	struct diag d = {0};
	static const char *const owners[] = {"/p/.corral/machines/web-1",
					     "/p/.corral/machines/web-2",
					     "/p/.corral/machines/web-3", "/p/.corral/machines/db"};
	char want[4][16], ip[16];
	for (size_t i = 0; i < 4; i++)
		first_pick(owners[i], want[i]);
	CHECK(strcmp(want[0], want[1]) != 0); /* the hash spreads them (true for these names) */
	net_subnet_parse("10.20.0.0/24", &s, &d);
	json_t *pool = json_object();
	for (size_t i = 4; i-- > 0;) {
		CHECK(net_pool_pick(pool, &s, owners[i], NULL, NULL, ip, sizeof(ip), &d) == 0);
		CHECK_STR(ip, want[i]); /* reverse order, same addresses */
	}
	json_object_del(json_object_get(pool, "leases"), want[1]); /* web-2 destroyed */
	CHECK(net_pool_pick(pool, &s, "/other", NULL, NULL, ip, sizeof(ip), &d) == 0);
	CHECK(strcmp(ip, want[1]) != 0); /* another machine passes over web-2's last address */
	CHECK(net_pool_pick(pool, &s, owners[1], NULL, NULL, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, want[1]);
	json_decref(pool);
}

/* An address the envfile gives a machine that is not up yet is passed over
 * (db's comes up after web, which must not take it), yet can be wanted. */
static void pool_skip(void)
{
	struct subnet s;
	struct diag d = {0};
	char ip[16], w[16];
	first_pick("/web-1", w);
	uint32_t fixed[] = {ntohl(inet_addr(w))};
	const struct net_skip skip = {fixed, 1};
	json_t *pool = json_object();
	net_subnet_parse("10.20.0.0/24", &s, &d);
	CHECK(net_pool_pick(pool, &s, "/web-1", NULL, &skip, ip, sizeof(ip), &d) == 0);
	CHECK(strcmp(ip, w) != 0);
	CHECK(net_pool_pick(pool, &s, "/db", w, &skip, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, w);
	CHECK(net_skips(&skip, fixed[0]) && !net_skips(&skip, fixed[0] + 1) && !net_skips(NULL, 1));
	json_decref(pool);
}

static void pool_full(void)
{
	struct subnet s;
	struct diag d = {0};
	char ip[16];
	json_t *pool = json_object();
	net_subnet_parse("10.20.0.0/30", &s, &d); /* .1 gateway, .2 the only machine address */
	CHECK(net_pool_pick(pool, &s, "/a", NULL, NULL, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, "10.20.0.2");
	CHECK(net_pool_pick(pool, &s, "/b", NULL, NULL, ip, sizeof(ip), &d) < 0);
	CHECK(strstr(d.msg, "no free address left in 10.20.0.0/30") != NULL);
	json_decref(pool);
}

int main(void)
{
	RUN(subnet_parse);
	RUN(route_clash);
	RUN(pool_pick);
	RUN(pool_stable);
	RUN(pool_skip);
	RUN(pool_full);
	return T_END();
}
