# The box fetch pipeline against a real HTTP(S) server on loopback:
# checksums, resume, retries, TLS trust, the token's host rule, signatures,
# hostile archives, every compression, and what survives extraction.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/server/serve.sh"
on_exit boxserver_stop_all
CLI=$ROOT/build/tools/boxfetch-cli
[ -x "$CLI" ] || make -s -C "$ROOT" build/tools/boxfetch-cli >/dev/null
export CORRAL_RETRY_BACKOFF_MS=50 CORRAL_LOW_SPEED_TIME=1
unset CORRAL_BOX_TOKEN CURL_CA_BUNDLE SSL_CERT_FILE CORRAL_VERIFY_SIGNATURES
mkdir -p "$CORRAL_HOME" "$T/www" "$T/out"
LOG=$T/requests.log

# A box with some bulk (so a cut lands mid-stream) and a little tree.
mkdir -p "$T/src/rootfs/etc" "$T/src/rootfs/usr/bin"
echo '{"provider":"container"}' >"$T/src/metadata.json"
head -c 3000000 /dev/urandom >"$T/src/rootfs/usr/bin/blob"
seq 1 200000 >"$T/src/rootfs/etc/numbers"
ln -s ../usr/bin/blob "$T/src/rootfs/etc/blob-link"
tar -C "$T/src" -czf "$T/www/box.tar.gz" .
SUM=$(sha256sum "$T/www/box.tar.gz" | cut -d' ' -f1)
BAD=0000000000000000000000000000000000000000000000000000000000000000

boxserver_start PORT "$T/www" --log "$LOG" --bind 127.0.0.1 --bind 127.0.0.2
URL=http://127.0.0.1:$PORT/box.tar.gz
parts() { ls "$CORRAL_HOME/cache" 2>/dev/null | grep -c '\.part$'; }
requests() { grep -c "$1" "$LOG"; }

expect_out "good checksum: fetched and unpacked" 0 "sha256 $SUM" \
	"$CLI" fetch "$URL" "$T/out/good" --checksum "sha256:$SUM"
check "good checksum: the tree and its manifest are there" \
	cmp "$T/src/rootfs/usr/bin/blob" "$T/out/good/rootfs/usr/bin/blob"
check "good checksum: symlink kept" test "$(readlink "$T/out/good/rootfs/etc/blob-link")" = ../usr/bin/blob
check "good checksum: partial download removed" test "$(parts)" = 0
expect_out "verify: a fresh box has no problems" 0 "" "$CLI" verify "$T/out/good"
echo changed >>"$T/out/good/rootfs/etc/numbers"
expect_out "verify: a changed file is reported" 1 "rootfs/etc/numbers: content changed" \
	"$CLI" verify "$T/out/good"

expect_out "wrong checksum: refused with both digests" 1 "expected sha256 $BAD, got $SUM" \
	"$CLI" fetch "$URL" "$T/out/bad" --checksum "sha256:$BAD"
check "wrong checksum: destination absent" test ! -e "$T/out/bad"
check "wrong checksum: partial download removed" test "$(parts)" = 0
SUM512=$(sha512sum "$T/www/box.tar.gz" | cut -d' ' -f1)
expect_out "sha512 checksum accepted" 0 "sha256 $SUM" \
	"$CLI" fetch "$URL" "$T/out/sha512" --checksum "sha512:$SUM512"

: >"$LOG"
expect_out "cut mid-transfer: resumed and complete" 0 "sha256 $SUM" \
	"$CLI" fetch "$URL?cut=1000000" "$T/out/cut" --checksum "sha256:$SUM"
check "cut mid-transfer: the retry asked for a Range" grep -q '"range": "bytes=1000000-"' "$LOG"

: >"$LOG"
"$CLI" fetch "$URL?slow=200000" "$T/out/killed" >/dev/null 2>&1 &
pid=$!
for i in $(seq 100); do
	[ "$(stat -c %s "$CORRAL_HOME"/cache/*.part 2>/dev/null || echo 0)" -gt 300000 ] && break
	sleep 0.1
