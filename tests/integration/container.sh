#!/usr/bin/env bash
# The container provider and the lifecycle commands on real containers
# (the tiny box: busybox + the host's sshd): up, state, halt/up keeping the
# upper layer, kill -9 recovery, the lock, a changed host key, a forwarded
# port outliving corral, two machines sharing the box's lower layer, a
# synced folder bind-mounted both ways (and a type containers do not take),
# and destroy leaving nothing behind (mounts, links, cgroups, processes,
# dirs) but the synced folder's files.
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny)
catalog=$(dirname "$box")/catalog.json
port=$(rand_port)
mkdir -p "$T/env/shared"
echo from-host >"$T/env/shared/h"
chown 1000:1000 "$T/env/shared" # the guest's vagrant
cat >"$T/env/corral.yaml" <<YAML
version: 1
machines:
  web:
    box: corral/tiny
    provider: container
    memory: 256M
    ports:
      - { guest: 22, host: $port }
    synced_folders:
      - { host: ./shared, guest: /srv/shared }
    provision:
      - shell:
          inline: "if [ -f /tmp/slow ]; then sleep 3; fi"
          privileged: false
          run: always
  pair:
    count: 2
    box: corral/tiny
    provider: container
    autostart: false
  bad:
    box: corral/tiny
    provider: container
    autostart: false
    synced_folders: [{ host: ./shared, guest: /x, type: 9p }]
YAML
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
M=$T/env/.corral/machines/web
st() { jq -r ".$1 // empty" "$M/state.json"; }
ssh_ok() { "$CORRAL" ssh web -c "$1" 2>&1; }

expect_out "box add" 0 "corral/tiny" "$CORRAL" box add "$catalog"
expect_out "status before up" 0 "not created" "$CORRAL" status web
out=$("$CORRAL" up 2>&1)
check "up prints each state change" grep -qz 'web: creating.*web: booting.*web: ssh ready' <<<"$out"
expect_out "status: running with its address" 0 "running (container) 10.213." "$CORRAL" status web
expect_out "status --json" 0 '"state": "running"' "$CORRAL" status --json web
expect_out "a command over ssh" 0 "web" "$CORRAL" ssh web -c 'hostname'
expect_out "bind: the host's file shows in the guest" 0 "from-host" "$CORRAL" ssh web -c 'cat /srv/shared/h'
"$CORRAL" ssh web -c 'echo from-guest > /srv/shared/g'
expect_out "bind: the guest's file shows on the host" 0 "from-guest" cat "$T/env/shared/g"
check "bind: the guest path is an empty dir in the upper layer" \
	[ -d "$M/upper/srv/shared" ] && [ -z "$(ls -A "$M/upper/srv/shared")" ]
expect_out "a 9p folder on a container: a clear error" 1 \
	"bad: synced folder /x: the container provider does not take type 9p" "$CORRAL" up bad
expect_out "naming the types it takes" 1 "use one of: auto, bind" "$CORRAL" up bad
expect_out "and creating nothing" 0 "not created" "$CORRAL" status bad
expect_out "the memory limit is in the cgroup" 0 "268435456" \
	cat "/sys/fs/cgroup/memory/corral/$(st machine_id)/memory.limit_in_bytes"
check "the pinned host key is the one written before boot" \
	grep -q "$(ssh-keygen -y -f "$M/upper/etc/ssh/ssh_host_ed25519_key" | cut -d' ' -f2)" "$M/known_hosts"
"$CORRAL" ssh-config web >"$T/ssh_config"
expect_out "system OpenSSH with ssh-config" 0 "" ssh -F "$T/ssh_config" -o BatchMode=yes web true

