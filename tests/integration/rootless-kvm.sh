#!/usr/bin/env bash
# The kvm provider as an ordinary user (issue 18): the test makes a user
# with useradd (not in group kvm), runs corral through runuser — no sudo —
# and removes the user after. This tests the TCG path: a user who may not
# open /dev/kvm gets TCG from `accel: auto`, with the warning saying why,
# and `status -v` and state.json name the accelerator. (Where the user may
# open /dev/kvm anyway, the envfile asks for tcg: this host's /dev/kvm
# hangs stock guests.)
# Two tiny-kvm machines of one envfile on one private network (a multicast
# socket segment on loopback, no tap, no bridge) reach each other on their
# static addresses; a machine of another envfile with the same subnet and
# network name does not reach them. A forwarded port answers on
# 127.0.0.1. Snapshots while running, reload (halt + up) keeping data and
# rejoining the network, suspend/resume, halt, snapshots while stopped,
# and destroy leaving no QEMU of the user and nothing under /run/corral.
# Boots: one up of two machines beside one of the other envfile, one
# reload (a resume loads a saved state, it does not boot).
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny-kvm)
user_make crlkvm
# (the machines go before the user does)
user_first destroy_all
c() { as_user "$CORRAL" "$@"; }
# live: how many QEMUs of the user run (zombies of daemonized QEMUs whose
# parent has yet to reap them are gone)
live() { ps -u "$U" -o stat=,args= | grep -v '^Z' | grep -c qemu-system; }

accel=
as_user test -w /dev/kvm && accel='provider_options: { kvm: { accel: tcg } }'
fwd=$(free_port)
envfile() { # DIR MACHINE IP [YAML...]
	local dir=$1 name=$2 ip=$3
	shift 3
	as_user mkdir -p "$dir"
	{
		printf 'version: 1\nnetworks:\n  lan: { subnet: 10.214.91.0/24 }\nmachines:\n'
		printf '  %s:\n    box: corral/tiny-kvm\n    provider: kvm\n    memory: 256M\n' "$name"
		printf '    networks: [{ network: lan, ip: %s }]\n' "$ip"
		[ -z "$accel" ] || printf '    %s\n' "$accel"
		for l in "$@"; do printf '%s\n' "$l"; done
	} | as_user tee "$dir/corral.yaml" >/dev/null
}
P=$UH/p1 Q=$UH/p2
destroy_all() { c -C "$P" destroy -f >/dev/null 2>&1; c -C "$Q" destroy -f >/dev/null 2>&1; }
envfile "$P" a 10.214.91.11 "    ports: [{ guest: 8000, host: $fwd }]" \
	"  b:" "    box: corral/tiny-kvm" "    provider: kvm" "    memory: 256M" \
	"    networks: [{ network: lan, ip: 10.214.91.12 }]" ${accel:+"    $accel"}
envfile "$Q" other 10.214.91.13

expect_out "box add as the user, from the test's box cache" 0 "added box corral/tiny-kvm" \
	c box add "$(dirname "$box")/catalog.json"
t0=$(date +%s)
c -C "$Q" up >"$T/q.out" 2>&1 &
qup=$!
out=$(c -C "$P" up 2>&1)
wait "$qup"
echo "# up of 3 machines as the user (TCG): $(($(date +%s) - t0)) s"
check "up as the user: both machines ssh ready" test "$(grep -c '^[ab]: ssh ready' <<<"$out")" = 2
check "...the other envfile's machine too" grep -q 'other: ssh ready' "$T/q.out"
check "auto under an ordinary user: TCG" test "$(grep -c 'starting QEMU (TCG)' <<<"$out")" = 2
[ -n "$accel" ] || check "...with one warning line each saying why" \
	test "$(grep -c 'warning: .*using TCG' <<<"$out")" = 2
expect_out "state.json records the accelerator" 0 '"accel": "tcg"' cat "$P/.corral/machines/a/state.json"
expect_out "status -v names it" 0 "accel: TCG" c -C "$P" -v status
expect_out "...and the mode" 0 "mode: rootless (QEMU user-mode network" c -C "$P" -v status a
expect_out "status shows the address on its first envfile network" 0 "running (kvm) 10.214.91.11" \
	c -C "$P" status a
check "no tap, no bridge: none held" test "$(jq -c '.bridges // []' "$P/.corral/machines/a/state.json")" = "[]"

