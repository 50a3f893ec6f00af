#!/usr/bin/env bash
# corral as an ordinary user (issue 18): the test makes a user with
# useradd (and its /etc/subuid and /etc/subgid range), runs corral as that
# user through runuser — no sudo — and removes the user after. Checked:
# per-user state (nothing under /run/corral or /var/lib/corral), `status`
# of the user's own machines; a container machine of the tiny box booted
# by the user: ssh, a forwarded port on 127.0.0.1 (pasta), `status -v`
# naming the mode, halt/up keeping the guest's files, reload, reset,
# snapshots (save, restore, list, delete; without and with a delegated
# cgroup) and suspend/resume, the guest's
# root unable to write a file of the user's outside the machine, destroy
# leaving no process, file or mount; two machines of one envfile network
# pinging each other, with auto_correct and `ports: auto` through pasta
# and the forwarder, `disk:` refused (strict) or warned about; and `up`
# naming the fix for each
# missing piece of the host (/dev/net/tun, uidmap, subuid range); the
# box's systemd in a delegated cgroup (debian-12): halt, up, reload, and
# destroy from another cgroup leaving none of the machine's.
# (The sysctl case is in tests/unit/test_rootless.c: the host's sysctls are
# not the test's to change.)
. "$(dirname "$0")/../lib.sh"

user_make crlrl
# (the user's machines go before the user does, when a check failed)
user_first 'as_user "$CORRAL" -C "$P" destroy -f >/dev/null 2>&1'
check "useradd gave $U a subuid and subgid range" grep -q "^$U:" /etc/subuid /etc/subgid

P=$UH/proj
as_user mkdir -p "$P"
as_user sh -c "printf 'version: 1\nmachines:\n  web: { box: corral/tiny, provider: container }\n' >$P/corral.yaml"

expect_out "status as the user: not created, the container provider" 0 "not created (container)" \
	as_user "$CORRAL" -C "$P" status
# Its index is the user's own ($CORRAL_HOME, default ~/.corral): no line
# but the header names a directory outside the user's home.
others() { as_user "$CORRAL" global-status | tail -n +2 | grep -v "$UH/"; }
check "global-status as the user: no machine of anyone else" test -z "$(others)"
# pasta needs /dev/net/tun, which Debian's udev makes 0666 (some VMs and
# containers leave it 0600): closed for one check, then as Debian has it
# for the run, and as it was after.
tun_open
chmod 0600 /dev/net/tun
expect_out "/dev/net/tun closed to users: the fix is named" 1 "chmod 0666 /dev/net/tun" \
	as_user "$CORRAL" -C "$P" up
chmod 0666 /dev/net/tun

cp "$(test_box tiny)" "$UH/tiny.box" && chown "$U" "$UH/tiny.box"
as_user "$CORRAL" box add --name corral/tiny "$UH/tiny.box" >/dev/null 2>&1
HP=$(free_port)
as_user sh -c "cat >$P/corral.yaml" <<EOF
version: 1
machines:
  web:
    box: corral/tiny
    provider: container
    ssh: { user: root }
    ports: [{ guest: 8080, host: $HP }]
    provision:   # examples/quickstart's shape
      - shell:
          name: greeting
          inline: echo "hello from \$(hostname), provisioned by corral" | tee /etc/motd
EOF
echo orig >"$UH/canary" && chown "$U" "$UH/canary"
C() { as_user "$CORRAL" -C "$P" "$@"; }
expect_out "up as the user: the tiny box boots and is provisioned over SSH" 0 \
	"hello from web, provisioned by corral" C up
expect_out "status -v names the rootless mode" 0 "mode: rootless" \
	as_user "$CORRAL" -v -C "$P" status
expect_out "ssh: guest root, its files kept in the upper layer" 0 "uid=0" \
	C ssh -c 'echo kept >/root/data; id'
C ssh -c 'echo port-ok >/tmp/index.html; busybox httpd -p 8080 -h /tmp' >/dev/null 2>&1
expect_out "a forwarded port answers on 127.0.0.1 (pasta)" 0 "port-ok" \
	curl -s --max-time 5 "http://127.0.0.1:$HP/index.html"