# A forwarded port carries a real TCP connection after corral has exited.
banner() { timeout 5 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; head -c 7 <&3"; }
expect_out "port needs a name among several machines" 2 'none is `primary`' "$CORRAL" port
expect_out "port lists the mapping" 0 "22 (guest) => $port (host 127.0.0.1" "$CORRAL" port web
expect_out "the forwarded port reaches the guest's sshd" 0 "SSH-2.0" banner "$port"

expect_out "write a file" 0 "" "$CORRAL" ssh web -c 'echo kept > ~/kept'
init=$(st pid) fwd=$(st portfwd_pid) id=$(st machine_id)
expect_out "halt" 0 "web: stopped" "$CORRAL" halt web
check "halt: the init is gone" gone "$init"
check "halt: the forwarder is gone" gone "$fwd"
check "halt: the cgroups are gone" bash -c '[ ! -e "$1" ] && [ ! -e "$2" ]' _ "/sys/fs/cgroup/memory/corral/$id" "/sys/fs/cgroup/cpu/corral/$id"
check "halt: the veth is gone" bash -c "! ip -br link | grep -q cr-${id:0:10}"
expect_out "status: stopped" 0 "web                      stopped" "$CORRAL" status web
expect_out "up again" 0 "web: ssh ready" "$CORRAL" up web
expect_out "the file survived halt" 0 "kept" "$CORRAL" ssh web -c 'cat ~/kept'
check "the file lives in the upper layer" [ -f "$M/upper/home/vagrant/kept" ]

kill -9 "$(st pid)"
sleep 0.1
expect_out "kill -9 of init: status says stopped" 0 "stopped" "$CORRAL" status web
expect_out "up recovers it" 0 "web: ssh ready" "$CORRAL" up web
expect_out "and the file is still there" 0 "kept" "$CORRAL" ssh web -c 'cat ~/kept'
check "one forwarder, not two" [ "$(pgrep -fc "__portfwd $(st ip) ")" = 1 ]
expect_out "the port forward works again" 0 "SSH-2.0" banner "$port"

# The lock: a second up while one is running is refused, naming its pid.
"$CORRAL" ssh web -c 'touch /tmp/slow'
"$CORRAL" up --provision web >/dev/null 2>&1 &
first=$!
sleep 1
expect_out "a concurrent up is refused with the holder's pid" 1 "(pid $first)" "$CORRAL" up web
wait "$first"
check "the first up finished" [ $? -eq 0 ]

# A guest whose host key changes is refused. The key is replaced through
# the guest's own view (the overlay forbids changing its layers underneath),
# then sshd restarted.
in_guest() { nsenter -t "$(st pid)" -U -m -- /bin/sh -c "$1"; } # as guest root, in its user namespace
restart_sshd() { kill -HUP "$(pgrep -P "$(st pid)" -x sshd)"; sleep 0.5; }
key=/etc/ssh/ssh_host_ed25519_key
in_guest "cp $key /root/good.key && rm -f $key && ssh-keygen -q -t ed25519 -N '' -f $key"
restart_sshd
expect_out "a changed host key is refused" 255 "reset-host-key" "$CORRAL" ssh web -c true
check "the new key is in the upper layer" [ -f "$M/upper/etc/ssh/ssh_host_ed25519_key.pub" ]
in_guest "cp /root/good.key $key"
restart_sshd
expect_out "the pinned key works again" 0 "ok" "$CORRAL" ssh web -c 'echo ok'

# Two machines of one box share its lower layer and copy nothing.
expect_out "up two more machines" 0 "pair-2: ssh ready" "$CORRAL" up pair
lower1=$(jq -r .lower .corral/machines/pair-1/state.json)
lower2=$(jq -r .lower .corral/machines/pair-2/state.json)
check "both use the same lower dir" bash -c '[ "$1" = "$2" ] && [ "$1" = "$3" ]' _ "$lower1" "$lower2" "$(st lower)"
check "the upper layer holds only the machine's own files" \
	[ "$(find .corral/machines/pair-1/upper -type f | wc -l)" -le 6 ]
check "the upper layer is small" [ "$(du -sk .corral/machines/pair-1/upper | cut -f1)" -lt 200 ]
expect_out "the machines reach each other" 0 "SSH-2.0" "$CORRAL" ssh pair-1 -c \
	"nc -w 2 $(jq -r .ip .corral/machines/pair-2/state.json) 22 </dev/null | head -c 7"

expect_out "global-status lists them" 0 "pair-2" "$CORRAL" global-status
ids=() pids=()
for m in web pair-1 pair-2; do
	ids+=("$(jq -r .machine_id ".corral/machines/$m/state.json")")
	pids+=("$(jq -r .pid ".corral/machines/$m/state.json")")
done
fwd=$(st portfwd_pid)
expect_out "destroy" 0 "pair-2: destroyed" "$CORRAL" destroy -f
check "destroy: the machine dirs are gone" [ -z "$(ls .corral/machines)" ]
check "destroy: no mount is left" bash -c "! grep -q '$T' /proc/mounts"
check "destroy: the synced folder and its files are intact" \
	[ "$(cat "$T/env/shared/h" "$T/env/shared/g")" = "$(printf 'from-host\nfrom-guest')" ]
for i in 0 1 2; do
	check "destroy: no veth left (${ids[i]})" bash -c "! ip -br link | grep -q cr-${ids[i]:0:10}"
	check "destroy: no cgroup left (${ids[i]})" [ ! -e "/sys/fs/cgroup/memory/corral/${ids[i]}" ]
	check "destroy: no process left (${pids[i]})" gone "${pids[i]}"
done
check "destroy: the forwarder is gone" gone "$fwd"
expect_out "the port is closed" 1 "" banner "$port"
check "global-status forgets them" bash -c "! '$CORRAL' global-status | grep -q '$T/env'"
expect_out "halt of a destroyed machine" 0 "not created" "$CORRAL" halt web
