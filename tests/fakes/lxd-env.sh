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
# LXD_MEMBERS=2 (opt-in: a second daemon costs its start and a join) adds
# member "node2": a second daemon in a network namespace of its own
# (LXD_NS), linked to the host by a veth pair on a test-only subnet,
# 198.18.N.0/24 (RFC 2544's benchmark range, N as the bridge's): the host
# side (member 1's cluster address) is .1, the namespace's (member 2's)
# .2 (LXD_MEMBER2_ADDR). It joins with a join token (POST
# /1.0/cluster/members on member 1, then PUT /1.0/cluster on member 2 with
# the token, member 1's cluster certificate (what `lxd init` fetches and
# checks against the token's fingerprint: the daemon wants it sent) and
# member_config: its own `source` of the storage pool). What
# two daemons on one host would clash on, and why they do not here:
#   - their state: each has its own LXD_DIR (nothing goes to /var/lib/lxd;
#     the unix socket, logs, containers, dnsmasq's files are all in it);
#   - the cluster network's bridge: every member makes one of the same name
#     and gateway address; member 2's lives in its namespace (`ip netns
#     exec` also gives it a mount namespace with that namespace's /sys,
#     where LXD looks for interfaces), and so do its dnsmasq and the proxy
#     devices it listens with;
#   - cgroups (lxc.payload.NAME, lxc.monitor.NAME) and liblxc's names: by
#     instance name, unique in the cluster, so two members never share one;
#   - AppArmor profiles: none (this host runs without AppArmor);
#   - /sys: member 2 needs its namespace's (`ip netns exec` mounts one, in a
#     mount namespace of its own) and the host's cgroup hierarchies in it
#     (mounted again there from the host's /proc/mounts).
# Member 2's instances reach neither member 1's bridge nor the host's
# routes: the host reaches them only through proxy devices on .2.
#
# What this host needs, found by trying (Debian 12, cgroup v1 + the
# unified hierarchy, no AppArmor): `lxd --group root` as root; unprivileged
# containers start (LXD shifts the rootfs at first start); raw.lxc is
# allowed in the default project; every directory above LXD_DIR must be
# searchable by others (a container's mapped root walks to its rootfs).
#
# Sets: LXD_DIR, LXD_SOCKET, LXD_BRIDGE, LXD_SUBNET (the /24), LXD_GW,
# LXD_HTTPS (https://127.0.0.1:PORT; with LXD_MEMBERS=2 https://198.18.N.1:PORT),
# LXD_MEMBER, LXD_CLUSTER_CERT, and with LXD_MEMBERS=2: LXD_MEMBER2 ("node2"),
# LXD_MEMBER2_ADDR, LXD_NS, LXD_DIR2.
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
	LXD_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/corral-lxd.XXXXXX")
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
	LXD_LINK=198.18.$n
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
	[ "${LXD_MEMBERS:-1}" != 2 ] || lxd_join
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
	local port addr=127.0.0.1
	port=$(free_port)
	if [ "${LXD_MEMBERS:-1}" = 2 ]; then
		lxd_link || exit 1
		addr=$LXD_LINK.1
	fi
	LXD_HTTPS=https://$addr:$port
	LXD_MEMBER=node1
	LXD_CLUSTER_CERT=$LXD_DIR/cluster.crt
	lxd_rest PATCH /1.0 "{\"config\": {\"core.https_address\": \"$addr:$port\"}}" >/dev/null
	# The bootstrap starts the bridge again (networkStartup) and only logs
	# a failure: the bridge stays unavailable (see lxd_dnsmasq_gone).
	lxd_dnsmasq_gone
	if ! lxd_rest PUT /1.0/cluster "{\"server_name\": \"$LXD_MEMBER\", \"enabled\": true}" |
		jq -e '.status_code == 200' >/dev/null; then
		echo "lxd could not bootstrap a cluster" >&2
		exit 1
	fi
}

# LXD starts a bridge again (cluster bootstrap, a PATCH of its config) by
# SIGKILLing its dnsmasq and starting another 100 ms later, without waiting
# for the first to be gone (dnsmasq.Kill); on a busy host the old one may
# still hold $LXD_GW:53, the new one exits "Address already in use", and
# LXD marks the bridge unavailable (no OVN network over it: "Uplink network
# ... is unavailable") until it retries a minute later. Before such a
# restart: end the dnsmasq here and wait until it is gone.
lxd_dnsmasq_gone() {
	local pid i
	pid=$(awk '$1 == "pid:" {print $2}' "$LXD_DIR/networks/$LXD_BRIDGE/dnsmasq.pid" 2>/dev/null)
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || return 0
	for i in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.05
	done
}

