# `corral box ...` against a real store: tiny .box files built here, added
# from a path, file:// and HTTP (tests/server/boxserver.py on loopback), a
# catalog with several versions/providers/architectures, the Vagrant store
# layout, remove/prune/in-use, outdated/update, verify, concurrent adds, sign.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/server/serve.sh"
on_exit boxserver_stop_all
unset CORRAL_BOX_TOKEN CORRAL_BOX_SERVER CORRAL_VERIFY_SIGNATURES
mkdir -p "$CORRAL_HOME" "$T/www/test"
LOG=$T/requests.log
BOXES=$CORRAL_HOME/boxes
case $(uname -m) in x86_64) HOST_ARCH=amd64 ;; aarch64) HOST_ARCH=arm64 ;; *) HOST_ARCH=$(uname -m) ;; esac

# make_box FILE PROVIDER [PAYLOAD_BYTES]: a Vagrant-style box, a few KB.
make_box() {
	local src=$T/src/$(basename "$1")
	rm -rf "$src" && mkdir -p "$src"
	printf '{"provider":"%s","format":"qcow2","virtual_size":1}\n' "$2" >"$src/metadata.json"
	head -c "${3:-2000}" /dev/urandom >"$src/box.img"
	echo 'Vagrant.configure("2") { |c| }' >"$src/Vagrantfile"
	tar -C "$src" -czf "$1" .
}
listed() { corral box list --json | python3 -c "import json,sys; print(' '.join('%s@%s/%s/%s' % (b['name'], b['version'], b['provider'], b['architecture']) for b in json.load(sys.stdin)))"; }

# --- a .box from a path: Vagrant's libvirt layout lands where vagrant would put it
make_box "$T/lv.box" libvirt
LV=$BOXES/test-VAGRANTSLASH-lv/0/$HOST_ARCH/libvirt
expect_out "path: added" 0 "added box test/lv 0 (libvirt, $HOST_ARCH)" corral box add --name test/lv "$T/lv.box"
check "path: Vagrant's layout boxes/NAME-VAGRANTSLASH-/0/ARCH/PROVIDER" \
	test -f "$LV/box.img" -a -f "$LV/metadata.json" -a -f "$LV/Vagrantfile"
check "path: .corral-box.json records source and sha256" python3 -c "
import json,hashlib; r=json.load(open('$LV/.corral-box.json'))
assert r['source']=='$T/lv.box' and r['version']=='0' and r['catalog_url'] is None
assert r['sha256']==hashlib.sha256(open('$T/lv.box','rb').read()).hexdigest()"
check "path: no temporary directory left" test -z "$(ls -A "$BOXES" | grep '^\.tmp-')"
expect_out "path: again is already present" 0 "already present: box test/lv 0" corral box add --name test/lv "$T/lv.box"
expect_out "path: a .box needs a name" 1 "needs a name" corral box add "$T/lv.box"
expect_out "path: a hostile name is refused" 1 "not a box name" corral box add --name ../evil "$T/lv.box"
expect_out "path: not a file, URL or org/name" 1 "is not a file, a URL or an org/name box" corral box add nothing-here
expect_out "path: wrong --provider is refused" 1 "the box is for provider libvirt, not virtualbox" \
	corral box add --name test/other --provider virtualbox "$T/lv.box"
check "path: a refused box leaves nothing" test ! -e "$BOXES/test-VAGRANTSLASH-other" -a -z "$(ls -A "$BOXES" | grep '^\.tmp-')"
# --- an image (not a .box) needs no name: stored as local/FILE-WITHOUT-SUFFIXES
qemu-img create -q -f qcow2 "$T/noble-cloudimg-amd64.qcow2" 16M
xz -0 -k "$T/noble-cloudimg-amd64.qcow2"
expect_out "image: a qcow2.xz added without a name is named after its file" 0 \
	"added box local/noble-cloudimg-amd64 0 (kvm" corral box add "$T/noble-cloudimg-amd64.qcow2.xz"
