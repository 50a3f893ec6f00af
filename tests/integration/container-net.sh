#!/usr/bin/env bash
# Container networking: an envfile network's subnet on its own bridge, a
# static address honoured and an allocated one next to it, machines
# reaching each other, a subnet clashing with a host route refused (naming
# the route), a bad static address refused, leases released on destroy.
. "$(dirname "$0")/../lib.sh"

export CORRAL_BOX_CACHE=${CORRAL_BOX_CACHE:-/var/cache/corral-test/boxes}
box=$("$ROOT/boxes/build" tiny 2>/dev/null | tail -n 1)
"$CORRAL" box add "$(dirname "$box")/catalog.json" >/dev/null 2>&1
dev=$(ip -4 route show default | awk '{ print $5; exit }')
route=$(ip -4 route show dev "$dev" scope link | awk '{ print $1; exit }')
mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<YAML
version: 1
networks:
  back: { subnet: 10.214.77.0/24 }
  hostnet: { subnet: $route }
defaults: { box: corral/tiny, provider: container }
machines:
  a: { networks: [{ network: back, ip: 10.214.77.50 }] }
  b: { networks: [{ network: back }] }
  c: { autostart: false, networks: [{ network: hostnet }] }
  d: { autostart: false, networks: [{ network: back, ip: 10.214.77.1 }] }
YAML
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'

expect_out "up on a named network" 0 "b: ssh ready" "$CORRAL" up
expect_out "the static address is honoured" 0 "a                        running (container) 10.214.77.50" "$CORRAL" status a
expect_out "the other is allocated from the subnet" 0 "running (container) 10.214.77." "$CORRAL" status b
bridge=$(jq -r '.bridges[0]' .corral/machines/a/state.json)
check "the network has its own bridge with the gateway" bash -c "ip -br addr show $bridge | grep -q 10.214.77.1/24"
expect_out "b reaches a" 0 "SSH-2.0" "$CORRAL" ssh b -c 'nc -w 2 10.214.77.50 22 </dev/null | head -c 7'
expect_out "b's default route is its bridge" 0 "default via 10.214.77.1" "$CORRAL" ssh b -c 'ip route'
expect_out "a subnet clashing with a host route is refused" 1 "clashes with host route $route" "$CORRAL" up c
expect_out "the gateway's address is refused" 1 "not a usable machine address in 10.214.77.0/24" "$CORRAL" up d
expect_out "destroy" 0 "b: destroyed" "$CORRAL" destroy -f
check "the leases are released" bash -c "! grep -q '$T' /run/corral/net/$bridge.json"
