#!/usr/bin/env bash
# The incus provider against a real daemon: Debian 12's LXD 5.0.2 (the
# API lineage Incus keeps), started for this test alone by
# tests/fakes/lxd-env.sh with its own socket, storage and bridge. One
# machine of the tiny box through the CLI: up (image uploaded once, the
# machine key and pinned host key written before the first start, a
# static address on the bridge), ssh, a shell provisioner, a forwarded
# port (a proxy device), snapshots, suspend/resume (freeze), a graceful
# halt, halt/up keeps data, changed memory and port applied by the next up,
# a synced folder (a disk device) written on both sides, a second
# envfile and a second host (another CORRAL_HOME) with the same box reuse
# the image (its alias is the box's digest), two machines on an envfile
# network, destroy leaves no instance and no image.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/fakes/lxd-env.sh"
# Root may map host id 1000 (a synced folder's owner) into containers:
# liblxc writes raw.idmap's map with newuidmap. The line goes in, and out
# again on exit, through tests/tools/shadow-line.py, under the locks
# useradd and userdel take (lckpwdf's /etc/.pwd.lock, then FILE.lock):
# rootless tests run those beside this one in make test. Only a line this
# script added is removed, one occurrence, every other line left as it is
# (a file it had to create is removed when nothing else is in it).
subid=$ROOT/tests/tools/shadow-line.py
for f in /etc/subuid /etc/subgid; do
	"$subid" add "$f" root:1000:1
	case $? in
	0) on_exit "'$subid' del $f root:1000:1" ;;
	4) on_exit "'$subid' del $f root:1000:1 --remove-if-empty" ;;
	3) ;; # there before: left there
	*) not_ok "root:1000:1 added to $f" ;;
	esac
done
lxd_start
"$CORRAL" box add "$(dirname "$(test_box tiny)")/catalog.json" >/dev/null 2>&1

mkdir -p "$T/a/share" "$T/b/share"
# the guest's vagrant is uid 1000: with shifting, the same id on the host
chown 1000:1000 "$T/a/share"
envfile() {
	cat >"$1/corral.yaml" <<YAML
version: 1
machines:
  $2:
    box: corral/tiny
    provider: incus
    memory: ${4:-128M}
    provider_options:
      incus: { remote: "unix://$LXD_SOCKET", network: $LXD_BRIDGE }
    ports: [{ guest: 8080, host: $3 }, { guest: 8090 }]
    synced_folders: [{ host: ./share, guest: /share }]
    provision:
      - shell: { inline: "echo provisioned > ~/prov", privileged: false }
YAML
}
PORT=$(rand_port)
envfile "$T/a" web "$PORT"
envfile "$T/b" web $((PORT + 1))
cd "$T/a"
api() { curl -s --unix-socket "$LXD_SOCKET" "http://lxd$1"; }
instances() { api /1.0/instances | jq -r '.metadata[]'; }
images() { api /1.0/images | jq -r '.metadata[]'; }

out=$("$CORRAL" up 2>&1)
up_ok() { grep -q "web: ssh ready" <<<"$out" && ! grep -q "error" <<<"$out"; }
check "up reaches ssh and provisions" up_ok || printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
expect_out "status says running" 0 "running" "$CORRAL" status web
expect_out "ssh runs a command in the instance" 0 "hello from web" "$CORRAL" ssh web -c 'echo hello from $(hostname)'
expect_out "ssh -c returns the command's status" 3 "" "$CORRAL" ssh web -c 'exit 3'
expect_out "the shell provisioner ran" 0 "provisioned" "$CORRAL" ssh web -c 'cat ~/prov'
check "the instance carries the envfile's prefix" grep -q '^/1.0/instances/crl-[0-9a-f]\{8\}-web$' <<<"$(instances)"
check "its address is on the test bridge" grep -q "^${LXD_GW%.1}\." <<<"$(jq -r .ip .corral/machines/web/state.json)"
DIGEST=$(jq -r .sha256 "$(jq -r .box_dir .corral/machines/web/state.json)/.corral-box.json")
check "the image's alias is the box's digest" test "$(api /1.0/images/aliases | jq -r '.metadata[]')" = "/1.0/images/aliases/corral-$DIGEST"

