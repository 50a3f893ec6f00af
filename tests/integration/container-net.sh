#!/usr/bin/env bash
# Container networking: an envfile network's subnet on its own bridge, a
# static address honoured and an allocated one next to it, machines
# reaching each other, a subnet clashing with a host route refused (naming
# the route), a bad static address refused, leases released on destroy;
# outbound NAT: a machine reaches a server in another network namespace
# behind the host (not the bridge) and the server sees the host's address,
# with forwarding switched on by corral and its nft table left idempotent;
# the firewall: a LAN host routing the subnet through this host, a machine
# on another corral network and a machine to a host service all dropped,
# while outbound traffic, corral ssh and forwarded ports work; bridges and
# set elements go with the last machine.
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny)
fwd_port=$(rand_port)
"$CORRAL" box add "$(dirname "$box")/catalog.json" >/dev/null 2>&1
dev=$(ip -4 route show default | awk '{ print $5; exit }')
route=$(ip -4 route show dev "$dev" scope link | awk '{ print $1; exit }')
mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<YAML
version: 1
networks:
  back: { subnet: 10.214.77.0/24 }
  other: { subnet: 10.214.78.0/24 }
  hostnet: { subnet: $route }
defaults: { box: corral/tiny, provider: container }
machines:
  a:
    networks: [{ network: back, ip: 10.214.77.50 }]
    ports: [{ guest: 22, host: $fwd_port }]
  e: { networks: [{ network: other, ip: 10.214.78.60 }] }
  b: { networks: [{ network: back }] }
  c: { autostart: false, networks: [{ network: hostnet }] }
  d: { autostart: false, networks: [{ network: back, ip: 10.214.77.1 }] }
YAML
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'

# "Outside": a namespace on a veth of the host, 198.19.N.0/24, with no route
# back to the machines' subnet, so only a masqueraded connection is answered.
# Its server replies with the peer address it sees.
n=$((RANDOM % 250)) ns=corral-nat-$$ hv=cnat$$h
out_ip=198.19.$n.2 host_ip=198.19.$n.1 out_port=$(rand_port)
on_exit "ip netns del $ns 2>/dev/null; ip link del $hv 2>/dev/null"
ip netns add "$ns"
ip link add "$hv" type veth peer name cnat$$n netns "$ns"
ip addr add "$host_ip/24" dev "$hv" && ip link set "$hv" up
ip -n "$ns" addr add "$out_ip/24" dev "cnat$$n" && ip -n "$ns" link set "cnat$$n" up
# It also plays a LAN host that routes the machines' subnets through this host.
ip -n "$ns" route add 10.214.76.0/22 via "$host_ip"
# A service of the host's own, on every address (the gateways' too), on a
# port the kernel picks free.
python3 -c 'import socket
s=socket.socket(); s.bind(("0.0.0.0", 0)); s.listen(8)
print(s.getsockname()[1], flush=True)
while True:
    c, a = s.accept(); c.sendall(b"host-service\n"); c.close()' >"$T/svc_port" &
on_exit "kill $! 2>/dev/null"
for _ in $(seq 100); do [ -s "$T/svc_port" ] && break; sleep 0.05; done
read -r svc_port <"$T/svc_port"
ip netns exec "$ns" python3 -c 'import socket,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(8)
while True:
    c, a = s.accept(); c.sendall((a[0] + "\n").encode()); c.close()' "$out_ip" "$out_port" &
on_exit "kill $! 2>/dev/null"
fwd_was=$(cat /proc/sys/net/ipv4/ip_forward)
on_exit "echo $fwd_was >/proc/sys/net/ipv4/ip_forward"
nft add table ip corral_test_other
on_exit 'nft delete table ip corral_test_other 2>/dev/null'
echo 0 >/proc/sys/net/ipv4/ip_forward