check "image: stored as a kvm box" test -f "$BOXES/local-VAGRANTSLASH-noble-cloudimg-amd64/0/$HOST_ARCH/kvm/box.img"
expect_out "image: removed by its made name" 0 "removed" corral box remove local/noble-cloudimg-amd64
cat >"$T/imgenv.yaml" <<'EOF2'
version: 1
machines:
  a: { box: ./noble-cloudimg-amd64.qcow2, provider: kvm }
  b: { box: "https://images.example.test/x/disk.img?sig=1", provider: kvm }
EOF2
expect_out "image: box: takes a path or a URL" 0 "" corral -f "$T/imgenv.yaml" validate
printf 'version: 1\nmachines:\n  a: { box: "./two words.img" }\n' >"$T/badimg.yaml"
expect_out "image: a path with a space is refused at its line" 2 "badimg.yaml:3" corral -f "$T/badimg.yaml" validate
mkdir -p "$T/nometa" && echo x >"$T/nometa/box.img" && tar -C "$T/nometa" -czf "$T/nometa.box" .
expect_out "path: a box without metadata.json is refused" 1 "no metadata.json" corral box add --name test/nometa "$T/nometa.box"

# --- --force replaces, --checksum, Vagrant's `box add NAME URL` with file://
old=$(sha256sum "$LV/box.img")
make_box "$T/lv.box" libvirt
expect_out "force: replaced" 0 "replaced box test/lv 0" corral box add --force --name test/lv "$T/lv.box"
check "force: new content in place" test "$(sha256sum "$LV/box.img")" != "$old"
SUM=$(sha256sum "$T/lv.box" | cut -d' ' -f1)
expect_out "checksum: a wrong one is refused" 1 "expected sha256" \
	corral box add --name test/sum --checksum sha256:00000000000000000000000000000000000000000000000000000000deadbeef "$T/lv.box"
check "checksum: nothing stored after a mismatch" test ! -e "$BOXES/test-VAGRANTSLASH-sum"
expect_out "checksum: bad syntax" 1 "is not TYPE:HEX" corral box add --name test/sum --checksum "$SUM" "$T/lv.box"
expect_out "file:// in Vagrant's NAME URL form, with checksum" 0 "added box test/sum 0 (libvirt" \
	corral box add test/sum "file://$T/lv.box" --checksum "sha256:$SUM"

# --- over HTTP, with a catalog of several versions, providers and architectures
for spec in 1.0.0:libvirt:amd64 1.2.0:libvirt:amd64 1.2.0:virtualbox:amd64 2.0.0:libvirt:arm64 \
	1.5.0:container:; do
	IFS=: read -r v p a <<<"$spec"
	make_box "$T/www/multi-$v-$p.box" "$p"
done
cat >"$T/www/multi.json" <<JSON
{"name": "test/multi", "versions": [
 {"version": "1.0.0", "providers": [{"name": "libvirt", "url": "multi-1.0.0-libvirt.box", "architecture": "amd64"}]},
 {"version": "1.2.0", "providers": [
   {"name": "libvirt", "url": "multi-1.2.0-libvirt.box", "architecture": "amd64",
    "checksum_type": "sha256", "checksum": "$(sha256sum "$T/www/multi-1.2.0-libvirt.box" | cut -d' ' -f1)"},
   {"name": "virtualbox", "url": "multi-1.2.0-virtualbox.box", "architecture": "amd64"}]},
 {"version": "2.0.0", "providers": [{"name": "libvirt", "url": "multi-2.0.0-libvirt.box", "architecture": "arm64"}]},
 {"version": "1.5.0", "providers": [{"name": "container", "url": "multi-1.5.0-container.box"}]}
]}
JSON
boxserver_start PORT "$T/www" --log "$LOG"
H=http://127.0.0.1:$PORT
M=$BOXES/test-VAGRANTSLASH-multi

expect_out "http: a .box URL" 0 "added box web/lv 0 (libvirt" corral box add --name web/lv "$H/multi-1.0.0-libvirt.box"
expect_out "catalog: newest fitting version" 0 "added box test/multi 1.2.0 (libvirt, amd64)" \
	corral box add "$H/multi.json" --provider libvirt --architecture amd64
