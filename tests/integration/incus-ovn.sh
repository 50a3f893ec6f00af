#!/usr/bin/env bash
# Envfile networks as OVN networks on the incus provider, against a real
# LXD 5.0.2 (tests/fakes/lxd-env.sh) wired to a real OVN 23.03 and Open
# vSwitch 3.1 on the userspace (netdev) datapath (tests/fakes/ovn-env.sh:
# this kernel has no openvswitch module). Three tiny machines:
#  - `network_type: ovn` on a server without OVN fails up, naming what
#    is missing, and leaves no instance;
#  - with OVN (network.ovn.northbound_connection and an uplink bridge
#    with ipv4.ovn.ranges), `auto` makes the envfile network an OVN
#    network over that uplink with the envfile's subnet and NAT; a and b
#    join it (a at its static address, b at a picked one) and reach each
#    other's sshd over it;
#  - c's eth0 is on an OVN network of the server's (not routable from
#    here): SSH goes through the corral-ssh proxy device by itself; c
#    says `network_type: bridge`: its envfile network is a bridge;
#  - destroy deletes corral's networks (OVN drops its switches), not the
#    server's.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/fakes/lxd-env.sh"
. "$ROOT/tests/fakes/ovn-env.sh"
ovn_start
lxd_start
"$CORRAL" box add "$(dirname "$(test_box tiny)")/catalog.json" >/dev/null 2>&1
api() { curl -s --unix-socket "$LXD_SOCKET" "http://lxd$1"; }
N=${LXD_SUBNET#10.219.}
N=${N%.0/24}
BACK=10.218.$N
mkdir -p "$T/no" "$T/topo"

cat >"$T/no/corral.yaml" <<YAML
version: 1
networks:
  back: { subnet: $BACK.0/24 }
machines:
  x:
    box: corral/tiny
    provider: incus
    memory: 128M
    provider_options: { incus: { network: $LXD_BRIDGE, network_type: ovn } }
    networks: [{ network: back }]
YAML
expect_out "network_type: ovn on a server without OVN fails up" 1 "has no OVN" "$CORRAL" -C "$T/no" up
check "and leaves no instance" test "$(api /1.0/instances | jq '.metadata | length')" = 0

ovn_lxd
# A network of the server's own on OVN, for c's eth0.
lxd_rest POST /1.0/networks "{\"name\": \"ovnnet\", \"type\": \"ovn\", \"config\": {\"network\": \"$OVN_UPLINK\", \"ipv4.address\": \"10.216.$N.1/24\", \"ipv4.nat\": \"true\", \"ipv6.address\": \"none\"}}" >/dev/null
SWITCHES=$(ovn_nbctl ls-list | wc -l)

cd "$T/topo"
cat >corral.yaml <<YAML
version: 1
networks:
  back: { subnet: $BACK.0/24 }
  side: { subnet: 10.215.$N.0/24 }
defaults:
  box: corral/tiny
  provider: incus
  memory: 128M
machines:
  a:
    provider_options: { incus: { network: $LXD_BRIDGE } }
    networks: [{ network: back, ip: $BACK.10 }]
  b:
    provider_options: { incus: { network: $LXD_BRIDGE } }
    networks: [{ network: back }]
  c:
    provider_options: { incus: { network: ovnnet, network_type: bridge } }
    networks: [{ network: side }]
YAML
out=$("$CORRAL" up 2>&1)
rc=$?
check "up brings the three machines up" test "$rc" = 0 ||
	printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
NET=$(jq -r '.bridges[0]' .corral/machines/a/state.json)
netcfg() { api "/1.0/networks/$NET" | jq -r ".metadata | $1"; }
check "the envfile network is an OVN network" test "$(netcfg .type)" = ovn
check "over the uplink, with the envfile's subnet and NAT" \
	test "$(netcfg '.config | "\(.network) \(."ipv4.address") \(."ipv4.nat")"')" = "$OVN_UPLINK $BACK.1/24 true"
inst() { api "/1.0/instances/$(jq -r .instance ".corral/machines/$1/state.json")" | jq -r ".metadata | $2"; }
check "a's eth1 is on it at its static address" \
	test "$(inst a '.devices.eth1 | "\(.network) \(."ipv4.address")"')" = "$NET $BACK.10"
B=$(inst b '.devices.eth1."ipv4.address"')
check "b's has one picked from the subnet" grep -q "^$BACK\.[0-9]*$" <<<"$B"
expect_out "a reaches b's sshd over OVN" 0 "SSH-2.0" "$CORRAL" ssh a -c "echo | timeout 5 nc $B 22"
expect_out "b reaches a's" 0 "SSH-2.0" "$CORRAL" ssh b -c "echo | timeout 5 nc $BACK.10 22"
check "OVN has the network's switches" test "$(ovn_nbctl ls-list | wc -l)" -gt "$SWITCHES"

check "c's SSH goes through a proxy device (eth0 on OVN)" \
	test "$(inst c '.devices["corral-ssh"].type') $(jq -r .ssh_host .corral/machines/c/state.json)" = "proxy 127.0.0.1"
expect_out "ssh to c works" 0 "hello from c" "$CORRAL" ssh c -c 'echo hello from $(hostname)'
SIDE=$(jq -r '.bridges[0]' .corral/machines/c/state.json)
check "network_type: bridge makes c's envfile network a bridge" \
	test "$(api "/1.0/networks/$SIDE" | jq -r .metadata.type)" = bridge
check "a and b go to their bridge address (no proxy)" test "$(inst a '.devices["corral-ssh"]')" = null

expect_out "destroy" 0 "" "$CORRAL" destroy -f
check "no instance is left" test "$(api /1.0/instances | jq '.metadata | length')" = 0
check "corral's OVN network is gone" test "$(api "/1.0/networks/$NET" | jq -r .error_code)" = 404
check "and its bridge" test "$(api "/1.0/networks/$SIDE" | jq -r .error_code)" = 404
check "and its switches in OVN" test "$(ovn_nbctl ls-list | wc -l)" = "$SWITCHES"
check "the server's own OVN network stays" test "$(api /1.0/networks/ovnnet | jq -r .metadata.type)" = ovn