expect_out "up on a named network" 0 "b: ssh ready" "$CORRAL" up
expect_out "the static address is honoured" 0 "a                        running (container) 10.214.77.50" "$CORRAL" status a
expect_out "the other is allocated from the subnet" 0 "running (container) 10.214.77." "$CORRAL" status b
bridge=$(jq -r '.bridges[0]' .corral/machines/a/state.json)
bridge_e=$(jq -r '.bridges[0]' .corral/machines/e/state.json)
check "the network has its own bridge with the gateway" bash -c "ip -br addr show $bridge | grep -q 10.214.77.1/24"
expect_out "b reaches a" 0 "SSH-2.0" "$CORRAL" ssh b -c 'nc -w 2 10.214.77.50 22 </dev/null | head -c 7'
expect_out "b's default route is its bridge" 0 "default via 10.214.77.1" "$CORRAL" ssh b -c 'ip route'
check "up switched IPv4 forwarding on" [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 1 ]
expect_out "a machine reaches a host outside its bridge, seen as the host (NAT)" 0 "$host_ip" \
	"$CORRAL" ssh b -c "nc -w 3 $out_ip $out_port </dev/null"
check "one masquerade rule however many machines came up" \
	[ "$(nft list chain inet corral postrouting | grep -c masquerade)" = 1 ]
check "the subnet and its bridge are in corral's sets" bash -c \
	"nft list set inet corral subnets | grep -q 10.214.77.0/24 && nft list set inet corral bridges | grep -q $bridge"
check "other nft tables are left alone" bash -c "nft list table ip corral_test_other >/dev/null"

# The firewall: new traffic into a bridge is dropped, from outside and from
# another corral network; guests do not reach the host's own services.
banner_from_lan() { ip netns exec "$ns" timeout 3 bash -c "exec 3<>/dev/tcp/$1/22; head -c 7 <&3" 2>/dev/null; }
check "the LAN host's route to the machines is in place" \
	bash -c "ip -n $ns route | grep -q '10.214.76.0/22 via $host_ip'"
check "a LAN host routing the subnet via this host does not reach a guest's sshd" \
	[ -z "$(banner_from_lan 10.214.77.50)" ]
expect_out "a guest does not reach a guest on another corral network" 0 "blocked" \
	"$CORRAL" ssh b -c 'nc -w 2 10.214.78.60 22 </dev/null | grep -q SSH || echo blocked'
expect_out "... nor the other way" 0 "blocked" \
	"$CORRAL" ssh e -c 'nc -w 2 10.214.77.50 22 </dev/null | grep -q SSH || echo blocked'
check "the host reaches its own service (the test's server is up)" \
	bash -c "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$svc_port; cat <&3' | grep -q host-service"
expect_out "a guest does not reach a host service on 0.0.0.0 via its gateway" 0 "blocked" \
	"$CORRAL" ssh b -c "nc -w 2 10.214.77.1 $svc_port </dev/null | grep -q host-service || echo blocked"
expect_out "... nor via another host address" 0 "blocked" \
	"$CORRAL" ssh b -c "nc -w 2 $host_ip $svc_port </dev/null | grep -q host-service || echo blocked"
expect_out "a guest still reaches the LAN host's server" 0 "$host_ip" \
	"$CORRAL" ssh e -c "nc -w 3 $out_ip $out_port </dev/null"
expect_out "corral ssh still works" 0 "a" "$CORRAL" ssh a -c 'hostname'
check "a forwarded port on 127.0.0.1 still reaches the guest" \
	bash -c "timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/$fwd_port; head -c 7 <&3' | grep -q SSH-2.0"
expect_out "a subnet clashing with a host route is refused" 1 "clashes with host route $route" "$CORRAL" up c
expect_out "the gateway's address is refused" 1 "not a usable machine address in 10.214.77.0/24" "$CORRAL" up d
expect_out "destroy" 0 "b: destroyed" "$CORRAL" destroy -f
check "the leases are released" bash -c "! jq -r '.leases[]' /run/corral/net/$bridge.json | grep -q '$T'"
check "the bridges of the last machines are removed" bash -c \
	"! ip link show $bridge >/dev/null 2>&1 && ! ip link show $bridge_e >/dev/null 2>&1"
check "and their subnets leave corral's sets" bash -c \
	"! nft list set inet corral subnets | grep -q 10.214.7[78].0/24 && ! nft list set inet corral bridges | grep -q $bridge"
