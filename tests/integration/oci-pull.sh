# OCI images as container boxes, against Debian's docker-registry on
# loopback (TLS from a test CA; a variant with htpasswd basic auth and one
# behind a bearer-token server), images built here with umoci and pushed with
# skopeo: layers with a whiteout, an opaque directory and a hard link to a
# lower layer; a busybox image; a multi-arch index; shared base layers;
# OCI layouts and archives; digests, sizes and truncated blobs refused with
# the store unchanged; `up` of a machine from an image.
source "$(dirname "$0")/../lib.sh"
source "$ROOT/tests/server/serve.sh"
need=()
for t in docker-registry:docker-registry skopeo:skopeo umoci:umoci htpasswd:apache2-utils; do
	command -v "${t%%:*}" >/dev/null || need+=("${t#*:}")
done
[ ${#need[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
export CORRAL_RETRY_BACKOFF_MS=50 CORRAL_LOW_SPEED_TIME=2
unset CORRAL_BOX_TOKEN SSL_CERT_FILE CORRAL_VERIFY_SIGNATURES CORRAL_OCI_MIRRORS DOCKER_CONFIG
export HOME=$T/userhome REGISTRY_AUTH_FILE=$T/auth.json
mkdir -p "$HOME" "$CORRAL_HOME"
"$ROOT/tests/server/mkca" "$T/ca"
export CURL_CA_BUNDLE=$T/ca/ca.pem
mkdir -p "$T/certs" && cp "$T/ca/ca.pem" "$T/certs/ca.crt"
TINY=$(test_box tiny)

push() { skopeo copy -q --dest-cert-dir "$T/certs" ${3:-} "oci:$T/L:$1" "docker://$2"; }

# The images: "t" = tiny's rootfs, then a layer removing /etc/shells and
# /root/lower (whiteouts), then a hand-made one with an opaque /opt/x and a
# hard link to a lower layer's file; "t2" = the same base plus its own layer.
cd "$T" || exit 1
umoci init --layout L && umoci new --image L:t
umoci unpack --image L:t b >/dev/null && tar -C b/rootfs -xf "$TINY" --strip-components=1 rootfs
mkdir -p b/rootfs/opt/x && echo gone >b/rootfs/opt/x/f && echo lower >b/rootfs/root/lower
umoci repack --image L:t b && rm -rf b
umoci unpack --image L:t b >/dev/null && rm -rf b/rootfs/etc/shells b/rootfs/root/lower && echo up >b/rootfs/root/upper
umoci repack --image L:t b && rm -rf b
/usr/bin/python3 - "$T/extra.tar" <<'PY'
import io, sys, tarfile
t = tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT)
def add(name, typ=tarfile.REGTYPE, data=b"", link="", mode=0o644, uid=0):
    ti = tarfile.TarInfo(name); ti.type = typ; ti.mode = mode; ti.uid = ti.gid = uid
    ti.linkname = link; ti.size = len(data)
    if typ == tarfile.REGTYPE: ti.pax_headers = {"SCHILY.xattr.user.oci": "kept"}
    t.addfile(ti, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
add("opt/", tarfile.DIRTYPE, mode=0o755)
add("opt/x/", tarfile.DIRTYPE, mode=0o750, uid=1000)
add("opt/x/.wh..wh..opq")
add("opt/x/g", data=b"opaque\n", mode=0o600, uid=1000)
add("opt/hostname-link", tarfile.LNKTYPE, link="etc/hostname")
t.close()
PY
umoci raw add-layer --image L:t extra.tar
umoci config --image L:t --config.env FOO=bar --config.env PATH=/usr/bin:/bin --config.workingdir /opt \
	--config.entrypoint /bin/sh --config.cmd -c --config.cmd 'echo hi' --config.user 0:0
umoci tag --image L:t t2 && umoci unpack --image L:t2 b >/dev/null && echo two >b/rootfs/two
umoci repack --image L:t2 b && rm -rf b

registry_start PORT open
R=localhost:$PORT
push t "$R/test/tiny:1"
push t2 "$R/test/two:1"

# --- pull, layers, config
expect_out "pull: box add oci:// adds a container box" 0 "added box oci/localhost_$PORT/test/tiny/1 0 (container," \
	"$CORRAL" box add "oci://$R/test/tiny:1"
BOX=$(ls -d "$CORRAL_HOME"/boxes/oci-*tiny*/0/*/container)
F=$BOX/rootfs
check "layers: a whiteout removes a lower layer's file" test ! -e "$F/etc/shells" -a ! -e "$F/root/lower"
check "layers: the upper layer's file is there" grep -qx up "$F/root/upper"
check "layers: an opaque directory hides what lower layers had in it" test ! -e "$F/opt/x/f" -a "$(cat "$F/opt/x/g")" = opaque
check "layers: owner and mode kept" test "$(stat -c '%u %a' "$F/opt/x" "$F/opt/x/g" | tr '\n' ' ')" = "1000 750 1000 600 "
check "layers: xattr kept" test "$(getfattr --only-values -n user.oci "$F/opt/x/g" 2>/dev/null || /usr/bin/python3 -c 'import os,sys; print(os.getxattr(sys.argv[1], "user.oci").decode(), end="")' "$F/opt/x/g")" = kept
check "layers: a hard link to a lower layer's file" test "$(stat -c %i "$F/opt/hostname-link")" = "$(stat -c %i "$F/etc/hostname")"
check "layers: no whiteout files in the tree" test -z "$(find "$F" -name '.wh.*')"
expect_out "list -v: Env, WorkingDir, User, Entrypoint, Cmd" 0 "Cmd         -c echo hi" "$CORRAL" -v box list
expect_out "list -v: Env shown" 0 "Env         FOO=bar PATH=/usr/bin:/bin" "$CORRAL" -v box list
check "metadata.json: format oci, entrypoint recorded" \
	test "$(jq -r '.format + " " + .oci.entrypoint[0] + " " + .oci.working_dir' "$BOX/metadata.json")" = "oci /bin/sh /opt"
expect_out "verify: the assembled box is clean" 0 "ok box oci/" "$CORRAL" box verify
expect_out "again: present, nothing fetched" 0 "already present" "$CORRAL" box add "oci://$R/test/tiny:1"

# --- a second image on the same base fetches only its own layer
out=$("$CORRAL" box add "oci://$R/test/two:1" 2>&1)
check "shared base: only the new layer is fetched" grep -q "4 layers, 1 fetched, 3 already in the layer store" <<<"$out"
echo "# $(grep 'bytes fetched' <<<"$out")"
TWO=$(ls -d "$CORRAL_HOME"/boxes/oci-*two*/0/*/container)
check "shared base: the files are the same inodes" test "$(stat -c %i "$TWO/rootfs/bin/busybox")" = "$(stat -c %i "$F/bin/busybox")"

# --- a changed tag is reported; --force takes it
push t2 "$R/test/tiny:1"
expect_out "changed tag: reported with both digests" 1 "changed since it was pulled" "$CORRAL" box add "oci://$R/test/tiny:1"
expect_out "changed tag: --force replaces it" 0 "replaced box" "$CORRAL" box add --force "oci://$R/test/tiny:1"
push t "$R/test/tiny:1"
DIGEST=$(skopeo inspect --cert-dir "$T/certs" "docker://$R/test/tiny:1" | jq -r .Digest)
expect_out "digest: @sha256 pins the manifest" 0 "added box oci/localhost_$PORT/test/tiny/sha256-" \
	"$CORRAL" box add "oci://$R/test/tiny@$DIGEST"

# --- bad blobs leave the store as it was
# (lock files of box names come and stay: they are not boxes)
snapshot() { (cd "$CORRAL_HOME/boxes" && find . -name '.lock-*' -prune -o -print | sort); }
umoci tag --image L:t bad && umoci unpack --image L:bad b >/dev/null && head -c 300000 /dev/urandom >b/rootfs/big
umoci repack --image L:bad b && rm -rf b
push bad "$R/test/bad:1"
BIG=$(jq -r '.layers[-1].digest' "$T/L/blobs/sha256/$(jq -r '.manifests[] | select(.annotations."org.opencontainers.image.ref.name"=="bad") | .digest' "$T/L/index.json" | cut -d: -f2)")
DATA=$(find "$T/reg-open" -path "*${BIG#sha256:}/data")
cp "$DATA" "$T/good-blob"
before=$(snapshot)
head -c 1000 "$T/good-blob" >"$DATA"
expect_out "truncated blob: refused" 1 "size mismatch" "$CORRAL" box add "oci://$R/test/bad:1"
check "truncated blob: store unchanged" test "$(snapshot)" = "$before"
cp "$T/good-blob" "$DATA" && printf 'X' | dd of="$DATA" bs=1 seek=5000 conv=notrunc status=none
expect_out "wrong digest: refused" 1 "checksum mismatch" "$CORRAL" box add "oci://$R/test/bad:1"
check "wrong digest: store unchanged" test "$(snapshot)" = "$before"
cp "$T/good-blob" "$DATA"

# --- local: OCI layout (with a descriptor whose size lies), oci-archive, docker-archive
cp -r "$T/L" "$T/L2"
M=$(jq -r '.manifests[] | select(.annotations."org.opencontainers.image.ref.name"=="bad") | .digest' "$T/L2/index.json" | cut -d: -f2)
jq '.layers[-1].size += 7' "$T/L2/blobs/sha256/$M" >"$T/m.json"
NM=$(sha256sum "$T/m.json" | cut -d' ' -f1)
cp "$T/m.json" "$T/L2/blobs/sha256/$NM"
jq --arg d "sha256:$NM" --argjson s "$(stat -c %s "$T/m.json")" \
	'.manifests |= map(if .annotations."org.opencontainers.image.ref.name"=="bad" then .digest=$d | .size=$s else . end)' \
	"$T/L/index.json" >"$T/L2/index.json"
before=$(snapshot)
expect_out "size mismatch: refused" 1 "size mismatch" "$CORRAL" box add "oci:$T/L2:bad"
check "size mismatch: store unchanged" test "$(snapshot)" = "$before"
cp -r "$T/L" "$T/L3"
M=$(jq -r '.manifests[] | select(.annotations."org.opencontainers.image.ref.name"=="t2") | .digest' "$T/L3/index.json" | cut -d: -f2)
sed -i 's/"schemaVersion":2/"schemaVersion": 2/' "$T/L3/blobs/sha256/$M"
expect_out "manifest digest mismatch: refused" 1 "manifest digest mismatch" "$CORRAL" box add "oci:$T/L3:t2"
check "manifest digest mismatch: store unchanged" test "$(snapshot)" = "$before"
expect_out "oci layout: added" 0 "added box oci-local/layout-" "$CORRAL" box add "oci:$T/L:t2"
skopeo copy -q "oci:$T/L:t" "oci-archive:$T/img.tar:t"
expect_out "oci-archive: added" 0 "added box oci-local/archive-" "$CORRAL" box add "oci-archive:$T/img.tar:t"
skopeo copy -q "oci:$T/L:t2" "docker-archive:$T/docker.tar:test/two:1"
expect_out "docker-archive: added" 0 "added box oci-local/docker-archive-" "$CORRAL" box add "docker-archive:$T/docker.tar"
DA=$(ls -d "$CORRAL_HOME"/boxes/oci-local*docker-archive*/0/*/container)
check "docker-archive: the tree is the image's" test -f "$DA/rootfs/two" -a ! -e "$DA/rootfs/etc/shells"

# --- a busybox image (Debian's busybox-static) and a multi-arch index
BB=$(command -v busybox || echo /bin/busybox)
mkdir -p "$T/bb/bin" && cp "$BB" "$T/bb/bin/busybox" && ln -s busybox "$T/bb/bin/sh"
tar -C "$T/bb" -czf "$T/bb.tar.gz" bin
umoci new --image L:bb && umoci raw add-layer --image L:bb "$T/bb.tar.gz"
umoci config --image L:bb --config.cmd /bin/sh
/usr/bin/python3 - "$T/L" <<'PY'
import hashlib, json, os, sys
L = sys.argv[1]
def blob(data):
    d = hashlib.sha256(data).hexdigest()
    open(os.path.join(L, "blobs/sha256", d), "wb").write(data)
    return "sha256:" + d, len(data)
def read(d):
    return open(os.path.join(L, "blobs/sha256", d.split(":")[1]), "rb").read()
idx = json.load(open(os.path.join(L, "index.json")))
bb = [m for m in idx["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == "bb"][0]
man = json.loads(read(bb["digest"]))
cfg = json.loads(read(man["config"]["digest"]))
cfg["architecture"] = "arm64"
man["config"]["digest"], man["config"]["size"] = blob(json.dumps(cfg).encode())
arm = blob(json.dumps(man).encode())
ents = [{"mediaType": bb["mediaType"], "digest": arm[0], "size": arm[1], "platform": {"os": "linux", "architecture": "arm64"}},
        {"mediaType": bb["mediaType"], "digest": bb["digest"], "size": bb["size"], "platform": {"os": "linux", "architecture": "amd64"}}]
index = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": ents}).encode())
idx["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": index[0], "size": index[1],
                         "annotations": {"org.opencontainers.image.ref.name": "multi"}})
json.dump(idx, open(os.path.join(L, "index.json"), "w"))
PY
push multi "$R/test/multi:1" --all
expect_out "multi-arch index: this host's image picked" 0 "added box" "$CORRAL" box add "oci://$R/test/multi:1"
MB=$(ls -d "$CORRAL_HOME"/boxes/oci-*multi*/0/*/container)
check "multi-arch index: the amd64 image, busybox runs" test "$("$MB/rootfs/bin/busybox" echo hi)" = hi
check "multi-arch index: index and platform digests recorded" test "$(jq -r '.oci.platform_digest | startswith("sha256:")' "$MB/metadata.json")" = true
expect_out "multi-arch index: another architecture is named in the error" 1 "linux/386" \
	"$CORRAL" box add --architecture i386 "oci://$R/test/multi:1"

# --- end to end through the CLI: machines from pulled images, reached over
# SSH by the host's sshd. "t" has no /bin/bash; "web" is busybox alone
# (applet links, a passwd, a page) whose entrypoint is busybox httpd; "deb"
# is Debian (python3) as one layer. Provisioners run unmodified and see the
# image's Env; ansible on busybox says python3 is missing; `command: image`
# serves through a forwarded port.
mkdir -p "$T/www/bin" "$T/www/etc" "$T/www/srv/www"
for a in $("$BB" --list); do [ "$a" = busybox ] || [ "$a" = sh ] || ln -s busybox "$T/www/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$T/www/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$T/www/etc/group"
echo "hello from the image" >"$T/www/srv/www/index.html"
tar -C "$T/www" -cf "$T/www.tar" bin etc srv
umoci tag --image L:bb web && umoci raw add-layer --image L:web "$T/www.tar"
umoci config --image L:web --config.env GREETING=hi --config.env PATH=/bin --config.workingdir /srv/www \
	--config.entrypoint /bin/httpd --config.cmd -f --config.cmd -p --config.cmd 8080
/usr/bin/python3 - "$(test_box debian-12-sysv)" "$T/deb.tar" <<'PY'
import sys, tarfile
src, dst = tarfile.open(sys.argv[1], "r|gz"), tarfile.open(sys.argv[2], "w", format=tarfile.PAX_FORMAT)
for m in src:
    if m.name.startswith("rootfs/") and m.name != "rootfs/":
        m.name = m.name[7:]
        if m.islnk(): m.linkname = m.linkname[7:]
        dst.addfile(m, src.extractfile(m) if m.isreg() else None)
dst.close()
PY
umoci new --image L:deb && umoci raw add-layer --image L:deb "$T/deb.tar" && rm "$T/deb.tar"
umoci config --image L:deb --config.env FOO=from-deb --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin
push web "$R/test/web:1" && push deb "$R/test/deb:1"
E=$T/e2e
mkdir -p "$E"
echo "copied by sftp" >"$E/note.txt"
cat >"$E/site.yml" <<'YAML'
- hosts: all
  gather_facts: false
  tasks:
    - shell: 'echo "ansible FOO=$FOO" >/tmp/ansible.txt'
YAML
cat >"$E/corral.yaml" <<YAML
version: 1
defaults: { provider: container }
machines:
  tiny:
    box: oci://$R/test/tiny@$DIGEST
    provision:
      - shell: { privileged: false, inline: 'cat /opt/x/g; echo "FOO=\$FOO"; test -e /bin/bash || echo no-bash' }
      - file: { source: note.txt, destination: /tmp/note.txt }
  web:
    box: oci://$R/test/web:1
    ssh: { user: root }
    ports: [{ guest: 8080 }]
    provider_options: { container: { command: image } }
    provision:
      - shell: { inline: 'echo "web GREETING=\$GREETING"' }
      - file: { source: note.txt, destination: /tmp/note.txt }
      - ansible: { name: play, playbook: site.yml, run: never }
  deb:
    box: oci://$R/test/deb:1
    provision:
      - ansible: { playbook: site.yml }
YAML
on_exit '"$CORRAL" -C "$E" destroy -f >/dev/null 2>&1'
run_ok "e2e: up of three machines from pulled images" "$CORRAL" -C "$E" up
g() { "$CORRAL" -C "$E" ssh "$1" -c "$2" 2>&1; }
expect_out "e2e: shell on an image without /bin/bash, its layers" 0 "tiny | opaque" printf '%s\n' "$out"
expect_out "e2e: the image's Env reaches shell steps" 0 "tiny | FOO=bar" printf '%s\n' "$out"
expect_out "e2e: no /bin/bash in it" 0 "tiny | no-bash" printf '%s\n' "$out"
expect_out "e2e: file provisioner (internal-sftp)" 0 "copied by sftp" g tiny 'cat /tmp/note.txt'
expect_out "e2e: busybox image: shell with its Env" 0 "web | web GREETING=hi" printf '%s\n' "$out"
expect_out "e2e: busybox image: file provisioner" 0 "copied by sftp" g web 'cat /tmp/note.txt'
expect_out "e2e: busybox image: ansible says python3 is missing" 1 \
	"the image has no python3; ansible needs it" "$CORRAL" -C "$E" provision web --provision-with play
expect_out "e2e: debian image: ansible ran, with the image's Env" 0 "ansible FOO=from-deb" \
	g deb 'cat /tmp/ansible.txt'
expect_out "e2e: the image's Env in a plain corral ssh session" 0 "FOO=bar" g tiny 'echo FOO=$FOO'
port=$("$CORRAL" -C "$E" port web 2>/dev/null | sed -n 's/.*=> \([0-9]*\) (host.*/\1/p')
expect_out "e2e: command: image serves through the forwarded port" 0 "hello from the image" \
	curl -sS --max-time 5 "http://127.0.0.1:$port/"
expect_out "e2e: status -v names the image and its command" 0 \
	"image command: /bin/httpd -f -p 8080 (run by \`command: image\`)" "$CORRAL" -C "$E" -v status web
expect_out "e2e: destroy" 0 "destroyed" "$CORRAL" -C "$E" destroy -f

# --- the layer store keeps what boxes list: box remove drops the layers
# only its box had; prune drops those a --force replacement left behind
WB=$(ls -d "$CORRAL_HOME"/boxes/oci-*web*/0/*/container)
LS=$CORRAL_HOME/boxes/.oci/layers
WL=$(jq -r '.oci.layers[-1]' "$WB/metadata.json") BL=$(jq -r '.oci.layers[0]' "$WB/metadata.json")
expect_out "layer gc: box remove drops the layer only that box used" 0 "removed 1 image layer no box uses" \
	"$CORRAL" box remove "oci/localhost_$PORT/test/web/1"
check "layer gc: its own layer is gone, the shared one stays" test ! -e "$LS/sha256-${WL#sha256:}" -a -d "$LS/sha256-${BL#sha256:}"
push web "$R/test/swap:1" && "$CORRAL" box add "oci://$R/test/swap:1" >/dev/null 2>&1
push bb "$R/test/swap:1" && "$CORRAL" box add --force "oci://$R/test/swap:1" >/dev/null 2>&1
check "layer gc: a replaced image's layer stays until prune" test -d "$LS/sha256-${WL#sha256:}"
expect_out "layer gc: prune drops it" 0 "removed 1 image layer no box uses" "$CORRAL" box prune
check "layer gc: pruned; the layers boxes use stay" test ! -e "$LS/sha256-${WL#sha256:}" -a -d "$LS/sha256-${BL#sha256:}"
expect_out "layer gc: the boxes left are whole" 0 "ok box oci/localhost_$PORT/test/swap/1" "$CORRAL" box verify

# --- basic auth (htpasswd) and a bearer-token server
htpasswd -Bbn alice s3cret >"$T/htpasswd" 2>/dev/null
registry_start BPORT basic "auth: {htpasswd: {realm: corral-test, path: $T/htpasswd}}"
push t "localhost:$BPORT/test/tiny:1" "--dest-creds alice:s3cret"
expect_out "basic auth: no credentials, the error says how to log in" 1 "docker login localhost:$BPORT" \
	"$CORRAL" box add "oci://localhost:$BPORT/test/tiny:1"
printf '{"auths": {"localhost:%s": {"auth": "%s"}}}\n' "$BPORT" "$(printf alice:s3cret | base64)" >"$REGISTRY_AUTH_FILE"
expect_out "basic auth: credentials from \$REGISTRY_AUTH_FILE" 0 "added box" \
	"$CORRAL" box add "oci://localhost:$BPORT/test/tiny:1"
# a credential helper (credHelpers, then credsStore) gets the host on stdin
mkdir -p "$T/bin"
cat >"$T/bin/docker-credential-fake" <<SH
#!/bin/sh
[ "\$1" = get ] && [ "\$(cat)" = "localhost:$BPORT" ] || exit 1
echo '{"ServerURL": "localhost:$BPORT", "Username": "alice", "Secret": "s3cret"}'
SH
chmod +x "$T/bin/docker-credential-fake"
printf '{"credHelpers": {"localhost:%s": "fake"}}\n' "$BPORT" >"$REGISTRY_AUTH_FILE"
expect_out "credential helper: credHelpers answers for the registry" 0 "already present" \
	env PATH="$T/bin:$PATH" "$CORRAL" box add "oci://localhost:$BPORT/test/tiny:1"
printf '{"credsStore": "fake"}\n' >"$REGISTRY_AUTH_FILE"
expect_out "credential helper: credsStore" 0 "already present" \
	env PATH="$T/bin:$PATH" "$CORRAL" box add "oci://localhost:$BPORT/test/tiny:1"
printf '{"credsStore": "missing"}\n' >"$REGISTRY_AUTH_FILE"
expect_out "credential helper: one that is not there means no credentials" 1 "docker login localhost:$BPORT" \
	"$CORRAL" box add "oci://localhost:$BPORT/test/tiny:1"

openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=token -keyout "$T/tok.key" -out "$T/tok.pem" 2>/dev/null
TPF=$T/token.port
/usr/bin/python3 "$ROOT/tests/server/tokenserver.py" --key "$T/tok.key" --cert "$T/tok.pem" --user bob:pw \
	--issuer corral-test --port-file "$TPF" --parent $$ --tls-cert "$T/ca/server.pem" --tls-key "$T/ca/server.key" &
on_exit "kill $!"
for i in $(seq 100); do [ -s "$TPF" ] && break; sleep 0.05; done
registry_start TPORT token "auth: {token: {realm: 'https://localhost:$(cat "$TPF")/token', service: corral-registry, issuer: corral-test, rootcertbundle: $T/tok.pem}}"
push t "localhost:$TPORT/test/tiny:1" "--dest-creds bob:pw"
printf '{"auths": {"localhost:%s": {"auth": "%s"}}}\n' "$TPORT" "$(printf bob:pw | base64)" >"$REGISTRY_AUTH_FILE"
expect_out "bearer token: challenge answered with a token from the realm" 0 "added box" \
	"$CORRAL" box add "oci://localhost:$TPORT/test/tiny:1"

# --- a mirror for docker.io serves the short form (anything past it would
# go to a proxy that is not there: nothing reaches the internet)
push t "$R/library/tinyimg:1"
expect_out "mirror: docker.io's short form served by CORRAL_OCI_MIRRORS" 0 "added box oci/docker.io/library/tinyimg/1" \
	env CORRAL_OCI_MIRRORS="docker.io=https://$R" https_proxy=http://127.0.0.1:1 no_proxy=localhost \
	"$CORRAL" box add tinyimg:1

# --- references
expect_out "reference: a plain org/name stays a Vagrant box" 1 "catalog: gave up" \
	env CORRAL_BOX_SERVER=http://127.0.0.1:1 "$CORRAL" box add corral/nothing
expect_out "reference: bad digest refused" 1 "not a sha256:HEX digest" "$CORRAL" box add "oci://$R/test/tiny@sha256:12"
