#!/usr/bin/env bash
# The README's path on the real corral/debian-12 container box (PAM,
# sudo, python3, systemd; no host keys in the box): up (init auto boots the
# box's systemd: its /sbin/init is systemd), a command over SSH, sudo,
# halt/up keeping a file, reload, destroy leaving nothing; a forwarded UDP
# port carrying two clients' datagrams to a real echo server in the guest
# after corral has exited. (The built-in init starting a Debian box's
# /etc/rc2.d services, its ssh among them: roles-topology.sh's sysv box.)
. "$(dirname "$0")/../lib.sh"

box=$(test_box debian-12)
catalog=$(dirname "$box")/catalog.json
uport=$(rand_port)
mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<YAML
version: 1
machines:
  deb:
    box: corral/debian-12
    box_url: file://$catalog
    provider: container
    hostname: deb.corral.test
    ports: [{ guest: 5300, host: $uport, protocol: udp }]
YAML
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
M=$T/env/.corral/machines/deb

expect_out "up" 0 "deb: ssh ready" "$CORRAL" up
expect_out "init auto boots the box's systemd" 0 "systemd" "$CORRAL" ssh deb -c 'cat /proc/1/comm'
expect_out "systemd started sshd itself" 0 "active" "$CORRAL" ssh deb -c 'sudo -n systemctl is-active ssh'
expect_out "status -v names systemd" 0 "init: the box's systemd" "$CORRAL" -v status deb
expect_out "ssh runs a command" 0 'VERSION_CODENAME=bookworm' "$CORRAL" ssh deb -c 'cat /etc/os-release'
expect_out "the hostname is the envfile's" 0 "deb.corral.test" "$CORRAL" ssh deb -c 'hostname'
expect_out "password-less sudo" 0 "root" "$CORRAL" ssh deb -c 'sudo -n id -un'
expect_out "/etc/hosts names the machine" 0 "deb.corral.test" "$CORRAL" ssh deb -c 'cat /etc/hosts'
expect_out "the default route is the bridge" 0 "default via 10.213." "$CORRAL" ssh deb -c 'ip route'

# The echo server prefixes each datagram; the client asks from two sockets
# (two sessions) and retries while the server is still starting.
echo_py='import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("", 5300))
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b"echo:" + d, a)'
udp_clients() {
	python3 - "$uport" <<'PY'
import socket, sys
port = int(sys.argv[1])
cs = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
def ask(c, msg):
    c.settimeout(0.5)
    for _ in range(20):
        c.sendto(msg, ("127.0.0.1", port))
        try:
            return c.recv(2048).decode()
        except socket.timeout:
            pass
    return "timeout"
print(ask(cs[0], b"one"), ask(cs[1], b"two"), ask(cs[0], b"three"))
PY
}
expect_out "port lists the UDP forward" 0 "5300 (guest) => $uport (host 127.0.0.1, udp)" "$CORRAL" port deb
"$CORRAL" ssh deb -c "nohup python3 -c '$echo_py' >/dev/null 2>&1 </dev/null &"
expect_out "a forwarded UDP port reaches the guest, each client gets its replies" 0 \
	"echo:one echo:two echo:three" udp_clients
expect_out "write a file as root" 0 "" "$CORRAL" ssh deb -c 'echo kept | sudo tee /etc/kept'
expect_out "halt" 0 "deb: stopped" "$CORRAL" halt
expect_out "up again" 0 "deb: ssh ready" "$CORRAL" up
expect_out "the file survived" 0 "kept" "$CORRAL" ssh deb -c 'cat /etc/kept'
expect_out "reload" 0 "deb: ssh ready" "$CORRAL" reload
expect_out "running after reload" 0 "running" "$CORRAL" status
id=$(jq -r .machine_id "$M/state.json")
expect_out "destroy" 0 "deb: destroyed" "$CORRAL" destroy -f
check "nothing left: dir, mounts, links, cgroups" bash -c "[ ! -e '$M' ] && ! grep -q '$T' /proc/mounts &&
	! ip -br link | grep -q cr-${id:0:10} && [ ! -e /sys/fs/cgroup/cpu/corral/$id ]"
