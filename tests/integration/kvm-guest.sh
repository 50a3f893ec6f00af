#!/usr/bin/env bash
# The guest set-up on the tiny-kvm box, which has no sudo and no rsync: its
# kernel command line already gave it its host name and address, so the
# set-up changes nothing and needs no root; an `auto` synced folder tries
# 9p, cannot mount it without root, says so in one warning and falls back
# to rsync, which fails with a clear error. (The working 9p and rsync paths
# are in kvm-cloud.sh.) Then, on the same boot: a suspended machine
# halted (stopped, its memory image discarded) and snapshots of a stopped
# machine. One boot of a few seconds.
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny-kvm)
"$CORRAL" box add "$(dirname "$box")/catalog.json" >/dev/null 2>&1
mkdir -p "$T/env/src"
cat >"$T/env/corral.yaml" <<YAML
version: 1
networks:
  lan: { subnet: 10.216.9.0/24 }
machines:
  tiny:
    box: corral/tiny-kvm
    provider: kvm
    memory: 256M
    networks: [{ network: lan }]
    synced_folders: [{ host: ./src, guest: /srv/src }]
  bad:
    box: corral/tiny-kvm
    provider: kvm
    autostart: false
    synced_folders: [{ host: ./src, guest: /srv/src, type: vboxsf }]
YAML
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'

expect_out "vboxsf on kvm: refused before boot, naming the types" 1 \
	"bad: synced folder /srv/src: the kvm provider does not take type vboxsf" "$CORRAL" up bad
check "and nothing was created" test ! -e .corral/machines/bad/disk.qcow2
out=$("$CORRAL" up tiny 2>&1)
check "up reached SSH" grep -q "tiny: ssh ready" <<<"$out"
check "host name and address were there already: nothing changed" \
	bash -c '[[ $1 != *"host name set"* && $1 != *"eth1 ("* && $1 != *"/etc/hosts:"* ]]' _ "$out"
check "one warning: no 9p mount, rsync instead" \
	test "$(grep -c 'warning: tiny: synced folder /srv/src: the guest cannot mount 9p' <<<"$out")" = 1
check "then a clear error: no rsync in the guest" grep -q "rsync is not installed in the guest" <<<"$out"
expect_out "the address is the machine's" 0 "$(jq -r .ip .corral/machines/tiny/state.json)/24" \
	"$CORRAL" ssh tiny -c 'ip -4 addr show eth1'
expect_out "/etc/hosts names the machine" 0 "$(printf '127.0.1.1\ttiny')" "$CORRAL" ssh tiny -c 'cat /etc/hosts'

# A suspended machine halted: stopped, its memory image discarded. (Suspend
# and resume, halt by the ACPI power button: conformance.sh.)
M=$T/env/.corral/machines/tiny
pid=$(jq -r '.pid // empty' "$M/state.json")
expect_out "suspend" 0 "tiny: suspended" "$CORRAL" suspend tiny
check "no QEMU while suspended" gone "$pid"
expect_out "halt a suspended machine" 0 "tiny: already stopped" "$CORRAL" halt tiny
expect_out "it is stopped, not saved" 0 "stopped (kvm)" "$CORRAL" status tiny
check "its memory image is gone from the disk" \
	bash -c '! qemu-img snapshot -U -l "$1" | grep -q corral-suspend' _ "$M/disk.qcow2"
expect_out "halt -f" 0 "tiny: already stopped" "$CORRAL" halt -f tiny

# Snapshots of a stopped machine.
expect_out "snapshot save (stopped)" 0 "snapshot off saved" "$CORRAL" snapshot save tiny off
expect_out "snapshot list (stopped)" 0 "off" "$CORRAL" snapshot list tiny
expect_out "snapshot delete (stopped)" 0 "snapshot off deleted" "$CORRAL" snapshot delete tiny off
expect_out "destroy" 0 "tiny: destroyed" "$CORRAL" destroy -f tiny
check "nothing left: QEMU" bash -c '! pgrep -f -- "-pidfile $1/qemu.pid" >/dev/null' _ "$M"
