# What `corral box add` promises about unpacking, through the real CLI:
# a full disk (a small tmpfs mounted over the store here) never leaves a
# partly written box; sparse entries, gzip bombs and too many entries are
# refused within seconds by the limits; setuid bits, file capabilities and
# owners survive only in a container box's root tree in a private store;
# special files under a container box's rootfs/dev/ are skipped. Each
# refusal leaves the store as it was.
source "$(dirname "$0")/../lib.sh" || exit 1
source "$ROOT/tests/server/serve.sh"
on_exit boxserver_stop_all
unset CORRAL_BOX_MAX_SIZE CORRAL_BOX_MAX_ENTRIES CORRAL_BOX_MAX_RATIO CORRAL_VERIFY_SIGNATURES
export CORRAL_LOW_SPEED_TIME=30
BOXES=$CORRAL_HOME/boxes
ODD=$ROOT/tests/tools/oddbox.py
mkdir -p "$CORRAL_HOME" "$T/www"

# The store's content but the lock files an add leaves.
store() { [ -d "$BOXES" ] && (cd "$BOXES" && find . -mindepth 1 ! -name '.lock-*' ! -name filler | sort); }
# The name a box file is added under: test/ and its name without .box.
box_name() { local n=${1##*/}; echo "test/${n%.box}"; }
# refused NAME WANT BOX [ENV...]: `box add` fails within 20 s saying WANT, store unchanged.
refused() {
	local name=$1 want=$2 box=$3 before t0
	shift 3
	before=$(store)
	t0=$SECONDS
	expect_out "$name: refused" 1 "$want" env "$@" timeout 60 "$CORRAL" box add --name "$(box_name "$box")" "$box"
	check "$name: within seconds" test $((SECONDS - t0)) -lt 20
	check "$name: store unchanged" test "$(store)" = "$before"
}
added() { # NAME BOX [ENV...]
	local name=$1 box=$2
	shift 2
	expect_out "$name: added" 0 "added box $(box_name "$box")" env "$@" "$CORRAL" box add --name "$(box_name "$box")" "$box"
}
# text BOX MB [FILES]: a container box of FILES (1) files of text, MB in all.
text() {
	local src=$T/src/${1##*/} i
	rm -rf "$src" && mkdir -p "$src/rootfs/usr"
	echo '{"provider": "container"}' >"$src/metadata.json"
	for i in $(seq "${3:-1}"); do
		seq 1 100000000 | head -c $(($2 * 1048576 / ${3:-1})) >"$src/rootfs/usr/f$i"
	done
	pack_box "$src" "$1"
}
in_box() { echo "$BOXES/test-VAGRANTSLASH-$1/0/"*"/$2/$3"; }
mode() { stat -c %a "$(in_box "$@")"; }
owner() { stat -c %u:%g "$(in_box "$@")"; }
has_cap() { python3 -c 'import os, sys; os.getxattr(sys.argv[1], "security.capability")' "$(in_box "$@")" 2>/dev/null; }
no_cap() { ! has_cap "$@"; }

# --- a full disk: an 8 MiB tmpfs as the store (temp dirs are inside it)
mkdir -p "$BOXES"
mount -t tmpfs -o size=8m,mode=0700 corral-test "$BOXES"
on_exit 'umount "$BOXES" 2>/dev/null'
head -c 12000000 /dev/urandom >"$T/noise"
mkdir -p "$T/src/big/rootfs" && mv "$T/noise" "$T/src/big/rootfs/noise"
echo '{"provider": "container"}' >"$T/src/big/metadata.json"
pack_box "$T/src/big" "$T/big"
refused "space: a box larger than the disk" "no space left on $BOXES (needed at least 12 MiB" "$T/big"
text "$T/text" 22
refused "space: a box that unpacks larger than the disk" "no space left on $BOXES" "$T/text"

# The disk fills up while the box streams in: writes fail half-way.
text "$T/www/fill.box" 6 6
boxserver_start PORT "$T/www"
before=$(store)
"$CORRAL" box add --name test/fill "http://127.0.0.1:$PORT/fill.box?slow=300000" >"$T/fill.out" 2>&1 &
pid=$!
for i in $(seq 200); do
	ls "$BOXES"/.tmp-*/box/rootfs/usr/f1 >/dev/null 2>&1 && break
	sleep 0.05
done
head -c 16M /dev/zero >"$BOXES/filler" 2>/dev/null
wait "$pid"
rc=$?
check "space: filled during the add: refused" test "$rc" = 1
check "space: filled during the add: the error says so" grep -q "no space left on $BOXES" "$T/fill.out"
grep -q "no space left on" "$T/fill.out" || sed 's/^/#   /' "$T/fill.out"
check "space: filled during the add: store unchanged" test "$(store)" = "$before"
check "space: filled during the add: no partial download kept" test -z "$(ls "$CORRAL_HOME/cache" 2>/dev/null)"
rm -f "$BOXES/filler"
added "space: with room again" "$T/www/fill.box"
expect_out "space: the box verifies" 0 "ok box test/fill" "$CORRAL" box verify
umount "$BOXES"
rm -rf "$BOXES"

# --- limits: sparse entries, bombs, entry counts
python3 "$ODD" gnu-sparse "$T/gnu-sparse" $((15 << 40))
check "sparse: a 15 TiB GNU sparse entry fits in a tiny box" test "$(stat -c %s "$T/gnu-sparse")" -lt 1000
refused "sparse: 15 TiB (GNU)" "entry \`rootfs/huge\` (15.0 TiB) brings the box to 15.0 TiB unpacked, more than the limit of 64.0 GiB (CORRAL_BOX_MAX_SIZE)" "$T/gnu-sparse"
python3 "$ODD" pax-sparse "$T/pax-sparse" $((100 << 30))
refused "sparse: 100 GiB (PAX 1.0)" "(100.0 GiB) brings the box to 100.0 GiB" "$T/pax-sparse"
refused "sparse: under a lower CORRAL_BOX_MAX_SIZE" "more than the limit of 1.0 GiB" "$T/pax-sparse" CORRAL_BOX_MAX_SIZE=1G
python3 "$ODD" bomb "$T/bomb" 10
refused "bomb: 10 GiB of zeros in 10 MiB" "10.0 GiB unpacked from 10.0 MiB compressed, a ratio above 200:1" "$T/bomb"
python3 "$ODD" tail-bomb "$T/tail-bomb" 2
refused "bomb: zeros after the end of the tar" "the uncompressed tar stream reaches" "$T/tail-bomb"
refused "bomb: a lower CORRAL_BOX_MAX_RATIO" "a ratio above 50:1" "$T/tail-bomb" CORRAL_BOX_MAX_RATIO=50:1
python3 "$ODD" entries "$T/entries" 10
refused "entries: over CORRAL_BOX_MAX_ENTRIES" "more than 5 entries" "$T/entries" CORRAL_BOX_MAX_ENTRIES=5
refused "limits: a bad value" "CORRAL_BOX_MAX_RATIO=lots is not a ratio" "$T/entries" CORRAL_BOX_MAX_RATIO=lots
added "entries: within the limit" "$T/entries" CORRAL_BOX_MAX_ENTRIES=20

python3 "$ODD" pax-sparse "$T/sparse" $((1 << 30))
t0=$SECONDS
added "sparse: 1 GiB allowed with CORRAL_BOX_MAX_RATIO=0" "$T/sparse" CORRAL_BOX_MAX_RATIO=0
check "sparse: 1 GiB added within 30 s" test $((SECONDS - t0)) -lt 30
check "sparse: its size is 1 GiB" test "$(stat -c %s "$(in_box sparse container rootfs/huge)")" = $((1 << 30))
check "sparse: its holes stay holes on disk" test "$(du -k "$(in_box sparse container rootfs/huge)" | cut -f1)" -lt 1024
expect_out "sparse: the box verifies" 0 "ok box test/sparse" "$CORRAL" box verify

# --- setuid, setgid, file capabilities and owners
python3 "$ODD" privileged "$T/priv" container
added "privileges: container box" "$T/priv"
check "privileges: the store was made 0700" test "$(stat -c %a "$BOXES")" = 700
check "privileges: container: setuid kept" test "$(mode priv container rootfs/usr/bin/sudo)" = 4755
check "privileges: container: setgid and group kept" test "$(mode priv container rootfs/usr/bin/wall) $(owner priv container rootfs/usr/bin/wall)" = "2755 0:5"
check "privileges: container: file capability kept" has_cap priv container rootfs/usr/bin/ping
check "privileges: container: owners kept" test "$(owner priv container rootfs/home/user/file)" = 1234:5678
python3 "$ODD" privileged "$T/priv-last" container last
added "privileges: container box, metadata.json last" "$T/priv-last"
check "privileges: metadata.json last: setuid kept" test "$(mode priv-last container rootfs/usr/bin/sudo)" = 4755
check "privileges: metadata.json last: hard link shares it" test "$(mode priv-last container rootfs/usr/bin/sudoedit)" = 4755
check "privileges: metadata.json last: file capability kept" has_cap priv-last container rootfs/usr/bin/ping
check "privileges: metadata.json last: owners kept" test "$(owner priv-last container rootfs/home/user/file)" = 1234:5678
python3 "$ODD" privileged "$T/priv-lv" libvirt
added "privileges: libvirt box" "$T/priv-lv"
check "privileges: libvirt: setuid removed" test "$(mode priv-lv libvirt usr/bin/sudo)" = 755
check "privileges: libvirt: setgid removed" test "$(mode priv-lv libvirt usr/bin/wall)" = 755
check "privileges: libvirt: file capability removed" no_cap priv-lv libvirt usr/bin/ping
check "privileges: libvirt: files are the unpacking user's" test "$(owner priv-lv libvirt home/user/file)" = "$(id -u):$(id -g)"
chmod 755 "$BOXES"
expect_out "privileges: a store others can enter: warned" 0 "were removed from 3 files of its root tree" \
	"$CORRAL" box add --name test/priv-open "$T/priv"
check "privileges: open store: setuid removed" test "$(mode priv-open container rootfs/usr/bin/sudo)" = 755
check "privileges: open store: owners still kept" test "$(owner priv-open container rootfs/home/user/file)" = 1234:5678
chmod 700 "$BOXES"
expect_out "privileges: every box verifies" 0 "ok box test/priv-open" "$CORRAL" box verify

# --- special files under a container box's rootfs/dev/
python3 "$ODD" devnodes "$T/dev" container rootfs/dev
expect_out "dev: container box: skipped with one note" 0 "skipped 2 special files under rootfs/dev/" \
	"$CORRAL" box add --name test/dev "$T/dev"
check "dev: the device node is not there" test ! -e "$(in_box dev container rootfs/dev/null)"
check "dev: the rest of rootfs/dev/ is" test -L "$(in_box dev container rootfs/dev/fd)"
python3 "$ODD" devnodes "$T/dev-lv" libvirt rootfs/dev
refused "dev: a libvirt box's device node" "device node" "$T/dev-lv"
python3 "$ODD" devnodes "$T/dev-etc" container rootfs/etc
refused "dev: a device node elsewhere in a container box" "entry \`rootfs/etc/null\`: device node" "$T/dev-etc"