check "catalog: stored at NAME/VERSION/ARCH/PROVIDER" test -f "$M/1.2.0/amd64/libvirt/metadata.json"
check "catalog: metadata_url holds the catalog URL" test "$(cat "$M/metadata_url")" = "$H/multi.json"
expect_out "catalog: ~> 1.0.0 picks 1.0.0" 0 "added box test/multi 1.0.0 (libvirt, amd64)" \
	corral box add "$H/multi.json" --provider libvirt --architecture amd64 --box-version "~> 1.0.0"
expect_out "catalog: another architecture" 0 "added box test/multi 2.0.0 (libvirt, arm64)" \
	corral box add "$H/multi.json" --provider libvirt --architecture arm64
expect_out "catalog: an entry without architecture fits any" 0 "added box test/multi 1.5.0 (container, riscv64)" \
	corral box add "$H/multi.json" --provider container --architecture riscv64
expect_out "catalog: comma list" 0 "already present: box test/multi 1.2.0 (libvirt, amd64)" \
	corral box add "$H/multi.json" --provider libvirt --architecture amd64 --box-version ">= 1.0, != 1.5.0, < 2"
expect_out "catalog: nothing fits lists the offer" 1 "the catalog offers: 2.0.0 (libvirt/arm64); 1.5.0 (container/any); 1.2.0 (libvirt/amd64, virtualbox/amd64); 1.0.0 (libvirt/amd64)" \
	corral box add "$H/multi.json" --provider libvirt --box-version "> 3"
expect_out "catalog: bad constraint" 1 "invalid version constraint" corral box add "$H/multi.json" --box-version "=> 1"
expect_out "bad constraint: refused before any fetch" 1 "invalid version constraint" \
	env CORRAL_BOX_SERVER=http://127.0.0.1:1 "$CORRAL" box add --box-version ">>1" x/y
expect_out "catalog: --name must match" 1 "is for box test/multi, not other/name" \
	corral box add --name other/name "$H/multi.json"
expect_out "catalog: a local path, relative URLs" 0 "added box test/multi 1.2.0 (virtualbox, amd64)" \
	corral box add "$T/www/multi.json" --provider virtualbox --architecture amd64

# org/name from $CORRAL_BOX_SERVER/org/name; the token goes to that host
sed "s#\"url\": \"#\"url\": \"$H/#g; s#test/multi#test/served#" "$T/www/multi.json" >"$T/www/test/served"
: >"$LOG"
expect_out "server: org/name" 0 "added box test/served 1.2.0 (libvirt, amd64)" \
	env CORRAL_BOX_SERVER="$H/" CORRAL_BOX_TOKEN=s3cret "$CORRAL" box add test/served --provider libvirt --architecture amd64
check "server: fetched \$CORRAL_BOX_SERVER/test/served" grep -q '"path": "/test/served"' "$LOG"
check "server: the token went to the box server" grep -q '"authorization": "Bearer s3cret"' "$LOG"
check "insecure: exactly one line says so" test "$(CORRAL_BOX_SERVER=$H "$CORRAL" box add test/served --insecure --provider libvirt --architecture amd64 2>&1 | grep -ci insecure)" = 1

# --- list
check "list --json: sorted name, version, provider, architecture" test "$(listed)" = \
	"test/lv@0/libvirt/$HOST_ARCH test/multi@1.0.0/libvirt/amd64 test/multi@1.2.0/libvirt/amd64 test/multi@1.2.0/virtualbox/amd64 test/multi@1.5.0/container/riscv64 test/multi@2.0.0/libvirt/arm64 test/served@1.2.0/libvirt/amd64 test/sum@0/libvirt/$HOST_ARCH web/lv@0/libvirt/$HOST_ARCH"
expect_out "list: for people" 0 "test/multi                       1.2.0        virtualbox   amd64" corral box list

