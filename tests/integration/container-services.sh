#!/usr/bin/env bash
# corral's built-in init as a machine's init (a box without systemd, made
# from the tiny box): it starts the services the guest enabled in
# /etc/rc2.d, in order, on every boot (so they come back after reload), and
# `status -v` says so; a guest that restarts sshd itself keeps port 22 and
# the init stops starting its own instead of respawning it every second;
# the console log stays capped, moved to console.log.1.
. "$(dirname "$0")/../lib.sh"

src=$T/svc
tiny_tree "$src"
root=$src/rootfs
mkdir -p "$root/etc/init.d" "$root/etc/rc2.d"
# A daemon with a pid file, as an init.d script of a package starts it.
cat >"$root/etc/init.d/hello" <<'SH'
#!/bin/sh
case "$1" in
start) date +%s%N >/run/hello.started; sleep 100000 >/dev/null 2>&1 </dev/null & echo $! >/run/hello.pid ;;
stop) kill "$(cat /run/hello.pid)" ;;
esac
SH
# A service that floods the console once: the log must stay capped.
cat >"$root/etc/init.d/noisy" <<'SH'
#!/bin/sh
[ "$1" = start ] && [ ! -e /etc/noisy.done ] && head -c 1500000 /dev/zero | tr '\0' x && touch /etc/noisy.done
exit 0
SH
chmod 0755 "$root/etc/init.d/hello" "$root/etc/init.d/noisy"
ln -s ../init.d/hello "$root/etc/rc2.d/S20hello"
ln -s ../init.d/noisy "$root/etc/rc2.d/S30noisy"
ln -s ../init.d/hello "$root/etc/rc2.d/K01hello" # a stop link: not run at boot
pack_box "$src" "$T/svc.box"
expect_out "box add" 0 "added box test/svc" "$CORRAL" box add --name test/svc "$T/svc.box"

mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<'YAML'
version: 1
machines:
  svc: { box: test/svc, provider: container, ssh: { boot_timeout: 60s } }
YAML
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
M=$T/env/.corral/machines/svc
expect_out "up" 0 "ssh ready" "$CORRAL" -C "$T/env" up
expect_out "the enabled service was started at boot" 0 "sleep 100000" \
	"$CORRAL" -C "$T/env" ssh svc -c 'cat /run/hello.started && cat /proc/$(cat /run/hello.pid)/cmdline | tr "\0" " "'
expect_out "status -v names the init" 0 "init: corral's built-in" "$CORRAL" -C "$T/env" -v status
expect_out "status -v lists what it started" 0 "/etc/rc2.d: S20hello started" "$CORRAL" -C "$T/env" -v status
first=$("$CORRAL" -C "$T/env" ssh svc -c 'cat /run/hello.started')
sleep 2 # a tick of the init
check "the console log is capped" [ "$(stat -c %s "$M/console.log")" -lt $((1 << 20)) ]
check "its older part is in console.log.1" [ "$(stat -c %s "$M/console.log.1")" -ge $((1 << 20)) ]

expect_out "reload" 0 "ssh ready" "$CORRAL" -C "$T/env" reload
again=$("$CORRAL" -C "$T/env" ssh svc -c 'cat /run/hello.started')
check "the service came back after reload" bash -c '[ -n "$1" ] && [ "$1" != "$2" ]' _ "$again" "$first"
expect_out "halt" 0 "stopped" "$CORRAL" -C "$T/env" halt
expect_out "up again" 0 "ssh ready" "$CORRAL" -C "$T/env" up
expect_out "the service came back after halt and up" 0 "sleep 100000" \
	"$CORRAL" -C "$T/env" ssh svc -c 'cat /proc/$(cat /run/hello.pid)/cmdline | tr "\0" " "'

# The guest restarts sshd itself (what `service ssh restart` does): the
# init's sshd is stopped by its pid file and the guest's own takes port 22.
pid=$(jq -r .pid "$M/state.json")
lines0=$(wc -l <"$M/console.log")
nsenter -a -r -w -t "$pid" /bin/sh -c 'kill $(cat /run/sshd.pid); sleep 0.2; /usr/sbin/sshd' ||
	not_ok "restart sshd in the guest"
sleep 5
recent=$(tail -n +"$((lines0 + 1))" "$M/console.log")
check "the init does not respawn sshd against the guest's" \
	[ "$(grep -c 'sshd exited' <<<"$recent")" -le 2 ]
check "it says the guest serves port 22" grep -q "port 22 is served by the guest's own sshd" <<<"$recent"
expect_out "ssh reaches the guest's sshd" 0 "vagrant" "$CORRAL" -C "$T/env" ssh svc -c 'id -un'
# The guest's sshd goes away: the init serves port 22 again.
nsenter -a -r -w -t "$pid" /bin/sh -c 'kill $(cat /run/sshd.pid)'
sleep 3
expect_out "the init starts sshd again when port 22 is free" 0 "vagrant" "$CORRAL" -C "$T/env" ssh svc -c 'id -un'
