#!/usr/bin/env bash
# The cloud-image test, and the one full boot of a systemd Debian guest in
# make test: a Debian 12 cloud image (boxes/debian-12-cloud: partitioned
# disk, its own bootloader, cloud-init, Debian's kernel with 9p, networkd,
# sudo; no user and no host keys), given to corral the way Debian publishes
# genericcloud images — a `.tar.xz` holding a sparse `disk.raw` — as a
# machine's box_url. One boot under whatever `auto` picks (TCG here): the
# raw image stays raw as the overlay's backing file; the host key corral
# made is pinned before the guest's first console byte and checked
# strictly; up waits for cloud-init; host name, /etc/hosts, the private
# address (persisted for systemd-networkd, matched by MAC), the envfile's
# user-data, the disk grown to `disk:`, a 9p synced folder (mounted by
# cloud-init) and an rsync one, a privileged provisioner, password-less
# sudo; the guest set-up over SSH putting back a host name, /etc/hosts line
# and address taken away; halt through the ACPI power button; destroy
# leaving nothing but the synced folders' files. The halt/up lifecycle is
# conformance.sh's, on tiny-kvm. Then a short UEFI boot of the same box,
# ended at the kernel's first line.
. "$(dirname "$0")/../lib.sh"

t0=$(date +%s)
box=$(test_box debian-12-cloud)
echo "# box: $(($(date +%s) - t0)) s"
t0=$(date +%s)
img=$T/img
mkdir -p "$img" "$T/env/nine" "$T/env/copy"
# Packed once per build of the box and kept beside it in the test cache:
# xz over the whole disk takes minutes of a busy 2-core machine. A run
# that finds none packs its own and renames it into place.
xzimg=$(dirname "$box")/debian-12-genericcloud-amd64.tar.xz
if [ ! -s "$xzimg" ]; then
	tar -xzf "$box" -C "$img" box.img
	qemu-img convert -f qcow2 -O raw "$img/box.img" "$img/disk.raw"
	rm "$img/box.img"
	tar -C "$img" --sparse -cf - disk.raw | xz -0 -T2 >"$img/packed.tar.xz"
	rm "$img/disk.raw"
	mv "$img/packed.tar.xz" "$xzimg.$$" && mv "$xzimg.$$" "$xzimg"
	echo "# .tar.xz packed: $(($(date +%s) - t0)) s"
fi
sum=$(sha256sum "$xzimg" | cut -d' ' -f1)

# A full disk while the image streams in (it expands 6000:1): refused, the
# store as it was.
mkdir -p "$T/small"
mount -t tmpfs -o size=3M corral-test "$T/small"
on_exit 'umount "$T/small" 2>/dev/null'
yes corral-pattern | head -c 6000000 >"$img/pattern.raw"
printf '\x55\xaa' | dd of="$img/pattern.raw" bs=1 seek=510 conv=notrunc status=none
xz -0 "$img/pattern.raw"
expect_out "a disk filling up during the add fails it" 1 "no space left on $T/small" \
	env CORRAL_HOME="$T/small/home" "$CORRAL" box add --name test/pattern "$img/pattern.raw.xz"
check "and leaves the store as it was" \
	test -z "$(find "$T/small/home/boxes" -mindepth 1 ! -name '.lock-*')"
umount "$T/small"

echo nine-from-host >"$T/env/nine/h"
echo copied >"$T/env/copy/f"
cat >"$T/env/user-data.yaml" <<'EOF'
#cloud-config
write_files:
  - { path: /etc/from-user-data, content: "merged\n" }
runcmd:
  - [touch, /etc/from-user-runcmd]
EOF
cat >"$T/env/corral.yaml" <<YAML
version: 1
networks:
  lan: { subnet: 10.216.9.0/24 }
machines:
  cloud:
    box: test/debian-12-genericcloud
    box_url: file://$xzimg
    box_checksum: sha256:$sum
    provider: kvm
    memory: 1G
    disk: 3G
    hostname: cloud-host
    networks: [{ network: lan }]
    synced_folders:
      - { host: ./nine, guest: /srv/nine }
      - { host: ./copy, guest: /srv/copy, type: rsync }
    cloud_init: { user_data: ./user-data.yaml }
    ssh: { boot_timeout: 15m }
    graceful_halt_timeout: 2m
    provision:
      - shell: { inline: "touch /etc/provisioned; id -un" }
  efi:
    box: test/debian-12-genericcloud
    provider: kvm
    autostart: false
    provider_options: { kvm: { firmware: uefi } }
YAML
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
M=$T/env/.corral/machines/cloud