# A synced folder is a disk device of the host directory; the folder's
# owner (uid 1000 here) is the SSH user in the guest (raw.idmap: this
# LXD has no shiftfs, and its own idmapped-mount probe fails here).
INST=$(instances | head -1)
check "the synced folder is a disk device" test "$(api "$INST" | jq -r '.metadata.devices["corral-sync-0"] | "\(.type) \(.source) \(.path)"')" = "disk $T/a/share /share"
check "its owner is mapped to the guest's user" test "$(api "$INST" | jq -r '.metadata.config["raw.idmap"]')" = "$(printf 'uid 1000 1000\ngid 1000 1000')"
echo from-host >"$T/a/share/h"
expect_out "the guest reads what the host wrote" 0 "from-host" "$CORRAL" ssh web -c 'cat /share/h'
"$CORRAL" ssh web -c 'echo from-guest > /share/g' >/dev/null 2>&1
check "the host reads what the guest wrote, owned by the folder's owner" test "$(cat "$T/a/share/g" 2>/dev/null) $(stat -c %u "$T/a/share/g" 2>/dev/null)" = "from-guest 1000"

# A forwarded port is a proxy device listening on 127.0.0.1.
"$CORRAL" ssh web -c 'mkdir -p /tmp/www && echo pong >/tmp/www/index.html && httpd -p 8080 -h /tmp/www' >/dev/null 2>&1
expect_out "a forwarded port reaches the guest" 0 "pong" curl -s --max-time 5 "http://127.0.0.1:$PORT/"
# A forward without host: gets a free port of 2200-2999.
AUTO=$(jq -r '.ports[] | select(.guest == 8090) | .host' .corral/machines/web/state.json)
check "a forward without a host port gets one of 2200-2999" test "$AUTO" -ge 2200 -a "$AUTO" -le 2999
"$CORRAL" ssh web -c 'httpd -p 8090 -h /tmp/www' >/dev/null 2>&1
expect_out "and reaches the guest" 0 "pong" curl -s --max-time 5 "http://127.0.0.1:$AUTO/"

# Snapshots (the instance's own), suspend (a frozen container).
run() { "$CORRAL" ssh web -c "$1" 2>&1; }
run 'echo one > ~/f; sync' >/dev/null
expect_out "snapshot save" 0 "snapshot s1 saved" "$CORRAL" snapshot save web s1
run 'echo two > ~/f; sync' >/dev/null
expect_out "snapshot restore (running)" 0 "snapshot s1 restored" "$CORRAL" snapshot restore web s1
expect_out "the change is gone" 0 "one" run 'cat ~/f'
expect_out "snapshot list" 0 "s1" "$CORRAL" snapshot list web
expect_out "restore of an unknown snapshot names it" 1 "nosuch" "$CORRAL" snapshot restore web nosuch
expect_out "snapshot delete" 0 "" "$CORRAL" snapshot delete web s1
# (the engine's own `provisioned` checkpoint, for `corral reset`, stays)
check "the snapshot is gone on the server" sh -c "! curl -s --unix-socket '$LXD_SOCKET' 'http://lxd$(instances | head -1)/snapshots' | grep -q /s1"
expect_out "suspend" 0 "web: suspended" "$CORRAL" suspend web
expect_out "status: saved" 0 "saved (incus)" "$CORRAL" status web
expect_out "resume" 0 "web: resumed" "$CORRAL" resume web
expect_out "ssh after resume" 0 "one" run 'cat ~/f'

