#!/usr/bin/env bash
# Container boxes made by other tools than corral's recipes. Today: a box
# whose SSH user was made by plain `useradd` (an empty GECOS field, as
# useradd writes it), which must boot and take SSH like any other.
. "$(dirname "$0")/../lib.sh"

tiny=$(test_box tiny)
src=$T/useradd
mkdir -p "$src"
tar -C "$src" -xf "$tiny"
root=$src/rootfs
for f in passwd shadow group; do sed -i '/^vagrant:/d' "$root/etc/$f"; done
rm -rf "$root/home/vagrant"
useradd --root "$root" --create-home --user-group --shell /bin/sh vagrant
# useradd leaves the password locked ("!"); the tiny box's sshd runs without
# PAM, and OpenSSH then refuses even keys for a locked account, as on any
# such box. Box builders unlock it the same way.
usermod --root "$root" --password '*' vagrant
check "useradd wrote an empty GECOS" grep -q '^vagrant:x:[0-9]*:[0-9]*::/home/vagrant:/bin/sh$' "$root/etc/passwd"
tar -C "$src" -czf "$T/useradd.box" metadata.json rootfs
expect_out "box add of the useradd box" 0 "added box test/useradd" \
	"$CORRAL" box add --name test/useradd "$T/useradd.box"

mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<'YAML'
version: 1
machines:
  web: { box: test/useradd, provider: container, ssh: { boot_timeout: 60s } }
YAML
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
expect_out "up of a box whose user useradd made" 0 "ssh ready" "$CORRAL" -C "$T/env" up
expect_out "ssh as that user" 0 "vagrant" "$CORRAL" -C "$T/env" ssh -c 'id -un'
expect_out "destroy" 0 "destroyed" "$CORRAL" -C "$T/env" destroy -f