# The escape check: guest root is the user's own uid on the host, so the
# machine's namespaces are what stand between it and the user's files.
C ssh -c "for p in $UH/canary /proc/1/root$UH/canary /proc/1/cwd$UH/canary; do
	echo pwned >\$p; done; mkdir -p /mnt/h; mount --bind / /mnt/h && echo pwned >/mnt/h$UH/canary
	unshare -m sh -c 'umount -l /proc; echo pwned >$UH/canary'
	nsenter -t 1 -m sh -c 'echo pwned >$UH/canary'; true" >/dev/null 2>&1
check "escape check: guest root cannot write a file of the user's outside the machine" \
	test "$(cat "$UH/canary")" = orig
# A service the host binds to 127.0.0.1 is the host's own: root mode's
# guests cannot reach it, nor can these (pasta --no-map-gw: the gateway is
# not the host's loopback).
LP=$(free_port)
echo "loopback-secret-$$" >"$T/token.txt"
python3 -m http.server --bind 127.0.0.1 "$LP" --directory "$T" >/dev/null 2>&1 &
on_exit "kill $!"
sleep 0.3
got=$(timeout 20 runuser -u "$U" -- env -i HOME="$UH" PATH=/usr/bin:/bin "$CORRAL" -C "$P" ssh -c \
	"printf 'GET /token.txt HTTP/1.0\r\n\r\n' | timeout 5 nc -w 2 10.0.2.2 $LP" 2>&1)
check "the host's loopback-only services are out of the guest's reach" \
	test "${got#*loopback-secret}" = "$got"
check "the box's copy in the user's ids is made once per box" \
	test "$(find "$UH/.corral/boxes-mapped" -mindepth 1 -maxdepth 1 -type d | wc -l)" = 1
expect_out "halt as the user" 0 "stopped" C halt
C up >/dev/null 2>&1
expect_out "up again keeps the guest's files" 0 "kept" C ssh -c 'cat /root/data'
expect_out "reload as the user" 0 "ssh ready" C reload
expect_out "reset as the user: back to the provisioned checkpoint" 0 "reset to" C reset
expect_out "...without what came after it" 1 "No such file" C ssh -c 'ls /root/data'
# Snapshots as the user. No cgroup is delegated to this user yet, so no
# freezer: a running machine is not copied (the fix is named), a stopped
# one is; restore boots it again with the snapshot's files.
expect_out "snapshot save of a running machine without a freezer: the fix is named" 1 \
	"halt the machine first" C snapshot save s1
C ssh -c 'echo v1 >/root/snapfile' >/dev/null 2>&1
C halt >/dev/null 2>&1
expect_out "snapshot save as the user (stopped)" 0 "snapshot s1 saved" C snapshot save s1
C up >/dev/null 2>&1
C ssh -c 'echo v2 >/root/snapfile; touch /root/later' >/dev/null 2>&1
expect_out "snapshot restore as the user" 0 "snapshot s1 restored" C snapshot restore s1
expect_out "...the file is back, what came after is gone" 0 "v1 none" \
	C ssh -c 'echo $(cat /root/snapfile) $(ls /root/later 2>/dev/null || echo none)'
expect_out "snapshot list as the user" 0 "  s1" C snapshot list
expect_out "snapshot delete as the user" 0 "snapshot s1 deleted" C snapshot delete s1
expect_out "...none left" 0 "no snapshots" C snapshot list
# In a cgroup delegated to the user (a systemd login session's): the
# machine's own group below it has the freezer, for a running machine's
# snapshot and for suspend/resume. Only for these checks: the ones after
# are of a user without one.
user_cgroup
C halt >/dev/null 2>&1
C up >/dev/null 2>&1
expect_out "delegated cgroup: snapshot save of the running machine (frozen)" 0 \
	"snapshot s2 saved" C snapshot save s2
