#!/usr/bin/env bash
# Container boxes made by other tools than corral's recipes, each added with
# `corral box add`, booted with `corral up` and answering `corral ssh -c`:
#  - a box whose SSH user was made by plain `useradd` (an empty GECOS
#    field, as useradd writes it);
#  - the tree of an unmodified `mmdebstrap` tarball (Debian 12 minbase plus
#    openssh-server, the user made by a --customize-hook running useradd),
#    device nodes under /dev and all (boxes/mmdebstrap-minbase);
#  - a tree made by `debootstrap` (boxes/debootstrap-minbase).
# The last two take a minute or more to make: boxes/build caches them by
# their recipes' hash, as every test box.
. "$(dirname "$0")/../lib.sh" || exit 1

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

# --- mmdebstrap and debootstrap: their trees as the tools made them, /dev
# nodes included. Debian's sshd uses PAM, which lets a locked account
# (useradd's "!") log in by key.
for tool in mmdebstrap debootstrap; do
	box=$(test_box "$tool-minbase")
	check "$tool: the box was made" test -s "$box"
	check "$tool: it holds device nodes under /dev" bash -c "tar -tvzf '$box' | grep -q '^c.* rootfs/dev/null$'"
	expect_out "$tool: box add skips the device nodes with one note" 0 \
		"special files under rootfs/dev/" "$CORRAL" box add --name "test/$tool" "$box"
	boots "$tool"
done
