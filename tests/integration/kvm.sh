#!/usr/bin/env bash
# The kvm provider on real QEMU machines (the tiny-kvm box: Debian's kernel,
# busybox, OpenSSH): boxes and ports that must fail cleanly, then a microvm
# machine with `ports: auto`. The first-boot key swap, a private network
# on a tap of the corral bridge, snapshots while running, suspend/resume,
# halt, up again, reload and a killed QEMU are conformance.sh's (one boot
# of its kvm machine); a suspended machine halted and snapshots while
# stopped are kvm-guest.sh's. KVM where /dev/kvm really works, else TCG
# (this host: nested PVM); each boot says which.
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny-kvm)
catalog=$(dirname "$box")/catalog.json
mkdir -p "$T/env"
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
no_qemu() { ! pgrep -f -- "-pidfile $1/qemu.pid" >/dev/null; }
accel() { grep -o 'starting QEMU ([A-Z]*)' <<<"$1" | tail -n 1; }
expect_out "box add" 0 "corral/tiny-kvm" "$CORRAL" box add "$catalog"

# Boxes that cannot boot, and a forward that cannot bind: clear errors,
# no overlay, no QEMU.
mkbox() { # NAME METADATA DISK-FILE
	mkdir -p "$T/$1" && printf '%s\n' "$2" >"$T/$1/metadata.json"
	cp "$3" "$T/$1/box.img"
	tar -C "$T/$1" -czf "$T/$1.box" metadata.json box.img
	"$CORRAL" box add --name "test/$1" "$T/$1.box" >/dev/null 2>&1
}
echo 'QFI garbage, not a qcow2 image' >"$T/bad.img"
qemu-img create -q -f qcow2 "$T/ok.img" 64M
mkbox corrupt '{"provider":"kvm","format":"qcow2"}' "$T/bad.img"
mkbox nokernel '{"provider":"kvm","format":"qcow2","kernel":"vmlinuz"}' "$T/ok.img"
cat >"$T/env/corral.yaml" <<YAML
version: 1
machines:
  corrupt: { box: test/corrupt, provider: kvm, autostart: false }
  nokernel: { box: test/nokernel, provider: kvm, autostart: false }
  busy:
    box: corral/tiny-kvm
    provider: kvm
    autostart: false
    ports: [{ guest: 80, host: 2222 }]
  micro:
    box: corral/tiny-kvm
    provider: kvm
    autostart: false
    memory: 256M
    provider_options: { kvm: { machine: microvm } }
    ports: { auto: true, exclude: [6000-6100] }
YAML
python3 -c 'import socket,time
s=socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
print(s.getsockname()[1], flush=True); time.sleep(600)' >"$T/busy.port" &
on_exit "kill $! 2>/dev/null"
until [ -s "$T/busy.port" ]; do sleep 0.05; done
sed -i "s/host: 2222/host: $(cat "$T/busy.port")/" "$T/env/corral.yaml"
left_nothing() { test ! -e "$T/env/.corral/machines/$1/disk.qcow2" && no_qemu "$T/env/.corral/machines/$1"; }
expect_out "a corrupt qcow2 box: a clear error" 1 "not a readable qcow2" "$CORRAL" up corrupt
check "a corrupt box leaves nothing" left_nothing corrupt
expect_out "a box without its kernel: a clear error" 1 "names kernel \`vmlinuz\`, but the box has no such file" \
	"$CORRAL" up nokernel
check "a box without a kernel leaves nothing" left_nothing nokernel
expect_out "an occupied forwarded port: a clear error" 1 "is in use" "$CORRAL" up busy
check "an occupied port leaves nothing" left_nothing busy
expect_out "status after failures: not created" 0 "not created" "$CORRAL" status busy

# machine: microvm boots the same box on virtio-mmio; under TCG the host's
# TSC rate is on its kernel command line (without it, a loaded host hangs
# the boot at TSC calibration).
t0=$(date +%s.%N)
out=$("$CORRAL" up micro 2>&1)
echo "# microvm up: $(accel "$out"), $(echo "$(date +%s.%N) - $t0" | bc) s"
check "microvm: up reaches ssh" grep -q 'micro: ssh ready' <<<"$out"
expect_out "microvm: its devices are virtio-mmio" 0 "LNRO0005" "$CORRAL" ssh micro -c 'ls /sys/bus/platform/devices'
[[ $(accel "$out") == *KVM* ]] || expect_out "microvm under TCG: the TSC rate is given" 0 "tsc_early_khz=" \
	"$CORRAL" ssh micro -c 'cat /proc/cmdline'

