#!/usr/bin/env bash
# The cloud-image test: a real Debian 12 cloud image (boxes/debian-12-cloud:
# partitioned disk, its own bootloader, cloud-init, Debian's cloud kernel,
# no user and no host keys), given to corral the way Debian publishes
# genericcloud images — a `.tar.xz` holding a sparse `disk.raw` — as a
# machine's box_url. One boot under whatever `auto` picks (TCG here): the
# raw image stays raw as the overlay's backing file; the host key corral
# made is pinned before the guest's first console byte and checked
# strictly; up waits for cloud-init; host name, private address, the
# envfile's user-data, the disk grown to `disk:`, the synced folder (rsync:
# the cloud kernel has no 9p), a provisioner; destroy. One full boot only:
# the kvm halt/up lifecycle is conformance.sh's, on tiny-kvm. Then a short
# UEFI boot of the same box, ended at the kernel's first line.
. "$(dirname "$0")/../lib.sh"

t0=$(date +%s)
box=$(test_box debian-12-cloud)
echo "# box: $(($(date +%s) - t0)) s"
t0=$(date +%s)
img=$T/img
mkdir -p "$img" "$T/env/share"
tar -xzf "$box" -C "$img" box.img
qemu-img convert -f qcow2 -O raw "$img/box.img" "$img/disk.raw"
rm "$img/box.img"
tar -C "$img" --sparse -cf - disk.raw | xz -0 -T2 >"$img/debian-12-genericcloud-amd64.tar.xz"
rm "$img/disk.raw"
sum=$(sha256sum "$img/debian-12-genericcloud-amd64.tar.xz" | cut -d' ' -f1)
echo "# .tar.xz packed: $(($(date +%s) - t0)) s"

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

echo from-host >"$T/env/share/h"
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
    box_url: file://$img/debian-12-genericcloud-amd64.tar.xz
    box_checksum: sha256:$sum
    provider: kvm
    memory: 1G
    disk: 3G
    hostname: cloud-host
    networks: [{ network: lan }]
    synced_folders:
      - { host: ./share, guest: /srv/share }
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
check "up boots the cloud image, waits for cloud-init and provisions" \
	bash -c '[ "$1" = 0 ] && grep -qz "cloud: cloud-init done.*root" <<<"$2"' _ "$rc" "$out" ||
	printf '%s\n' "$out" | tail -n 25 | sed 's/^/#   /'

meta=$(echo "$CORRAL_HOME"/boxes/test-VAGRANTSLASH-debian-12-genericcloud/0/*/kvm/metadata.json)
expect_out "stored once as a kvm box: box.img kept raw, cloud_init" 0 '"format": "raw"' cat "$meta"
check "the metadata says cloud-init and where it came from" \
	bash -c 'jq -e ".cloud_init == true and (.source | endswith(\"genericcloud-amd64.tar.xz\"))" "$1" >/dev/null' _ "$meta"
expect_out "the overlay's backing file is the raw image" 0 '"backing-filename-format": "raw"' \
	qemu-img info -U --output=json "$M/disk.qcow2"

hostpub=$(ssh-keygen -y -f "$M/ssh_host_ed25519_key" | cut -d' ' -f1,2)
check "the host key was pinned before the guest's first console byte" \
	grep -qF "$hostpub" "$T/kh-at-boot"
run() { "$CORRAL" ssh cloud -c "$1" 2>&1; }
check "the guest's host key is the one corral made (and its only one)" \
	test "$(run 'sudo sh -c "cat /etc/ssh/ssh_host_*_key.pub"' | cut -d' ' -f1,2)" = "$hostpub"
cp "$M/known_hosts" "$T/kh-good"
sed -i 's/ssh-ed25519 [A-Za-z0-9+\/=]*/ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl/' "$M/known_hosts"
out=$("$CORRAL" ssh cloud -c 'echo reached-guest' 2>&1)
check "ssh checks it strictly: another pinned key is refused" \
	bash -c '[[ $1 != *reached-guest* && ($1 == *"Host key verification failed"* || $1 == *"not the one pinned"*) ]]' _ "$out" ||
	printf '%s\n' "$out" | tail -n 5 | sed 's/^/#   /'

cp "$T/kh-good" "$M/known_hosts"

expect_out "the host name is set" 0 "cloud-host" run 'hostname'
ip=$(jq -r .ip "$M/state.json")
expect_out "eth1 has the machine's private address" 0 "inet $ip/24" run 'ip -4 addr show eth1'
expect_out "user-data merged: write_files" 0 "merged" run 'cat /etc/from-user-data'
expect_out "user-data merged: runcmd" 0 "/etc/from-user-runcmd" run 'ls /etc/from-user-runcmd'
size=$(run 'lsblk -bno SIZE /dev/vda | head -n 1')
check "the disk was grown to disk: 3G" test "$size" = $((3 << 30))
fs=$(run 'df -B1M --output=size / | tail -n 1')
check "cloud-init grew the root file system (${fs// /} MiB)" test "${fs// /}" -gt 2500
expect_out "the synced folder (rsync: the cloud kernel has no 9p)" 0 "from-host" run 'cat /srv/share/h'
expect_out "the provisioner ran" 0 "/etc/provisioned" run 'ls /etc/provisioned'

expect_out "destroy" 0 "cloud: destroyed" "$CORRAL" destroy -f cloud
check "nothing left: machine directory" test ! -e "$M"
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
