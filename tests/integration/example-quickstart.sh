#!/usr/bin/env bash
# examples/quickstart, as `make quickstart` and the envfile's comment run
# it: add the Debian box from its catalog, corral up (one container, its
# shell step), corral ssh -c, corral destroy. As root (`make quickstart`),
# then the same as an ordinary user (made by useradd, with its subuid
# range; no sudo) following the README.
. "$(dirname "$0")/../lib.sh"

box=$(test_box debian-12)
expect_out "box add (make quickstart)" 0 "corral/debian-12" corral box add "$(dirname "$box")/catalog.json"
example quickstart
expect_out "corral up: booted and provisioned" 0 "hello: ssh ready" corral up
expect_out "corral ssh -c 'cat /etc/motd'" 0 "hello from hello, provisioned by corral" corral ssh -c 'cat /etc/motd'
expect_out "make quickstart's command" 0 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"' \
	corral ssh -c 'cat /etc/motd; cat /etc/os-release | head -n 1'
expect_out "-v status says root mode" 0 "mode: root (host bridge" corral -v status
expect_out "corral destroy" 0 "hello: destroyed" corral destroy
expect_out "nothing left" 0 "not created" corral status

# The same as an ordinary user: the user's own box store, machines and
# index; the box's systemd gives way to corral's built-in init (no
# delegated cgroup).
user_make crlqs
tun_open
user_example quickstart
expect_out "as a user: box add" 0 "corral/debian-12" corral box add "$(dirname "$box")/catalog.json"
expect_out "as a user: corral up: booted and provisioned" 0 "hello: ssh ready" corral up
expect_out "as a user: corral ssh -c 'cat /etc/motd'" 0 "hello from hello, provisioned by corral" \
	corral ssh -c 'cat /etc/motd'
expect_out "as a user: -v status says rootless" 0 "mode: rootless" corral -v status
expect_out "as a user: corral destroy" 0 "hello: destroyed" corral destroy
expect_out "as a user: nothing left" 0 "not created" corral status
