#!/usr/bin/env bash
# The VirtualBox provider end to end against the fake VBoxManage
# (tests/fakes/VBoxManage): two machines on a private network, one with a
# forwarded port, through up (first-boot key swap, shell provisioners),
# ssh -c, graceful and forced halt, snapshots, suspend/resume, a VM removed behind
# corral's back, the transient-lock retry, the version check and destroy;
# the guest set-up over SSH: host name, /etc/hosts, the private address on
# the NIC with the VM's MAC (the stand-in guest's `ip` is a stub that logs:
# it shares the host's network stack), rsync folders (real rsync into the
# stand-in guest) and a vboxsf folder (the fake binds it; see vbox-testbox).
# First, the fake itself: it refuses what VirtualBox refuses, so a wrong
# invocation from corral fails a test.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/fakes/vbox-env.sh"

# ---- the fake refuses what the real tool refuses
ovf=$(find "$CORRAL_HOME/boxes" -name box.ovf | head -n 1)
expect_out "fake: unknown subcommand (exit 2)" 2 "Invalid command 'frobnicate'" "$VBM" frobnicate
expect_out "fake: --unit without --vsys (exit 2)" 2 'requires preceding --vsys' \
	"$VBM" import "$ovf" --unit 9 --disk /tmp/x.vmdk
"$VBM" import "$ovf" --vsys 0 --vmname probe >/dev/null
# modifyvm looks the VM up and locks it before its option loop: a bad
# option is an API failure (exit 1), and an unknown VM is reported first.
expect_out "fake: a 5-field NAT rule (exit 1)" 1 "Invalid NAT rule" \
	"$VBM" modifyvm probe --natpf1 ssh,tcp,127.0.0.1,2222,22
expect_out "fake: a bad NAT protocol (exit 1)" 1 "Invalid NAT rule" \
	"$VBM" modifyvm probe --natpf1 ssh,sctp,,2222,,22
expect_out "fake: an unknown modifyvm option (exit 1)" 1 "Unknown option: --bogus" \
	"$VBM" modifyvm probe --bogus 1
expect_out "fake: modifyvm of an unknown VM: the lookup fails first" 1 "VBOX_E_OBJECT_NOT_FOUND" \
	"$VBM" modifyvm no-such-vm --bogus 1
out=$("$VBM" modifyvm probe --natpf1 delete nope 2>&1); rc=$?
check "fake: deleting a missing NAT rule is a bare E_INVALIDARG (no Details line)" \
	test "$rc" = 1 -a "$(grep -c 'error: Code E_INVALIDARG (0x80070057)' <<<"$out")" = 1 \
	-a "$(grep -c 'Details:' <<<"$out")" = 0
expect_out "fake: the dry run names disks by file name only (6.0+)" 0 \
	"target path=box-disk001.vmdk, controller" "$VBM" import -n "$ovf"
(cd "$T" && "$VBM" import "$ovf" --vsys 0 --vmname rel --vsys 0 --unit 9 --disk box-disk001.vmdk >/dev/null)
check "fake: a relative --disk lands in the current directory" test -f "$T/box-disk001.vmdk"
out=$(cd "$T" && "$VBM" import "$ovf" --vsys 0 --vmname rel2 --vsys 0 --unit 9 --disk box-disk001.vmdk 2>&1)
check "fake: a disk that exists fails the import with VirtualBox's lines" \
	grep -qz "error: Appliance import failed.*VERR_ALREADY_EXISTS" <<<"$out"
"$VBM" unregistervm rel --delete >/dev/null 2>&1
rm -f "$T/box-disk001.vmdk"
"$VBM" hostonlyif create >/dev/null
expect_out "fake: a host-only address outside 192.168.56.0/21 is refused (no networks.conf)" 1 \
	"error: Code E_ACCESSDENIED (0x80070005) - Access denied" \
	"$VBM" hostonlyif ipconfig vboxnet0 --ip 10.30.0.1 --netmask 255.255.255.0
