#!/usr/bin/env bash
# Virtual-machine instances of the incus provider, against a fake server:
# VMs need KVM, which this host lacks, so tests/fakes/incus-fake.py answers
# on a unix socket with responses recorded from LXD 5.0.2 and logs every
# request; the checks read that log. Through the CLI: `up` uploads the kvm
# box's disk as a VM image (alias = the box's digest), creates a
# virtual-machine instance whose keys come by cloud-init (the SSH user with
# the machine key, the host key pinned in known_hosts), NICs with corral's
# MACs matched by the network-config (eth0 and a private network's eth1),
# a synced folder as a disk device (no id map), a NAT proxy for a forwarded
# port, migration.stateful with room for the memory, starts it and takes
# the address the server reports (SSH itself then times out: nothing runs).
# suspend is a stateful stop, resume a start; the next up applies a changed
# memory limit and a changed network address (the NIC keeps its MAC, the
# network-config is rewritten); destroy deletes the instance and the image;
# `ports: auto` starts its watcher with the VM's address for NAT proxies.
# Recorded from LXD 5.0.2 (tests/fakes/incus-vm/): the server (driver and
# instance_types edited), profile, network, leases, operation envelopes,
# image results, 404s, the instance; shaped by hand from the API docs and
# LXD's driver_qemu.go: a VM's state (no agent: processes -1, the NIC's
# lease address) and the empty answer to DELETE of a network.
. "$(dirname "$0")/../lib.sh"
"$CORRAL" box add "$(dirname "$(test_box tiny-kvm)")/catalog.json" >/dev/null 2>&1

# (LXD_DIR: the socket the provider's availability check looks at)
export LXD_DIR=$T
SOCK=$T/unix.socket LOG=$T/requests.log
/usr/bin/python3 "$ROOT/tests/fakes/incus-fake.py" "$SOCK" "$ROOT/tests/fakes/incus-vm" "$LOG" &
FAKE=$!
on_exit "kill $FAKE 2>/dev/null"
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.1; done

PORT=$(rand_port)
mkdir -p "$T/e/src" && cd "$T/e"
envfile() {
	cat >corral.yaml <<YAML
version: 1
networks:
  back: { subnet: 10.219.99.0/24 }
machines:
  vm:
    box: corral/tiny-kvm
    provider: incus
    memory: $1
    ssh: { boot_timeout: 1s }
    provider_options:
      incus: { remote: "unix://$SOCK", type: virtual-machine, network: incusbr0 }
    ports: [{ guest: 80, host: $PORT }]
    networks: [{ network: back${2:-} }]
    synced_folders: [{ host: ./src, guest: /srv/app }]
YAML
}
envfile 256M
# the requests of one kind, as JSON lines
req() { jq -c "select(.method == \"$1\" and (.path | test(\"$2\")))" "$LOG"; }
body() { req "$1" "$2" | tail -n 1 | jq -r ".body$3"; }

out=$("$CORRAL" up 2>&1)
check "up gets as far as SSH (nothing boots behind the fake)" grep -q "vm: booting" <<<"$out"
check "no request went unanswered" sh -c "! grep -q unexpected '$LOG'"

BOXDIR=$(jq -r .box_dir .corral/machines/vm/state.json)
DIGEST=$(jq -r .sha256 "$BOXDIR/.corral-box.json")
check "the upload is a VM image: metadata.yaml and rootfs.img" test "$(body POST '^/1.0/images$' '.members | join(" ")')" = "metadata.yaml rootfs.img"
check "its alias is the box's digest" test "$(body POST '^/1.0/images/aliases$' .name)" = "corral-$DIGEST"

