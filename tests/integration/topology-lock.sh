# Teams and CI on the tiny container box: corral.lock (written by up and
# `corral lock`, kept when a newer box appears, moved by --update, a box
# whose bytes changed refused, `up --locked` against a changed envfile,
# `validate` on a stale lock), --report junit/json (valid against
# tests/junit.xsd), --json event lines, and triggers.
source "$(dirname "$0")/../lib.sh"
D=$T/proj
mkdir -p "$D" "$T/www"
on_exit '"$CORRAL" -C "$D" destroy -f >/dev/null 2>&1'
tiny_tree "$T/tree"
cp "$(test_box tiny)" "$T/www/tiny-1.0.box"
echo 1.1 >"$T/tree/rootfs/etc/box-version"
pack_box "$T/tree" "$T/www/tiny-1.1.box"
sum() { sha256sum "$1" | cut -d' ' -f1; }
# catalog VERSION...: the catalog offers these versions of test/tiny.
catalog() {
	local v sep=""
	{
		printf '{"name":"test/tiny","versions":['
		for v in "$@"; do
			printf '%s{"version":"%s","providers":[{"name":"container","url":"file://%s",' \
				"$sep" "$v" "$T/www/tiny-$v.box"
			printf '"checksum_type":"sha256","checksum":"%s"}]}' "$(sum "$T/www/tiny-$v.box")"
			sep=,
		done
		printf ']}\n'
	} >"$T/www/catalog.json"
}
catalog 1.0
cat >"$D/corral.yaml" <<YAML
version: 1
machines:
  web:
    box: test/tiny
    box_url: file://$T/www/catalog.json
    provider: container
    provision:
      - shell: { name: hello, inline: "echo hello from web", privileged: false }
YAML
lockv() { jq -r ".machines.$1.version" "$D/corral.lock"; }

# --- up writes corral.lock
expect_out "up: the first up" 0 "web: ssh ready" corral -C "$D" up
check "lock: written beside the envfile" test -f "$D/corral.lock"
check "lock: box, version, provider, architecture, url, digest" test "$(jq -r \
	'.machines.web | "\(.box) \(.version) \(.provider) \(.architecture) \(.url) \(.digest)"' \
	"$D/corral.lock")" = "test/tiny 1.0 container amd64 file://$T/www/tiny-1.0.box sha256:$(sum "$T/www/tiny-1.0.box")"
check "lock: keys sorted (stable, diff-friendly)" \
	bash -c 'diff <(jq -S . "$1") "$1"' _ "$D/corral.lock"

# --- a newer box appears: a locked up keeps 1.0
catalog 1.0 1.1
"$CORRAL" -C "$D" destroy -f >/dev/null 2>&1
expect_out "locked: up with a lock present" 0 "web: ssh ready" corral -C "$D" up --locked
check "locked: still 1.0 though 1.1 matches" test "$(lockv web)" = 1.0
check "locked: the machine runs the 1.0 box" \
	test "$("$CORRAL" -C "$D" ssh web -c 'cat /etc/box-version 2>/dev/null || echo none')" = none

# --- lock --update moves to 1.1
expect_out "update: re-resolves" 0 "web: test/tiny 1.1" corral -C "$D" lock --update web
check "update: the lock says 1.1" test "$(lockv web)" = 1.1
"$CORRAL" -C "$D" destroy -f >/dev/null 2>&1
"$CORRAL" -C "$D" up >/dev/null 2>&1
check "update: a new machine boots 1.1" \
	test "$("$CORRAL" -C "$D" ssh web -c 'cat /etc/box-version')" = 1.1

# --- the 1.1 box is published again with other bytes: refused, both digests named
"$CORRAL" -C "$D" destroy -f >/dev/null 2>&1
"$CORRAL" box remove test/tiny --box-version 1.1 --force >/dev/null
old=$(sum "$T/www/tiny-1.1.box")
echo tampered >"$T/tree/rootfs/etc/box-version"
pack_box "$T/tree" "$T/www/tiny-1.1.box"
catalog 1.0 1.1
expect_out "tampered: refused naming both digests" 1 \
	"its bytes have digest sha256:$(sum "$T/www/tiny-1.1.box"), but corral.lock pins sha256:$old" \
	corral -C "$D" up