expect_out "fake: 192.168.63.1/24 is inside it" 0 "" \
	"$VBM" hostonlyif ipconfig vboxnet0 --ip 192.168.63.1 --netmask 255.255.255.0
expect_out "fake: before 6.1.28 any range goes" 0 "" \
	env VBOX_FAKE_VERSION=6.1.26r145957 "$VBM" hostonlyif ipconfig vboxnet0 --ip 10.30.0.1
echo "* 10.30.0.0/16" >"$T/nets.conf"
expect_out "fake: networks.conf's ranges replace the default" 1 "E_ACCESSDENIED" \
	env CORRAL_VBOX_NETWORKS_CONF="$T/nets.conf" "$VBM" hostonlyif ipconfig vboxnet0 --ip 192.168.56.1
expect_out "fake: and allow theirs" 0 "" \
	env CORRAL_VBOX_NETWORKS_CONF="$T/nets.conf" "$VBM" hostonlyif ipconfig vboxnet0 --ip 10.30.0.1
"$VBM" hostonlyif remove vboxnet0
"$VBM" modifyvm probe --natpf1 a,tcp,,2301,,1 --natpf1 b,tcp,,2302,,2
check "fake: 7.0.0's showvminfo omits two NAT rules" bash -c \
	"! VBOX_FAKE_VERSION=7.0.0r154998 '$VBM' showvminfo probe --machinereadable | grep -q Forwarding"
check "fake: later versions list them" bash -c \
	"'$VBM' showvminfo probe --machinereadable | grep -q 'Forwarding(1)=\"b,'"
expect_out "fake: unknown VM (VBOX_E_OBJECT_NOT_FOUND)" 1 "VBOX_E_OBJECT_NOT_FOUND" \
	"$VBM" showvminfo no-such-vm --machinereadable
expect_out "fake: controlvm on a stopped VM" 1 "Machine 'probe' is not currently running." \
	"$VBM" controlvm probe poweroff
"$VBM" startvm probe --type headless >/dev/null
expect_out "fake: modifyvm on a running VM" 1 "VBOX_E_INVALID_OBJECT_STATE" \
	"$VBM" modifyvm probe --cpus 2
"$VBM" controlvm probe poweroff >/dev/null 2>&1
cfg=$("$VBM" showvminfo probe --machinereadable | sed -n 's/^CfgFile="\(.*\)"$/\1/p')
mv "$cfg" "$cfg.away"
expect_out "fake: a VM without its settings file is inaccessible" 0 '"<inaccessible>" {' "$VBM" list vms
probe=$("$VBM" list vms | sed -n 's/^"<inaccessible>" {\(.*\)}$/\1/p')
check "fake: its showvminfo has no VMState" bash -c "! '$VBM' showvminfo $probe --machinereadable | grep -q VMState"
expect_out "fake: other commands fail on it" 1 "E_ACCESSDENIED" "$VBM" startvm "$probe"
mv "$cfg.away" "$cfg"
"$VBM" unregistervm probe --delete >/dev/null 2>&1

# ---- host-only ranges: checked before anything is made
mkdir -p "$T/range"
cat >"$T/range/corral.yaml" <<'YAML'
version: 1
networks:
  backend: { subnet: 10.30.0.0/24 }
machines:
  m: { box: corral/tiny-vbox, provider: virtualbox, networks: [{ network: backend }] }
YAML
: >"$VBOX_FAKE_HOME/calls.log"
out=$("$CORRAL" -C "$T/range" up 2>&1); rc=$?
check "a subnet outside VirtualBox's host-only ranges fails up" test "$rc" = 1
check "naming the allowed ranges and the file to edit" \
	grep -qz "10.30.0.0/24.*192.168.56.0/21.*$T/vbox-networks.conf" <<<"$out"
