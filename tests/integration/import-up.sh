#!/usr/bin/env bash
# corral import end to end on the container provider: three Vagrantfiles of
# the corpus (tests/fixtures/vagrantfiles/e2e-*) imported, validated and
# brought up with the Debian box, checked inside the guests, destroyed. Then
# Vagrant's own box store: boxes under $VAGRANT_HOME/boxes in both layouts
# are listed, and the tiny box stored there the way Vagrant before 2.4 does
# (NAME/VERSION/PROVIDER) boots without being added to corral's store.
. "$(dirname "$0")/../lib.sh"
FX=$FIXTURES/vagrantfiles

box=$(test_box debian-12)
expect_out "box add corral/debian-12" 0 "corral/debian-12" corral box add "$(dirname "$box")/catalog.json"

# project NAME: a copy of the fixture (as a user's checkout), imported and
# validated; the rest runs in it, its machines destroyed on exit.
project() {
	P=$T/up/$1
	mkdir -p "$T/up"
	cp -r "$FX/$1" "$P"
	rm -f "$P/expected.yaml"
	on_exit "'$CORRAL' -C '$P' destroy -f >/dev/null 2>&1"
	cd "$P" || exit 1
	expect_out "$1: import" 0 "wrote $P/corral.yaml" corral import
	expect_out "$1: validate" 0 ": ok (" corral validate
}

# One machine: file and shell steps, env, args, $ and ${} reaching the shell.
project e2e-single
expect_out "e2e-single: up" 0 "default: ssh ready" corral up --provider container
expect_out "e2e-single: the hostname" 0 "greeter.test" corral ssh -c hostname
expect_out "e2e-single: the file step, then the shell step with env" 0 \
	"hello from the Vagrantfile" corral ssh -c 'cat /srv/greeter/greeting.txt'
who=$(corral ssh -c 'cat /srv/greeter/who' 2>&1)
check "e2e-single: \$\$ and \${APP} reached the shell as written ($who)" \
	grep -qxE 'pid [0-9]+ wrote greeter' <<<"$who"
expect_out "e2e-single: args, unprivileged" 0 "one|two words|vagrant" corral ssh -c 'cat ~/args'
expect_out "e2e-single: the project is /vagrant" 0 "Vagrantfile" corral ssh -c 'ls /vagrant'
expect_out "e2e-single: the forwarded port" 0 "8080 (guest) =>" corral port
expect_out "e2e-single: destroy" 0 "destroyed" corral destroy -f

# A loop of two nodes on a private network, addresses computed.
project e2e-cluster
expect_out "e2e-cluster: up" 0 "node-2: ssh ready" corral up --provider container
expect_out "e2e-cluster: node-1 has its address" 0 "10.77.0.11" corral ssh node-1 -c 'ip -4 addr'
expect_out "e2e-cluster: the shared step filled /etc/hosts" 0 "10.77.0.12 node-2" \
	corral ssh node-1 -c 'cat /etc/hosts'
expect_out "e2e-cluster: node-1 reaches node-2 by name over the network" 0 "reached" \
	corral ssh node-1 -c 'python3 -c "import socket; socket.create_connection((\"node-2\", 22), 5); print(\"reached\")"'
expect_out "e2e-cluster: each node's own step" 0 "node-2" corral ssh node-2 -c 'cat /etc/node-name'
expect_out "e2e-cluster: destroy" 0 "destroyed" corral destroy -f

# Ansible from the last machine with limit "all", groups and group vars.
project e2e-ansible
expect_out "e2e-ansible: up runs the playbook" 0 "PLAY RECAP" corral up --provider container
expect_out "e2e-ansible: store ran it (extra_vars, its group)" 0 "2.1 stores none" \
	corral ssh store -c 'cat /etc/imported'
expect_out "e2e-ansible: limit all reached app (group vars)" 0 "2.1 apps frontend" \
	corral ssh app -c 'cat /etc/imported'
expect_out "e2e-ansible: destroy" 0 "destroyed" corral destroy -f

# Vagrant's store. A box Vagrant 2.4 stored (with the architecture level) is
# listed next to the tiny box stored without it.
VB=$VAGRANT_HOME/boxes
mkdir -p "$VB/acme-VAGRANTSLASH-base/2.0.1/amd64/libvirt"
echo '{"provider": "libvirt", "format": "qcow2"}' >"$VB/acme-VAGRANTSLASH-base/2.0.1/amd64/libvirt/metadata.json"
tiny=$(test_box tiny)
CORRAL_HOME=$T/staging "$CORRAL" box add "$(dirname "$tiny")/catalog.json" >/dev/null
mkdir -p "$VB/corral-VAGRANTSLASH-tiny/1.0.0"
mv "$T"/staging/boxes/corral-VAGRANTSLASH-tiny/1.0.0/*/container "$VB/corral-VAGRANTSLASH-tiny/1.0.0/"
list=$(corral box list)
check "box list: Vagrant's box without an architecture level, marked" \
	grep -qE "^corral/tiny +1\.0\.0 +container +unknown  \(Vagrant's\)$" <<<"$list"
check "box list: Vagrant's box with one" \
	grep -qE "^acme/base +2\.0\.1 +libvirt +amd64  \(Vagrant's\)$" <<<"$list"
check "box list: corral's own box, unmarked" grep -qE "^corral/debian-12 .*[^)]$" <<<"$list"
expect_out "box list --json: the store" 0 '"store": "vagrant"' corral box list --json

project e2e-tiny
export CORRAL_BOX_SERVER=http://127.0.0.1:9 # nothing may be downloaded
expect_out "e2e-tiny: up boots the box from Vagrant's store" 0 "default: ssh ready" \
	corral up --provider container
expect_out "e2e-tiny: it ran" 0 "booted" corral ssh -c 'cat /tmp/booted'
check "e2e-tiny: the machine uses the box where Vagrant keeps it" \
	grep -q "\"box_dir\": \"$VB/corral-VAGRANTSLASH-tiny/1.0.0/container\"" .corral/machines/default/state.json
check "e2e-tiny: nothing was added to corral's store" test ! -e "$CORRAL_HOME/boxes/corral-VAGRANTSLASH-tiny"
expect_out "e2e-tiny: destroy" 0 "destroyed" corral destroy -f
check "e2e-tiny: Vagrant's box is still there" test -s "$VB/corral-VAGRANTSLASH-tiny/1.0.0/container/metadata.json"
