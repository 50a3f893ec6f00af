#!/usr/bin/env bash
# The slow kvm test: the real corral/debian-12 kvm box (systemd, sudo, PAM;
# direct kernel boot of Debian's kernel and initrd) under whatever `auto`
# picks — TCG on nested-PVM hosts, where one boot takes a minute or more.
# up with the insecure-key swap, the guest set-up over SSH (host name,
# /etc/hosts, a static address on the NIC with the machine's MAC, persisted
# for systemd-networkd; a 9p synced folder and an rsync one), a privileged
# provisioner, halt through the ACPI power button, destroy leaving nothing
# but the synced folders' files. One boot.
. "$(dirname "$0")/../lib.sh"

box=$(test_box debian-12-kvm)
catalog=$(dirname "$box")/catalog.json
mkdir -p "$T/env/nine" "$T/env/copy"
echo nine-from-host >"$T/env/nine/h"
echo copied >"$T/env/copy/f"
cat >"$T/env/corral.yaml" <<YAML
version: 1
networks:
  lan: { subnet: 10.216.7.0/24 }
machines:
  deb:
    box: corral/debian-12
    box_url: file://$catalog
    provider: kvm
    memory: 1G
    hostname: deb-host
    networks: [{ network: lan }]
    synced_folders:
      - { host: ./nine, guest: /srv/nine }
      - { host: ./copy, guest: /srv/copy, type: rsync }
    ssh: { boot_timeout: 15m }
    graceful_halt_timeout: 2m
    provision:
      - shell: { inline: "touch /etc/provisioned; id -un" }
YAML
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
M=$T/env/.corral/machines/deb

t0=$(date +%s)
out=$("$CORRAL" up 2>&1)
echo "# up: $(grep -o 'starting QEMU ([A-Z]*)' <<<"$out" | tail -n 1), $(($(date +%s) - t0)) s"
check "up boots Debian to SSH and provisions as root" \
	grep -qz 'deb: ssh ready.*root' <<<"$out" || printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
expect_out "it is bookworm" 0 'VERSION_CODENAME=bookworm' "$CORRAL" ssh -c 'cat /etc/os-release'
expect_out "password-less sudo" 0 "root" "$CORRAL" ssh -c 'sudo -n id -un'
expect_out "the provisioner's file" 0 "/etc/provisioned" "$CORRAL" ssh -c 'ls /etc/provisioned'

run() { "$CORRAL" ssh -c "$1" 2>&1; }
expect_out "the host name is set" 0 "deb-host" run 'hostname; cat /etc/hostname'
check "and kept in /etc/hostname" test "$(run 'cat /etc/hostname')" = deb-host
expect_out "/etc/hosts names it" 0 "$(printf '127.0.1.1\tdeb-host')" run 'cat /etc/hosts'
# Leased, not fixed: a concurrent run of this test on the host's bridge gets another.
ip=$(jq -r .ip "$M/state.json")
expect_out "eth1 has the machine's address, set statically" 0 "inet $ip/24" run 'ip -4 addr show eth1'
mac=$(run 'cat /sys/class/net/eth1/address')
expect_out "persisted for networkd, matched by MAC" 0 "MACAddress=$mac" \
	run "cat /etc/systemd/network/50-corral-${mac//:/}.network"
banner() { timeout 5 bash -c "exec 3<>/dev/tcp/$1/22; head -c 3 <&3"; }
expect_out "the host reaches it on that address" 0 "SSH" banner "$ip"
expect_out "auto on kvm: a 9p mount" 0 "corral0 /srv/nine 9p" run 'cat /proc/mounts'
expect_out "9p: the host's file shows in the guest" 0 "nine-from-host" run 'cat /srv/nine/h'
run 'echo nine-from-guest | sudo tee /srv/nine/g >/dev/null'
expect_out "9p: the guest's file shows on the host" 0 "nine-from-guest" cat "$T/env/nine/g"
expect_out "rsync: the folder was copied" 0 "copied" run 'cat /srv/copy/f'
echo again >"$T/env/copy/f"
expect_out "corral rsync" 0 "synced folder /srv/copy" "$CORRAL" rsync
expect_out "copies the change" 0 "again" run 'cat /srv/copy/f'
out=$("$CORRAL" up 2>&1)
check "up on the running machine changes nothing" \
	bash -c '[[ $1 == *"already running"* && $1 != *"host name set"* && $1 != *"eth1 ("* ]]' _ "$out"
expect_out "halt (ACPI power button, systemd shuts down)" 0 "deb: stopped" "$CORRAL" halt
check "the console shows a clean power-off" grep -q "reboot: Power down" "$M/console.log"
expect_out "destroy" 0 "deb: destroyed" "$CORRAL" destroy -f
check "nothing left: machine directory" test ! -e "$M"
check "the synced folders' files are intact" \
	[ "$(cat "$T/env/nine/h" "$T/env/nine/g" "$T/env/copy/f")" = "$(printf 'nine-from-host\nnine-from-guest\nagain')" ]
check "nothing left: QEMU" bash -c '! pgrep -f -- "-pidfile $1/qemu.pid" >/dev/null' _ "$M"
