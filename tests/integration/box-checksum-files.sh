#!/usr/bin/env bash
# Boxes verified by their publisher's checksum file and OpenPGP signature,
# through the real CLI, from a local HTTPS mirror laid out like the
# publishers' directories (Ubuntu's SHA256SUMS + detached SHA256SUMS.gpg,
# Fedora's clearsigned CHECKSUM, AlmaLinux's CHECKSUM + armored .asc,
# Debian's unsigned SHA512SUMS), signed with a key made here. Each refusal
# (bad signature, unknown key, missing entry, mismatch, policy) names its
# cause and leaves the store unchanged. The "image" is the tiny .box under
# the publisher's file name: the digest source is the same for any box file.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/server/serve.sh"
on_exit boxserver_stop_all
unset CORRAL_VERIFY_SIGNATURES CORRAL_BOX_TOKEN CORRAL_BOX_SERVER CORRAL_DATA_DIR
mkdir -p "$CORRAL_HOME/trusted-keys"
tiny=$(test_box tiny)

# Two OpenPGP keys: the publisher's (trusted) and a stranger's.
export GNUPGHOME=$T/gnupg
mkdir -m 700 "$GNUPGHOME"
gpg --batch -q --passphrase '' --quick-gen-key "Test Publisher <pub@example.org>" ed25519 sign never 2>/dev/null
gpg --batch -q --passphrase '' --quick-gen-key "Stranger <x@example.org>" ed25519 sign never 2>/dev/null
gpg --batch -q --check-trustdb 2>/dev/null
fpr() { gpg --with-colons --list-keys "$1" | awk -F: '/^fpr/ {print $10; exit}'; }
PUB=$(fpr pub@example.org)
STRANGER=$(fpr x@example.org)
gpg --armor --export "$PUB" >"$CORRAL_HOME/trusted-keys/publisher.asc"
echo "not a key" >"$CORRAL_HOME/trusted-keys/aa-junk.asc"   # skipped with a warning, not fatal
sign() { gpg --batch -q --yes -u "$1" "${@:2}" 2>/dev/null; } # sign KEY gpg-args...

M=$T/mirror
U=$M/cloud-images.ubuntu.com/releases/24.04/release
F=$M/download.fedoraproject.org/pub/fedora/linux/releases/41/Cloud/x86_64/images
A=$M/repo.almalinux.org/almalinux/9/cloud/x86_64/images
D=$M/cloud.debian.org/images/cloud/bookworm/latest
mkdir -p "$U" "$F" "$A" "$D" "$M/other"
UIMG=ubuntu-24.04-server-cloudimg-amd64.img
FIMG=Fedora-Cloud-Base-Generic-41-1.4.x86_64.qcow2
cp "$tiny" "$U/$UIMG"
cp "$tiny" "$F/$FIMG"
# AlmaLinux's entry is a real qcow2 (a cloud image, stored as a kvm box as it is)
qemu-img create -q -f qcow2 "$A/AlmaLinux-9-GenericCloud-latest.x86_64.qcow2" 64M
cp "$tiny" "$D/debian-12-genericcloud-amd64.qcow2"
SUM=$(sha256sum "$tiny" | cut -d' ' -f1)
(cd "$U" && sha256sum -b "$UIMG" >SHA256SUMS && echo "$SUM *ubuntu-24.04-server-cloudimg-arm64.img" >>SHA256SUMS)
sign "$PUB" --detach-sign -o "$U/SHA256SUMS.gpg" "$U/SHA256SUMS"
{ echo "# $FIMG: $(stat -c %s "$tiny") bytes"; echo "SHA256 ($FIMG) = $SUM"; } >"$T/fedora-sums"
sign "$PUB" --clearsign -o "$F/Fedora-Cloud-41-1.4-x86_64-CHECKSUM" "$T/fedora-sums"
(cd "$A" && sha256sum --tag AlmaLinux-9-GenericCloud-latest.x86_64.qcow2 >CHECKSUM)
sign "$PUB" --armor --detach-sign -o "$A/CHECKSUM.asc" "$A/CHECKSUM"
(cd "$D" && sha512sum debian-12-genericcloud-amd64.qcow2 >SHA512SUMS)
# Variants for the refusals, in a directory of their own.
O=$M/other
cp "$tiny" "$O/$UIMG"
cp "$U/SHA256SUMS" "$O/SHA256SUMS"
echo "# changed after signing" >>"$O/SHA256SUMS"
cp "$U/SHA256SUMS.gpg" "$O/SHA256SUMS.tampered.gpg"          # the old signature, changed file
sign "$STRANGER" --detach-sign -o "$O/SHA256SUMS.stranger.gpg" "$O/SHA256SUMS"
sign "$PUB" --detach-sign -o "$O/SHA256SUMS.gpg" "$O/SHA256SUMS"
echo "$(printf '0%.0s' $(seq 64)) *$UIMG" >"$O/WRONGSUMS"
sign "$PUB" --detach-sign -o "$O/WRONGSUMS.gpg" "$O/WRONGSUMS"
sed "s/^SHA256 (.*) = .*/SHA256 ($FIMG) = $(printf '1%.0s' $(seq 64))/" \
	"$F/Fedora-Cloud-41-1.4-x86_64-CHECKSUM" >"$O/CHECKSUM-tampered"