# --- the envfile changes: --locked fails naming what differs; validate warns
sed -i 's|^    provider: container|    provider: container\n    box_version: ">= 1.0"|' "$D/corral.yaml"
cat >>"$D/corral.yaml" <<YAML
  db:
    box: test/tiny
    box_url: file://$T/www/catalog.json
    provider: container
YAML
out=$("$CORRAL" -C "$D" up --locked 2>&1)
rc=$?
check "--locked: a changed envfile fails" [ "$rc" -ne 0 ]
check "--locked: names the changed constraint" grep -q 'web: box_version is `>= 1.0` in the envfile but `(none)` in corral.lock' <<<"$out"
check "--locked: names the new machine" grep -q 'machine db is not in corral.lock' <<<"$out"
check "--locked: nothing was created" test ! -e "$D/.corral/machines/db"
expect_out "validate: reports the stale lock" 0 "corral.lock is stale" corral -C "$D" validate

# --- reports, events and triggers, on a fresh project of two machines
P=$T/tp
mkdir -p "$P"
on_exit '"$CORRAL" -C "$P" destroy -f >/dev/null 2>&1'
cat >"$P/corral.yaml" <<YAML
version: 1
triggers:
  - { name: all-up, after: up, run: "echo \$CORRAL_ACTION >>all.log" }
machines:
  web:
    box: test/tiny
    box_url: file://$T/www/catalog.json
    box_version: "= 1.0"
    provider: container
    triggers:
      - { name: mark, before: up, run: [sh, -c, 'echo "\$CORRAL_WHEN \$CORRAL_ACTION \$CORRAL_MACHINE \$(basename "\$CORRAL_ENVFILE")" >"\$PWD/before-up"'] }
      - { name: guest, after: up, run_remote: "echo in-guest >/tmp/trig" }
      - { name: keep, before: halt, run: "test ! -e \$PWD/block-halt || { echo halt is blocked; exit 7; }" }
    provision:
      - shell: { name: hello, inline: "echo hello from web", privileged: false }
  db:
    box: test/tiny
    box_url: file://$T/www/catalog.json
    box_version: "= 1.0"
    provider: container
    provision:
      - shell: { name: broken, inline: "echo about to fail; exit 3", privileged: false }
YAML
"$CORRAL" -C "$P" up --json --report "junit:$T/up.xml" --report "json:$T/up.json" >"$T/events" 2>"$T/up.err"
rc=$?
check "report: up with a failing step exits 1" [ "$rc" -eq 1 ]
check "report: junit valid against tests/junit.xsd" xmllint --noout --schema "$ROOT/tests/junit.xsd" "$T/up.xml" 2>/dev/null
check "report: junit has the boot and steps of both machines" test "$(xmllint --xpath \
	'count(//testcase)' "$T/up.xml")" -ge 4
check "report: the failed step is a <failure> with its output" \
	grep -q 'exit code 3; last lines:' <<<"$(xmllint --xpath '//testcase[@name="step broken"]/failure/text()' "$T/up.xml")"
check "report: json has cases with status and seconds" test "$(jq -r \
	'.cases[] | select(.name == "step hello") | "\(.suite) \(.status) \(.seconds | type)"' "$T/up.json")" = "web ok number"
check "events: every line is one JSON object" python3 -c "
import json,sys
for l in open('$T/events'): assert isinstance(json.loads(l), dict)"
check "events: step start and end with status" test "$(jq -r \
	'select(.event == "step_end" and .name == "broken") | .status' "$T/events")" = failed
check "events: state changes and boots" test "$(jq -r \
	'select(.machine == "web" and (.event == "state" or .event == "boot_end")) | .state // .event' \
	"$T/events" | xargs)" = "creating booting boot_end running"
check "events: the summary is the last line" test "$(tail -n1 "$T/events" | jq -r '.event')" = summary
check "events: triggers too" test "$(jq -r 'select(.event == "trigger_end") | .name' "$T/events" | sort | xargs)" = "all-up guest mark"

