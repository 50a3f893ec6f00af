#!/usr/bin/env bash
# The slow kvm test: the real corral/debian-12 kvm box (systemd, sudo, PAM;
# direct kernel boot of Debian's kernel and initrd) under whatever `auto`
# picks — TCG on nested-PVM hosts, where one boot takes a minute or more.
# up with the insecure-key swap, a privileged provisioner, halt through the
# ACPI power button, destroy leaving nothing.
. "$(dirname "$0")/../lib.sh"

export CORRAL_BOX_CACHE=${CORRAL_BOX_CACHE:-/var/cache/corral-test/boxes}
box=$("$ROOT/boxes/build" debian-12-kvm 2>/dev/null | tail -n 1)
catalog=$(dirname "$box")/catalog.json
mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<YAML
version: 1
machines:
  deb:
    box: corral/debian-12
    box_url: file://$catalog
    provider: kvm
    memory: 1G
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
expect_out "halt (ACPI power button, systemd shuts down)" 0 "deb: stopped" "$CORRAL" halt
check "the console shows a clean power-off" grep -q "reboot: Power down" "$M/console.log"
expect_out "destroy" 0 "deb: destroyed" "$CORRAL" destroy -f
check "nothing left: machine directory" test ! -e "$M"
check "nothing left: QEMU" bash -c '! pgrep -f -- "-pidfile $1/qemu.pid" >/dev/null' _ "$M"