# --- remove, with a machine using a box (index.json in core/host/index.h's format)
in_use() { # BOX_DIR...: a live machine of an envfile uses each
	mkdir -p "$T/proj/.corral/machines/web"
	python3 -c "import json,sys; json.dump({'machines': [{'envfile': '$T/proj/corral.yaml', 'name': 'web', 'dir': '$T/proj/.corral/machines/web', 'provider': 'kvm', 'box_dir': d} for d in sys.argv[1:]]}, open('$CORRAL_HOME/index.json', 'w'))" "$@"
}
expect_out "remove: several versions need a choice" 1 "box test/multi has several versions: 2.0.0, 1.5.0, 1.2.0, 1.0.0" \
	corral box remove test/multi
expect_out "remove: several providers need a choice" 1 "1.2.0 exists for several providers/architectures" \
	corral box remove test/multi --box-version 1.2.0
expect_out "remove: unknown box" 1 "box nope/nope is not in the store" corral box remove nope/nope
in_use "$M/1.5.0/riscv64/container"
expect_out "remove: refuses a box in use" 1 "is in use by $T/proj/corral.yaml:web" corral box remove test/multi --box-version 1.5.0
check "remove: the box in use is still there" test -d "$M/1.5.0/riscv64/container"
expect_out "remove: --force removes it anyway" 0 "removed box test/multi 1.5.0 (container, riscv64)" \
	corral box remove test/multi --box-version 1.5.0 --force
check "remove: empty version dir removed too" test ! -e "$M/1.5.0"
expect_out "remove: one of several providers" 0 "removed box test/multi 1.2.0 (virtualbox, amd64)" \
	corral box remove test/multi --box-version 1.2.0 --provider virtualbox
check "remove: the other provider stays" test -d "$M/1.2.0/amd64/libvirt"
expect_out "remove: --all" 0 "removed box test/served 1.2.0" corral box remove test/served --all
check "remove: the last box takes the name dir and metadata_url" test ! -e "$BOXES/test-VAGRANTSLASH-served"

# --- prune: 1.0.0 and 1.2.0 libvirt/amd64 are the same kind; 2.0.0 is arm64
in_use "$M/1.0.0/amd64/libvirt"
expect_out "prune: keeps a box in use" 0 "keeping box test/multi 1.0.0 (libvirt, amd64): in use by $T/proj/corral.yaml:web" corral box prune
rm -f "$CORRAL_HOME/index.json"
expect_out "prune --dry-run: says what" 0 "would remove box test/multi 1.0.0 (libvirt, amd64)" corral box prune --dry-run
check "prune --dry-run: removes nothing" test -d "$M/1.0.0/amd64/libvirt"
out=$(corral box prune 2>&1)
check "prune: removes only the old version" test "$out" = "removed box test/multi 1.0.0 (libvirt, amd64)"
check "prune: newest of each kind kept" test -d "$M/1.2.0/amd64/libvirt" -a -d "$M/2.0.0/arm64/libvirt" -a ! -e "$M/1.0.0"
expect_out "prune: nothing left to do" 0 "nothing to prune" corral box prune

# --- outdated / update
make_box "$T/www/up-1.box" libvirt
make_box "$T/www/up-2.box" libvirt
catalog_up() { # versions...
	local sep="" v
	{ echo '{"name": "test/up", "versions": ['
	  for v; do echo "$sep{\"version\": \"$v\", \"providers\": [{\"name\": \"libvirt\", \"url\": \"up-${v%%.*}.box\"}]}"; sep=,; done
	  echo ']}'; } >"$T/www/up.json"
}
catalog_up 1.0
corral box add "$H/up.json" --provider libvirt >/dev/null 2>&1
expect_out "outdated: up to date" 0 "test/up 1.0 (libvirt, $HOST_ARCH): up to date" corral box outdated
catalog_up 1.0 2.0
expect_out "outdated: a newer version" 0 "test/up 1.0 (libvirt, $HOST_ARCH): version 2.0 is available" corral box outdated test/up
check "outdated --json" test "$(corral box outdated --json | python3 -c "import json,sys; print([(s['current'], s['latest'], s['outdated']) for s in json.load(sys.stdin) if s['name']=='test/up'])")" = "[('1.0', '2.0', True)]"
expect_out "outdated: a box from a file has no catalog" 0 "test/lv 0 (libvirt, $HOST_ARCH): added from a file" corral box outdated
expect_out "update: adds the newest version" 0 "updated box test/up (libvirt, $HOST_ARCH): 1.0 -> 2.0" corral box update test/up
check "update: both versions installed" test -d "$BOXES/test-VAGRANTSLASH-up/2.0/$HOST_ARCH/libvirt" -a -d "$BOXES/test-VAGRANTSLASH-up/1.0/$HOST_ARCH/libvirt"
expect_out "update: then nothing to do" 0 "up to date" corral box update
mv "$T/www/up.json" "$T/www/up.gone"
expect_out "outdated: an unreachable catalog is an error" 1 "box test/up" corral box outdated