# What known_hosts holds when the guest prints its first byte.
(
	for _ in $(seq 6000); do
		[ -s "$M/console.log" ] && break
		sleep 0.1
	done
	cp "$M/known_hosts" "$T/kh-at-boot" 2>/dev/null
) &
watcher=$!
t0=$(date +%s)
out=$("$CORRAL" up cloud 2>&1)
rc=$?
echo "# up: $(grep -o 'starting QEMU ([A-Z]*)' <<<"$out" | tail -n 1), $(($(date +%s) - t0)) s"
wait "$watcher"
name="up boots the cloud image, waits for cloud-init and provisions"
if [ "$rc" = 0 ] && grep -qz "cloud: cloud-init done.*root" <<<"$out"; then
	ok "$name"
else
	not_ok "$name"
	printf '%s\n' "$out" | tail -n 25 | sed 's/^/#   /'
fi
# QEMU takes no savevm (memory) while the guest has a 9p folder mounted:
# the `provisioned` checkpoint of a machine whose guest mounted one holds its disk
# only, and `corral reset` boots it anew from that disk.
check "the checkpoint was taken with a 9p folder mounted" grep -q "checkpoint \`provisioned\` taken" <<<"$out"
check "and it holds the disk only (no VM state)" bash -c \
	'jq -e ".checkpoint_disk_only == true" "$1/state.json" >/dev/null &&
	 qemu-img snapshot -U -l "$1/disk.qcow2" | awk "\$2 == \"provisioned\" && \$3 == \"0\" {f=1} END {exit !f}"' _ "$M"