"$ROOT/tests/server/mkca" "$T/ca" >/dev/null 2>&1
boxserver_start PORT "$M" --cert "$T/ca/server.pem" --key "$T/ca/server.key"
export CURL_CA_BUNDLE=$T/ca/ca.pem
H=https://localhost:$PORT
boxes() { "$CORRAL" box list --json | jq -r '.[].name' | sort | xargs; }
record() { jq -r "$2" "$CORRAL_HOME"/boxes/"${1//\//-VAGRANTSLASH-}"/0/*/container/.corral-box.json; }
add() { "$CORRAL" box add "$@"; }

# --- a box entry naming a checksum file and its signature
expect_out "SHA256SUMS + detached .gpg: verified, then the box against its entry" 0 "added box test/u" \
	add --name test/u --checksum-file "$H/cloud-images.ubuntu.com/releases/24.04/release/SHA256SUMS" \
	--checksum-signature "$H/cloud-images.ubuntu.com/releases/24.04/release/SHA256SUMS.gpg" \
	"$H/cloud-images.ubuntu.com/releases/24.04/release/$UIMG"
check "the record names the checksum file, the signer and the digest" \
	test "$(record test/u '[.signature_checked, .checksum_signer, .checksum]|join(" ")')" = "true $PUB $SUM"
before=$(boxes)
expect_out "a signature that does not match the changed file: refused as bad" 1 "does not verify" \
	add --name test/bad --checksum-file "$H/other/SHA256SUMS" \
	--checksum-signature "$H/other/SHA256SUMS.tampered.gpg" "$H/other/$UIMG"
expect_out "a signature by a key not trusted: refused as unknown key" 1 "$STRANGER, which is not trusted" \
	add --name test/bad --checksum-file "$H/other/SHA256SUMS" \
	--checksum-signature "$H/other/SHA256SUMS.stranger.gpg" "$H/other/$UIMG"
cp "$tiny" "$O/tiny.box"
expect_out "no entry for the file: refused, naming the file" 1 "has no entry for tiny.box" \
	add --name test/bad --checksum-file "$H/other/SHA256SUMS" \
	--checksum-signature "$H/other/SHA256SUMS.gpg" "$H/other/tiny.box"
expect_out "a signed digest the image does not match: refused as a mismatch" 1 "checksum mismatch" \
	add --name test/bad --checksum-file "$H/other/WRONGSUMS" \
	--checksum-signature "$H/other/WRONGSUMS.gpg" "$H/other/$UIMG"
expect_out "a tampered clearsigned CHECKSUM: refused as bad" 1 "does not verify" \
	add --name test/bad --checksum-file "$H/other/CHECKSUM-tampered" "$H/other/$UIMG"
check "every refusal left the store unchanged" test "$(boxes)" = "$before"

# --- the policy (CORRAL_VERIFY_SIGNATURES), as for corral's own signatures
expect_out "off: the bad signature is not looked at, the signed digest still is" 0 "added box test/off" \
	env CORRAL_VERIFY_SIGNATURES=off "$CORRAL" box add --name test/off \
	--checksum-file "$H/other/SHA256SUMS" --checksum-signature "$H/other/SHA256SUMS.tampered.gpg" "$H/other/$UIMG"
expect_out "off: a digest mismatch is still refused" 1 "checksum mismatch" \
	env CORRAL_VERIFY_SIGNATURES=off "$CORRAL" box add --name test/off2 \
	--checksum-file "$H/other/WRONGSUMS" "$H/other/$UIMG"
expect_out "if-present: an unsigned SHA512SUMS is used, with a warning" 0 "is not signed" \
	add --name test/deb --checksum-file "$H/cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS" \
	"$H/cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
check "its sha512 entry was the digest checked" test "$(record test/deb .checksum_type)" = sha512
before=$(boxes)
expect_out "required: an unsigned checksum file is refused" 1 "not signed and CORRAL_VERIFY_SIGNATURES=required" \
	env CORRAL_VERIFY_SIGNATURES=required "$CORRAL" box add --name test/req \
	--checksum-file "$H/cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS" \
	"$H/cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
check "and the store is unchanged" test "$(boxes)" = "$before"
expect_out "required: a signed checksum file counts as the box's signature" 0 "added box test/req" \
	env CORRAL_VERIFY_SIGNATURES=required "$CORRAL" box add --name test/req \
	--checksum-file "$H/cloud-images.ubuntu.com/releases/24.04/release/SHA256SUMS" \
	--checksum-signature "$H/cloud-images.ubuntu.com/releases/24.04/release/SHA256SUMS.gpg" \
	"$H/cloud-images.ubuntu.com/releases/24.04/release/$UIMG"
expect_out "--checksum and --checksum-file together: a usage error" 2 "not both" \
	add --name test/x --checksum "sha256:$SUM" --checksum-file "$H/other/SHA256SUMS" "$H/other/$UIMG"

# --- short names from the shipped table, against the mirror
export CORRAL_IMAGE_MIRROR=$H
expect_out "box search lists the short names" 0 "ubuntu/24.04" "$CORRAL" box search
check "box search --json: entries with checksum file and pinned key" \
	sh -c "'$CORRAL' --json box search fedora | jq -e '.[0].checksum_file | endswith(\"-CHECKSUM\")' >/dev/null"
before=$(boxes)
expect_out "ubuntu/24.04 signed by a trusted key that is not Canonical's: refused" 1 "not by the publisher's" \
	add ubuntu/24.04
check "and the store is unchanged" test "$(boxes)" = "$before"
# The same table with the test key pinned (the mirror stands in for the publishers).
mkdir -p "$T/data"
jq --arg k "$PUB" '.distros |= map(if (.keys | length) > 0 then .keys = [$k] else . end)' \
	"$ROOT/data/distros.json" >"$T/data/distros.json"
export CORRAL_DATA_DIR=$T/data
expect_out "ubuntu/24.04: SHA256SUMS + .gpg, pinned key" 0 "added box ubuntu/24.04" add ubuntu/24.04
expect_out "the same short name again: already present, nothing fetched" 0 "already present: box ubuntu/24.04" \
	add ubuntu/24.04
expect_out "fedora/41: clearsigned CHECKSUM with BSD tags" 0 "added box fedora/41" add fedora/41
expect_out "almalinux/9: CHECKSUM + armored .asc" 0 "added box almalinux/9" add almalinux/9
check "almalinux/9: the qcow2 is stored as a kvm box with a generated metadata.json" \
	jq -e '.provider == "kvm" and .format == "qcow2" and .cloud_init == true' \
	"$CORRAL_HOME"/boxes/almalinux-VAGRANTSLASH-9/0/*/kvm/metadata.json
expect_out "debian/12: unsigned SHA512SUMS under if-present" 0 "added box debian/12" add debian/12
check "the short-named boxes record their publisher's checksum file" \
	test "$(record fedora/41 .checksum_file)" = "$H/download.fedoraproject.org/pub/fedora/linux/releases/41/Cloud/x86_64/images/Fedora-Cloud-41-1.4-x86_64-CHECKSUM"
expect_out "a short name with another architecture the table lacks" 1 "no image for architecture" \
	add --architecture arm64 archlinux

# --- the envfile's box_checksum_file / box_checksum_signature, through up
unset CORRAL_DATA_DIR CORRAL_IMAGE_MIRROR
before=$(boxes)
mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<YAML
version: 1
machines:
  web:
    box: test/env
    box_url: "$H/other/tiny.box"
    box_checksum_file: "$H/other/SHA256SUMS"
    box_checksum_signature: "$H/other/SHA256SUMS.gpg"
    provider: container
YAML
expect_out "up: a checksum file without the box's entry refuses the box" 1 "has no entry for tiny.box" \
	"$CORRAL" -C "$T/env" up
check "up: nothing was added" test "$(boxes)" = "$before"

# --- corral.lock records who signed the checksum file that vouched for the box
cat >"$T/env/corral.yaml" <<YAML
version: 1
machines:
  web:
    box: test/signed
    box_url: "$U/$UIMG"
    box_checksum_file: "$U/SHA256SUMS"
    box_checksum_signature: "$U/SHA256SUMS.gpg"
    provider: container
YAML
sed -i "s|$M|$H|" "$T/env/corral.yaml"
expect_out "lock: a box verified by a signed checksum file" 0 "web: test/signed" "$CORRAL" -C "$T/env" lock
check "lock: its signer and digest are recorded" test "$(jq -r '.machines.web | "\(.signer) \(.digest)"' \
	"$T/env/corral.lock")" = "$PUB sha256:$SUM"