expect_out "delegated cgroup: suspend as the user" 0 "web: suspended" C suspend
expect_out "...status: saved" 0 "saved (container)" C status
expect_out "delegated cgroup: resume as the user" 0 "web: resumed" C resume
expect_out "...ssh after resume" 0 "v1" C ssh -c 'cat /root/snapfile'
UCG_SNAP=$UCG UCG=
user_first 'UCG=$UCG_SNAP'
expect_out "destroy as the user" 0 "destroyed" C destroy -f
for _ in $(seq 50); do [ -z "$(pgrep -u "$U")" ] && break; sleep 0.1; done
check "destroy leaves no process of the user (init, sshd, pasta)" test -z "$(pgrep -u "$U")"
check "destroy leaves no machine files" test -z "$(ls -A "$P/.corral/machines")"
check "no mount of the user's on the host" test -z "$(grep -F "$UH" /proc/mounts)"
# `disk:` with limits: strict stops before anything runs: no loop mount
# without root.
as_user sh -c "cat >$P/corral.yaml" <<EOF
version: 1
machines:
  web: { box: corral/tiny, provider: container, disk: 64M, provider_options: { container: { limits: strict } } }
EOF
expect_out "disk: with limits: strict: the error says why" 1 \
	"needs a loop-mounted file system, which only root may mount" C up
# Two machines of one envfile network reach each other (tap devices and
# a loopback multicast segment: no bridge). a's port asks for the host
# port the test's server holds (auto_correct moves it); b has ports: auto;
# a's disk: is best-effort (the default without root): a warning.
as_user sh -c "cat >$P/corral.yaml" <<EOF
version: 1
defaults: { box: corral/tiny, provider: container, ssh: { user: root } }
machines:
  a: { networks: [{ network: lan, ip: 10.77.0.5 }], disk: 64M,
       ports: [{ guest: 8080, host: $LP, auto_correct: true }] }
  b: { networks: [{ network: lan }], ports: auto }
networks:
  lan: { subnet: 10.77.0.0/24 }
EOF
out=$(C up 2>&1)
check "two machines on one envfile network, as the user" grep -qE "^b +running" <<<"$out"
check "...disk: without root, best-effort: a warning saying why" grep -q \
	"a: the .disk. limit is not applied (limits: best-effort): a size limit on the upper layer needs a loop-mounted" <<<"$out"
expect_out "...they ping each other (b's address from the network's pool)" 0 "0% packet loss" \
	C ssh b -c 'ping -c 2 -W 2 10.77.0.5'
ap=$(C port a | sed -n 's/ *8080 (guest) => \([0-9]*\) .*/\1/p')
check "auto_correct through pasta: a busy host port moves to a free one" test -n "$ap" -a "$ap" != "$LP"
C ssh a -c 'echo moved >/tmp/index.html; busybox httpd -p 8080 -h /tmp' >/dev/null 2>&1
expect_out "...and answers on 127.0.0.1" 0 "moved" curl -s --max-time 5 "http://127.0.0.1:$ap/index.html"
C ssh b -c 'echo watched >/tmp/index.html; busybox httpd -p 9191 -h /tmp; busybox httpd -p 81 -h /tmp' \
	>/dev/null 2>&1
for _ in $(seq 30); do
	bp=$(C port b | sed -n 's/ *9191 (guest) => \([0-9]*\) .*auto.*/\1/p')
	pp=$(C port b | sed -n 's/ *81 (guest) => \([0-9]*\) .*auto.*/\1/p')
	[ -n "$bp" ] && [ -n "$pp" ] && break
	sleep 0.2
done
check "ports: auto without root: the guest's new listener is forwarded" test -n "$bp"
check "...a port below 1024 from one the user may bind" test "${pp:-0}" -ge 1024
expect_out "...which answers too" 0 "watched" curl -s --max-time 5 "http://127.0.0.1:$pp/index.html"
expect_out "...and answers on 127.0.0.1" 0 "watched" curl -s --max-time 5 "http://127.0.0.1:$bp/index.html"
C ssh b -c 'for p in /proc/[0-9]*; do [ $p = /proc/$$ ] || ! grep -q 9191 $p/cmdline || kill ${p#/proc/}; done' >/dev/null 2>&1
for _ in $(seq 30); do
	[ -z "$(C port b | grep 9191)" ] && break
	sleep 0.2