create() { body POST '^/1.0/instances$' "$1"; }
check "the instance is a virtual machine" test "$(create .type)" = virtual-machine
check "made from that image" test "$(create .source.alias)" = "corral-$DIGEST"
check "with no raw.lxc" test "$(create '.config["raw.lxc"]')" = null
check "memory as its limit" test "$(create '.config["limits.memory"]')" = 256MiB
UD=$(create '.config["cloud-init.user-data"]')
check "user-data is a cloud-config" test "$(head -n 1 <<<"$UD")" = "#cloud-config"
check "it makes the SSH user with the machine's key" test "$(tail -n +2 <<<"$UD" | jq -r '.users[0].name + " " + .users[0].ssh_authorized_keys[0]')" = "vagrant $(cat .corral/machines/vm/id_ed25519.pub)"
HOSTPUB=$(tail -n +2 <<<"$UD" | jq -r .ssh_keys.ed25519_public)
check "its host key is the one pinned in known_hosts" grep -qF "${HOSTPUB#ssh-ed25519 }" .corral/machines/vm/known_hosts
MAC=$(create '.devices.eth0.hwaddr')
NC=$(create '.config["cloud-init.network-config"]')
check "the network-config matches eth0 by corral's MAC" test "$(jq -r '.ethernets.eth0.match.macaddress' <<<"$NC")" = "$MAC"
check "the MAC is in LXD's block" grep -q '^00:16:3e:' <<<"$MAC"
IP=$(create '.devices.eth0["ipv4.address"]')
MAC1=$(create '.devices.eth1.hwaddr')
check "the private network's NIC has a MAC of corral's too" grep -q '^00:16:3e:' <<<"$MAC1"
check "and the network-config matches it" test "$(jq -r '.ethernets.eth1.match.macaddress' <<<"$NC")" = "$MAC1"
check "the synced folder is a disk device (virtiofs through the agent)" test "$(create '.devices["corral-sync-0"] | .type + " " + .source + " " + .path')" = "disk $T/e/src /srv/app"
check "with no id map (a VM's)" test "$(create '.config["raw.idmap"]')" = null
check "the forwarded port is a NAT proxy to the VM's address" test "$(create ".devices[\"corral-port-tcp-$PORT\"] | .nat + \" \" + .connect")" = "true tcp:$IP:80"
check "stateful stop is enabled (the server has migration_stateful)" test "$(create '.config["migration.stateful"]')" = true
check "with room for the memory on the root disk" test "$(create '.devices.root["size.state"]')" = 256MiB
check "no file was pushed (the VM's disk is not mounted before boot)" test -z "$(req POST '/files$')"
check "it was started" test "$(body PUT '/state$' .action)" = start
check "the address is the one the server reports" test "$(jq -r .ip .corral/machines/vm/state.json)" = 10.219.99.77

: >"$LOG"
expect_out "suspend" 0 "vm: suspended" "$CORRAL" suspend vm
check "suspend is a stateful stop" test "$(body PUT '/state$' '| "\(.action) \(.stateful)"')" = "stop true"
expect_out "status: saved" 0 "saved (incus)" "$CORRAL" status vm
"$CORRAL" resume vm >/dev/null 2>&1
check "resume starts it from its saved state" test "$(body PUT '/state$' '| "\(.action) \(.stateful)"')" = "start true"
"$CORRAL" suspend vm >/dev/null 2>&1
: >"$LOG"
"$CORRAL" halt vm >/dev/null 2>&1
check "halt of a suspended VM discards its state (a plain start, then a stop)" test "$(req PUT '/state$' | jq -r '.body | "\(.action) \(.stateful // false) \(.force // false)"' | xargs)" = "start false false stop false true"

expect_out "status: stopped" 0 "stopped (incus)" "$CORRAL" status vm
envfile 512M ", ip: 10.219.99.50"
: >"$LOG"
"$CORRAL" up vm >/dev/null 2>&1
put() { body PUT '^/1.0/instances/[^/]+$' "$1"; }
check "up applies the changed memory (PUT of the instance)" test "$(put '.config["limits.memory"]')" = 512MiB
check "and the network's new address" test "$(put '.devices.eth1["ipv4.address"]')" = 10.219.99.50
check "on a NIC that keeps its MAC" test "$(put '.devices.eth1.hwaddr')" = "$MAC1"
NC2=$(put '.config["cloud-init.network-config"]')
check "with the network-config rewritten to match it" test "$(jq -r '.ethernets.eth1.match.macaddress + " " + .ethernets.eth0.match.macaddress' <<<"$NC2")" = "$MAC1 $MAC"
check "and the synced folder kept" test "$(put '.devices["corral-sync-0"].path')" = /srv/app
check "and the state room with it" test "$(body PUT '^/1.0/instances/[^/]+$' '.devices.root["size.state"]')" = 512MiB
check "and keeps the NAT proxy" test "$(body PUT '^/1.0/instances/[^/]+$' ".devices[\"corral-port-tcp-$PORT\"].nat")" = true

: >"$LOG"
expect_out "destroy" 0 "vm: destroyed" "$CORRAL" destroy -f
check "the instance is deleted" test -n "$(req DELETE '^/1.0/instances/')"
check "and the image" test -n "$(req DELETE '^/1.0/images/[0-9a-f]{64}$')"

# ports: auto on a VM: the watcher's proxies are NAT ones to the VM's
# address (it SSHes to the guest to see its ports: not here, so its
# arguments are what is checked).
sed -i 's/^    ports: .*/    ports: auto/' corral.yaml
"$CORRAL" up vm >/dev/null 2>&1
W=$(jq -r '.portfwd_pid // empty' .corral/machines/vm/state.json)
check "up starts the ports: auto watcher for a VM" test -n "$W" -a -e "/proc/${W:-0}/cmdline"
check "its proxies connect to the VM's address (NAT)" grep -qx 'vm_ip=10.219.99.77' <<<"$(tr '\0' '\n' <"/proc/${W:-0}/cmdline" 2>/dev/null)"
expect_out "destroy" 0 "vm: destroyed" "$CORRAL" destroy -f
check "the watcher is gone" gone "${W:-0}"
check "no request went unanswered" sh -c "! grep -q unexpected '$LOG'"