# The namespace of member 2 and its veth to the host.
lxd_link() {
	LXD_NS=corral-lxd-$$
	LXD_VETH=clxd$$
	LXD_VETH=${LXD_VETH:0:13}
	on_exit lxd_unlink
	ip netns add "$LXD_NS" &&
		ip link add "${LXD_VETH}h" type veth peer name "${LXD_VETH}n" netns "$LXD_NS" &&
		ip addr add "$LXD_LINK.1/24" dev "${LXD_VETH}h" && ip link set "${LXD_VETH}h" up &&
		ip -n "$LXD_NS" addr add "$LXD_LINK.2/24" dev "${LXD_VETH}n" &&
		ip -n "$LXD_NS" link set "${LXD_VETH}n" up && ip -n "$LXD_NS" link set lo up
}

lxd_unlink() {
	ip link del "${LXD_VETH}h" 2>/dev/null
	ip netns del "$LXD_NS" 2>/dev/null
	return 0
}

# Member 2: a daemon in LXD_NS, joined to member 1's cluster.
lxd_join() {
	local token body out
	LXD_MEMBER2=node2
	LXD_MEMBER2_ADDR=$LXD_LINK.2
	LXD_DIR2=$LXD_ROOT/lxd2
	mkdir -p "$LXD_DIR2" "$LXD_ROOT/storage2"
	# `ip netns exec` mounts a fresh /sys (the namespace's interfaces): the
	# host's cgroup hierarchies under it are mounted again there, as the
	# host has them, for liblxc to put member 2's containers in.
	local cgroups
	cgroups=$(awk '$2 ~ "^/sys/fs/cgroup/" && ($3 == "cgroup" || $3 == "cgroup2") {print $3, $2, $4}' /proc/mounts)
	LXD_DIR=$LXD_DIR2 ip netns exec "$LXD_NS" sh -c '
		mount -t tmpfs -o mode=755 tmpfs /sys/fs/cgroup || exit 1
		printf "%s\n" "$1" | while read -r type dir opts; do
			[ -z "$type" ] || { mkdir -p "$dir" && mount -t "$type" -o "$opts" "$type" "$dir"; } || exit 1
		done || exit 1
		shift; exec "$@"' sh "$cgroups" lxd --group root --logfile "$LXD_ROOT/lxd2.log" \
		>"$LXD_ROOT/lxd2.out" 2>&1 &
	LXD_PID2=$!
	if ! LXD_DIR=$LXD_DIR2 lxd waitready --timeout 60; then
		echo "lxd (member 2) did not start:" >&2
		tail -n 20 "$LXD_ROOT/lxd2.out" >&2
		exit 1
	fi
	# Not lxd_rest: the token's operation runs until the token is used.
	token=$(curl -s --unix-socket "$LXD_SOCKET" -X POST -H 'Content-Type: application/json' \
		-d "{\"server_name\": \"$LXD_MEMBER2\"}" http://lxd/1.0/cluster/members |
		jq -r '.metadata.metadata | {server_name: .serverName, fingerprint, addresses,
			secret, expires_at: .expiresAt} | @json | @base64')
	body=$(jq -n --arg t "$token" --arg a "$LXD_MEMBER2_ADDR:8443" --arg c "${LXD_HTTPS#https://}" \
		--arg n "$LXD_MEMBER2" --arg s "$LXD_ROOT/storage2" --rawfile crt "$LXD_CLUSTER_CERT" \
		'{server_name: $n, enabled: true, server_address: $a, cluster_address: $c,
		  cluster_certificate: $crt, cluster_password: $t,
		  member_config: [{entity: "storage-pool", name: "default", key: "source", value: $s}]}')
	out=$(LXD_SOCKET=$LXD_DIR2/unix.socket lxd_rest PUT /1.0/cluster "$body")
	if ! jq -e '.status_code == 200' <<<"$out" >/dev/null; then
		echo "lxd (member 2) could not join the cluster: $out" >&2
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
		if [ -n "${LXD_DIR2:-}" ]; then
			mkdir -p "$LXD_KEEP_LOGS/${LXD_ROOT##*/}/m2"
			cp -r "$LXD_ROOT/lxd2.log" "$LXD_DIR2/logs" "$LXD_KEEP_LOGS/${LXD_ROOT##*/}/m2" 2>/dev/null
		fi
	fi
	for c in $(lxc list --format csv -c n 2>/dev/null); do
		lxc delete --force "$c" >/dev/null 2>&1
	done
	# Member 2 first: member 1 holds the cluster's database.
	if [ -n "${LXD_PID2:-}" ]; then
		LXD_DIR=$LXD_DIR2 lxd shutdown --timeout 30 >/dev/null 2>&1 || kill "$LXD_PID2" 2>/dev/null
		wait "$LXD_PID2" 2>/dev/null
		LXD_PID2=
	fi
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
