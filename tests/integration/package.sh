#!/usr/bin/env bash
# `corral package` and `corral box publish` through the real CLI, on the
# tiny container box: a machine changed (a file written, a box file
# deleted: a whiteout), halted and packaged; the .box added under a new
# name and a second machine booted from it sees the change and none of the
# first machine's SSH host key or authorized_keys. A running machine is
# refused; a full disk leaves no file. Then two versions published into a
# directory (one signed), served by the test HTTPS server (test CA) as a
# box server, and added by org/name with a version constraint and
# signatures required. kvm: a created-and-halted tiny-kvm machine's disk
# flattened into a box; virtualbox through the VBoxManage fake.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/server/serve.sh"
on_exit boxserver_stop_all
unset CORRAL_VERIFY_SIGNATURES CORRAL_BOX_TOKEN CORRAL_BOX_SERVER

tiny_web "$T/one" "ssh: { user: root }"
on_exit '"$CORRAL" -C "$T/one" destroy -f >/dev/null 2>&1; "$CORRAL" -C "$T/two" destroy -f >/dev/null 2>&1'
"$CORRAL" -C "$T/one" up >/dev/null 2>&1 || echo "not ok - up of the first machine"
"$CORRAL" -C "$T/one" ssh -c 'echo packaged-data >/root/marker; ln /root/marker /root/marker-link; rm /etc/shells; mkdir -p /opt/new/deep; echo x >/opt/new/deep/f; rm -r /home/vagrant; mkdir /home/vagrant; echo y >/home/vagrant/z' >/dev/null 2>&1
expect_out "package refuses a running machine" 1 "is running: package takes a stopped machine" \
	"$CORRAL" -C "$T/one" package
"$CORRAL" -C "$T/one" halt >/dev/null 2>&1
# A file capability the guest's root set: namespaced (v3) to the machine's
# host id range, as the kernel stores it in the upper layer.
base=$(jq -r .idmap_base "$T/one/.corral/machines/web/state.json")
python3 -c 'import os,struct,sys; os.setxattr(sys.argv[1], "security.capability", struct.pack("<IIIIII", 0x03000001, 1 << 13, 0, 0, 0, int(sys.argv[2])))' \
	"$T/one/.corral/machines/web/upper/root/marker" "$base"
expect_out "package a stopped machine" 0 "packaged web (container) as $T/one/web.box" \
	"$CORRAL" -C "$T/one" package
check "the box and its .sha256 (sha256sum -c)" \
	bash -c "cd '$T/one' && sha256sum -c --quiet web.box.sha256"
check "metadata.json is the first entry" \
	bash -c "[ \"\$(tar -tf '$T/one/web.box' | head -n 1)\" = metadata.json ]"
check "no host key of the machine in the box" \
	bash -c "! tar -tf '$T/one/web.box' | grep -q ssh_host_"
check "owners are the guest's (moved back from the machine's id range)" \
	bash -c "tar -tvf '$T/one/web.box' rootfs/root/marker | grep -q ' 0/0 '"
check "a guest-made file capability is the guest root's again (v2, not namespaced)" \
	bash -c "tar -xOf '$T/one/web.box' >/dev/null && zstd -qdc '$T/one/web.box' | python3 -c '