# --- verify
expect_out "verify: every box intact" 0 "ok box test/lv 0" corral box verify
echo tampered >>"$LV/box.img"
expect_out "verify: a modified file" 1 "box.img: content changed" corral box verify

# --- two adds of one box at once: one fetches, the other waits and reuses
make_box "$T/www/conc.box" libvirt 300000
: >"$LOG"
U="$H/conc.box?slow=400000"
"$CORRAL" box add --name test/conc "$U" >"$T/c1" 2>&1 & p1=$!
"$CORRAL" box add --name test/conc "$U" >"$T/c2" 2>&1 & p2=$!
wait $p1; r1=$?; wait $p2; r2=$?
check "concurrent: both succeed" test "$r1$r2" = 00
check "concurrent: one added, one found it present" test "$(cat "$T/c1" "$T/c2" | grep -c -e '^added box test/conc' -e '^already present: box test/conc')" = 2 -a \
	"$(cat "$T/c1" "$T/c2" | grep -c '^added box')" = 1
check "concurrent: downloaded once" test "$(grep -c '"path": "/conc.box' "$LOG")" = 1

# --- a box add killed mid-download leaves debris the next add removes
: >"$LOG"
"$CORRAL" box add --name test/killed "$H/conc.box?slow=20000" >/dev/null 2>&1 & pk=$!
for _ in $(seq 100); do compgen -G "$CORRAL_HOME/boxes/.tmp-$pk-*" >/dev/null && break; sleep 0.1; done
check "killed add: its temp dir exists while it runs" eval "compgen -G \"\$CORRAL_HOME/boxes/.tmp-$pk-*\" >/dev/null"
kill -9 $pk; wait $pk 2>/dev/null
mkdir -p "$CORRAL_HOME/boxes/.tmp-$$-live"
expect_out "killed add: the next add works" 0 "added box test/killed" corral box add --name test/killed "$H/conc.box"
check "killed add: its temp dir is gone" test -z "$(compgen -G "$CORRAL_HOME/boxes/.tmp-$pk-*")"
check "killed add: a running add's temp dir is kept" test -d "$CORRAL_HOME/boxes/.tmp-$$-live"
rmdir "$CORRAL_HOME/boxes/.tmp-$$-live"

# --- URLs without .box or .json: the content tells
expect_out "probe: an extensionless catalog URL" 0 "added box test/served 1.2.0 (virtualbox, amd64)" \
	corral box add "$H/test/served" --provider virtualbox --architecture amd64
cp "$T/lv.box" "$T/www/rawbox"
expect_out "probe: an extensionless .box URL" 0 "added box test/raw 0 (libvirt" corral box add --name test/raw "$H/rawbox"

# --- what a catalog's URLs may name
one_entry() { echo "{\"name\": \"$1\", \"versions\": [{\"version\": \"1\", \"providers\": [{\"name\": \"libvirt\", \"url\": \"$2\"}]}]}"; }
one_entry test/evil "file://$T/lv.box" >"$T/www/evil.json"
expect_out "catalog URLs: a remote catalog cannot name a local file" 1 "names a local file: file://$T/lv.box" \
	corral box add "$H/evil.json"
