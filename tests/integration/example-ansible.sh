#!/usr/bin/env bash
# examples/ansible, run as its README says, by an ordinary user (made by
# useradd, with its subuid range; no delegated cgroup, so the box's
# systemd gives way to corral's built-in init, saying so): two containers
# come up provisioned by one playbook across both (groups, group vars,
# extra_vars, a template, a handler, become), host keys checked; provision
# again is idempotent; the `run: never` step on demand; the same inventory
# by hand with ansible-playbook (corral's ssh options per host, a
# playbook's own ansible_ssh_extra_args over them); destroy.
. "$(dirname "$0")/../lib.sh"

box=$(test_box debian-12)
user_make crlans
tun_open
user_example ansible
expect_out "box add" 0 "corral/debian-12" corral box add "$(dirname "$box")/catalog.json"
g() { corral ssh "$1" -c "$2" 2>&1; }

run_ok "corral up: both machines, the playbook once" corral up
check "...site.yml ran" grep -q "site | PLAY RECAP" <<<"$out"
check "...the built-in init, as the user's cgroup is not delegated" \
	grep -q "db: corral's built-in init, not the box's systemd" <<<"$out"
expect_out "web: the template" 0 "database = db/inventory" corral ssh web -c 'cat /etc/app/app.conf'
expect_out "web: group vars" 0 "listen = 0.0.0.0:8080" g web 'cat /etc/app/app.conf'
expect_out "web: the handler ran" 0 "yes" g web 'test -s /etc/app/reloaded && echo yes'
expect_out "db: the schema, owned by its user" 0 "appdb 640" g db 'sudo stat -c "%U %a" /srv/db/inventory.sql'
expect_out "corral provision: every step again, idempotent" 0 "changed=0" corral provision
expect_out "corral provision --provision-with smoke" 0 "release = 1.4" corral provision --provision-with smoke
expect_out "the same inventory by hand" 0 "changed=0" \
	as_user ansible-playbook -i .corral/provisioners/ansible/inventory/provision-step1.json --become \
	--extra-vars '{"release": "1.4", "db_name": "inventory"}' site.yml
# The ssh options corral gives each host (the key exchange for a guest on
# this host) reach ssh; a playbook's own group_vars/all.yml
# ansible_ssh_extra_args replaces them rather than being replaced.
inv=$PWD/.corral/provisioners/ansible/inventory/provision-step1.json
as_user mkdir -p hand/group_vars
printf -- '- hosts: web\n  gather_facts: false\n  tasks: [{ ping: }]\n' | as_user tee hand/ping.yml >/dev/null
expect_out "by hand: the host's own ssh options reach ssh" 0 "-o 'KexAlgorithms=^curve25519-sha256" \
	as_user ansible-playbook -vvv -i "$inv" hand/ping.yml
echo 'ansible_ssh_extra_args: "-o ServerAliveInterval=7"' | as_user tee hand/group_vars/all.yml >/dev/null
out=$(as_user ansible-playbook -vvv -i "$inv" hand/ping.yml 2>&1)
check "...a playbook's group_vars/all.yml ansible_ssh_extra_args wins" \
	bash -c '[[ $1 == *"-o ServerAliveInterval=7"* && $1 != *KexAlgorithms* && $1 == *"ok=1"* ]]' _ "$out"
expect_out "corral destroy -f" 0 "web: destroyed" corral destroy -f
expect_out "nothing left" 0 "not created" corral status
