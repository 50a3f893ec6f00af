#!/usr/bin/env bash
# What corral writes into a container's tree from the host, and who owns
# it: every machine of a box gets its own complete set of SSH host keys
# (the box's other key types hidden, each .pub matching its key), and a
# guest that plants symlinks in its tree (~/.ssh -> a host directory as
# the unprivileged user; /etc/ssh, /etc/hosts as root) or gives its SSH
# user uid 0 gets nothing written on the host: corral refuses, naming the
# link, or writes inside the guest only.
. "$(dirname "$0")/../lib.sh"

src=$T/keyed
tiny_tree "$src"
# A box made by a tool that left host keys in it (as mmdebstrap does).
ssh-keygen -q -A -f "$src/rootfs"
check "the box carries rsa, ecdsa and ed25519 host keys" \
	test -f "$src/rootfs/etc/ssh/ssh_host_rsa_key" -a -f "$src/rootfs/etc/ssh/ssh_host_ecdsa_key.pub" \
	-a -f "$src/rootfs/etc/ssh/ssh_host_ed25519_key.pub"
pack_box "$src" "$T/keyed.box"
expect_out "box add" 0 "added box test/keyed" "$CORRAL" box add --name test/keyed "$T/keyed.box"

mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<'YAML'
version: 1
machines:
  a: { box: test/keyed, provider: container, ssh: { boot_timeout: 60s } }
  b: { box: test/keyed, provider: container, ssh: { boot_timeout: 60s } }
YAML
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
expect_out "up of two machines of the box" 0 "ssh ready" "$CORRAL" -C "$T/env" up
M=$T/env/.corral/machines

# merged NAME: the machine's root as its processes see it.
merged() { echo "/proc/$(jq -r .pid "$M/$1/state.json")/root"; }
keys_of() {
	local r
	r=$(merged "$1")
	for f in "$r"/etc/ssh/ssh_host_*; do [ -f "$f" ] && sha256sum <"$f"; done
}
ka=$(keys_of a) kb=$(keys_of b)
check "each machine has host key files" bash -c '[ -n "$1" ] && [ -n "$2" ]' _ "$ka" "$kb"
check "no two machines of a box share a host key file" \
	[ -z "$(comm -12 <(sort <<<"$ka") <(sort <<<"$kb"))" ]
check "no machine has a host key of the box" \
	[ -z "$(comm -12 <(sort <<<"$ka") <(for f in "$src"/rootfs/etc/ssh/ssh_host_*; do sha256sum <"$f"; done | sort))" ]
pubs_match() {
	local r k
	r=$(merged "$1")
	for k in "$r"/etc/ssh/ssh_host_*_key; do
		[ -f "$k" ] || continue
		[ "$(ssh-keygen -y -f "$k" | cut -d' ' -f1-2)" = "$(cut -d' ' -f1-2 "$k.pub")" ] || return 1
	done
}
check "every host key of a has its matching .pub" pubs_match a
check "every host key of b has its matching .pub" pubs_match b
check "the key corral pinned is the guest's .pub" \
	grep -qF "$(cut -d' ' -f1-2 "$(merged a)/etc/ssh/ssh_host_ed25519_key.pub")" "$M/a/known_hosts"
expect_out "ssh to a after the keys were replaced" 0 "a" "$CORRAL" -C "$T/env" ssh a -c hostname

# The unprivileged guest user points ~/.ssh at a host directory.
victim=$T/victim
mkdir -m 0755 "$victim"
echo precious >"$victim/file"
chmod 0640 "$victim/file"
before=$(stat -c '%u:%g:%a' "$victim" "$victim/file"; ls -A "$victim"; cat "$victim/file")
expect_out "the guest user plants ~/.ssh -> a host directory" 0 "" \
	"$CORRAL" -C "$T/env" ssh a -c "rm -rf ~/.ssh && ln -s $victim ~/.ssh && id -u"
expect_out "reload refuses, naming the link" 1 "symbolic link" "$CORRAL" -C "$T/env" reload a
after=$(stat -c '%u:%g:%a' "$victim" "$victim/file"; ls -A "$victim"; cat "$victim/file")
check "the host directory's owner, mode and contents are untouched" [ "$before" = "$after" ]

# Root in the guest links files and directories corral writes to the host.
expect_out "halt b" 0 "" "$CORRAL" -C "$T/env" halt b
up=$M/b/upper
ln -sfn "$victim/file" "$up/etc/hosts"
ln -sfn "$victim/file" "$up/etc/hostname"
ln -sfn "$victim/file" "$up/etc/ssh/ssh_host_ed25519_key.pub"
expect_out "up over links planted in place of files" 0 "ssh ready" "$CORRAL" -C "$T/env" up b
after=$(stat -c '%u:%g:%a' "$victim" "$victim/file"; ls -A "$victim"; cat "$victim/file")
check "the linked host file is untouched" [ "$before" = "$after" ]
check "the guest got its own /etc/hosts instead" \
	bash -c "[ ! -L '$up/etc/hosts' ] && grep -q 'b$' '$up/etc/hosts'"
expect_out "halt b again" 0 "" "$CORRAL" -C "$T/env" halt b
rm -rf "$up/etc/ssh"
ln -s "$victim" "$up/etc/ssh"
expect_out "up refuses /etc/ssh linked to a host directory" 1 "/etc/ssh in the guest is or passes through a symbolic link" \
	"$CORRAL" -C "$T/env" up b
after=$(stat -c '%u:%g:%a' "$victim" "$victim/file"; ls -A "$victim"; cat "$victim/file")
check "the linked host directory is untouched" [ "$before" = "$after" ]
rm "$up/etc/ssh"

# Root in the guest makes the SSH user uid 0.
sed 's/^vagrant:x:1000:/vagrant:x:0:/' "$src/rootfs/etc/passwd" >"$up/etc/passwd"
expect_out "up refuses an SSH user the guest gave uid 0" 1 "gives SSH user \`vagrant\` uid 0" \
	"$CORRAL" -C "$T/env" up b
