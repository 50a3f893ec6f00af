#!/usr/bin/env bash
# The incus provider on a real two-member cluster: the test's LXD daemon
# (member node1) and a second one in a network namespace of its own
# (node2, tests/fakes/lxd-env.sh LXD_MEMBERS=2), reached over HTTPS as a
# remote of the client configuration. Through the CLI: machines pinned by
# `target:` land on their member (status --json, global-status), one
# without is placed by the cluster; a machine on node2 is reached over SSH
# through a proxy device on node2's address (not routable: its bridge is
# in its namespace), and its forwarded port answers there, as `corral
# port` says; the SSH proxy port is tried (one taken on node2 is passed
# over); `ports: auto` there listens on node2's address too, a port taken
# there passed over; machines of one envfile network on two members: `up
# --parallel` warns (each member has its own bridge; OVN would join them;
# the peer checking later sees the other), and indeed they do not reach
# each other; destroy leaves nothing on either member.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/fakes/lxd-env.sh"
box=$(test_box tiny)
LXD_MEMBERS=2
lxd_start
NET=${LXD_SUBNET%.0/24}
NET=10.212.${NET#10.219.}
export LXD_BRIDGE
"$CORRAL" box add "$(dirname "$box")/catalog.json" >/dev/null 2>&1
members() { lxd_rest GET '/1.0/cluster/members?recursion=1' | jq -r '.metadata[] | select(.status == "Online") | .server_name' | sort | xargs; }
check "a cluster of two members, node2 in its own namespace" test "$(members)" = "node1 node2"

# The client: a certificate the cluster trusts, the remote `lab`.
export INCUS_CONF=$T/incus-conf
mkdir -p "$INCUS_CONF/servercerts"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -days 1 \
	-subj /CN=ci-runner -keyout "$INCUS_CONF/client.key" -out "$INCUS_CONF/client.crt" 2>/dev/null
lxd_trust "$INCUS_CONF/client.crt"
cp "$LXD_CLUSTER_CERT" "$INCUS_CONF/servercerts/lab.crt"
printf 'remotes:\n  lab: { addr: "%s", protocol: lxd, auth_type: tls }\n' "$LXD_HTTPS" >"$INCUS_CONF/config.yml"

mkdir -p "$T/env" && cd "$T/env" || exit 1
cat >corral.yaml <<YAML
version: 1
defaults:
  box: corral/tiny
  provider: incus
  memory: 128M
  ssh: { user: root }
  provider_options: { incus: { remote: lab } }
networks:
  back: { subnet: $NET.0/24 }
machines:
  one:
    networks: [{ network: back, ip: $NET.10 }]
    provider_options: { incus: { target: node1 } }
  two:
    networks: [{ network: back, ip: $NET.20 }]
    ports: [{ guest: 8080 }]
    provider_options: { incus: { target: node2 } }
  free: {}
  late:
    ports: auto
    provider_options: { incus: { target: node2 } }
YAML
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
out=$("$CORRAL" up --parallel 3 one two free 2>&1)
rc=$?
check "up: three machines on the cluster" test "$rc" = 0 -a "$(grep -c ': ssh ready' <<<"$out")" = 3 ||
	printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
member() { "$CORRAL" status --json | jq -r ".[] | select(.name == \"$1\") | .member"; }
check "one runs on node1 (target)" test "$(member one)" = node1
check "two runs on node2 (target)" test "$(member two)" = node2
on_server() { lxd_rest GET '/1.0/instances?recursion=1' | jq -r ".metadata[] | select(.name | endswith(\"-$1\")) | .location"; }
check "the server agrees: two's instance is on node2" test "$(on_server two)" = node2
check "free is placed by the cluster" grep -qx 'node[12]' <<<"$(member free)"
gs=$("$CORRAL" global-status)
check "global-status: two on node2 (MEMBER)" grep -qE "^two +incus +running +node2 " <<<"$gs" ||
	printf '%s\n' "$gs" | sed 's/^/#   /'

# SSH to node2: its bridge is in its namespace, the proxy device on node2.
check "two's SSH goes through node2's address" test "$(jq -r .ssh_host .corral/machines/two/state.json)" = "$LXD_MEMBER2_ADDR"
expect_out "corral ssh two (a machine on node2)" 0 "on-two" "$CORRAL" ssh two -c 'echo on-$(hostname)'

# A forwarded port of two listens on node2, and corral says so.
"$CORRAL" ssh two -c 'mkdir -p /tmp/www && echo from-two >/tmp/www/index.html && httpd -p 8080 -h /tmp/www' >/dev/null 2>&1
P=$(jq -r '.ports[] | select(.guest == 8080) | .host' .corral/machines/two/state.json)
expect_out "corral port two: node2's address" 0 "8080 (guest) => $P (host $LXD_MEMBER2_ADDR, tcp)" "$CORRAL" port two
expect_out "two's forwarded port answers from the host" 0 "from-two" curl -s --max-time 5 "http://$LXD_MEMBER2_ADDR:$P/"

# One envfile network, two members: a warning, and no way through.
check "up --parallel warns: one network on two members needs OVN" grep -q "network back: .*OVN" <<<"$out"
check "...naming the other machine's instance and member" grep -Eq \
	"(one: .* member node1, instance $(jq -r .instance .corral/machines/two/state.json) on node2|two: .* member node2, instance $(jq -r .instance .corral/machines/one/state.json) on node1);" <<<"$out"
grep "OVN" <<<"$out" | sed "s/^/#   /"
check "one reaches its own member's gateway on back (ping works)" \
	"$CORRAL" ssh one -c "ping -c 1 -W 2 $NET.1 >/dev/null"
check "one does not reach two over back (a bridge per member)" \
	bash -c "! '$CORRAL' ssh one -c 'ping -c 1 -W 1 $NET.20' >/dev/null 2>&1"

# The SSH proxy port is tried on node2: late's first pick is taken there.
prefix=$(jq -r .instance .corral/machines/two/state.json)
prefix=${prefix%-two}
h=$(printf '%s' "/1.0/instances/$prefix-late" | sha256sum | cut -c1-4)
first=$((40000 + 16#$h % 20000))
# (and the port late's web server listens on, which ports: auto forwards)
Q=$(( 30000 + $$ % 20000 ))
ip netns exec "$LXD_NS" python3 -c 'import socket,sys,time
ss=[socket.socket() for _ in sys.argv[2:]]
[s.bind((sys.argv[1], int(p))) or s.listen(1) for s, p in zip(ss, sys.argv[2:])]; time.sleep(600)' \
	"$LXD_MEMBER2_ADDR" "$first" "$Q" &
squat=$!
on_exit "kill $squat 2>/dev/null"
sleep 0.5
expect_out "up late: on node2 while its first SSH port is taken there" 0 "late: ssh ready" "$CORRAL" up late
got=$(jq -r .ssh_port .corral/machines/late/state.json)
check "late's SSH port is another one ($first taken, got $got)" test "$got" != "$first" -a "$got" != null
expect_out "corral ssh late" 0 "late-ok" "$CORRAL" ssh late -c 'echo late-ok'

# ports: auto on node2: the forward listens on node2's address, and a port
# taken there is passed over ($Q is: the next one is used).
"$CORRAL" ssh late -c "mkdir -p /tmp/www && echo from-late >/tmp/www/index.html && httpd -p $Q -h /tmp/www" >/dev/null 2>&1
auto_fwd() { "$CORRAL" --json port late 2>/dev/null | jq -r ".[] | select(.auto and .guest == $Q) | \"\(.host_ip):\(.host)\""; }
for _ in $(seq 100); do [ -n "$(auto_fwd)" ] && break; sleep 0.2; done
A=$(auto_fwd)
check "ports: auto on node2: on its address, the taken port passed over (got $A)" \
	test "$A" = "$LXD_MEMBER2_ADDR:$((Q + 1))"
[ "$A" = "$LXD_MEMBER2_ADDR:$((Q + 1))" ] || sed 's/^/#   /' .corral/machines/late/ports.log
expect_out "ports: auto on node2: answers from the host" 0 "from-late" curl -s --max-time 5 "http://$A/"
kill "$squat" 2>/dev/null

expect_out "destroy -f" 0 "two: destroyed" "$CORRAL" destroy -f
check "no instance left on either member" test "$(lxd_rest GET '/1.0/instances?all-projects=true' | jq '.metadata | length')" = 0
check "no image left" test "$(lxd_rest GET '/1.0/images' | jq '.metadata | length')" = 0
check "no network of corral left" test -z "$(lxd_rest GET '/1.0/networks?recursion=1' | jq -r '.metadata[] | select(.managed and (.name | startswith("crl")) and .name != env.LXD_BRIDGE) | .name')"
check "no forward listens on node2's address any more (the daemon's own 8443 aside)" \
	bash -c "! ip netns exec '$LXD_NS' ss -ltnH | grep '$LXD_MEMBER2_ADDR:' | grep -vq ':8443 '"
