#!/usr/bin/env bash
# Provider conformance: one list of checks, the same for every provider
# that can run on this host — container (the tiny box), kvm (tiny-kvm; TCG
# where /dev/kvm does not work, the accelerator is printed) and virtualbox
# against the fake VBoxManage (tests/fakes), incus against a private LXD
# daemon (tests/fakes/lxd-env.sh; the tiny box). One machine with a forwarded
# port and a shell provisioner, through:
#   up (provisioned); ssh (output, exit status); halt (graceful: well within
#   graceful_halt_timeout; its process gone); up keeps data, provisions
#   nothing again;
#   reload (a new boot, data kept); kill -9 of the machine's process
#   (status says stopped, up brings it back); destroy leaves nothing (no
#   process, no .corral/machines/NAME, no listening port, no address
#   lease, no mount, not in global-status, nothing the provider keeps).
# Usage: conformance.sh [PROVIDER...]   (default: every one)
. "$(dirname "$0")/../lib.sh"

NAME=conf
providers=("$@")
[ ${#providers[@]} -gt 0 ] || providers=(container kvm virtualbox incus)

# ---- what differs per provider: can it run here, its box, its process

usable_container() { [ "$(id -u)" = 0 ] || echo "needs root"; }
usable_kvm() { command -v qemu-system-x86_64 >/dev/null || echo "no qemu-system-x86_64"; }
usable_virtualbox() { [ "$(id -u)" = 0 ] || echo "the fake's guests need root"; }
usable_incus() {
	if [ "$(id -u)" != 0 ]; then echo "lxd needs root"
	elif ! command -v lxd >/dev/null; then echo "lxd is not installed"; fi
}

# Adds the provider's test box to the store; BOX is its name.
box_container() { "$CORRAL" box add "$(dirname "$(test_box tiny)")/catalog.json" >/dev/null 2>&1; BOX=corral/tiny; }
box_kvm() { "$CORRAL" box add "$(dirname "$(test_box tiny-kvm)")/catalog.json" >/dev/null 2>&1; BOX=corral/tiny-kvm; }
box_virtualbox() { . "$ROOT/tests/fakes/vbox-env.sh"; BOX=corral/tiny-vbox; }
# The daemon's socket reaches corral through $LXD_DIR; the machine joins
# the default profile's bridge.
box_incus() { . "$ROOT/tests/fakes/lxd-env.sh"; lxd_start; box_container; }

# The machine's main process: the container's init, QEMU, the fake's
# stand-in guest (PID 1 of its namespaces). Read from state.json with jq:
# no command prints these keys (core/host/state holds their names).
st() { jq -r ".$1 // empty" "$M/state.json" 2>/dev/null; }
pid_container() { st pid; }
pid_kvm() { st pid; }
lxd_api() { curl -s --unix-socket "$LXD_SOCKET" "http://lxd$1"; }
pid_incus() {
	local p
	p=$(lxd_api "/1.0/instances/$(st instance)/state" | jq -r '.metadata.pid // empty')
	[ "${p:-0}" = 0 ] || echo "$p"
}
pid_virtualbox() {
	jq -r --arg id "$(st id)" '.vms[] | select(.uuid == $id or .name == $id) | .guest.pid // empty' \
		"$VBOX_FAKE_HOME/state.json"
}

# What the provider itself would still hold after destroy (empty: nothing).
leftovers_container() {
	local id=$1
	ls -d /sys/fs/cgroup/*/corral/"$id" 2>/dev/null
	ip -br link | grep "cr-${id:0:10}"
}
leftovers_incus() {
	lxd_api /1.0/instances | jq -r '.metadata[]'
	lxd_api /1.0/images | jq -r '.metadata[]'
}
leftovers_kvm() { pgrep -af -- "-pidfile $M/qemu.pid"; }
leftovers_virtualbox() {
	[ -n "$1" ] || echo "(no VM id was recorded)"
	"$VBM" showvminfo "$1" --machinereadable >/dev/null 2>&1 && echo "VM $1"
}

# ---- the checks, in order; $P is the provider, $M the machine's directory

ssh_m() { "$CORRAL" ssh "$NAME" -c "$1" 2>&1; }
listening() { ss -ltnH "sport = :$1" | grep -q .; }
state_is() { [ "$("$CORRAL" status --json "$NAME" | jq -r '.[0].state')" = "$1" ]; }
wait_gone() { # PID: up to 10 s
	local i
	for i in $(seq 100); do gone "$1" && return 0; sleep 0.1; done
	return 1
}

c_up() {
	local out
	out=$("$CORRAL" up 2>&1)
	check "$P: up reaches ssh" grep -q "$NAME: ssh ready" <<<"$out" ||
		printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
	check "$P: up provisions" grep -q "$NAME: provisioning" <<<"$out"
	[ "$P" != kvm ] || echo "# kvm: $(grep -o 'starting QEMU ([A-Z]*)' <<<"$out" | tail -n 1)"
	check "$P: status says running" state_is running
	check "$P: the machine has a process" test -n "$(pid_"$P")"
}

c_ssh() {
	expect_out "$P: ssh runs a command" 0 "hello from" ssh_m 'echo hello from $(hostname)'
	expect_out "$P: ssh -c returns the command's status" 3 "" ssh_m 'exit 3'
}

c_halt() {
	expect_out "$P: write a file" 0 "" ssh_m 'echo kept > ~/kept; sync'
	local pid
	pid=$(pid_"$P")
	local t0=$SECONDS
	expect_out "$P: halt" 0 "$NAME: stopped" "$CORRAL" halt "$NAME"
	check "$P: halt was graceful (well within graceful_halt_timeout)" test $((SECONDS - t0)) -lt 15
	check "$P: status says stopped" state_is stopped
	check "$P: halt: the machine's process is gone" wait_gone "$pid"
}

c_up_keeps_data() {
	local out
	out=$("$CORRAL" up "$NAME" 2>&1)
	check "$P: up after halt" grep -q "$NAME: ssh ready" <<<"$out"
	check "$P: up after halt provisions nothing again" bash -c '! grep -q "$1: provisioning" <<<"$2"' _ "$NAME" "$out"
	expect_out "$P: the file survived halt" 0 "kept" ssh_m 'cat ~/kept'
	expect_out "$P: the provisioner ran once" 0 "ran once" ssh_m '[ "$(wc -l < ~/provisioned)" -eq 1 ] && echo ran once'
}

c_reload() {
	local pid
	pid=$(pid_"$P")
	expect_out "$P: reload" 0 "$NAME: ssh ready" "$CORRAL" reload "$NAME"
	check "$P: reload: a new process" test -n "$(pid_"$P")" -a "$(pid_"$P")" != "$pid"
	check "$P: reload: the old one is gone" wait_gone "$pid"
	expect_out "$P: the file survived reload" 0 "kept" ssh_m 'cat ~/kept'
}

c_kill9() {
	local pid
	pid=$(pid_"$P")
	kill -9 "$pid"
	check "$P: kill -9: the process is gone" wait_gone "$pid"
	check "$P: kill -9: status says stopped" state_is stopped
	expect_out "$P: kill -9: up brings it back" 0 "$NAME: ssh ready" "$CORRAL" up "$NAME"
	check "$P: kill -9: status says running" state_is running
	expect_out "$P: kill -9: the file is still there" 0 "kept" ssh_m 'cat ~/kept'
}

c_destroy() {
	local pid id ports="" p
	pid=$(pid_"$P") id=$(st id)
	[ -n "$id" ] || id=$(st machine_id) # the container provider's
	for p in $(jq -r '.ssh_port // empty, (.ports[]?.host)' "$M/state.json" | sort -u); do
		! listening "$p" || ports+=" $p"
	done
	check "$P: ports listen on the host while it runs:$ports" test -n "$ports"
	expect_out "$P: destroy" 0 "$NAME: destroyed" "$CORRAL" destroy -f "$NAME"
	check "$P: destroy: no process" wait_gone "$pid"
	check "$P: destroy: no machine directory" test ! -e "$M"
	for p in $ports; do
		check "$P: destroy: nothing listens on port $p" bash -c "! ss -ltnH 'sport = :$p' | grep -q ."
	done
	check "$P: destroy: no address lease" bash -c "! grep -qs '$T/' /run/corral/net/*.json"
	check "$P: destroy: no mount" bash -c "! grep -q ' $T/' /proc/mounts"
	check "$P: destroy: status says not created" state_is "not created"
	check "$P: destroy: global-status forgets it" bash -c "! '$CORRAL' global-status | grep -q '$T/$P'"
	local left
	left=$(leftovers_"$P" "$id")
	check "$P: destroy: the provider keeps nothing" test -z "$left"
	[ -z "$left" ] || printf '%s\n' "$left" | sed 's/^/#   left: /'
}

checks=(c_up c_ssh c_halt c_up_keeps_data c_reload c_kill9 c_destroy)

# ---- every provider through every check

for P in "${providers[@]}"; do
	why=$(usable_"$P")
	if [ -n "$why" ]; then
		echo "ok - $P: skipped ($why) # SKIP"
		continue
	fi
	box_"$P"
	FWD=$((20000 + RANDOM % 20000))
	mkdir -p "$T/$P"
	cat >"$T/$P/corral.yaml" <<YAML
version: 1
machines:
  $NAME:
    box: $BOX
    provider: $P
    memory: 256M
    graceful_halt_timeout: 30s
    ports: [{ guest: 8000, host: $FWD }]
    provision: [{ shell: { inline: "echo once >> ~/provisioned", privileged: false } }]
YAML
	M=$T/$P/.corral/machines/$NAME
	on_exit "'$CORRAL' -C '$T/$P' destroy -f >/dev/null 2>&1"
	cd "$T/$P" || exit 1
	t0=$(date +%s)
	for c in "${checks[@]}"; do
		"$c"
	done
	echo "# $P: $(($(date +%s) - t0)) s"
done