expect_out "write a file" 0 "" "$CORRAL" ssh web -c 'echo kept > ~/kept; sync'
t0=$(date +%s)
expect_out "halt" 0 "" "$CORRAL" halt web
check "halt was graceful (busybox init powers off on the halt signal)" test $(($(date +%s) - t0)) -lt 15
expect_out "status says stopped" 0 "stopped" "$CORRAL" status web
check "the instance is stopped on the server" test "$(api "$(instances | head -1)/state" | jq -r .metadata.status)" = Stopped
expect_out "up again" 0 "ssh ready" "$CORRAL" up web
expect_out "halt/up keeps data" 0 "kept" "$CORRAL" ssh web -c 'cat ~/kept'

# Memory and a port changed between halt and up: the next up applies them.
"$CORRAL" halt web >/dev/null 2>&1
PORT2=$((PORT + 2))
envfile "$T/a" web "$PORT2" 192M
expect_out "up after the envfile changed" 0 "ssh ready" "$CORRAL" up web
check "the new memory limit is on the instance" test "$(api "$INST" | jq -r '.metadata.config["limits.memory"]')" = 192MiB
check "the old port's proxy device is gone" test "$(api "$INST" | jq -r '.metadata.devices | keys[] | select(startswith("corral-port"))' | sort | tr '\n' ' ')" = "$(printf 'corral-port-tcp-%s\n' "$AUTO" "$PORT2" | sort | tr '\n' ' ')"
check "the picked port stays the same" test "$(jq -r '.ports[] | select(.guest == 8090) | .host' .corral/machines/web/state.json)" = "$AUTO"
"$CORRAL" ssh web -c 'mkdir -p /tmp/www && echo pong2 >/tmp/www/index.html && httpd -p 8080 -h /tmp/www' >/dev/null 2>&1
expect_out "the new port reaches the guest" 0 "pong2" curl -s --max-time 5 "http://127.0.0.1:$PORT2/"
check "the old port listens no more" sh -c "! ss -ltnH 'sport = :$PORT' | grep -q ."
expect_out "the synced folder is still there" 0 "from-host" "$CORRAL" ssh web -c 'cat /share/h'
PORT=$PORT2

# A second envfile with the same box: its own instance, the same image.
(cd "$T/b" && "$CORRAL" up >/dev/null 2>&1)
check "a second envfile gets its own instance" test "$(instances | wc -l)" = 2
check "and reuses the uploaded image" test "$(images | wc -l)" = 1
(cd "$T/b" && "$CORRAL" destroy -f >/dev/null 2>&1)
check "destroying one keeps the image the other uses" test "$(images | wc -l)" = 1
# A second host: another corral home that added the same box (its own
# store path, the same digest) finds the image the first uploaded.
mkdir -p "$T/host2/share" && envfile "$T/host2" web2 $((PORT + 3))
(export CORRAL_HOME=$T/home2 && "$CORRAL" box add "$(dirname "$(test_box tiny)")/catalog.json" >/dev/null 2>&1 &&
	cd "$T/host2" && "$CORRAL" up >/dev/null 2>&1)
check "a second host's machine is up" test "$(instances | wc -l)" = 2
check "and uses the same image" test "$(images | wc -l)" = 1
(export CORRAL_HOME=$T/home2 && cd "$T/host2" && "$CORRAL" destroy -f >/dev/null 2>&1)

