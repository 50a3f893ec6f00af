#!/usr/bin/env bash
# examples/topology, run as its README says, by an ordinary user (made by
# useradd, with its subuid range and a delegated cgroup, as a login session
# has: systemd runs as each guest's PID 1): db, web-1, web-2 and lb come up
# in depends_on order with the playbook across all four; the load balancer
# answers on its forwarded port, in turn from each web server, each with
# the items it read from db over the backend network; provision again
# changes nothing; destroy. Offline: nothing in the guests is downloaded.
# (Root mode's multi-machine topologies: roles-topology.sh, conformance.)
. "$(dirname "$0")/../lib.sh"

box=$(test_box debian-12)
user_make crltop
user_cgroup
tun_open
user_example topology
expect_out "box add (README)" 0 "corral/debian-12" corral box add "$(dirname "$box")/catalog.json"

out=$(corral up 2>&1)
check "corral up: db, then both web servers, then lb, then site.yml" \
	grep -qz 'db: ssh ready.*web-[12]: ssh ready.*web-[12]: ssh ready.*lb: ssh ready.*site | PLAY RECAP' <<<"$out"
check "the playbook failed nowhere" grep -q 'web-2 .* failed=0' <<<"$out"
[[ $out == *"PLAY RECAP"* ]] || printf '%s\n' "$out" | tail -n 40 | sed 's/^/#   /'

# `curl -s localhost:8000`, or the port auto_correct chose when 8000 was taken.
port=$(corral port lb | sed -n 's/.*80 (guest) => \([0-9]*\) .*/\1/p')
check "lb's port 80 is forwarded" test -n "$port"
[ "$port" = 8000 ] || echo "# 8000 was taken: lb is on $port"
a=$(curl -s "localhost:$port") b=$(curl -s "localhost:$port")
page='web-[12]: release 1\.4, 3 items from db: gadget \(3\), gizmo \(7\), widget \(12\)'
check "curl: through lb and a web server to db" grep -qxE "$page" <<<"$a"
check "curl again: the other web server" test "${a%%:*}" != "${b%%:*}" -a -n "$b"
[[ $a$b =~ ^web-.*web- ]] || echo "#   got: $a / $b"
st=$(corral status)
check "corral status: db and lb at their fixed addresses" \
	grep -qzE 'db +running \(container\) 10\.20\.0\.10.*lb +running \(container\) 10\.20\.0\.2\b' <<<"$st"
check "web-1 and web-2: allocated, never lb's" test "$(grep -cE '^web-[12] .* 10\.20\.0\.([3-9]|[1-9][0-9]+)$' <<<"$st")" = 2
expect_out "systemd is db's PID 1, at the root of its own cgroup namespace" 0 "systemd 0::/init.scope" \
	corral ssh db -c 'echo $(cat /proc/1/comm) $(grep ^0:: /proc/1/cgroup)'
out=$(corral provision 2>&1)
check "corral provision: nothing changes" test "$(grep -c ' changed=0 ' <<<"$out")" = 4
expect_out "corral destroy -f" 0 "lb: destroyed" corral destroy -f
for _ in $(seq 50); do [ -z "$(pgrep -u "$U")" ] && break; sleep 0.1; done
check "destroy leaves no process of the user's" test -z "$(pgrep -u "$U")"
check "...nor a machine's cgroup in the user's" test -z "$(find "$UCG/corral" -mindepth 1 -type d)"