done
kill -9 "$pid"; wait "$pid" 2>/dev/null
expect_out "killed run: the next run resumes" 0 "sha256 $SUM" \
	"$CLI" fetch "$URL?slow=200000" "$T/out/resumed" --checksum "sha256:$SUM"
check "killed run: the next run used a Range request" \
	test "$(grep -c '"range": "bytes=[1-9]' "$LOG")" -ge 1

: >"$LOG"
expect_out "server ignoring Range: starts over and succeeds" 0 "sha256 $SUM" \
	"$CLI" fetch "$URL?cut=500000&norange=1" "$T/out/norange" --checksum "sha256:$SUM"
expect_out "slow server: low-speed timeout, then a resumed retry" 0 "sha256 $SUM" \
	"$CLI" fetch "$URL?slow=500" "$T/out/slow" --checksum "sha256:$SUM"
expect_out "HTTP 500 once: retried" 0 "sha256 $SUM" \
	"$CLI" fetch "$URL?fail=500" "$T/out/500" --checksum "sha256:$SUM"
expect_out "HTTP 404: a clear error" 1 "HTTP 404 for http://127.0.0.1:$PORT/nope.tar.gz" \
	"$CLI" fetch "http://127.0.0.1:$PORT/nope.tar.gz" "$T/out/404"
check "HTTP 404: destination absent" test ! -e "$T/out/404"
expect_out "HTTP 503 every time: gives up after bounded tries" 1 "gave up after 5 tries" \
	"$CLI" fetch "$URL?status=503" "$T/out/503"
expect_out "connection refused: a clear error" 1 "gave up after 5 tries" \
	"$CLI" fetch "http://127.0.0.1:1/box.tar.gz" "$T/out/refused"

PART=$CORRAL_HOME/cache/$(printf %s "$URL" | sha256sum | cut -d' ' -f1).part
mkdir -p "$CORRAL_HOME/cache"
flock "$PART" sleep 3 &
locker=$!
sleep 0.3
expect_out "same URL downloading elsewhere: refused, not corrupted" 1 "another corral process" \
	"$CLI" fetch "$URL" "$T/out/locked"
wait "$locker"

: >"$LOG"
expect_out "proxy from the environment: used" 0 "sha256 $SUM" \
	env -u no_proxy -u NO_PROXY http_proxy="http://127.0.0.1:$PORT" \
	"$CLI" fetch "http://box.proxy.invalid/box.tar.gz" "$T/out/proxy" --checksum "sha256:$SUM"
check "proxy from the environment: the request went through it" \
	grep -q '"path": "http://box.proxy.invalid/box.tar.gz"' "$LOG"

echo '{"name":"corral/x"}' >"$T/www/catalog.json"
expect_out "fetch_text: a catalog" 0 '"name":"corral/x"' "$CLI" text "http://127.0.0.1:$PORT/catalog.json"

# The token goes only to the box server's scheme://host:port, checked again
# on each redirect hop.
: >"$LOG"
export CORRAL_BOX_TOKEN=s3cret-token
REDIR="http://localhost:$PORT/box.tar.gz?redirect=http://127.0.0.2:$PORT/box.tar.gz"
out=$("$CLI" fetch "$REDIR" "$T/out/tok1" --token-url "http://localhost:$PORT/" 2>&1)
check "token: sent to the box server" grep -q '"host": "localhost:'"$PORT"'".*"authorization": "Bearer s3cret-token"' "$LOG"
check "token: not sent after a redirect to another host" \
	grep -q '"host": "127.0.0.2:'"$PORT"'", "range": null, "authorization": null' "$LOG"
check "token: never printed" test "${out/s3cret/}" = "$out"
: >"$LOG"
"$CLI" fetch "$REDIR" "$T/out/tok2" --token-url "http://127.0.0.2:$PORT" >/dev/null 2>&1
check "token: sent after a redirect only when the new origin is the box server's" \
	test "$(grep -c 'Bearer' "$LOG")" = 1 -a "$(grep -c '"host": "127.0.0.2.*Bearer' "$LOG")" = 1
