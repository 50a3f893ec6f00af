# Sourced after tests/lib.sh by tests of the incus provider: a private LXD
# daemon (Debian 12's `lxd` 5.0.2, the API lineage Incus keeps) for this
# test only. lxd_start starts it with its own LXD_DIR (its own unix
# socket) in a directory of its own beside $T (its mounts are the
# daemon's, not a machine's: tests check that nothing stays mounted under
# $T), waits for it, and bootstraps it with `lxd init --preseed`:
# a `dir` storage pool there and a managed bridge with an explicit
# subnet of 10.219.0.0/16 (never the host's), no NAT and no firewall rules
# (a second daemon on the host must not touch the first's nftables table).
# It is shut down, and its bridge removed, on exit.
#
# The daemon is then made a single-member cluster (member LXD_MEMBER,
# "node1"), as a team's cluster would be: core.https_address on a free
# loopback port (LXD_HTTPS), then PUT /1.0/cluster. From then on the
# server's HTTPS certificate is the cluster's (LXD_CLUSTER_CERT), new
# networks are defined per member first, and instances have a location.
# LXD_STANDALONE=1 leaves it a plain daemon (to compare: bench/incus-up).
#
# What this host needs, found by trying (Debian 12, cgroup v1 + the
# unified hierarchy, no AppArmor): `lxd --group root` as root; unprivileged
# containers start (LXD shifts the rootfs at first start); raw.lxc is
# allowed in the default project; every directory above LXD_DIR must be
# searchable by others (a container's mapped root walks to its rootfs).
#
# Sets: LXD_DIR, LXD_SOCKET, LXD_BRIDGE, LXD_SUBNET (the /24), LXD_GW,
# LXD_HTTPS (https://127.0.0.1:PORT), LXD_MEMBER, LXD_CLUSTER_CERT.
# lxd_rest METHOD PATH [JSON] calls the REST API on the socket (an async
# answer followed to its end); lxd_trust CERT makes the daemon trust a
# client certificate (POST /1.0/certificates). LXD_KEEP_LOGS=DIR keeps
# the daemon's and its instances' logs there on exit (to read a failure).
# Skips the whole test (TAP "1..0 # SKIP") when lxd is not installed.

lxd_start() {
	if ! command -v lxd >/dev/null 2>&1; then
		echo "1..0 # SKIP lxd is not installed (apt-get install lxd)"
		exit 0
	fi
	LXD_ROOT=$(mktemp -d /tmp/corral-lxd.XXXXXX)
	# The containers' root (a mapped uid) must traverse to their rootfs:
	# mktemp made the directory 0700.
	chmod 711 "$LXD_ROOT"
	export LXD_DIR=$LXD_ROOT/lxd
	LXD_SOCKET=$LXD_DIR/unix.socket
	# Per-test names: tests run in parallel, each with its own daemon.
	# The /24 is drawn from the PID; one another daemon's bridge already
	# routes (PIDs 200 apart) is skipped.
	local n=$(( ($$ % 200) + 20 )) i
	for i in $(seq 200); do
		ip -4 route show | grep -q "^10\.219\.$n\.0/24 " || break
		n=$(( (n - 19) % 200 + 20 ))
	done
	LXD_BRIDGE=crl$$
	LXD_BRIDGE=${LXD_BRIDGE:0:15}
	LXD_SUBNET=10.219.$n.0/24
	LXD_GW=10.219.$n.1
	mkdir -p "$LXD_DIR" "$LXD_ROOT/storage"
	lxd --group root --logfile "$LXD_ROOT/lxd.log" >"$LXD_ROOT/lxd.out" 2>&1 &
	LXD_PID=$!
	on_exit lxd_stop
	if ! lxd waitready --timeout 60; then
		echo "lxd did not start:" >&2
		tail -n 20 "$LXD_ROOT/lxd.out" >&2
		exit 1
	fi
	lxd init --preseed <<EOF || exit 1
storage_pools:
- name: default
  driver: dir
  config:
    source: $LXD_ROOT/storage
networks:
- name: $LXD_BRIDGE
  type: bridge
  config:
    ipv4.address: $LXD_GW/24
    ipv4.nat: "false"
    ipv4.firewall: "false"
    ipv6.address: none
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
    eth0:
      name: eth0
      network: $LXD_BRIDGE
      type: nic
EOF
	[ -n "${LXD_STANDALONE:-}" ] || lxd_cluster
}

lxd_rest() {
	local out op
	out=$(curl -s --unix-socket "$LXD_SOCKET" -X "$1" ${3:+-H 'Content-Type: application/json' -d "$3"} "http://lxd$2")
	op=$(jq -r 'select(.type == "async") | .operation' <<<"$out")
	[ -n "$op" ] && out=$(curl -s --unix-socket "$LXD_SOCKET" "http://lxd$op/wait?timeout=60")
	printf '%s\n' "$out"
}

# The daemon as a one-member cluster on a free loopback port.
lxd_cluster() {
	local port
	port=$(free_port)
	LXD_HTTPS=https://127.0.0.1:$port
	LXD_MEMBER=node1
	LXD_CLUSTER_CERT=$LXD_DIR/cluster.crt
	lxd_rest PATCH /1.0 "{\"config\": {\"core.https_address\": \"127.0.0.1:$port\"}}" >/dev/null
	if ! lxd_rest PUT /1.0/cluster "{\"server_name\": \"$LXD_MEMBER\", \"enabled\": true}" |
		jq -e '.status_code == 200' >/dev/null; then
		echo "lxd could not bootstrap a cluster" >&2
		exit 1
	fi
}

lxd_trust() {
	local pem
	pem=$(sed '/-----/d' "$1" | tr -d '\n')
	lxd_rest POST /1.0/certificates "{\"type\": \"client\", \"name\": \"corral-test\", \"certificate\": \"$pem\"}" |
		jq -e '.status_code == 200' >/dev/null
}

# Stops what the test left running, then the daemon (which removes its
# bridge and dnsmasq), then makes sure.
lxd_stop() {
	[ -n "${LXD_PID:-}" ] || return 0
	local c
	# LXD_KEEP_LOGS=DIR keeps the daemon's log and its instances' (to
	# read after a failure) in DIR/corral-lxd.XXXXXX.
	if [ -n "${LXD_KEEP_LOGS:-}" ]; then
		mkdir -p "$LXD_KEEP_LOGS/${LXD_ROOT##*/}"
		cp -r "$LXD_ROOT/lxd.log" "$LXD_ROOT/lxd.out" "$LXD_DIR/logs" "$LXD_KEEP_LOGS/${LXD_ROOT##*/}/" 2>/dev/null
	fi
	for c in $(lxc list --format csv -c n 2>/dev/null); do
		lxc delete --force "$c" >/dev/null 2>&1
	done
	lxd shutdown --timeout 30 >/dev/null 2>&1 || kill "$LXD_PID" 2>/dev/null
	wait "$LXD_PID" 2>/dev/null
	ip link del "$LXD_BRIDGE" 2>/dev/null
	# Whatever the daemon left mounted goes before its directory does.
	local mnt
	for mnt in $(awk -v r="$LXD_ROOT/" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r); do
		umount -l "$mnt" 2>/dev/null
	done
	rm -rf "$LXD_ROOT"
	LXD_PID=
	return 0
}