done
check "...and dropped when it stops listening" test -z "$(C port b | grep 9191)"
C destroy -f >/dev/null 2>&1
for _ in $(seq 50); do [ -z "$(pgrep -u "$U")" ] && break; sleep 0.1; done
check "...destroy leaves no relay, pasta or init" test -z "$(pgrep -u "$U")"
copy=$(find "$UH/.corral/boxes-mapped" -mindepth 1 -maxdepth 1 -type d)
as_user "$CORRAL" __ctns rm "$copy"
check "the box's copy is removed by the user (corral __ctns rm)" test ! -e "$copy"

# systemd as PID 1 needs a cgroup of its own: without a delegated one
# (this user has none), `init: systemd` stops before boot naming the fix.
as_user sh -c "cat >$P/corral.yaml" <<EOF
version: 1
machines:
  web: { box: corral/tiny, provider: container, provider_options: { container: { init: systemd } } }
EOF
expect_out "init: systemd without a delegated cgroup: the fix is named" 1 \
	"systemd-run --user --scope corral up" as_user "$CORRAL" -C "$P" up
check "...before anything runs" test -z "$(pgrep -u "$U")"

# The box's systemd as PID 1 in a cgroup delegated to the user (as a
# login session has): halt, up keeping the guest's files, reload; and a
# destroy from another cgroup than the up's (a shell of the session, not
# the delegated scope) removes the machine's corral/<id> there too.
UCG=$UCG_SNAP # the delegated cgroup of the snapshot checks above
deb=$(test_box debian-12)
as_user "$CORRAL" box add "$(dirname "$deb")/catalog.json" >/dev/null 2>&1
as_user sh -c "cat >$P/corral.yaml" <<EOF
version: 1
machines:
  sd: { box: corral/debian-12, provider: container, provider_options: { container: { init: systemd } } }
EOF
t0=$(date +%s%N)
expect_out "init: systemd in a delegated cgroup, as the user" 0 "sd: ssh ready" C up
expect_out "...systemd is PID 1, at the root of its cgroup namespace" 0 "systemd 0::/init.scope" \
	C ssh -c 'echo kept >~/data; echo $(cat /proc/1/comm) $(grep ^0:: /proc/1/cgroup)'
expect_out "...halt" 0 "sd: stopped" C halt
expect_out "...up again" 0 "sd: ssh ready" C up
expect_out "...the guest's files kept" 0 "kept" C ssh -c 'cat ~/data'
expect_out "...reload" 0 "sd: ssh ready" C reload
expect_out "...systemd again" 0 "systemd" C ssh -c 'cat /proc/1/comm'
cg=$(find "$UCG/corral" -mindepth 1 -maxdepth 1 -type d)
check "...its cgroup: corral/<id> in the user's delegated one" test -n "$cg"
UCG= expect_out "destroy from another cgroup than the up's" 0 "sd: destroyed" C destroy -f
for _ in $(seq 50); do [ -z "$(pgrep -u "$U")" ] && break; sleep 0.1; done
check "...no process of the user's left" test -z "$(pgrep -u "$U")"
check "...nor the machine's cgroup" test -n "$cg" -a ! -e "$cg"
echo "# systemd guest: up, halt, up, reload, destroy: $((($(date +%s%N) - t0) / 1000000)) ms"
UCG=

mkdir -p "$T/bin" && ln -s "$(command -v newgidmap)" "$T/bin/newgidmap"
UPATH=$T/bin expect_out "no newuidmap: the fix is apt-get install uidmap" 1 \
	"apt-get install uidmap" as_user "$CORRAL" -C "$P" up

range=$(grep "^$U:" /etc/subuid | head -n 1 | cut -d: -f2,3)
users_locked usermod --del-subuids "${range%:*}-$((${range%:*} + ${range#*:} - 1))" "$U"
expect_out "no subuid range: the fix is usermod --add-subuids" 1 \
	"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $U" \
	as_user "$CORRAL" -C "$P" up

# Everything the user's corral wrote is the user's, in the user's home.
check "nothing of the user's under /run/corral or /var/lib/corral" \
	test -z "$(find /run/corral /var/lib/corral -user "$U" 2>/dev/null)"
check "every file in the user's project is the user's" \
	test -z "$(find "$P" ! -user "$U")"