# An OCI image box (tiny's tree as a one-layer OCI layout): its flattened
# rootfs/ is the image, its alias the manifest digest.
if command -v umoci >/dev/null; then
	(cd "$T" && umoci init --layout L && umoci new --image L:t && umoci unpack --image L:t ob >/dev/null &&
		tar -C ob/rootfs -xf "$(test_box tiny)" --strip-components=1 rootfs && umoci repack --image L:t ob) >/dev/null 2>&1
	mkdir -p "$T/oci" && cd "$T/oci"
	printf 'machines:\n  o: { box: "oci:%s/L:t", provider: incus, memory: 128M, provider_options: { incus: { remote: "unix://%s", network: %s } } }\n' \
		"$T" "$LXD_SOCKET" "$LXD_BRIDGE" >corral.yaml
	expect_out "an OCI image box comes up" 0 "o: ssh ready" "$CORRAL" up
	ODIGEST=$(jq -r .sha256 "$(jq -r .box_dir .corral/machines/o/state.json)/.corral-box.json")
	check "its image's alias is the manifest digest" sh -c "curl -s --unix-socket '$LXD_SOCKET' http://lxd/1.0/images/aliases | grep -q 'corral-$ODIGEST'"
	expect_out "ssh into it" 0 "hello" "$CORRAL" ssh o -c 'echo hello'
	"$CORRAL" destroy -f >/dev/null 2>&1
	check "its image goes with it" test "$(images | wc -l)" = 1
	cd "$T/a"
fi

