#!/usr/bin/env bash
# The incus provider against a real daemon: Debian 12's LXD 5.0.2 (the
# API lineage Incus keeps), started for this test alone by
# tests/fakes/lxd-env.sh with its own socket, storage and bridge. One
# machine of the tiny box through the CLI: up (image uploaded once, the
# machine key and pinned host key written before the first start, a
# static address on the bridge), ssh, a shell provisioner, a forwarded
# port (a proxy device), snapshots, suspend/resume (freeze), a graceful
# halt, halt/up keeps data, a second envfile with the
# same box reuses the image, two machines on an envfile network, destroy leaves no instance and no image.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/fakes/lxd-env.sh"
lxd_start
"$CORRAL" box add "$(dirname "$(test_box tiny)")/catalog.json" >/dev/null 2>&1

mkdir -p "$T/a" "$T/b"
envfile() {
	cat >"$1/corral.yaml" <<YAML
version: 1
machines:
  $2:
    box: corral/tiny
    provider: incus
    memory: 128M
    provider_options:
      incus: { remote: "unix://$LXD_SOCKET", network: $LXD_BRIDGE }
    ports: [{ guest: 8080, host: $3 }]
    provision:
      - shell: { inline: "echo provisioned > ~/prov", privileged: false }
YAML
}
PORT=$(( 20000 + $$ % 20000 ))
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

# A forwarded port is a proxy device listening on 127.0.0.1.
"$CORRAL" ssh web -c 'mkdir -p /tmp/www && echo pong >/tmp/www/index.html && httpd -p 8080 -h /tmp/www' >/dev/null 2>&1
expect_out "a forwarded port reaches the guest" 0 "pong" curl -s --max-time 5 "http://127.0.0.1:$PORT/"

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

# A second envfile with the same box: its own instance, the same image.
(cd "$T/b" && "$CORRAL" up >/dev/null 2>&1)
check "a second envfile gets its own instance" test "$(instances | wc -l)" = 2
check "and reuses the uploaded image" test "$(images | wc -l)" = 1
(cd "$T/b" && "$CORRAL" destroy -f >/dev/null 2>&1)
check "destroying one keeps the image the other uses" test "$(images | wc -l)" = 1

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
  n1: { networks: [{ network: back, ip: ${NETSUB%.0/24}.10 }] }
  n2: { networks: [{ network: back }] }
YAML
# (managed ones only: the host's interfaces, another test's too, are listed)
bridges() { api '/1.0/networks?recursion=1' | jq -r '.metadata[] | select(.managed) | .name' | grep -c '^crl[0-9a-f]\{12\}$'; }
expect_out "two machines on a private network come up" 0 "n2: ssh ready" "$CORRAL" up
check "the envfile network is one managed bridge" test "$(bridges)" = 1
"$CORRAL" ssh n1 -c 'mkdir -p /tmp/www && echo from-n1 >/tmp/www/index.html && httpd -p 8080 -h /tmp/www' >/dev/null 2>&1
expect_out "n2 reaches n1 at its given address" 0 "from-n1" "$CORRAL" ssh n2 -c "wget -qO- http://${NETSUB%.0/24}.10:8080/"
expect_out "n2 has an address of the subnet on eth1" 0 "inet ${NETSUB%.0/24}." "$CORRAL" ssh n2 -c 'ip -4 addr show eth1'
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