meta=$(echo "$CORRAL_HOME"/boxes/test-VAGRANTSLASH-debian-12-genericcloud/0/*/kvm/metadata.json)
expect_out "stored once as a kvm box: box.img kept raw, cloud_init" 0 '"format": "raw"' cat "$meta"
check "the metadata says cloud-init and where it came from" \
	bash -c 'jq -e ".cloud_init == true and (.source | endswith(\"genericcloud-amd64.tar.xz\"))" "$1" >/dev/null' _ "$meta"
expect_out "the overlay's backing file is the raw image" 0 '"backing-filename-format": "raw"' \
	qemu-img info -U --output=json "$M/disk.qcow2"

hostpub=$(ssh-keygen -y -f "$M/ssh_host_ed25519_key" | cut -d' ' -f1,2)
run() { "$CORRAL" ssh cloud -c "$1" 2>&1; }
# probe KEY CMD...: one SSH session for many reads (a session costs the
# emulated guest about a second of CPU): "== KEY" on a line of its own
# and then CMD's output, for each pair; part KEY prints one command's
# output from $P.
probe() {
	local script=
	while [ $# -gt 0 ]; do script+="echo; echo '== $1'; { $2; } 2>&1; "; shift 2; done
	run "$script"
}
part() { awk -v k="== $1" '$0 == k { f = 1; next } /^== / { f = 0 } f' <<<"$P"; }
netfile='/etc/systemd/network/50-corral-$(tr -d : </sys/class/net/eth1/address).network'
P=$(probe hostkeys 'sudo sh -c "cat /etc/ssh/ssh_host_*_key.pub"' os 'cat /etc/os-release' \
	sudo 'sudo -n id -un' hostname hostname etc-hostname 'cat /etc/hostname' \
	hosts 'grep -w cloud-host /etc/hosts' eth1 'ip -4 addr show eth1' \
	mac 'cat /sys/class/net/eth1/address' netfile "cat $netfile" \
	user-data 'cat /etc/from-user-data' runcmd 'ls /etc/from-user-runcmd' \
	size 'lsblk -bno SIZE /dev/vda | head -n 1' fs 'df -B1M --output=size / | tail -n 1' \
	mounts 'cat /proc/mounts' nine 'cat /srv/nine/h' \
	nine-write 'echo nine-from-guest | sudo tee /srv/nine/g >/dev/null' \
	copy 'cat /srv/copy/f' provisioned 'ls /etc/provisioned')
check "the guest's host key is the one corral made (and its only one)" \
	test "$(part hostkeys | cut -d' ' -f1,2)" = "$hostpub"
cp "$M/known_hosts" "$T/kh-good"
sed -i 's/ssh-ed25519 [A-Za-z0-9+\/=]*/ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl/' "$M/known_hosts"
out=$("$CORRAL" ssh cloud -c 'echo reached-guest' 2>&1)
check "ssh checks it strictly: another pinned key is refused" \
	bash -c '[[ $1 != *reached-guest* && ($1 == *"Host key verification failed"* || $1 == *"not the one pinned"*) ]]' _ "$out" ||
	printf '%s\n' "$out" | tail -n 5 | sed 's/^/#   /'

cp "$T/kh-good" "$M/known_hosts"

expect_out "it is bookworm" 0 'VERSION_CODENAME=bookworm' part os
expect_out "password-less sudo" 0 "root" part sudo
expect_out "the host name is set" 0 "cloud-host" part hostname
check "and kept in /etc/hostname" test "$(part etc-hostname)" = cloud-host
expect_out "/etc/hosts names it" 0 "127.0.1.1" part hosts
ip=$(jq -r .ip "$M/state.json")
expect_out "eth1 has the machine's private address" 0 "inet $ip/24" part eth1
mac=$(part mac)
expect_out "persisted for networkd, matched by MAC" 0 "MACAddress=$mac" part netfile
banner() { timeout 5 bash -c "exec 3<>/dev/tcp/$1/22; head -c 3 <&3"; }
expect_out "the host reaches it on that address" 0 "SSH" banner "$ip"
expect_out "user-data merged: write_files" 0 "merged" part user-data
expect_out "user-data merged: runcmd" 0 "/etc/from-user-runcmd" part runcmd
check "the disk was grown to disk: 3G" test "$(part size)" = $((3 << 30))
fs=$(part fs)
check "cloud-init grew the root file system (${fs// /} MiB)" test "${fs// /}" -gt 2500
expect_out "auto on kvm: a 9p mount" 0 "corral0 /srv/nine 9p" part mounts
expect_out "9p: the host's file shows in the guest" 0 "nine-from-host" part nine
expect_out "9p: the guest's file shows on the host" 0 "nine-from-guest" cat "$T/env/nine/g"
expect_out "rsync: the folder was copied" 0 "copied" part copy
expect_out "the provisioner ran" 0 "/etc/provisioned" part provisioned
echo again >"$T/env/copy/f"
expect_out "corral rsync" 0 "synced folder /srv/copy" "$CORRAL" rsync cloud
expect_out "copies the change" 0 "again" run 'cat /srv/copy/f'
out=$("$CORRAL" up cloud 2>&1)
check "up on the running machine changes nothing" \
	bash -c '[[ $1 == *"already running"* && $1 != *"host name set"* && $1 != *"eth1 ("* ]]' _ "$out"

# The guest set-up over SSH (what sets a box without cloud-init up):
# what it finds taken away, up puts back.
run "sudo sh -c 'hostname other; echo other >/etc/hostname; sed -i /^127.0.1.1/d /etc/hosts;
	ip addr flush dev eth1 scope global; rm $netfile'"
out=$("$CORRAL" up cloud 2>&1)
name="up on the running machine: the guest set-up puts back what it lacks"
if [[ $out == *"host name set to cloud-host"* && $out == *"/etc/hosts: 127.0.1.1 is cloud-host"* &&
	$out == *"eth1 ($mac): $ip/24"* ]]; then
	ok "$name"
else
	not_ok "$name"
	printf '%s\n' "$out" | tail -n 10 | sed 's/^/#   /'
fi
P=$(probe hostname 'hostname; cat /etc/hostname' etc-hostname 'cat /etc/hostname' hosts 'cat /etc/hosts' \
	eth1 'ip -4 addr show eth1' netfile "cat $netfile")
expect_out "the host name is set again" 0 "cloud-host" part hostname
check "and kept in /etc/hostname" test "$(part etc-hostname)" = cloud-host
expect_out "/etc/hosts names it again" 0 "$(printf '127.0.1.1\tcloud-host')" part hosts
expect_out "eth1 has its address again, set statically" 0 "inet $ip/24" part eth1
expect_out "persisted again for networkd" 0 "Address=$ip/24" part netfile
expect_out "the host reaches it again" 0 "SSH" banner "$ip"

expect_out "halt (ACPI power button, systemd shuts down)" 0 "cloud: stopped" "$CORRAL" halt cloud
check "the console shows a clean power-off" grep -q "reboot: Power down" "$M/console.log"
expect_out "destroy" 0 "cloud: destroyed" "$CORRAL" destroy -f cloud
check "nothing left: machine directory" test ! -e "$M"
check "the synced folders' files are intact" \
	[ "$(cat "$T/env/nine/h" "$T/env/nine/g" "$T/env/copy/f")" = "$(printf 'nine-from-host\nnine-from-guest\nagain')" ]
check "nothing left: QEMU" bash -c '! pgrep -f -- "-pidfile $1/qemu.pid" >/dev/null' _ "$M"

# UEFI: OVMF, the machine's own qcow2 variable store, the image's EFI
# loader; only as far as the kernel's first line.
E=$T/env/.corral/machines/efi
t0=$(date +%s)
"$CORRAL" up efi >"$T/efi.out" 2>&1 &
efi_up=$!
for _ in $(seq 1800); do
	grep -aq "Linux version" "$E/console.log" 2>/dev/null && break
	sleep 0.1
done
kill "$efi_up" 2>/dev/null
wait "$efi_up" 2>/dev/null
echo "# UEFI to the kernel's first line: $(($(date +%s) - t0)) s"
check "UEFI: OVMF started the image's EFI loader" grep -aq "BdsDxe: starting Boot" "$E/console.log"
check "UEFI: which started the kernel" grep -aq "Linux version" "$E/console.log"
expect_out "UEFI: the machine's variable store is qcow2" 0 "file format: qcow2" qemu-img info -U "$E/OVMF_VARS.qcow2"
expect_out "destroy the UEFI machine" 0 "efi: destroyed" "$CORRAL" destroy -f efi
