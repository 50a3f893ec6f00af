#!/usr/bin/env bash
# `ports: auto` on a kvm machine (the tiny-kvm box, TCG here): the watcher
# reads the guest's /proc/net/tcp{,6} over one SSH channel and adds QEMU
# hostfwd rules: what the guest starts listening on is forwarded (same
# port, or the next free one when the host's is taken), excluded ranges
# are not, a closed port's forward is removed, `corral port --watch` shows
# both, and halt stops the watcher.
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny-kvm)
mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<YAML
version: 1
machines:
  vm:
    box: corral/tiny-kvm
    box_url: file://$(dirname "$box")/catalog.json
    provider: kvm
    memory: 256M
    ports: { auto: true, exclude: [6000-6100] }
YAML
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
M=$T/env/.corral/machines/vm
free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for _ in $(seq 20); do
	A=$((20000 + RANDOM % 20000)) B=$((A + 10))
	free "$A" && free $((A + 1)) && free "$B" && break
done
python3 -c 'import socket,sys,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(1); time.sleep(300)' "$A" &
on_exit "kill $! 2>/dev/null"

expect_out "up with ports: auto" 0 "vm: ssh ready" corral -C "$T/env" up
check "no warning that kvm ignores it" bash -c '! grep -q "not supported" <<<"$1"' _ "$("$CORRAL" -C "$T/env" up 2>&1)"
"$CORRAL" -C "$T/env" port --watch >"$T/watch.txt" 2>&1 &
watcher=$!
on_exit "kill $watcher 2>/dev/null"
"$CORRAL" -C "$T/env" ssh -c "mkdir -p /tmp/w && echo kvm-auto >/tmp/w/index.html && busybox httpd -p $B -h /tmp/w && busybox httpd -p $A -h /tmp/w && busybox httpd -p 6050 -h /tmp/w"
ports() { "$CORRAL" -C "$T/env" --json port | jq -r '.[] | select(.auto) | "\(.guest):\(.host)"' | sort -n | tr '\n' ' '; }
wait_ports() { # WANT: until `corral port` lists exactly these auto forwards (15 s)
	local i
	for i in $(seq 150); do [ "$(ports)" = "$1" ] && return 0; sleep 0.1; done
	echo "#   auto forwards: $(ports), wanted: $1"
	return 1
}
check "listening ports are forwarded: same port, a busy one to the next free, 6050 excluded" \
	wait_ports "$A:$((A + 1)) $B:$B "
check "up --json of the running machine: a port event per forward" test "$("$CORRAL" -C "$T/env" \
	--json up 2>/dev/null | jq -r 'select(.event == "port") | "\(.state) \(.guest) \(.host)"' | sort | xargs)" = \
	"forwarded $A $((A + 1)) forwarded $B $B"
expect_out "... reached from the host through QEMU's hostfwd" 0 "kvm-auto" curl -s -m 5 "http://127.0.0.1:$B/"
# The guest's loop: one process, the same one seconds later.
loop() { "$CORRAL" -C "$T/env" ssh -c 'for p in /proc/[0-9]*; do grep -q "[w]hile :; do cat /proc/net/tcp" $p/cmdline 2>/dev/null && echo ${p#/proc/}; done' | xargs; }
l1=$(loop)
sleep 2
check "one SSH channel for the watcher, kept open (not one per poll)" \
	bash -c '[ -n "$1" ] && [ "$1" = "$2" ] && [ "${1// /}" = "$1" ]' _ "$l1" "$(loop)"
pat=$(sed 's/^\(.\)/[\1]/' <<<"$B")
"$CORRAL" -C "$T/env" ssh -c "for p in /proc/[0-9]*; do grep -q '$pat' \$p/cmdline 2>/dev/null && kill \${p#/proc/}; done; true"
check "a port the guest stops listening on is removed" wait_ports "$A:$((A + 1)) "
check "... and no longer reachable" bash -c '! curl -s -m 2 "http://127.0.0.1:$1/"' _ "$B"
expect_out "halt" 0 "vm: stopped" corral -C "$T/env" halt
for _ in $(seq 50); do gone "$watcher" && break; sleep 0.1; done
check "port --watch saw the forward come" grep -qx "vm: forwarding 127.0.0.1:$B -> $B" "$T/watch.txt"
check "... and go" grep -qx "vm: guest port $B closed: forward 127.0.0.1:$B removed" "$T/watch.txt"
check "halt stops the watcher and drops its list" [ ! -e "$M/auto-ports" ]
check "... no watcher process is left" test "$(jq -r '.portfwd_pid // empty' "$M/state.json")" = ""
