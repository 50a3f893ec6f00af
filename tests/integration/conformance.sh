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
# A provider's own checks that need a running machine run on the same
# boot, after ssh (more_P), so that no test boots the box again for them:
# kvm's first-boot key swap, private network on a tap, snapshots of a
# running machine and suspend/resume (from kvm.sh); the container's
# snapshots and suspend/resume.
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
# Asked again while LXD says "Error" (pid 0): its answer when the
# container's monitor was slow to reply, on a loaded host.
pid_incus() {
	local s i
	for i in $(seq 60); do
		s=$(lxd_api "/1.0/instances/$(st instance)/state")
		[ "$(jq -r .metadata.status <<<"$s")" != Error ] && break
		sleep 0.5
	done
	s=$(jq -r '.metadata.pid // empty' <<<"$s")
	[ "${s:-0}" = 0 ] || echo "$s"
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
leftovers_kvm() { # QEMU, and the tap of its private network
	pgrep -af -- "-pidfile $M/qemu.pid"
	ip -br link show "ck$(echo -n "$M" | sha256sum | cut -c1-10)0" 2>/dev/null
}
leftovers_virtualbox() {
	[ -n "$1" ] || echo "(no VM id was recorded)"
	"$VBM" showvminfo "$1" --machinereadable >/dev/null 2>&1 && echo "VM $1"
}

# LXD answers a state of "Error" (pid 0) while the container's liblxc
# monitor does not reply (5 s), as on a loaded host: corral asks again
# rather than taking the machine for stopped. The monitor is held for 7 s.
more_incus() {
	local mon
	mon=$(pgrep -xf "\[lxc monitor\] $LXD_DIR/containers $(st instance)")
	check "incus: the instance's monitor runs" test -n "$mon" || return
	kill -STOP $mon
	(sleep 7; kill -CONT $mon) &
	expect_out "incus: a monitor slow to answer: ssh still runs" 0 "hello" ssh_m 'echo hello'
	wait $!
	kill -CONT $mon
}

# Snapshots of a running container (frozen for the copy of its upper
# layer; restore boots it again) and suspend/resume (its cgroup frozen:
# the same init goes on).
more_container() {
	local pid
	ssh_m 'echo one > ~/f; mkdir -p ~/d; echo x > ~/d/x; ln -s /etc/hostname ~/lnk' >/dev/null
	mkdir -p "$M/snapshots/.cut.tmp" # what a save killed midway leaves
	expect_out "container: snapshot save (running)" 0 "snapshot s1 saved" "$CORRAL" snapshot save "$NAME" s1
	check "container: what a save cut short left is removed by the next save" test ! -e "$M/snapshots/.cut.tmp"
	check "container: the guest's symlink is copied as a link, not followed" \
		test -n "$(find "$M/snapshots/s1" -name lnk -type l)"
	ssh_m 'echo two > ~/f; rm -r ~/d; touch ~/after' >/dev/null
	expect_out "container: snapshot restore (running)" 0 "snapshot s1 restored" "$CORRAL" snapshot restore "$NAME" s1
	check "container: running again after restore" state_is running
	expect_out "container: the changes are gone (file, removed dir back, new file gone)" 0 "one x none" \
		ssh_m 'echo $(cat ~/f) $(cat ~/d/x) $(ls ~/after 2>/dev/null || echo none)'
	expect_out "container: snapshot list" 0 "  s1" "$CORRAL" snapshot list "$NAME"
	expect_out "container: save under a taken name" 1 "already has a snapshot" "$CORRAL" snapshot save "$NAME" s1
	expect_out "container: a bad snapshot name" 1 "is not allowed" "$CORRAL" snapshot save "$NAME" '../a'
	expect_out "container: restore of an unknown snapshot" 1 "nosuch" "$CORRAL" snapshot restore "$NAME" nosuch
	pid=$(st pid)
	expect_out "container: suspend" 0 "$NAME: suspended" "$CORRAL" suspend "$NAME"
	expect_out "container: status: saved" 0 "saved (container)" "$CORRAL" status "$NAME"
	check "container: its processes are frozen" grep -qs "^frozen 1" /sys/fs/cgroup/{,unified/}corral/"$(st machine_id)"/cgroup.events
	expect_out "container: resume" 0 "$NAME: resumed" "$CORRAL" resume "$NAME"
	check "container: resume: the same init goes on" test "$(st pid)" = "$pid"
	expect_out "container: ssh after resume" 0 "one" ssh_m 'cat ~/f'
	expect_out "container: snapshot delete" 0 "snapshot s1 deleted" "$CORRAL" snapshot delete "$NAME" s1
	expect_out "container: no snapshots left" 0 "no snapshots" "$CORRAL" snapshot list "$NAME"
	"$CORRAL" snapshot save "$NAME" kept >/dev/null 2>&1 # destroy removes it
}

# Per provider, optional: what it adds to the envfile (yaml_P: top-level
# keys, then the machine's), what runs before its up (before_P) and its own
# checks on the first boot (more_P).
yaml_kvm() {
	printf 'networks:\n  lan: { subnet: 10.214.9.0/24 }\n'
	MACHINE_YAML='    networks: [{ network: lan }]'
}
# A listener on the first SSH port corral would pick: it must pick another.
before_kvm() {
	python3 -c 'import socket,time,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try: s.bind(("127.0.0.1", 2222)); s.listen(1)
except OSError: pass
sys.stdout.write("ready\n"); sys.stdout.flush(); time.sleep(600)' >"$T/blocker.out" &
	on_exit "kill $! 2>/dev/null"
	until [ -s "$T/blocker.out" ]; do sleep 0.05; done
}
more_kvm() {
	check "kvm: up: creating, QEMU, ssh ready" \
		grep -qz "$NAME: creating.*starting QEMU.*$NAME: ssh ready" <<<"$UP_OUT"
	[[ $UP_OUT == *"starting QEMU (KVM"* ]] || check "kvm: TCG is chosen with one warning line saying why" \
		test "$(grep -c "warning: $NAME: using TCG" <<<"$UP_OUT")" = 1
	check "kvm: the SSH port skipped the occupied 2222" test "$(st ssh_port)" != 2222
	expect_out "kvm: status: running (kvm)" 0 "running (kvm)" "$CORRAL" status "$NAME"
	expect_out "kvm: status -v: root mode" 0 "mode: root (taps" "$CORRAL" -v status "$NAME"
	expect_out "kvm: ssh as vagrant with the machine's key" 0 "vagrant" ssh_m whoami
	check "kvm: the insecure key is gone from authorized_keys" \
		test "$(ssh_m 'grep -c insecure ~/.ssh/authorized_keys')" = 0
	expect_out "kvm: the kernel command line names the machine" 0 "corral.hostname=$NAME" \
		ssh_m 'cat /proc/cmdline'
	expect_out "kvm: port lists SSH and the forward" 0 "8000 (guest) => " "$CORRAL" port "$NAME"
	local ip tap boot_id pid
	ip=$(st ip)
	tap="ck$(echo -n "$M" | sha256sum | cut -c1-10)0"
	expect_out "kvm: a tap on a corral bridge" 0 "master corral-" ip link show "$tap"
	expect_out "kvm: the guest has its leased address on eth1" 0 "$ip/24" ssh_m 'ip -4 addr show eth1'
	expect_out "kvm: the host reaches the guest's sshd over the bridge" 0 "SSH" \
		timeout 5 bash -c "exec 3<>/dev/tcp/$ip/22; head -c 3 <&3"
	# Snapshots of a running machine hold disk and memory.
	ssh_m 'echo one > ~/f' >/dev/null
	expect_out "kvm: snapshot save (running)" 0 "snapshot s1 saved" "$CORRAL" snapshot save "$NAME" s1
	ssh_m 'echo two > ~/f; sync' >/dev/null
	expect_out "kvm: snapshot restore (running)" 0 "snapshot s1 restored" "$CORRAL" snapshot restore "$NAME" s1
	expect_out "kvm: the change is gone" 0 "one" ssh_m 'cat ~/f'
	expect_out "kvm: snapshot list" 0 "s1" "$CORRAL" snapshot list "$NAME"
	expect_out "kvm: a bad snapshot name" 1 "is not allowed" "$CORRAL" snapshot save "$NAME" 'a b'
	expect_out "kvm: restore of an unknown snapshot" 1 "nosuch" "$CORRAL" snapshot restore "$NAME" nosuch
	# Suspend and resume: the same boot goes on. (A suspended machine
	# halted, snapshots of a stopped one: kvm-guest.sh.)
	boot_id=$(ssh_m 'cat /proc/sys/kernel/random/boot_id')
	pid=$(st pid)
	expect_out "kvm: suspend" 0 "$NAME: suspended" "$CORRAL" suspend "$NAME"
	expect_out "kvm: status: saved" 0 "saved (kvm)" "$CORRAL" status "$NAME"
	check "kvm: no QEMU while suspended" gone "$pid"
	expect_out "kvm: resume" 0 "$NAME: resumed" "$CORRAL" resume "$NAME"
	expect_out "kvm: resume continues the same boot" 0 "$boot_id" ssh_m 'cat /proc/sys/kernel/random/boot_id'
	expect_out "kvm: snapshot list hides the suspend image" 0 "s1" "$CORRAL" snapshot list "$NAME"
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
	UP_OUT=$out
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

c_more() { if declare -F "more_$P" >/dev/null; then "more_$P"; fi; }

checks=(c_up c_ssh c_more c_halt c_up_keeps_data c_reload c_kill9 c_destroy)

# ---- every provider through every check

for P in "${providers[@]}"; do
	why=$(usable_"$P")
	if [ -n "$why" ]; then
		echo "ok - $P: skipped ($why) # SKIP"
		continue
	fi
	box_"$P"
	FWD=$(rand_port)
	mkdir -p "$T/$P"
	MACHINE_YAML=
	if declare -F "yaml_$P" >/dev/null; then "yaml_$P" >"$T/$P/top.yaml"; else : >"$T/$P/top.yaml"; fi
	cat >"$T/$P/corral.yaml" <<YAML
version: 1
$(cat "$T/$P/top.yaml")
machines:
  $NAME:
    box: $BOX
    provider: $P
    memory: 256M
    graceful_halt_timeout: 30s
    ports: [{ guest: 8000, host: $FWD }]
    provision: [{ shell: { inline: "echo once >> ~/provisioned", privileged: false } }]
$MACHINE_YAML
YAML
	M=$T/$P/.corral/machines/$NAME
	on_exit "'$CORRAL' -C '$T/$P' destroy -f >/dev/null 2>&1"
	cd "$T/$P" || exit 1
	if declare -F "before_$P" >/dev/null; then "before_$P"; fi
	t0=$(date +%s)
	for c in "${checks[@]}"; do
		"$c"
	done
	echo "# $P: $(($(date +%s) - t0)) s"
done