# ports: auto on it: the watcher reads the guest's /proc/net/tcp{,6} over
# one SSH channel and adds QEMU hostfwd rules: what the guest starts
# listening on is forwarded (same port, or the next free one when the
# host's is taken), excluded ranges are not, a closed port's forward is
# removed, `corral port --watch` shows both, and halt stops the watcher.
MM=$T/env/.corral/machines/micro
check "microvm: no warning that kvm ignores ports: auto" bash -c '! grep -q "not supported" <<<"$1"' _ "$out"
hold_port 127.0.0.1 300 || not_ok "a port held for the test"
A=$HELD_PORT B=$((HELD_PORT + 10))
"$CORRAL" port --watch micro >"$T/watch.txt" 2>&1 &
watcher=$!
on_exit "kill $watcher 2>/dev/null"
"$CORRAL" ssh micro -c "mkdir -p /tmp/w && echo kvm-auto >/tmp/w/index.html && busybox httpd -p $B -h /tmp/w && busybox httpd -p $A -h /tmp/w && busybox httpd -p 6050 -h /tmp/w"
ports() { "$CORRAL" --json port micro | jq -r '.[] | select(.auto) | "\(.guest):\(.host)"' | sort -n | tr '\n' ' '; }
wait_ports() { # WANT: until `corral port` lists exactly these auto forwards (15 s)
	local i
	for i in $(seq 150); do [ "$(ports)" = "$1" ] && return 0; sleep 0.1; done
	echo "#   auto forwards: $(ports), wanted: $1"
	return 1
}
check "ports: auto: listening ports are forwarded: same port, a busy one to the next free, 6050 excluded" \
	wait_ports "$A:$((A + 1)) $B:$B "
check "ports: auto: up --json of the running machine: a port event per forward" test "$("$CORRAL" \
	--json up micro 2>/dev/null | jq -r 'select(.event == "port") | "\(.state) \(.guest) \(.host)"' | sort | xargs)" = \
	"forwarded $A $((A + 1)) forwarded $B $B"
expect_out "ports: auto: ... reached from the host through QEMU's hostfwd" 0 "kvm-auto" curl -s -m 5 "http://127.0.0.1:$B/"
# The guest's loop: one process, the same one seconds later.
loop() { "$CORRAL" ssh micro -c 'for p in /proc/[0-9]*; do grep -q "[w]hile :; do cat /proc/net/tcp" $p/cmdline 2>/dev/null && echo ${p#/proc/}; done' | xargs; }
l1=$(loop)
sleep 2
check "ports: auto: one SSH channel for the watcher, kept open (not one per poll)" \
	bash -c '[ -n "$1" ] && [ "$1" = "$2" ] && [ "${1// /}" = "$1" ]' _ "$l1" "$(loop)"
pat=$(sed 's/^\(.\)/[\1]/' <<<"$B")
"$CORRAL" ssh micro -c "for p in /proc/[0-9]*; do grep -q '$pat' \$p/cmdline 2>/dev/null && kill \${p#/proc/}; done; true"
check "ports: auto: a port the guest stops listening on is removed" wait_ports "$A:$((A + 1)) "
check "ports: auto: ... and no longer reachable" bash -c '! curl -s -m 2 "http://127.0.0.1:$1/"' _ "$B"
expect_out "ports: auto: halt" 0 "micro: stopped" "$CORRAL" halt micro
for _ in $(seq 50); do gone "$watcher" && break; sleep 0.1; done
check "ports: auto: port --watch saw the forward come" grep -qx "micro: forwarding 127.0.0.1:$B -> $B" "$T/watch.txt"
check "ports: auto: ... and go" grep -qx "micro: guest port $B closed: forward 127.0.0.1:$B removed" "$T/watch.txt"
check "ports: auto: halt stops the watcher and drops its list" [ ! -e "$MM/auto-ports" ]
check "ports: auto: ... no watcher process is left" test "$(jq -r '.portfwd_pid // empty' "$MM/state.json")" = ""
expect_out "microvm: destroy" 0 "micro: destroyed" "$CORRAL" destroy -f micro
check "microvm: nothing left" left_nothing micro