"$CLI" fetch "http://127.0.0.1:$PORT/box.tar.gz" "$T/out/tok3" >/dev/null 2>&1
check "token: nobody gets it without a box server" test "$(grep -c 'Bearer' "$LOG")" = 1
: >"$LOG"
"$CLI" fetch "http://localhost:$PORT/box.tar.gz" "$T/out/tok4" --token-url "https://localhost:$PORT" >/dev/null 2>&1
check "token: not to the same host on another scheme" test "$(grep -c 'Bearer' "$LOG")" = 0
"$CLI" fetch "http://localhost:$PORT/box.tar.gz" "$T/out/tok5" --token-url "http://localhost:1" >/dev/null 2>&1
check "token: not to the same host on another port" test "$(grep -c 'Bearer' "$LOG")" = 0
unset CORRAL_BOX_TOKEN

# TLS: untrusted until CURL_CA_BUNDLE names the test CA; --insecure skips it.
"$ROOT/tests/server/mkca" "$T/ca"
boxserver_start TLS_PORT "$T/www" --cert "$T/ca/server.pem" --key "$T/ca/server.key"
TURL=https://localhost:$TLS_PORT/box.tar.gz
expect_out "TLS: untrusted certificate refused" 1 "not trusted" \
	"$CLI" fetch "$TURL" "$T/out/tls1" --checksum "sha256:$SUM"
expect_out "TLS: the error names CURL_CA_BUNDLE and --insecure" 1 "CURL_CA_BUNDLE" \
	"$CLI" fetch "$TURL" "$T/out/tls1"
check "TLS: destination absent" test ! -e "$T/out/tls1"
expect_out "TLS: trusted through CURL_CA_BUNDLE" 0 "sha256 $SUM" \
	env CURL_CA_BUNDLE="$T/ca/ca.pem" "$CLI" fetch "$TURL" "$T/out/tls2" --checksum "sha256:$SUM"
expect_out "TLS: trusted through SSL_CERT_FILE" 0 "sha256 $SUM" \
	env SSL_CERT_FILE="$T/ca/ca.pem" "$CLI" fetch "$TURL" "$T/out/tls3" --checksum "sha256:$SUM"
expect_out "TLS: --insecure works without the CA" 0 "sha256 $SUM" \
	"$CLI" fetch "$TURL" "$T/out/tls4" --insecure --checksum "sha256:$SUM"

# Signatures over the box's sha256, against $CORRAL_HOME/trusted-keys.
openssl genpkey -algorithm ed25519 -out "$T/signer.key" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$T/other.key" 2>/dev/null
SIG=$("$CLI" sign "$T/signer.key" "$T/www/box.tar.gz")
OTHER_SIG=$("$CLI" sign "$T/other.key" "$T/www/box.tar.gz")
expect_out "signature: present but no trusted keys is refused" 1 "no trusted keys" \
	"$CLI" fetch "$URL" "$T/out/sig0" --signature "$SIG"
mkdir -p "$CORRAL_HOME/trusted-keys"
openssl pkey -in "$T/signer.key" -pubout -out "$CORRAL_HOME/trusted-keys/signer.pub"
expect_out "signature: valid (PEM key)" 0 "signature checked" \
	"$CLI" fetch "$URL" "$T/out/sig1" --signature "$SIG"
expect_out "signature: invalid is refused" 1 "does not match any trusted key" \
	"$CLI" fetch "$URL" "$T/out/sig2" --signature "$OTHER_SIG"
check "signature: invalid leaves no destination" test ! -e "$T/out/sig2"
expect_out "signature: missing, if-present accepts" 0 "signature unchecked" \
	"$CLI" fetch "$URL" "$T/out/sig3"
expect_out "signature: missing, required refuses" 1 "no signature" \
	env CORRAL_VERIFY_SIGNATURES=required "$CLI" fetch "$URL" "$T/out/sig4"
rm "$CORRAL_HOME/trusted-keys/signer.pub"
openssl pkey -in "$T/signer.key" -pubout -outform DER | tail -c 32 | base64 \
	>"$CORRAL_HOME/trusted-keys/raw.pub"
expect_out "signature: valid (raw base64 key), required" 0 "signature checked" \
	env CORRAL_VERIFY_SIGNATURES=required "$CLI" fetch "$URL" "$T/out/sig5" --signature "$SIG"