[[ $out == *192.168.56.0/21* ]] || printf '%s\n' "$out" | sed 's/^/#   /'
check "before anything was created" bash -c "! grep -qE '^(import|clonevm|hostonlyif)' '$VBOX_FAKE_HOME/calls.log'"
echo "* 10.0.0.0/8" >"$CORRAL_VBOX_NETWORKS_CONF"
out=$("$CORRAL" -C "$T/range" up 2>&1)
check "networks.conf's ranges are the ones checked" grep -q "m: ssh ready" <<<"$out"
[[ $out == *"ssh ready"* ]] || printf '%s\n' "$out" | tail -n 5 | sed 's/^/#   /'
check "the box's disk is imported into VirtualBox's machine folder" \
	grep -q "^import .* --disk '$VBOX_FAKE_HOME/VirtualBox VMs/corral_box_[^/]*/box-disk001.vmdk'\$" "$VBOX_FAKE_HOME/calls.log"
check "not into the project folder" test -z "$(find "$T/range" -name '*.vmdk')"
"$CORRAL" -C "$T/range" destroy -f >/dev/null 2>&1
"$VBM" hostonlyif remove vboxnet0
rm -f "$CORRAL_VBOX_NETWORKS_CONF"

# ---- a failed import: every error line VBoxManage gave, not only the first
cat >"$T/taken-vboxmanage" <<EOF
#!/bin/sh
# the disk's target exists already, as a second box's box-disk001.vmdk would
if [ "\$1" = import ] && [ "\$2" != -n ]; then
	for a; do [ "\$prev" = --disk ] && mkdir -p "\$(dirname "\$a")" && : >"\$a"; prev=\$a; done
fi
exec "$VBM" "\$@"
EOF
chmod +x "$T/taken-vboxmanage"
mkdir -p "$T/full"
printf 'version: 1\nmachines:\n  m: { box: corral/tiny-vbox, provider: virtualbox, provider_options: { virtualbox: { linked_clone: false } } }\n' >"$T/full/corral.yaml"
expect_out "a failed import shows its cause" 1 \
	"Appliance import failed; Could not create the imported medium" \
	env CORRAL_VBOXMANAGE="$T/taken-vboxmanage" "$CORRAL" -C "$T/full" up

# A VBoxManage that gets one wrong option from corral makes `up` fail, with
# VBoxManage's own error and what corral was doing.
cat >"$T/wrong-vboxmanage" <<EOF
#!/bin/sh
[ "\$1" = modifyvm ] && exec "$VBM" "\$@" --bogus on
exec "$VBM" "\$@"
EOF
chmod +x "$T/wrong-vboxmanage"
mkdir -p "$T/wrong"
printf 'version: 1\nmachines:\n  m: { box: corral/tiny-vbox, provider: virtualbox }\n' >"$T/wrong/corral.yaml"
expect_out "a wrong invocation from corral fails up, naming what it did" 1 \
	"VBoxManage modifyvm: Unknown option: --bogus" \
	env CORRAL_VBOXMANAGE="$T/wrong-vboxmanage" "$CORRAL" -C "$T/wrong" up
"$CORRAL" -C "$T/wrong" destroy -f >/dev/null 2>&1

# ---- two machines, a private network, a forwarded port
mkdir -p "$T/env/share"
echo from-host >"$T/env/share/h"
cat >"$T/env/corral.yaml" <<'YAML'
version: 1
networks:
  backend: { subnet: 192.168.59.0/24 }
defaults:
  box: corral/tiny-vbox
  provider: virtualbox
  memory: 256M
machines:
  db:
    networks: [{ network: backend, ip: 192.168.59.5 }]
    provision:
      - shell: { inline: "echo provisioned > /root/prov" }
  web:
    depends_on: [db]
    networks: [{ network: backend }]
    hostname: shop-web
    ports: [{ guest: 80, host: 18080, auto_correct: true }]
    synced_folders:
      - { host: ., guest: /srv/project }
      - { host: ./share, guest: /srv/share, type: vboxsf }
    graceful_halt_timeout: 20s
    provision:
      - shell: { inline: "echo web-$APP > /tmp/who", env: { APP: shop } }
YAML
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
st() { jq -r --arg k "$2" '.[$k] // ""' ".corral/machines/$1/state.json"; }
info() { "$VBM" showvminfo "$(st "$1" id)" --machinereadable; }
calls() { cat "$VBOX_FAKE_HOME/calls.log"; }

