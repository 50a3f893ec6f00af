#!/usr/bin/env bash
# A running machine whose state.json is damaged, or moved aside: `destroy`
# finds its processes, cgroups, links and address lease from what survives
# (its console.log, the machine id, its directory) and removes them all
# before it says "destroyed".
. "$(dirname "$0")/../lib.sh"

tiny_web "$T/env" 'ports: [{ guest: 80, auto_correct: true }]'
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
M=$T/env/.corral/machines/web
# leftovers: processes writing to its console, its cgroups, its veth, its lease
leftovers() {
	local id=$1 n=0 p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/fd/1" 2>/dev/null)" = "$M/console.log" ] && n=$((n + 1))
	done
	ls -d /sys/fs/cgroup/*/corral/"$id" /sys/fs/cgroup/corral/"$id" 2>/dev/null | while read -r _; do echo cgroup; done
	[ -e "/sys/class/net/cr-${id}0" ] && echo veth
	grep -ls "$M" /run/corral/net/*.json 2>/dev/null | sed 's/^/lease /'
	[ "$n" -gt 0 ] && echo "$n processes"
}

for how in truncated moved-aside; do
	expect_out "$how: up" 0 "ssh ready" "$CORRAL" up
	id=$(jq -r .machine_id "$M/state.json")
	check "$how: the machine has processes, a veth and a lease" [ -n "$(leftovers "$id")" ]
	if [ "$how" = truncated ]; then
		head -c 20 "$M/state.json" >"$M/state.tmp" && mv "$M/state.tmp" "$M/state.json"
		expect_out "$how: status says the state is damaged" 1 "not valid JSON" "$CORRAL" status
	else
		mv "$M/state.json" "$T/state.aside"
	fi
	expect_out "$how: destroy -f removes it from what survives" 0 "web: destroyed" "$CORRAL" destroy -f web
	left=$(leftovers "$id")
	check "$how: nothing of it is left (processes, cgroups, veth, lease)" [ -z "$left" ]
	[ -z "$left" ] || echo "#   left: $left"
	check "$how: its directory is gone" [ ! -e "$M" ]
done
