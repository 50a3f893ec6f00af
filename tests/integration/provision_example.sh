#!/usr/bin/env bash
# examples/ansible comes up provisioned from scratch with `corral up`: two
# containers, one playbook across both (groups, group vars, extra_vars, a
# template, a handler, become), host keys checked.
. "$(dirname "$0")/../lib.sh"

box=$(test_box debian-12)
cp -r "$ROOT/examples/ansible" "$T/ex"
rm -rf "$T/ex/.corral"
cd "$T/ex" || exit 1
on_exit '"$CORRAL" -C "$T/ex" destroy -f >/dev/null 2>&1'
g() { "$CORRAL" ssh "$1" -c "$2" 2>&1; }

expect_out "box add" 0 "corral/debian-12" "$CORRAL" box add "$(dirname "$box")/catalog.json"
expect_out "up provisions both machines" 0 "site | PLAY RECAP" "$CORRAL" up
expect_out "web: the template" 0 "database = db/inventory" g web 'cat /etc/app/app.conf'
expect_out "web: group vars" 0 "listen = 0.0.0.0:8080" g web 'cat /etc/app/app.conf'
expect_out "web: the handler ran" 0 "yes" g web 'test -s /etc/app/reloaded && echo yes'
expect_out "db: the schema, owned by its user" 0 "appdb 640" g db 'sudo stat -c "%U %a" /srv/db/inventory.sql'
expect_out "the never step on demand" 0 "release = 1.4" "$CORRAL" provision --provision-with smoke
expect_out "provision again: idempotent" 0 "changed=0" "$CORRAL" provision