one_entry test/abs /multi-1.0.0-libvirt.box >"$T/www/abs.json"
expect_out "catalog URLs: a host-relative path resolves on the catalog's server" 0 "added box test/abs 1 (libvirt" \
	corral box add "$H/abs.json"

# --- sign
openssl genpkey -algorithm ed25519 -out "$T/sign.pem" 2>/dev/null
openssl pkey -in "$T/sign.pem" -pubout -out "$T/sign.pub" 2>/dev/null
sig=$(corral box sign "$T/sign.pem" "$T/lv.box")
echo "$sig" | base64 -d >"$T/sig.bin" 2>/dev/null
openssl dgst -sha256 -binary "$T/lv.box" >"$T/digest.bin"
sig_ok() { openssl pkeyutl -verify -pubin -inkey "$T/sign.pub" -rawin -in "$T/digest.bin" -sigfile "$T/sig.bin" >/dev/null; }
check "sign: an Ed25519 signature over the box's sha256" sig_ok
expect_out "sign: usage" 2 "box sign takes 2 to 2 arguments" corral box sign "$T/sign.pem"
expect_out "box: unknown subcommand suggests" 2 'did you mean `list`?' corral box lst
expect_out "box: unknown option" 2 "unknown option" corral box list --force

# --- a machine whose first up failed before anything was created uses no box
tiny=$(test_box tiny)
mkdir -p "$T/failed"
cat >"$T/failed/corral.yaml" <<YAML
version: 1
machines:
  web:
    box: corral/tiny
    box_url: file://$(dirname "$tiny")/catalog.json
    provider: container
    synced_folders: [{ host: ./missing, guest: /srv }]
YAML
expect_out "failed first up: the missing folder named" 1 "missing" corral -C "$T/failed" up
expect_out "the machine is not created" 0 "not created" corral -C "$T/failed" status
expect_out "and its box can be removed" 0 "removed box corral/tiny" corral box remove corral/tiny

# --- redirects never leave https, and the token goes only to the box
# server's scheme, host and port
"$ROOT/tests/server/mkca" "$T/ca" >/dev/null 2>&1
boxserver_start TLS_PORT "$T/www" --log "$LOG" --cert "$T/ca/server.pem" --key "$T/ca/server.key"
make_box "$T/www/down.box" libvirt
before=$(listed)
expect_out "an https box redirected to http is refused, naming both URLs" 1 \
	"https://localhost:$TLS_PORT/down.box?redirect=$H/down.box redirects to $H/down.box, which is not https" \
	env CURL_CA_BUNDLE="$T/ca/ca.pem" "$CORRAL" box add --name test/down \
	"https://localhost:$TLS_PORT/down.box?redirect=$H/down.box"
check "and the store is unchanged" test "$(listed)" = "$before"
: >"$LOG"
env CORRAL_BOX_SERVER="http://127.0.0.1:$TLS_PORT" CORRAL_BOX_TOKEN=s3cret \
	"$CORRAL" box add --name test/tok "$H/down.box" >/dev/null 2>&1
check "token: not sent to the box server's host on another port and scheme" \
	test "$(grep -c Bearer "$LOG")" = 0
expect_out "a box from a URL without a checksum is added with a warning" 0 "no checksum given" \
	"$CORRAL" box add --name test/nosum --force "$H/down.box"

# --- `box:` as a path: the machine's box is stored under the name made from its file
mkdir -p "$T/pathenv"
cp "$(test_box tiny)" "$T/pathenv/tiny.box"
printf 'version: 1\nmachines:\n  t: { box: ./tiny.box, provider: container }\n' >"$T/pathenv/corral.yaml"
expect_out "box: ./tiny.box boots, stored as local/tiny" 0 "t: ssh ready" \
	bash -c 'cd "$1" && "$2" up' - "$T/pathenv" "$CORRAL"
expect_out "and is listed under that name" 0 "local/tiny" "$CORRAL" box list
expect_out "its machine is destroyed" 0 "t: destroyed" bash -c 'cd "$1" && "$2" destroy -f' - "$T/pathenv" "$CORRAL"
