#!/usr/bin/env bash
# Ed25519 signatures of boxes through the real CLI: the catalog's
# `signature` member, `box add --signature` for a .box, and `up` with a
# box_url catalog, under each CORRAL_VERIFY_SIGNATURES policy. A refused
# box leaves the store as it was.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/server/serve.sh"
on_exit boxserver_stop_all
unset CORRAL_VERIFY_SIGNATURES CORRAL_BOX_TOKEN CORRAL_BOX_SERVER
mkdir -p "$T/www" "$CORRAL_HOME"
tiny=$(test_box tiny)
cp "$tiny" "$T/www/tiny.box"
openssl genpkey -algorithm ed25519 -out "$T/signer.key" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$T/stranger.key" 2>/dev/null
GOOD=$("$CORRAL" box sign "$T/signer.key" "$T/www/tiny.box")
STRANGER=$("$CORRAL" box sign "$T/stranger.key" "$T/www/tiny.box")
boxserver_start PORT "$T/www"
H=http://127.0.0.1:$PORT
# catalog NAME [SIGNATURE]: a one-version catalog for tiny.box.
catalog() {
	local sig=${2:+, \"signature\": \"$2\"}
	printf '{"name": "test/%s", "versions": [{"version": "1.0.0", "providers": [{"name": "container", "url": "tiny.box", "checksum_type": "sha256", "checksum": "%s"%s}]}]}\n' \
		"$1" "$(sha256sum "$T/www/tiny.box" | cut -d' ' -f1)" "$sig" >"$T/www/$1.json"
}
boxes() { "$CORRAL" box list --json | jq -r '.[].name' | sort | xargs; }
catalog good "$GOOD"
catalog bogus "AAAAbogus"
catalog stranger "$STRANGER"
catalog unsigned

mkdir -p "$CORRAL_HOME/trusted-keys"
openssl pkey -in "$T/signer.key" -pubout -out "$CORRAL_HOME/trusted-keys/signer.pub"

expect_out "a good signature in the catalog is checked and accepted" 0 "added box test/good" \
	"$CORRAL" box add "$H/good.json"
check "the record says it was checked" \
	jq -e '.signature_checked == true' "$CORRAL_HOME"/boxes/test-VAGRANTSLASH-good/1.0.0/*/container/.corral-box.json >/dev/null
expect_out "a bogus signature is refused under the default policy" 1 "signature" \
	"$CORRAL" box add "$H/bogus.json"
expect_out "a signature by an untrusted key is refused" 1 "does not match any trusted key" \
	"$CORRAL" box add "$H/stranger.json"
check "refused boxes left the store unchanged" [ "$(boxes)" = "test/good" ]
expect_out "unsigned under if-present: added, with a warning" 0 "has no signature" \
	"$CORRAL" box add "$H/unsigned.json"
"$CORRAL" box remove test/unsigned >/dev/null 2>&1
expect_out "unsigned under required: refused" 1 "no signature" \
	env CORRAL_VERIFY_SIGNATURES=required "$CORRAL" box add "$H/unsigned.json"
expect_out "signed under required: accepted" 0 "replaced box test/good" \
	env CORRAL_VERIFY_SIGNATURES=required "$CORRAL" box add --force "$H/good.json"
expect_out "off: a bogus signature is not looked at" 0 "added box test/bogus" \
	env CORRAL_VERIFY_SIGNATURES=off "$CORRAL" box add "$H/bogus.json"
"$CORRAL" box remove test/bogus >/dev/null 2>&1

expect_out "a .box with --signature: checked" 0 "added box test/direct" \
	env CORRAL_VERIFY_SIGNATURES=required "$CORRAL" box add --name test/direct --signature "$GOOD" "$H/tiny.box"
expect_out "a .box with a stranger's --signature: refused" 1 "does not match any trusted key" \
	"$CORRAL" box add --name test/direct2 --signature "$STRANGER" "$H/tiny.box"

# up adds the box from box_url under the same rules.
mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<YAML
version: 1
machines:
  web: { box: test/stranger, box_url: "$H/stranger.json", provider: container }
YAML
expect_out "up: a box signed by an untrusted key is refused" 1 "does not match any trusted key" \
	"$CORRAL" -C "$T/env" up
check "up: nothing was added" [ "$(boxes)" = "test/direct test/good" ]