run() { c -C "$P" ssh "$1" -c "$2" 2>&1; }
reach() { run "$1" "nc -w 3 $2 22 </dev/null | head -c 7"; }
expect_out "ssh as the user" 0 "vagrant" run a whoami
expect_out "a has its static address on eth1" 0 "10.214.91.11/24" run a 'ip -4 addr show eth1'
expect_out "a reaches b on the private network" 0 "SSH-2.0" reach a 10.214.91.12
expect_out "b reaches a" 0 "SSH-2.0" reach b 10.214.91.11
expect_out "the other envfile's machine has its address" 0 "10.214.91.13/24" \
	c -C "$Q" ssh other -c 'ip -4 addr show eth1'
check "another envfile's machine on the same subnet is not reached" \
	bash -c '! grep -q SSH <<<"$1"' _ "$(reach a 10.214.91.13)"
check "...nor does it reach them" \
	bash -c '! grep -q SSH <<<"$1"' _ "$(c -C "$Q" ssh other -c 'nc -w 3 10.214.91.11 22 </dev/null' 2>&1)"

run a 'mkdir -p /tmp/w && echo rootless-kvm >/tmp/w/index.html && busybox httpd -p 8000 -h /tmp/w' >/dev/null
expect_out "a forwarded port answers on 127.0.0.1" 0 "rootless-kvm" curl -s -m 5 "http://127.0.0.1:$fwd/"
check "...bound on 127.0.0.1 only" bash -c 'ss -Hltn "sport = :$1" | grep -q "127.0.0.1:$1" &&
	! ss -Hltn "sport = :$1" | grep -vq "127.0.0.1:$1"' _ "$fwd"

# Snapshots of a running machine (savevm/loadvm over the user's QMP socket).
run a 'echo one >~/f; sync' >/dev/null
expect_out "snapshot save (running)" 0 "snapshot s1 saved" c -C "$P" snapshot save a s1
run a 'echo two >~/f; sync' >/dev/null
expect_out "snapshot restore" 0 "snapshot s1 restored" c -C "$P" snapshot restore a s1
expect_out "...the change is gone" 0 "one" run a 'cat ~/f'
expect_out "snapshot list" 0 "s1" c -C "$P" snapshot list a

# reload: halt, then up: a new boot keeping the disk, on the same segment.
boot=$(run a 'cat /proc/sys/kernel/random/boot_id')
expect_out "reload as the user" 0 "a: ssh ready" c -C "$P" reload a
check "...a new boot" test "$(run a 'cat /proc/sys/kernel/random/boot_id')" != "$boot"
expect_out "...data kept" 0 "one" run a 'cat ~/f'
expect_out "...b reached again after it" 0 "SSH-2.0" reach a 10.214.91.12

# suspend and resume: the same boot goes on (QEMU started with -loadvm).
boot=$(run b 'cat /proc/sys/kernel/random/boot_id')
expect_out "suspend as the user" 0 "b: suspended" c -C "$P" suspend b
expect_out "...status: saved" 0 "saved (kvm)" c -C "$P" status b
expect_out "resume as the user" 0 "b: resumed" c -C "$P" resume b
expect_out "...the same boot" 0 "$boot" run b 'cat /proc/sys/kernel/random/boot_id'

pid=$(jq -r .pid "$P/.corral/machines/b/state.json")
expect_out "halt as the user" 0 "b: stopped" c -C "$P" halt b
check "...its QEMU is gone" gone "$pid"
expect_out "...status: stopped" 0 "stopped (kvm)" c -C "$P" status b
expect_out "snapshot save (stopped)" 0 "snapshot off saved" c -C "$P" snapshot save b off
expect_out "snapshot list (stopped)" 0 "off" c -C "$P" snapshot list b

# Only the user's own machines, and only the user's files.
others() { c global-status | tail -n +2 | grep -v "$UH/"; }
expect_out "global-status as the user: its machines" 0 "$P" c global-status
check "...no machine of anyone else" test -z "$(others)"
check "every file in the user's project is the user's" test -z "$(find "$P" ! -user "$U")"

expect_out "destroy as the user" 0 "a: destroyed" c -C "$P" destroy -f
expect_out "destroy the other envfile" 0 "other: destroyed" c -C "$Q" destroy -f
for _ in $(seq 50); do [ "$(live)" = 0 ] && break; sleep 0.1; done
check "destroy leaves no QEMU of the user" test "$(live)" = 0
check "...no machine directory" test ! -e "$P/.corral/machines/a" -a ! -e "$P/.corral/machines/b" \
	-a ! -e "$Q/.corral/machines/other"
check "...nothing of the user's under /run/corral or /var/lib/corral" \
	test -z "$(find /run/corral /var/lib/corral -user "$U" 2>/dev/null)"
check "...not in global-status" test -z "$(c global-status | tail -n +2 | grep "$UH/")"
