#!/usr/bin/env bash
# examples/virtualbox, run as its envfile's comment says, against the fake
# VBoxManage (tests/fakes/vbox-env.sh; VirtualBox cannot be installed here):
# both machines linked clones of one imported box on a host-only network,
# the shell steps, the vboxsf folder, destroy. The one change to the
# example: its box, generic/debian12 (a real VirtualBox box), becomes the
# fake's test box corral/tiny-vbox; everything else is as a user gets it.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/fakes/vbox-env.sh"

example virtualbox
sed -i 's|^\(  box: \)generic/debian12 |\1corral/tiny-vbox |' corral.yaml
check "only the box name differs from the example" \
	test "$(diff "$ROOT/examples/virtualbox/corral.yaml" corral.yaml | grep -c '^[<>]')" = 2

out=$(corral up 2>&1)
check "corral up: db, then web" grep -qz 'db: ssh ready.*web: ssh ready' <<<"$out"
[[ $out == *"web: ssh ready"* ]] || printf '%s\n' "$out" | tail -n 30 | sed 's/^/#   /'
check "one imported box, two linked clones" \
	test "$(grep -c '^clonevm .* --options link$' "$VBOX_FAKE_HOME/calls.log")" = 2
st=$(corral status)
check "corral status: db 192.168.57.5, web 192.168.57.2" \
	grep -qzE 'db +running \(virtualbox\) 192\.168\.57\.5.*web +running \(virtualbox\) 192\.168\.57\.2' <<<"$st"
[[ $st == *192.168.57.2* ]] || printf '%s\n' "$st" | sed 's/^/#   /'
expect_out "corral ssh web -c 'cat /etc/app.conf'" 0 "$(printf 'database = 192.168.57.5\nrelease = 1.4')" \
	corral ssh web -c 'cat /etc/app.conf'
expect_out "corral ssh web -c 'ls /srv/app'" 0 "corral.yaml" corral ssh web -c 'ls /srv/app'
expect_out "db's step ran" 0 "db: the database is 192.168.57.5" corral ssh db -c 'cat /etc/motd'
expect_out "corral destroy -f" 0 "web: destroyed" corral destroy -f
check "only the imported box's VM is left" test "$("$VBM" list vms | wc -l)" = 1