# Hostile archives, made by python's tarfile; each refused, nothing left.
mkdir -p "$T/hostile"
HOSTILE=$T/hostile OUTSIDE=$T/outside /usr/bin/python3 - <<'PY'
import io, os, tarfile
d, outside = os.environ["HOSTILE"], os.environ["OUTSIDE"]
def box(name, *members):
    with tarfile.open(os.path.join(d, name + ".tar.gz"), "w:gz") as t:
        for m in members:
            data = b"x" if m.type == tarfile.REGTYPE else b""
            m.size = len(data)
            t.addfile(m, io.BytesIO(data) if data else None)
def entry(name, type=tarfile.REGTYPE, link=""):
    m = tarfile.TarInfo(name); m.type = type; m.linkname = link
    return m
box("dotdot", entry("../../outside"))
box("absolute", entry(outside))
box("symlink-escape", entry("rootfs/etc/x", tarfile.SYMTYPE, "../../../outside"))
box("symlink-then-write", entry("rootfs/etc", tarfile.SYMTYPE, "/" + os.path.dirname(outside)),
    entry("rootfs/etc/outside"))
box("hardlink-escape", entry("h", tarfile.LNKTYPE, "../../outside"))
dev = entry("rootfs/dev/null", tarfile.CHRTYPE); dev.devmajor, dev.devminor = 1, 3
box("device", dev)
box("fifo", entry("rootfs/run/fifo", tarfile.FIFOTYPE))
PY
head -c $(($(stat -c %s "$T/www/box.tar.gz") / 2)) "$T/www/box.tar.gz" >"$T/hostile/truncated.tar.gz"
for want in "dotdot:\`..\` component" "absolute:absolute path" "symlink-escape:symlink target leaves" \
	"symlink-then-write:written through \`rootfs/etc\`" "hardlink-escape:hard link" \
	"device:device node" "fifo:FIFO" "truncated:truncated"; do
	name=${want%%:*}
	expect_out "hostile $name: refused" 1 "${want#*:}" "$CLI" fetch "$T/hostile/$name.tar.gz" "$T/out/h-$name"
	check "hostile $name: nothing left" test ! -e "$T/out/h-$name" -a ! -e "$T/outside"
done

# Every compression, from a local path and a file:// URL.
for c in "gz:gzip" "xz:xz" "bz2:bzip2" "zst:zstd" "tar:cat"; do
	ext=${c%%:*}
	tar -C "$T/src" -cf - . | ${c#*:} >"$T/box.$ext"
	expect_out "format $ext: unpacks" 0 "sha256 " "$CLI" fetch "file://$T/box.$ext" "$T/out/fmt-$ext"
	check "format $ext: content intact" cmp "$T/src/rootfs/etc/numbers" "$T/out/fmt-$ext/rootfs/etc/numbers"
done

# Modes, numeric ownership and xattrs survive extraction in a container
# box's root tree, unpacked into a private store.
/usr/bin/python3 - "$T/meta.tar.gz" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:gz", format=tarfile.PAX_FORMAT) as t:
    j = b'{"provider":"container"}'
    m = tarfile.TarInfo("metadata.json"); m.size = len(j)
    t.addfile(m, io.BytesIO(j))
    m = tarfile.TarInfo("rootfs/usr/bin/sudo"); m.mode = 0o4755; m.uid, m.gid = 1234, 5678
    m.pax_headers = {"SCHILY.xattr.user.corral": "yes"}
    m.size = 3
    t.addfile(m, io.BytesIO(b"#!\n"))
PY
expect_out "metadata: box unpacks" 0 "sha256 " "$CLI" fetch "$T/meta.tar.gz" "$T/out/meta" --private
check "metadata: setuid mode kept" test "$(stat -c %a "$T/out/meta/rootfs/usr/bin/sudo")" = 4755
check "metadata: numeric owner kept" test "$(stat -c %u:%g "$T/out/meta/rootfs/usr/bin/sudo")" = 1234:5678
check "metadata: user xattr kept" test "$(/usr/bin/python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.corral").decode())' "$T/out/meta/rootfs/usr/bin/sudo")" = yes