: >"$VBOX_FAKE_HOME/calls.log"
out=$("$CORRAL" up 2>&1)
check "up: both machines reach SSH" grep -qz 'db: ssh ready.*web: ssh ready' <<<"$out"
[[ $out == *"ssh ready"* ]] || printf '%s\n' "$out" | sed 's/^/#   /'
check "up: the box has one master VM" [ "$("$VBM" list vms | grep -c '^"corral_box_')" = 1 ]
check "up: each machine is a linked clone of it" [ "$(calls | grep -c '^clonevm .* --snapshot base --options link$')" = 2 ]
check "up: one host-only interface for the network" [ "$(calls | grep -c '^hostonlyif create')" = 1 ]
check "up: no disk in the project folder" test -z "$(find "$T/env" -name '*.vmdk')"
check "up: Vagrant's defaults: UTC clock, NAT DNS proxy" \
	grep -q '^modifyvm .* --rtcuseutc on --natdnsproxy1 on$' "$VBOX_FAKE_HOME/calls.log"
expect_out "the host-only interface has the subnet's first address" 0 "IPAddress:       192.168.59.1" "$VBM" list hostonlyifs
expect_out "web's NIC 2 is on it" 0 'hostonlyadapter2="vboxnet0"' info web
expect_out "web's forwarded port is a NAT rule" 0 'Forwarding(1)="tcp80,tcp,127.0.0.1,' info web
expect_out "memory is set" 0 'memory=256' info db
expect_out "status shows the private addresses" 0 "192.168.59.5" "$CORRAL" status db
expect_out "an unset address comes from the subnet" 0 "192.168.59.2" "$CORRAL" status web
expect_out "port lists the forward" 0 "80 (guest) =>" "$CORRAL" port web
expect_out "the provisioner ran on db (privileged)" 0 "provisioned" "$CORRAL" ssh db -c 'cat /root/prov'
expect_out "the provisioner ran on web with its env" 0 "web-shop" "$CORRAL" ssh web -c 'cat /tmp/who'
expect_out "ssh -c returns the command's status" 3 "" "$CORRAL" ssh web -c 'exit 3'
check "the insecure key was replaced" bash -c "! '$CORRAL' ssh db -c 'cat ~/.ssh/authorized_keys' | grep -q 'vagrant insecure'"
check "the SSH forward is on 127.0.0.1 at the recorded port" \
	bash -c "'$VBM' showvminfo '$(st db id)' --machinereadable | grep -q 'ssh,tcp,127.0.0.1,$(st db ssh_port),,22'"

# ---- the guest set-up
expect_out "the host name is set" 0 "shop-web" "$CORRAL" ssh web -c hostname
expect_out "and resolves through /etc/hosts" 0 "$(printf '127.0.1.1\tshop-web')" "$CORRAL" ssh web -c 'cat /etc/hosts'
expect_out "db's host name is its name" 0 "db" "$CORRAL" ssh db -c hostname
mac2=$(info web | sed -n 's/^macaddress2="\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)"$/\1:\2:\3:\4:\5:\6/p' | tr A-F a-f)
expect_out "the NIC with NIC 2's MAC gets the address" 0 "ip addr add 192.168.59.2/24 dev eth1" \
	"$CORRAL" ssh web -c 'cat /var/log/fake-ip.log'
expect_out "and is set up" 0 "ip link set dev eth1 up" "$CORRAL" ssh web -c 'cat /var/log/fake-ip.log'
check "NIC 2 of the fake guest has that MAC" bash -c "'$CORRAL' ssh web -c 'ip -o link' | grep -q 'eth1: .*link/ether $mac2 '"
check "the host's network is untouched" bash -c '! ip -o addr | grep -q "192\.168\.59\.2/"'
expect_out "rsync (auto) copied the project" 0 "version: 1" "$CORRAL" ssh web -c 'cat /srv/project/corral.yaml'
expect_out "but never .corral (private keys)" 1 "" "$CORRAL" ssh web -c 'test -e /srv/project/.corral'
expect_out "vboxsf: the share was mounted with the helper" 0 "mount.vboxsf srv_share /srv/share -o uid=0,gid=0" \
	"$CORRAL" ssh web -c 'cat /var/log/fake-vboxsf.log'
expect_out "vboxsf: the host's file shows in the guest" 0 "from-host" "$CORRAL" ssh web -c 'cat /srv/share/h'
"$CORRAL" ssh web -c 'echo from-guest > /srv/share/g'
expect_out "vboxsf: the guest's file shows on the host" 0 "from-guest" cat share/g
echo changed >share/h2
rm share/h
expect_out "corral rsync copies again" 0 "" "$CORRAL" rsync web
expect_out "with new files" 0 "changed" "$CORRAL" ssh web -c 'cat /srv/project/share/h2'
expect_out "and deleted ones gone" 1 "" "$CORRAL" ssh web -c 'test -e /srv/project/share/h'
expect_out "corral rsync of an unknown machine" 2 "no machine \`nosuch\`" "$CORRAL" rsync nosuch
before=$("$CORRAL" ssh web -c 'cat /var/log/fake-ip.log' | grep -c 'addr add')
out=$("$CORRAL" up web 2>&1)
check "up again on a running guest: no change made" bash -c '! grep -qE "host name set|eth1 \(|/etc/hosts:" <<<"$1"' _ "$out"
check "no address added twice" [ "$("$CORRAL" ssh web -c 'cat /var/log/fake-ip.log' | grep -c 'addr add')" = "$before" ]

# ---- halt -f: powered off at once (up after halt keeping the disk:
# conformance.sh)
: >"$VBOX_FAKE_HOME/calls.log"
expect_out "halt -f powers off at once" 0 "web: stopped" "$CORRAL" halt -f web
check "halt -f used controlvm poweroff" grep -q 'controlvm .* poweroff' "$VBOX_FAKE_HOME/calls.log"

# A session lock still being released (VBOX_E_INVALID_OBJECT_STATE) is retried.
: >"$VBOX_FAKE_HOME/calls.log"
expect_out "up retries a transient lock" 0 "web: ssh ready" env VBOX_FAKE_TRANSIENT_LOCKS=2 "$CORRAL" up web
check "the refused modifyvm was repeated" [ "$(calls | grep -c '^modifyvm .* --natpf1 delete ssh')" = 3 ]

# ---- halt: a guest shutdown over SSH, no forced poweroff
: >"$VBOX_FAKE_HOME/calls.log"
expect_out "halt web" 0 "web: stopped" "$CORRAL" halt web
check "halt was graceful (no controlvm poweroff)" bash -c "! grep -q 'controlvm .* poweroff' '$VBOX_FAKE_HOME/calls.log'"
expect_out "the VM is powered off" 0 'VMState="poweroff"' info web

# ---- a host port taken by another program between corral's pick and the
# VM's power-up (a QEMU's forward, say): VirtualBox runs the VM without
# that forward and says so in VBox.log; corral powers it off and forwards
# another port, never talking to whoever holds the old one.
on_exit 'xargs -r kill <"$VBOX_FAKE_HOME/thieves" 2>/dev/null'
before=$(st web ssh_port)
out=$(env VBOX_FAKE_PORT_THIEF=1 "$CORRAL" up web 2>&1); rc=$?
check "up with its SSH port taken at power-up" test "$rc" = 0
check "it says it moved the forward" grep -q "web: a forwarded host port was taken as the VM started" <<<"$out"
check "the SSH port moved" test -n "$before" -a "$(st web ssh_port)" != "$before"
logs=$(info web | sed -n 's/^LogFldr="\(.*\)"$/\1/p')
check "the first power-up's VBox.log names the failed redirect" \
	grep -q "NAT: Failed to redirect TCP 127.0.0.1:$before " "$logs/VBox.log.1"
run_ok "ssh -c on the new port" "$CORRAL" ssh web -c true
xargs -r kill <"$VBOX_FAKE_HOME/thieves"
: >"$VBOX_FAKE_HOME/thieves"
expect_out "halt it again" 0 "web: stopped" "$CORRAL" halt web

# A host resolving through 127.0.1.1: NAT DNS proxy and host resolver off.
echo "nameserver 127.0.1.1" >"$T/local-resolv.conf"
: >"$VBOX_FAKE_HOME/calls.log"
expect_out "up with a local host resolver" 0 "web: ssh ready" \
	env CORRAL_VBOX_RESOLV_CONF="$T/local-resolv.conf" "$CORRAL" up web
check "turns both NAT DNS options off" \
	grep -q -- '--rtcuseutc on --natdnsproxy1 off --natdnshostresolver1 off$' "$VBOX_FAKE_HOME/calls.log"

# ---- 7.x's aborted-saved (the VM died after saving) is a saved state
fake_state() {
	python3 - "$VBOX_FAKE_HOME/state.json" "$1" "$2" <<'PY'
import json, sys
p, vm, state = sys.argv[1:]
st = json.load(open(p))
st["vms"][vm]["state"] = state
json.dump(st, open(p, "w"))
PY
}
"$CORRAL" halt -f web >/dev/null 2>&1
fake_state "$(st web id)" aborted-saved
expect_out "status: aborted-saved reads as saved" 0 "saved" "$CORRAL" status web
: >"$VBOX_FAKE_HOME/calls.log"
expect_out "up starts it without modifying it (not mutable)" 0 "web: ssh ready" "$CORRAL" up web
check "no modifyvm on it" bash -c "! grep -q '^modifyvm' '$VBOX_FAKE_HOME/calls.log'"
"$CORRAL" halt -f web >/dev/null 2>&1
fake_state "$(st web id)" aborted-saved
expect_out "halt discards an aborted-saved state" 0 "" "$CORRAL" halt web
expect_out "leaving it powered off" 0 'VMState="poweroff"' info web
expect_out "up again" 0 "web: ssh ready" "$CORRAL" up web

# ---- snapshots and suspend/resume
"$CORRAL" ssh web -c 'echo one > ~/snap'
expect_out "snapshot save" 0 "snapshot s1 saved" "$CORRAL" snapshot save web s1
"$CORRAL" ssh web -c 'echo two > ~/snap'
expect_out "snapshot list" 0 "s1" "$CORRAL" snapshot list web
expect_out "snapshot restore" 0 "snapshot s1 restored" "$CORRAL" snapshot restore web s1
expect_out "the restored guest has the snapshot's file" 0 "one" "$CORRAL" ssh web -c 'cat ~/snap'
expect_out "snapshot delete" 0 "snapshot s1 deleted" "$CORRAL" snapshot delete web s1
out=$("$CORRAL" snapshot list web)
check "only up's \`provisioned\` checkpoint is left" test "$out" = "$(printf 'web:\n  provisioned')"
# reset: back to the `provisioned` checkpoint (the snapshot up took)
"$CORRAL" ssh web -c 'echo later > ~/later'
expect_out "reset" 0 "web: reset to \`provisioned\`" "$CORRAL" reset web
expect_out "a file written after provisioning is gone" 1 "" "$CORRAL" ssh web -c 'test -e ~/later'
expect_out "the machine runs" 0 'VMState="running"' info web
"$CORRAL" ssh web -c 'echo one > ~/snap' # as before the reset, for suspend below
# snapshot list prints names unescaped: read as printed
odd='say "hi" \ there'
expect_out "snapshot save of a name with quotes and a backslash" 0 "saved" "$CORRAL" snapshot save web "$odd"
expect_out "is listed as it is" 0 "$odd" "$CORRAL" snapshot list web
expect_out "and restored by it" 0 "restored" "$CORRAL" snapshot restore web "$odd"
expect_out "and deleted" 0 "deleted" "$CORRAL" snapshot delete web "$odd"
expect_out "restore of an unknown snapshot" 1 "web has no snapshot \`nope\`" "$CORRAL" snapshot restore web nope
expect_out "which leaves the machine running" 0 'VMState="running"' info web
expect_out "suspend" 0 "web: suspended" "$CORRAL" suspend web
expect_out "status: saved" 0 "saved" "$CORRAL" status web
expect_out "resume" 0 "web: resumed" "$CORRAL" resume web
expect_out "ssh after resume" 0 "one" "$CORRAL" ssh web -c 'cat ~/snap'

# ---- the version check
expect_out "an unsupported VirtualBox is refused" 1 "VirtualBox 6.0.24r139119 is not supported" \
	env VBOX_FAKE_VERSION=6.0.24r139119 "$CORRAL" up web
expect_out "6.1 after a WARNING line is accepted" 0 "web: already running" \
	env VBOX_FAKE_VERSION=6.1.50r161033 VBOX_FAKE_WARNING="The vboxdrv kernel module is not loaded" "$CORRAL" up web
warning='The vboxdrv kernel module is not loaded. Either there is no module
available for the current kernel (6.1.0-18-amd64) or it failed to
load. Please recompile the kernel module and install it by

  sudo /sbin/vboxconfig

You will not be able to start VMs until this problem is fixed.'
expect_out "7.1 after VirtualBox's indented WARNING block is accepted" 0 "web: already running" \
	env VBOX_FAKE_VERSION=7.1.12r169651 VBOX_FAKE_WARNING="$warning" "$CORRAL" up web
expect_out "7.0.0 is refused: its showvminfo hides NAT rules" 1 \
	"VirtualBox 7.0.0r154998 is not supported: its \`VBoxManage showvminfo\` omits" \
	env VBOX_FAKE_VERSION=7.0.0r154998 "$CORRAL" up web
expect_out "no VBoxManage: a clear error" 1 "CORRAL_VBOXMANAGE=$T/none" \
	env CORRAL_VBOXMANAGE="$T/none" "$CORRAL" up web

# ---- an inaccessible VM (its settings file unreadable) is neither stopped nor gone
# (`corral status` shows any provider state error as "not created": engine/)
"$CORRAL" halt -f db >/dev/null 2>&1
cfg=$(info db | sed -n 's/^CfgFile="\(.*\)"$/\1/p')
mv "$cfg" "$cfg.away"
expect_out "up refuses it, saying so" 1 "is inaccessible" "$CORRAL" up db
mv "$cfg.away" "$cfg"
expect_out "readable again: stopped" 0 "stopped" "$CORRAL" status db

# ---- a VM removed outside corral
"$CORRAL" halt -f db >/dev/null 2>&1
"$VBM" unregistervm "$(st db id)" --delete >/dev/null 2>&1
expect_out "a vanished VM is not created" 0 "not created" "$CORRAL" status db
check "its stale state is cleaned" bash -c '[ -z "$1" ] && [ ! -e .corral/machines/db/known_hosts ]' _ "$(st db id)"
expect_out "up makes it again (first boot, new host key)" 0 "db: ssh ready" "$CORRAL" up db
expect_out "and provisions it" 0 "provisioned" "$CORRAL" ssh db -c 'cat /root/prov'

# ---- ports: auto. The watcher (providers/autoports.c) reads the guest's
# /proc/net/tcp over SSH and adds `controlvm VM natpf1 auto-G,...` rules.
# What the fake can prove: the rule corral adds for a port the guest listens
# on (host port: the same, else the next free one), that the fake (like
# VirtualBox) lists it as a Forwarding line of the running VM, its delete
# when the listener closes, `corral port`'s list, and halt stopping the
# watcher. What it cannot: the stand-in guest shares the host's network, so
# "the guest's listener" is one this test starts on the host (bound to
# 0.0.0.0, hence the next port), the exclude ranges keep the host's other
# listeners out, and no NAT rule carries traffic (VirtualBox's job).
hold_port 0.0.0.0 300 || not_ok "a port held for the test"
A=$HELD_PORT listener=$HOLDER
mkdir -p "$T/auto"
cat >"$T/auto/corral.yaml" <<YAML
version: 1
machines:
  auto:
    box: corral/tiny-vbox
    provider: virtualbox
    memory: 256M
    ports: { auto: true, exclude: ["1-$((A - 1))", "$((A + 1))-65535"] }
YAML
on_exit '"$CORRAL" -C "$T/auto" destroy -f >/dev/null 2>&1'
: >"$VBOX_FAKE_HOME/calls.log"
expect_out "ports: auto: up" 0 "auto: ssh ready" "$CORRAL" -C "$T/auto" up
check "ports: auto: no warning that virtualbox ignores it" \
	bash -c '! grep -q "not supported" <<<"$1"' _ "$("$CORRAL" -C "$T/auto" up 2>&1)"
aid=$(jq -r .id "$T/auto/.corral/machines/auto/state.json")
wait_for() { # SECONDS COMMAND...: until COMMAND succeeds
	local i n=$(($1 * 10)); shift
	for i in $(seq "$n"); do "$@" && return 0; sleep 0.1; done
	return 1
}
rule="auto-$A,tcp,127.0.0.1,$((A + 1)),,$A"
added() { grep -qx "controlvm $aid natpf1 $rule" "$VBOX_FAKE_HOME/calls.log"; }
check "ports: auto: the listening port got a NAT rule (busy host port: the next one)" wait_for 20 added
expect_out "ports: auto: showvminfo lists it as a Forwarding line" 0 "=\"$rule\"" \
	"$VBM" showvminfo "$aid" --machinereadable
auto_fwds() { "$CORRAL" -C "$T/auto" --json port | jq -r '.[] | select(.auto) | "\(.guest):\(.host)"' | xargs; }
check "ports: auto: corral port lists it" test "$(auto_fwds)" = "$A:$((A + 1))"
check "ports: auto: only that port (the host's others are excluded)" \
	test "$(grep -c "natpf1 auto-" "$VBOX_FAKE_HOME/calls.log")" = 1
kill "$listener"
deleted() { grep -qx "controlvm $aid natpf1 delete auto-$A" "$VBOX_FAKE_HOME/calls.log"; }
check "ports: auto: a closed port's rule is deleted" wait_for 20 deleted
check "ports: auto: ... gone from showvminfo" \
	bash -c '! "$1" showvminfo "$2" --machinereadable | grep -q "auto-"' _ "$VBM" "$aid"
no_fwds() { [ -z "$(auto_fwds)" ]; }
check "ports: auto: ... and from corral port" wait_for 5 no_fwds
wpid=$(jq -r '.portfwd_pid // empty' "$T/auto/.corral/machines/auto/state.json")
expect_out "ports: auto: halt" 0 "auto: stopped" "$CORRAL" -C "$T/auto" halt -f
check "ports: auto: halt stops the watcher" bash -c '[ -n "$1" ] && { [ ! -e "/proc/$1" ] || [ "$(cut -d" " -f3 "/proc/$1/stat")" = Z ]; }' _ "$wpid"
check "ports: auto: ... forgets it" test -z "$(jq -r '.portfwd_pid // empty' "$T/auto/.corral/machines/auto/state.json")"
check "ports: auto: ... and drops its list" test ! -e "$T/auto/.corral/machines/auto/auto-ports"
"$CORRAL" -C "$T/auto" destroy -f >/dev/null 2>&1

# ---- destroy
ids="$(st db id) $(st web id)"
ports="$(st db ssh_port) $(st web ssh_port)"
expect_out "destroy" 0 "web: destroyed" "$CORRAL" destroy -f
for id in $ids; do
	expect_out "VM $id is gone" 1 "VBOX_E_OBJECT_NOT_FOUND" "$VBM" showvminfo "$id"
done
check "only the master VM is left" [ "$("$VBM" list vms | grep -c corral_box_)" = 1 ] && [ "$("$VBM" list vms | wc -l)" = 1 ]
check "the VM folders are deleted" [ "$(ls "$VBOX_FAKE_HOME/VirtualBox VMs")" = "$("$VBM" list vms | sed 's/^"\(.*\)".*/\1/')" ]
for p in $ports; do
	check "nothing listens on SSH port $p any more" bash -c "! ss -ltn | grep -q '127.0.0.1:$p '"
done