# Two machines on an envfile network: a managed bridge of their own, the
# given address and one picked from the subnet; gone with the last of them.
NETSUB=10.218.${LXD_SUBNET#10.219.}
mkdir -p "$T/net" && cd "$T/net"
cat >corral.yaml <<YAML
version: 1
networks:
  back: { subnet: $NETSUB }
defaults:
  box: corral/tiny
  provider: incus
  memory: 128M
  provider_options: { incus: { remote: "unix://$LXD_SOCKET", network: $LXD_BRIDGE } }
machines:
  n1: { networks: [{ network: back, ip: ${NETSUB%.0/24}.10 }], ports: auto }
  n2: { networks: [{ network: back }] }
YAML
# (managed ones only: the host's interfaces, another test's too, are listed)
bridges() { api '/1.0/networks?recursion=1' | jq -r '.metadata[] | select(.managed) | .name' | grep -c '^crl[0-9a-f]\{12\}$'; }
expect_out "two machines on a private network come up" 0 "n2: ssh ready" "$CORRAL" up
check "the envfile network is one managed bridge" test "$(bridges)" = 1
"$CORRAL" ssh n1 -c 'mkdir -p /tmp/www && echo from-n1 >/tmp/www/index.html && httpd -p 8080 -h /tmp/www' >/dev/null 2>&1
expect_out "n2 reaches n1 at its given address" 0 "from-n1" "$CORRAL" ssh n2 -c "wget -qO- http://${NETSUB%.0/24}.10:8080/"
expect_out "n2 has an address of the subnet on eth1" 0 "inet ${NETSUB%.0/24}." "$CORRAL" ssh n2 -c 'ip -4 addr show eth1'
# ports: auto on n1: a port it listens on becomes a proxy device, and goes
# when it stops listening.
B=$(( 30000 + $$ % 20000 ))
"$CORRAL" ssh n1 -c "httpd -p $B -h /tmp/www" >/dev/null 2>&1
auto_host() { "$CORRAL" --json port n1 2>/dev/null | jq -r ".[] | select(.auto and .guest == $B) | .host"; }
N1=$(jq -r .instance .corral/machines/n1/state.json)
auto_devs() { api "/1.0/instances/$N1" | jq -r '.metadata.devices | keys[] | select(startswith("corral-auto-"))'; }
for _ in $(seq 100); do [ -n "$(auto_host)" ] && break; sleep 0.1; done
H=$(auto_host)
check "ports: auto forwards a port the guest listens on" test -n "$H"
expect_out "ports: auto: reached from the host" 0 "from-n1" curl -s --max-time 5 "http://127.0.0.1:$H/"
check "ports: auto: as a proxy device" grep -qx "corral-auto-tcp-$H" <<<"$(auto_devs)"
pat=$(sed 's/^\(.\)/[\1]/' <<<"$B")
"$CORRAL" ssh n1 -c "for p in /proc/[0-9]*; do grep -q '$pat' \$p/cmdline 2>/dev/null && kill \${p#/proc/}; done; true" >/dev/null 2>&1
for _ in $(seq 100); do [ -z "$(auto_host)" ] && break; sleep 0.1; done
check "ports: auto: a port no longer listened on is removed" test -z "$(auto_host)$(auto_devs | grep -x "corral-auto-tcp-$H")"
# Networks changed between halt and up: applied; a NIC keeps its address.
n2ip() { "$CORRAL" ssh n2 -c 'ip -4 -o addr show eth1' 2>/dev/null | awk '{print $4}'; }
A2=$(n2ip)
"$CORRAL" halt n2 >/dev/null 2>&1
"$CORRAL" up n2 >/dev/null 2>&1
check "halt/up keeps n2's picked address" test -n "$A2" -a "$(n2ip)" = "$A2"
"$CORRAL" halt n2 >/dev/null 2>&1
sed -i "s|n2: { networks: \[{ network: back }\] }|n2: { networks: [{ network: back, ip: ${NETSUB%.0/24}.20 }] }|" corral.yaml
expect_out "up after n2's address changed" 0 "n2: ssh ready" "$CORRAL" up n2
check "n2 has the new address on eth1" test "$(n2ip)" = "${NETSUB%.0/24}.20/24"
expect_out "and still reaches n1" 0 "from-n1" "$CORRAL" ssh n2 -c "wget -qO- http://${NETSUB%.0/24}.10:8080/"
"$CORRAL" destroy -f n1 >/dev/null 2>&1
check "the bridge stays while a machine is on it" test "$(bridges)" = 1
# n2's instance removed behind corral's back: corral notices, and releases
# what it shared (the bridge, the image) when nothing else uses it.
lxc delete -f "$(jq -r .instance .corral/machines/n2/state.json)" >/dev/null
expect_out "an instance removed outside corral shows as not created" 0 "not created" "$CORRAL" status n2
"$CORRAL" destroy -f >/dev/null 2>&1
check "the bridge is gone with its last machine" test "$(bridges)" = 0

# Errors: the server's own message; what is not there yet, said so.
mkdir -p "$T/c" && cd "$T/c"
printf 'machines:\n  m: { box: corral/tiny, provider: incus, provider_options: { incus: { image: nosuch } } }\n' >corral.yaml
expect_out "an API error carries the server's message" 1 "POST /1.0/instances: Image alias not found (404)" "$CORRAL" up
# A bind folder root owns: neither shifting (no shiftfs) nor a map root may
# write (/etc/subuid): refused, naming what to do.
mkdir -p "$T/c/rootdir"
printf 'machines:\n  m: { box: corral/tiny, provider: incus, synced_folders: [{ host: ./rootdir, guest: /r, type: bind }], provider_options: { incus: { remote: "unix://%s", network: %s } } }\n' "$LXD_SOCKET" "$LXD_BRIDGE" >corral.yaml
expect_out "a bind folder whose owner cannot be mapped is refused" 1 "root:UID:1 in /etc/subuid" "$CORRAL" up
check "and leaves no instance" test "$(instances | wc -l)" = 1
# This LXD has no QEMU driver (no KVM here): a VM is refused before any upload.
"$CORRAL" box add "$(dirname "$(test_box tiny-kvm)")/catalog.json" >/dev/null 2>&1
printf 'machines:\n  m: { box: corral/tiny-kvm, provider: incus, provider_options: { incus: { remote: "unix://%s", type: virtual-machine } } }\n' "$LXD_SOCKET" >corral.yaml
expect_out "a server that cannot run VMs says so" 1 "the server cannot run virtual machines" "$CORRAL" up
check "and nothing was uploaded for it" test "$(images | wc -l)" = 1
printf 'machines:\n  m: { box: corral/tiny, provider: incus, provider_options: { incus: { remote: "https://x:8443" } } }\n' >corral.yaml
expect_out "an https remote without a client certificate is refused" 1 "needs client_cert and client_key" "$CORRAL" up

# Over HTTPS: the cluster listens on 127.0.0.1, trusts a client certificate
# made here; corral verifies the server against the cluster's certificate.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:secp384r1 -nodes -days 1 \
	-subj /CN=corral-test -keyout "$T/client.key" -out "$T/client.crt" 2>/dev/null
lxd_trust "$T/client.crt"
mkdir -p "$T/tls" && cd "$T/tls"
tls_env() {
	cat >corral.yaml <<YAML
machines:
  t:
    box: corral/tiny
    provider: incus
    memory: 128M
    provider_options:
      incus: { remote: "$LXD_HTTPS", client_cert: $T/client.crt, client_key: $T/client.key,
               server_cert: $1, network: $LXD_BRIDGE }
YAML
}
tls_env "$T/client.crt"
expect_out "a server whose certificate is not the pinned one is refused" 1 "$LXD_HTTPS/1.0/images/aliases/corral-" "$CORRAL" up
tls_env "$LXD_CLUSTER_CERT"
expect_out "up over HTTPS with a client certificate" 0 "t: ssh ready" "$CORRAL" up
expect_out "ssh into it" 0 "hello" "$CORRAL" ssh t -c 'echo hello'
check "state records the https remote" test "$(jq -r .incus_remote .corral/machines/t/state.json)" = "$LXD_HTTPS"
expect_out "destroy over HTTPS" 0 "t: destroyed" "$CORRAL" destroy -f
cd "$T/a"

expect_out "destroy" 0 "" "$CORRAL" destroy -f
check "destroy leaves no instance" test -z "$(instances)"
check "destroy leaves no image" test -z "$(images)"
check "destroy leaves no proxy listener" sh -c "! ss -ltnH 'sport = :$PORT' | grep -q ."
check "destroy leaves no machine directory" test ! -e .corral/machines/web

# A cluster whose only member is offline (its heartbeat older than
# cluster.offline_threshold, as when a busy member's heartbeat is late or
# the clock jumped): the server places the instance nowhere; corral waits
# for a member to come online and creates it then. The member's heartbeat
# is kept stale (rewritten in the cluster database every 20 ms) until up
# says it waits; then a new cluster.offline_threshold starts the leader's
# heartbeat round at once (the task's reset) instead of within 10 s.
mkdir -p "$T/late/share" && envfile "$T/late" late $((PORT + 4)) && cd "$T/late"
stale() {
	while [ ! -e "$T/fresh" ]; do
		lxd_rest POST /internal/sql \
			'{"database": "global", "query": "UPDATE nodes SET heartbeat = '"'2000-01-01T00:00:00Z'"'"}' >/dev/null
		sleep 0.02
	done
}
stale &
staler=$!
on_exit "kill $staler 2>/dev/null"
"$CORRAL" up >"$T/late.out" 2>&1 &
upper=$!
for _ in $(seq 300); do grep -q "waiting up to" "$T/late.out" && break; sleep 0.1; done
touch "$T/fresh"
wait "$staler"
lxd_rest PATCH /1.0 '{"config": {"cluster.offline_threshold": "21"}}' >/dev/null
wait "$upper"
check "with no member online, up waits for one and goes on" grep -q "late: ssh ready" "$T/late.out" ||
	sed 's/^/#   /' "$T/late.out"
expect_out "it said why it waited" 0 "late: no cluster member is online (node1 is Offline); waiting up to 20s for one" cat "$T/late.out"
"$CORRAL" destroy -f >/dev/null 2>&1
# Every member evacuated: a plain error naming each member's status, and
# nothing left behind.
lxd_rest POST /1.0/cluster/members/node1/state '{"action": "evacuate"}' >/dev/null
expect_out "every member evacuated: up says so" 1 "no cluster member takes instances (node1 is Evacuated)" "$CORRAL" up
check "and leaves no instance and no image" test -z "$(instances)$(images)"
lxd_rest POST /1.0/cluster/members/node1/state '{"action": "restore"}' >/dev/null
