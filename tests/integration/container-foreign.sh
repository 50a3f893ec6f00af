#!/usr/bin/env bash
# Container boxes made by other tools than corral's recipes, each added with
# `corral box add`, booted with `corral up` and answering `corral ssh -c`:
#  - a box whose SSH user was made by plain `useradd` (an empty GECOS
#    field, as useradd writes it);
#  - an unmodified `mmdebstrap` tarball (Debian 12 minbase plus
#    openssh-server, the user made by a --customize-hook running useradd),
#    device nodes under /dev and all, packed as a box;
#  - a tree made by `debootstrap`, packed the same way.
# The mmdebstrap tarball and the debootstrap tree take a minute or more to
# make: they are cached under /var/cache/corral-test/foreign/, keyed by a
# hash of the options and the function that builds them.
. "$(dirname "$0")/../lib.sh" || exit 1

FOREIGN=/var/cache/corral-test/foreign
SUITE=bookworm
MIRROR=http://deb.debian.org/debian
# pam_loginuid writes /proc/self/loginuid, which a container without
# CAP_AUDIT_CONTROL may not; "required", it refuses every SSH session
# (boxes/debian-12/recipe does the same).
LOGINUID='s/^session\s\+required\s\+pam_loginuid\.so/session optional pam_loginuid.so/'

# needs PACKAGE...: installs what is missing, as boxes/build does.
needs() {
	local p missing=()
	for p in "$@"; do
		dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 install \
		--no-install-recommends "${missing[@]}" >/dev/null
}

# The builders: each writes a tar of a root file system to $1.
build_mmdebstrap() {
	local out=$1
	shift
	unshare --mount --propagation private -- mmdebstrap --mode=root --format=tar "$@" \
		"$SUITE" "$out" "deb $MIRROR $SUITE main" </dev/null
}
build_debootstrap() {
	local out=$1 tree
	shift
	tree=$(dirname "$out")/tree
	unshare --mount --propagation private -- debootstrap "$@" "$SUITE" "$tree" "$MIRROR" </dev/null &&
		chroot "$tree" useradd --create-home --shell /bin/bash vagrant &&
		sed -i "$LOGINUID" "$tree/etc/pam.d/sshd" &&
		tar -C "$tree" --create --numeric-owner --xattrs --xattrs-include='*' -f "$out" .
}

# cached NAME OPTION...: the path of build_NAME's tarball for these options,
# built once (concurrent callers wait for the first).
cached() {
	local name=$1 hash out
	shift
	hash=$({ declare -f "build_$name"; printf '%s\n' "$SUITE" "$MIRROR" "$@"; } | sha256sum | cut -c1-16)
	out=$FOREIGN/$name-$hash.tar
	mkdir -p "$FOREIGN"
	(
		flock 9
		[ -s "$out" ] && exit 0
		tmp=$(mktemp -d "$FOREIGN/.$name-$hash.XXXXXX")
		"build_$name" "$tmp/root.tar" "$@" >"$tmp/log" 2>&1 && mv "$tmp/root.tar" "$out"
		rc=$?
		[ "$rc" = 0 ] || sed 's/^/#   /' "$tmp/log" | tail -n 20 >&2
		rm -rf "$tmp"
		exit "$rc"
	) 9>"$FOREIGN/.$name.lock" || return 1
	printf '%s\n' "$out"
}

# pack ROOT_TAR BOX: a container box (a plain tar) of the tarball as it is, its entries
# moved under rootfs/ (device nodes, xattrs, owners and all).
pack() {
	python3 - "$1" "$2" <<'PY'
import io, sys, tarfile
src, out = sys.argv[1:]
def under(name):
    name = name[2:] if name.startswith("./") else name.lstrip("/")
    return "rootfs/" + name if name not in ("", ".") else "rootfs"
with tarfile.open(src) as i, tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as o:
    meta = b'{"provider": "container"}'
    m = tarfile.TarInfo("metadata.json"); m.size = len(meta)
    o.addfile(m, io.BytesIO(meta))
    for m in i:
        f = i.extractfile(m) if m.isreg() else None
        m.name = under(m.name)
        if m.islnk():
            m.linkname = under(m.linkname)
        o.addfile(m, f)
PY
}

# boots NAME: box test/NAME boots on the container provider and answers
# over SSH as vagrant; destroyed afterwards.
boots() {
	local env=$T/env-$1
	mkdir -p "$env"
	cat >"$env/corral.yaml" <<-YAML
		version: 1
		machines:
		  web: { box: test/$1, provider: container, ssh: { boot_timeout: 90s } }
	YAML
	on_exit "\"\$CORRAL\" -C \"$env\" destroy -f >/dev/null 2>&1"
	expect_out "$1: up" 0 "ssh ready" "$CORRAL" -C "$env" up
	expect_out "$1: ssh as vagrant" 0 "vagrant" "$CORRAL" -C "$env" ssh -c 'id -un'
	expect_out "$1: destroy" 0 "destroyed" "$CORRAL" -C "$env" destroy -f
}

# --- plain useradd, on the tiny box
src=$T/useradd
tiny_tree "$src"
root=$src/rootfs
for f in passwd shadow group; do sed -i '/^vagrant:/d' "$root/etc/$f"; done
rm -rf "$root/home/vagrant"
useradd --root "$root" --create-home --user-group --shell /bin/sh vagrant
# useradd leaves the password locked ("!"); the tiny box's sshd runs without
# PAM, and OpenSSH then refuses even keys for a locked account, as on any
# such box. Box builders unlock it the same way.
usermod --root "$root" --password '*' vagrant
check "useradd wrote an empty GECOS" grep -q '^vagrant:x:[0-9]*:[0-9]*::/home/vagrant:/bin/sh$' "$root/etc/passwd"
pack_box "$src" "$T/useradd.box"
expect_out "box add of the useradd box" 0 "added box test/useradd" \
	"$CORRAL" box add --name test/useradd "$T/useradd.box"
boots useradd

# --- mmdebstrap: its tarball as it comes, /dev nodes included. Debian's
# sshd uses PAM, which lets a locked account (useradd's "!") log in by key.
needs mmdebstrap
mm=$(cached mmdebstrap --variant=minbase --include=openssh-server \
	--customize-hook='chroot "$1" useradd --create-home --shell /bin/bash vagrant' \
	--customize-hook="sed -i '$LOGINUID' \"\$1/etc/pam.d/sshd\"")
check "mmdebstrap: the tarball was made" test -s "$mm"
check "mmdebstrap: it holds device nodes under /dev" bash -c "tar -tvf '$mm' | grep -q '^c.* \./dev/null$'"
pack "$mm" "$T/mmdebstrap.box"
expect_out "mmdebstrap: box add skips the device nodes with one note" 0 \
	"special files under rootfs/dev/" "$CORRAL" box add --name test/mmdebstrap "$T/mmdebstrap.box"
boots mmdebstrap

# --- debootstrap: a tree, packed with tar
needs debootstrap
db=$(cached debootstrap --variant=minbase --include=openssh-server)
check "debootstrap: the tree was made" test -s "$db"
check "debootstrap: it holds device nodes under /dev" bash -c "tar -tvf '$db' | grep -q '^c.* \./dev/null$'"
pack "$db" "$T/debootstrap.box"
expect_out "debootstrap: box add skips the device nodes with one note" 0 \
	"special files under rootfs/dev/" "$CORRAL" box add --name test/debootstrap "$T/debootstrap.box"
boots debootstrap