check "trigger: before up ran on the host in the envfile's directory, with its environment" \
	test "$(cat "$P/before-up")" = "before up web corral.yaml"
check "trigger: after up ran in the guest" test "$("$CORRAL" -C "$P" ssh web -c 'cat /tmp/trig')" = in-guest
check "trigger: envfile-level after up, once" test "$(cat "$P/all.log")" = up
touch "$P/block-halt"
expect_out "trigger: a failing before halt stops the halt, its output shown" 1 "halt is blocked" \
	corral -C "$P" halt web
check "trigger: the machine still runs" test "$("$CORRAL" -C "$P" status --json | jq -r '.[] | select(.name == "web") | .state')" = running
rm "$P/block-halt"
expect_out "trigger: halt goes on once it passes" 0 "web: stopped" corral -C "$P" halt web

# --- an OCI image is pinned by its manifest digest: the tag moving on does
# not move the machine; a store box of another digest is refused
for t in docker-registry:docker-registry skopeo:skopeo umoci:umoci; do
	command -v "${t%%:*}" >/dev/null ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${t#*:}" >/dev/null
done
unset CORRAL_OCI_MIRRORS DOCKER_CONFIG
"$ROOT/tests/server/mkca" "$T/ca" >/dev/null 2>&1
export CURL_CA_BUNDLE=$T/ca/ca.pem
mkdir -p "$T/certs" && cp "$T/ca/ca.pem" "$T/certs/ca.crt"
registry_start REG lock
(cd "$T" && umoci init --layout L && umoci new --image L:1 && umoci unpack --image L:1 b >/dev/null &&
	tar -C b/rootfs -xf "$(test_box tiny)" --strip-components=1 rootfs && umoci repack --image L:1 b &&
	rm -rf b && umoci unpack --image L:1 b >/dev/null && echo moved >b/rootfs/etc/box-version &&
	umoci repack --image L:2 b && rm -rf b) >/dev/null 2>&1
push() { skopeo copy -q --dest-cert-dir "$T/certs" "oci:$T/L:$1" "docker://localhost:$REG/test/img:1"; }
push 1
V1=$(skopeo inspect --cert-dir "$T/certs" "docker://localhost:$REG/test/img:1" | jq -r .Digest)
O=$T/oci
mkdir -p "$O"
on_exit '"$CORRAL" -C "$O" destroy -f >/dev/null 2>&1'
printf 'version: 1\nmachines:\n  img:\n    box: oci://localhost:%s/test/img:1\n    provider: container\n' \
	"$REG" >"$O/corral.yaml"
expect_out "oci: up of an image" 0 "img: ssh ready" corral -C "$O" up
check "oci: the lock pins the image's manifest digest" test "$(jq -r \
	'.machines.img | "\(.box) \(.provider) \(.digest)"' "$O/corral.lock")" = \
	"oci://localhost:$REG/test/img:1 container $V1"
expect_out "oci: the lock is not stale" 0 "" bash -c '! "$1" -C "$2" validate 2>&1 | grep -q stale' _ "$CORRAL" "$O"
push 2
"$CORRAL" -C "$O" destroy -f >/dev/null 2>&1
"$CORRAL" box remove "oci/localhost_$REG/test/img/1" >/dev/null
expect_out "oci: the tag moved on; a locked up pulls the pinned digest" 0 "img: ssh ready" \
	corral -C "$O" up --locked
check "oci: the machine runs the locked image" \
	test "$("$CORRAL" -C "$O" ssh img -c 'cat /etc/box-version 2>/dev/null || echo none')" = none
"$CORRAL" -C "$O" destroy -f >/dev/null 2>&1
"$CORRAL" box add "oci://localhost:$REG/test/img:1" >/dev/null 2>&1
V2=$(skopeo inspect --cert-dir "$T/certs" "docker://localhost:$REG/test/img:1" | jq -r .Digest)
expect_out "oci: a store box of another digest is refused, naming both" 1 \
	"has manifest digest $V2, but corral.lock pins $V1" corral -C "$O" up
