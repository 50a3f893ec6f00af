#!/usr/bin/env bash
# corral ssh and corral ssh-config against a real machine (the container
# provider with the tiny box): commands and exit status through OpenSSH,
# raw ssh arguments, Host blocks for ssh -F and scp, a changed host key
# refused with the reset hint, and --reset-host-key.
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny)
catalog=$(dirname "$box")/catalog.json
mkdir -p "$T/env" "$T/two"
cat >"$T/env/corral.yaml" <<YAML
version: 1
machines:
  web:
    box: corral/tiny
    box_url: file://$catalog
    provider: container
YAML
cat >"$T/two/corral.yaml" <<YAML
version: 1
machines:
  a: { box: corral/tiny, provider: container }
  b: { box: corral/tiny, provider: container }
YAML

expect_out "ssh: a machine not created" 1 'corral up web' "$CORRAL" -C "$T/env" ssh -c true
expect_out "ssh: unknown machine" 2 'no machine `nope`' "$CORRAL" -C "$T/env" ssh nope
expect_out "ssh: which machine of two" 2 "which machine?" "$CORRAL" -C "$T/two" ssh -c true
expect_out "ssh-config: none of two running" 1 "no machine of" "$CORRAL" -C "$T/two" ssh-config
expect_out "ssh: unknown option" 2 "after \`--\`" "$CORRAL" -C "$T/env" ssh -x

cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
expect_out "up" 0 "ssh ready" "$CORRAL" up

expect_out "ssh -c runs the command" 0 "hello from web" "$CORRAL" ssh -c 'echo hello from $(hostname)'
expect_out "ssh -c passes the exit status" 7 "" "$CORRAL" ssh web -c 'exit 7'
expect_out "ssh -- passes raw ssh arguments" 0 "OpenSSH_" "$CORRAL" ssh -c true -- -V
# A guest on this host: the key exchange corral's own connections make
# (OpenSSH's post-quantum default costs ~75 ms of CPU a connection).
expect_out "ssh to a guest on this host: curve25519" 0 "kex: algorithm: curve25519-sha256" \
	"$CORRAL" ssh -c true -- -v
out=$("$CORRAL" ssh -c 'cat' <<<"from stdin" 2>&1)
check "ssh -c reads stdin" [ "$out" = "from stdin" ]

"$CORRAL" ssh-config >"$T/ssh_config" 2>"$T/ssh_config.err"
check "ssh-config prints a Host block" grep -q '^Host web$' "$T/ssh_config"
check "with the key exchange corral's own connections make" \
	grep -qx '  KexAlgorithms ^curve25519-sha256,curve25519-sha256@libssh.org' "$T/ssh_config"
expect_out "ssh -F with the Host block" 0 "uid=1000(vagrant)" ssh -F "$T/ssh_config" web id
echo "copied by scp" >"$T/payload"
check "scp -F with the Host block" scp -q -F "$T/ssh_config" "$T/payload" web:/tmp/payload
expect_out "the copy arrived" 0 "copied by scp" "$CORRAL" ssh -c 'cat /tmp/payload'

kh=.corral/machines/web/known_hosts
cp "$kh" "$T/known_hosts.good"
ssh-keygen -q -t ed25519 -N '' -f "$T/other"
echo "corral-machine $(cut -d' ' -f1,2 "$T/other.pub")" >"$kh"
expect_out "a changed host key is refused, with the fix" 255 "corral ssh --reset-host-key web" "$CORRAL" ssh -c true
expect_out "a command's own exit 255 is just that" 255 "" "$CORRAL" ssh -c 'exit 255'
expect_out "ssh -F refuses it too" 255 "" ssh -F "$T/ssh_config" -o BatchMode=yes web true
expect_out "--reset-host-key pins the key again" 0 "pinned" "$CORRAL" ssh --reset-host-key web
check "the re-pinned key is the machine's" cmp -s "$kh" "$T/known_hosts.good"
expect_out "ssh works after the reset" 0 "back" "$CORRAL" ssh -c 'echo back'

expect_out "halt" 0 "" "$CORRAL" halt
expect_out "ssh to a stopped machine" 1 "web is stopped" "$CORRAL" ssh -c true

# ssh-config with no names prints every running machine, as Vagrant does,
# and leaves out (with a note) those that are not running.
on_exit '"$CORRAL" -C "$T/two" destroy -f >/dev/null 2>&1'
"$CORRAL" -C "$T/two" box add "$catalog" >/dev/null 2>&1
expect_out "up of two" 0 "ssh ready" "$CORRAL" -C "$T/two" up
"$CORRAL" -C "$T/two" ssh-config >"$T/two.cfg" 2>"$T/two.err"
check "ssh-config: both Host blocks" bash -c 'grep -q "^Host a\$" "$1" && grep -q "^Host b\$" "$1"' _ "$T/two.cfg"
expect_out "ssh -F reaches b" 0 "b" ssh -F "$T/two.cfg" -o BatchMode=yes b hostname
"$CORRAL" -C "$T/two" halt b >/dev/null 2>&1
expect_out "ssh-config: a stopped machine is left out, with a note" 0 "b left out" "$CORRAL" -C "$T/two" ssh-config
check "and the running one is still there" sh -c '"$0" -C "$1" ssh-config 2>/dev/null | grep -q "^Host a$"' "$CORRAL" "$T/two"
