/* core/host/net: subnet parsing, the clash check against host routes, and the
 * address pool's choices. The bridge itself is covered by the container
 * integration tests. */
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

static void pool_pick(void)
{
	struct subnet s;
	struct diag d = {0};
	char ip[16];
	json_t *pool = json_object();
	net_subnet_parse("10.20.0.0/24", &s, &d);
	CHECK(net_pool_pick(pool, &s, "/a", NULL, NULL, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, "10.20.0.2"); /* .1 is the gateway */
	CHECK(net_pool_pick(pool, &s, "/b", NULL, NULL, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, "10.20.0.3");
	CHECK(net_pool_pick(pool, &s, "/a", NULL, NULL, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, "10.20.0.2"); /* a machine keeps its lease */
	CHECK(net_pool_pick(pool, &s, "/c", "10.20.0.3", NULL, ip, sizeof(ip), &d) < 0);
	CHECK(strstr(d.msg, "already used by the machine in /b") != NULL);
	CHECK(net_pool_pick(pool, &s, "/c", "10.20.0.1", NULL, ip, sizeof(ip), &d) < 0);
	CHECK(net_pool_pick(pool, &s, "/c", "10.20.0.255", NULL, ip, sizeof(ip), &d) < 0);
	CHECK(net_pool_pick(pool, &s, "/c", "10.30.0.5", NULL, ip, sizeof(ip), &d) < 0);
	CHECK(strstr(d.msg, "not a usable machine address in 10.20.0.0/24") != NULL);
	CHECK(net_pool_pick(pool, &s, "/a", "10.20.0.9", NULL, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, "10.20.0.9"); /* a static address replaces the old lease */
	CHECK(json_object_get(json_object_get(pool, "leases"), "10.20.0.2") == NULL);
	json_decref(pool);
}

/* An address the envfile gives a machine that is not up yet is passed over
 * (db at .2 comes up after web, which must not take .2), yet can be wanted. */
static void pool_skip(void)
{
	struct subnet s;
	struct diag d = {0};
	char ip[16];
	json_t *pool = json_object();
	static const uint32_t fixed[] = {0x0a140002, 0x0a140004};
	const struct net_skip skip = {fixed, 2};
	net_subnet_parse("10.20.0.0/24", &s, &d);
	CHECK(net_pool_pick(pool, &s, "/web-1", NULL, &skip, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, "10.20.0.3");
	CHECK(net_pool_pick(pool, &s, "/web-2", NULL, &skip, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, "10.20.0.5");
	CHECK(net_pool_pick(pool, &s, "/db", "10.20.0.2", &skip, ip, sizeof(ip), &d) == 0);
	CHECK_STR(ip, "10.20.0.2");
	CHECK(net_skips(&skip, 0x0a140004) && !net_skips(&skip, 0x0a140003) && !net_skips(NULL, 1));
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
	RUN(pool_skip);
	RUN(pool_full);
	return T_END();
}