import tarfile, sys
for m in tarfile.open(fileobj=sys.stdin.buffer, mode=\"r|\"):
    if m.name == \"rootfs/root/marker\":
        v = m.pax_headers.get(\"SCHILY.xattr.security.capability\", \"\").encode(\"utf-8\", \"surrogateescape\")
        sys.exit(0 if len(v) == 20 and v[3] == 2 else 1)
sys.exit(1)'"
check "no temporary file left beside the box" \
	bash -c "[ -z \"\$(ls -A '$T/one' | grep tmp)\" ]"
expect_out "an existing output is not overwritten" 1 "exists" "$CORRAL" -C "$T/one" package
expect_out "package --json" 0 '"checksum_type": "sha256"' \
	"$CORRAL" -C "$T/one" package --json -o "$T/web2.box"

# A full disk: the error says so, and neither box nor temp file stays.
mkdir -p "$T/small"
if mount -t tmpfs -o size=64k tmpfs "$T/small" 2>/dev/null; then
	on_exit 'umount "$T/small" 2>/dev/null'
	expect_out "a full disk fails the package" 1 "No space left on device" \
		"$CORRAL" -C "$T/one" package -o "$T/small/web.box"
	check "and leaves nothing behind" bash -c "[ -z \"\$(ls -A '$T/small')\" ]"
fi

expect_out "box add the packaged box under a new name" 0 "added box test/packaged" \
	"$CORRAL" box add --name test/packaged "$T/one/web.box"
mkdir -p "$T/two"
printf 'version: 1\nmachines:\n  two:\n    box: test/packaged\n    provider: container\n    ssh: { user: root }\n' >"$T/two/corral.yaml"
"$CORRAL" -C "$T/two" up >/dev/null 2>&1 || echo "not ok - up from the packaged box"
expect_out "the second machine sees the first one's file" 0 "packaged-data" \
	"$CORRAL" -C "$T/two" ssh -c 'cat /root/marker'
expect_out "a hard link made in the first machine is a link" 0 "2 packaged-data" \
	"$CORRAL" -C "$T/two" ssh -c 'echo "$(stat -c %h /root/marker-link) $(cat /root/marker-link)"'
expect_out "a directory made in the first machine is there" 0 "x" \
	"$CORRAL" -C "$T/two" ssh -c 'cat /opt/new/deep/f'
expect_out "a box file deleted in the first machine stays deleted" 0 "gone" \
	"$CORRAL" -C "$T/two" ssh -c 'test -e /etc/shells || echo gone'
expect_out "a directory removed and made again hides the box's (opaque)" 0 "y|gone" \
	"$CORRAL" -C "$T/two" ssh -c 'echo "$(cat /home/vagrant/z)|$(test -e /home/vagrant/.ssh || echo gone)"'
pub1=$(cat "$T/one/.corral/machines/web/known_hosts" 2>/dev/null | awk '{print $NF}' | head -n 1)
check "the second machine has a host key of its own" \
	bash -c "[ -n '$pub1' ] && ! grep -q '$pub1' '$T/two/.corral/machines/two/known_hosts'"
key1=$(awk '{print $2}' "$T/one/.corral/machines/web/id_ed25519.pub")
expect_out "the first machine's key is not in the box's authorized_keys" 0 "clean" \
	bash -c "tar -xOf '$T/one/web.box' rootfs/root/.ssh/authorized_keys 2>/dev/null | grep -q '$key1' || echo clean"
"$CORRAL" -C "$T/two" destroy -f >/dev/null 2>&1

# --- box publish: a directory any static server can serve as a box server
openssl genpkey -algorithm ed25519 -out "$T/signer.key" 2>/dev/null
mkdir -p "$CORRAL_HOME/trusted-keys"
openssl pkey -in "$T/signer.key" -pubout -out "$CORRAL_HOME/trusted-keys/signer.pub"
W=$T/www
jqc() { jq -e "$@" >/dev/null; }
expect_out "publish version 1.0.0, unsigned" 0 "published acme/tiny 1.0.0 (container, amd64)" \
	"$CORRAL" box publish "$W" "$T/one/web.box" --name acme/tiny --version 1.0.0
expect_out "publish version 2.0.0, signed" 0 "signed" \
	"$CORRAL" box publish "$W" "$T/one/web.box" --name acme/tiny --version 2.0.0 --key "$T/signer.key"
"$CORRAL" box publish "$W" "$T/one/web.box" --name acme/tiny --version 2.0.0 --key "$T/signer.key" >/dev/null 2>&1
check "the catalog keeps both versions, newest first, one entry each after a re-publish" \
	jqc '[.versions[].version] == ["2.0.0","1.0.0"] and ([.versions[].providers | length] == [1,1])' "$W/acme/tiny"
check "entries name their box relative to the catalog, with sha256" \
	jqc '.versions[1].providers[0] | .url == "tiny-1.0.0-container-amd64.box" and .checksum_type == "sha256" and (.signature == null)' "$W/acme/tiny"
check "the box is in place beside the catalog" test -f "$W/acme/tiny-2.0.0-container-amd64.box"
expect_out "publish refuses a box of another provider" 1 "is a container box, not kvm" \
	"$CORRAL" box publish "$W" "$T/one/web.box" --name acme/tiny --version 3.0.0 --provider kvm
expect_out "publish needs a version" 2 "--version" "$CORRAL" box publish "$W" "$T/one/web.box" --name acme/tiny

"$ROOT/tests/server/mkca" "$T/ca" >/dev/null 2>&1
boxserver_start PORT "$W" --cert "$T/ca/server.pem" --key "$T/ca/server.key"
export CURL_CA_BUNDLE=$T/ca/ca.pem CORRAL_BOX_SERVER=https://localhost:$PORT
expect_out "box add ORG/NAME from the published directory over https (~> 2.0, signature required)" 0 \
	"added box acme/tiny 2.0.0 (container, amd64)" \
	env CORRAL_VERIFY_SIGNATURES=required "$CORRAL" box add acme/tiny --box-version '~> 2.0'
check "its signature was checked" \
	jqc '.signature_checked == true' "$CORRAL_HOME"/boxes/acme-VAGRANTSLASH-tiny/2.0.0/amd64/container/.corral-box.json
expect_out "the unsigned 1.0.0 is refused when signatures are required" 1 "signature" \
	env CORRAL_VERIFY_SIGNATURES=required "$CORRAL" box add acme/tiny --box-version '< 2'
expect_out "and added under the default policy" 0 "added box acme/tiny 1.0.0" \
	"$CORRAL" box add acme/tiny --box-version '< 2'

# --- kvm: the flatten, on a machine made as `up` makes it (the box's
# box.img under a qcow2 overlay) but not booted (TCG boots take ~30 s here);
# the guest's write is a pattern written into the overlay with qemu-io.
unset CORRAL_BOX_SERVER
kbox=$(test_box tiny-kvm)
"$CORRAL" box add "$(dirname "$kbox")/catalog.json" >/dev/null 2>&1
kdir=$(ls -d "$CORRAL_HOME"/boxes/corral-VAGRANTSLASH-tiny-kvm/*/*/kvm | head -n 1)
mkdir -p "$T/kvm/.corral/machines/vm"
printf 'version: 1\nmachines:\n  vm:\n    box: corral/tiny-kvm\n    provider: kvm\n' >"$T/kvm/corral.yaml"
jq -n --arg dir "$kdir" '{provider: "kvm", box: "corral/tiny-kvm", box_version: "1.0.0", box_dir: $dir, created: true}' \
	>"$T/kvm/.corral/machines/vm/state.json"
KD=$T/kvm/.corral/machines/vm/disk.qcow2
qemu-img create -q -f qcow2 -F qcow2 -b "$kdir/box.img" "$KD"
qemu-io -c "write -P 0xab 1M 64k" "$KD" >/dev/null
expect_out "kvm: package a stopped machine" 0 "packaged vm (kvm)" "$CORRAL" -C "$T/kvm" package
mkdir -p "$T/kvm/x" && tar -C "$T/kvm/x" -xf "$T/kvm/vm.box"
check "kvm: box.img, kernel and initrd in the box, metadata.json first" \
	bash -c "[ \"\$(tar -tf '$T/kvm/vm.box' | xargs)\" = 'metadata.json box.img vmlinux initrd.img' ]"
check "kvm: the disk is flattened (no backing file) and compressed qcow2" \
	bash -c "qemu-img info --output=json '$T/kvm/x/box.img' | jq -e '.format == \"qcow2\" and (.[\"backing-filename\"] == null)' >/dev/null"
check "kvm: the machine's writes are in it" \
	bash -c "qemu-io -r -c 'read -P 0xab 1M 64k' '$T/kvm/x/box.img' | grep -q 'read 65536'"
check "kvm: the staging directory is gone" test ! -e "$T/kvm/vm.box.d"
expect_out "kvm: the packaged box adds" 0 "added box test/kvm-pkg" \
	"$CORRAL" box add --name test/kvm-pkg "$T/kvm/vm.box"

# --- virtualbox, through the VBoxManage fake (tests/fakes/VBoxManage: it
# models `export`'s files, not VirtualBox's disk contents)
. "$ROOT/tests/fakes/vbox-env.sh"
mkdir -p "$T/vb"
printf 'version: 1\nmachines:\n  vb:\n    box: corral/tiny-vbox\n    provider: virtualbox\n' >"$T/vb/corral.yaml"
on_exit '"$CORRAL" -C "$T/vb" destroy -f >/dev/null 2>&1'
"$CORRAL" -C "$T/vb" up >/dev/null 2>&1 || echo "not ok - virtualbox: up"
"$CORRAL" -C "$T/vb" halt >/dev/null 2>&1
expect_out "virtualbox: package a powered-off VM" 0 "packaged vb (virtualbox)" "$CORRAL" -C "$T/vb" package
check "virtualbox: VBoxManage export was asked for the OVF" grep -q "^export .* --output $T/vb/.*box.ovf" "$VBOX_FAKE_HOME/calls.log"
check "virtualbox: metadata.json, box.ovf, its disk and manifest in the box" \
	bash -c "[ \"\$(tar -tf '$T/vb/vb.box' | xargs)\" = 'metadata.json box.ovf box-disk001.vmdk box.mf' ]"
check "virtualbox: metadata.json names the provider" \
	bash -c "tar -xOf '$T/vb/vb.box' metadata.json | jq -e '.provider == \"virtualbox\"' >/dev/null"
expect_out "virtualbox: the packaged box adds" 0 "added box test/vb-pkg" \
	"$CORRAL" box add --name test/vb-pkg "$T/vb/vb.box"
expect_out "virtualbox: its OVF imports (dry run)" 0 "box-disk001.vmdk" \
	"$VBM" import -n "$(ls -d "$CORRAL_HOME"/boxes/test-VAGRANTSLASH-vb-pkg/*/*/virtualbox)/box.ovf"
