# Sourced after tests/lib.sh and tests/fakes/lxd-env.sh by tests of OVN
# networks on the incus provider: a private Open vSwitch and OVN (Debian
# 12's openvswitch-switch 3.1 and ovn-central/ovn-host 23.03) for this
# test only, with Open vSwitch's USERSPACE datapath: this host's kernel has
# no openvswitch module (and no GENEVE), and a netdev datapath needs none.
#
# ovn_start (before lxd_start: LXD runs ovs-vsctl, which finds this Open
# vSwitch through the OVS_RUNDIR exported here) starts, in a directory of
# its own: ovsdb-server + ovs-vswitchd, the northbound and southbound
# databases (unix sockets only), ovn-northd, and ovn-controller as the one
# chassis (encap geneve on 127.0.0.1: one chassis makes no tunnel), its
# integration bridge OVN_BRIDGE (crlint<pid>, not the usual br-int)
# with datapath_type netdev (external_ids:ovn-bridge-datapath-type).
# other_config:userspace-tso-enable: the userspace datapath reads the
# instances' veths through packet sockets, and a container's TCP leaves
# with its checksum left to the (veth) hardware; without the vnet headers
# this option turns on, OVS forwards it unfinished and the other container
# drops it (found by trying: ping crossed, TCP did not, until
# `ethtool -K eth1 tx off` in the sender, or this).
#
# ovn_lxd (after lxd_start) points the daemon at it
# (network.ovn.northbound_connection, network.ovn.integration_bridge)
# and makes its bridge LXD_BRIDGE an uplink: ipv4.ovn.ranges .200-.220 of
# its /24 (dhcp ranges .2-.199 beside them, as LXD requires). LXD 5.0.2
# makes the uplink's OVS bridge itself (`ovs-vsctl --may-exist add-br
# lxdovn<network id>`) and never sets datapath_type, so a system datapath
# it cannot open here: ovn_lxd makes that bridge first, netdev; LXD's
# --may-exist leaves it so. (Found by trying: without it the patch port
# from the integration bridge says "No usable peer ... exists in 'netdev'
# datapath" and nothing reaches the uplink.)
#
# Sets OVN_ROOT, OVN_BRIDGE, OVN_NB (the northbound socket), OVN_UPLINK
# (= LXD_BRIDGE). ovn_nbctl ARGS... runs ovn-nbctl on it. Everything
# stops on exit, LXD first (its instances leave their OVS ports). Skips
# the test (TAP "1..0 # SKIP") when Open vSwitch or OVN is not installed.

ovn_start() {
	local tool
	for tool in ovsdb-server ovs-vswitchd ovn-northd ovn-controller ovn-nbctl; do
		command -v "$tool" >/dev/null 2>&1 && continue
		echo "1..0 # SKIP $tool is not installed (apt-get install openvswitch-switch ovn-central ovn-host)"
		exit 0
	done
	OVN_ROOT=$(mktemp -d "${TMPDIR:-/tmp}/corral-ovn.XXXXXX")
	export OVS_RUNDIR=$OVN_ROOT OVS_DBDIR=$OVN_ROOT OVS_LOGDIR=$OVN_ROOT OVS_SYSCONFDIR=$OVN_ROOT
	export OVN_RUNDIR=$OVN_ROOT OVN_DBDIR=$OVN_ROOT OVN_LOGDIR=$OVN_ROOT OVN_SYSCONFDIR=$OVN_ROOT
	OVN_BRIDGE=crlint$$
	OVN_BRIDGE=${OVN_BRIDGE:0:15}
	OVN_NB=$OVN_ROOT/nb.sock
	# the netdev datapath's own tap: ours to remove unless it was there before
	OVN_NETDEV_TAP=ovs-netdev
	ip link show ovs-netdev >/dev/null 2>&1 && OVN_NETDEV_TAP=
	on_exit ovn_stop
	ovn_db db /usr/share/openvswitch/vswitch.ovsschema &&
		ovs-vsctl --no-wait init &&
		ovs-vsctl --no-wait set open . other_config:userspace-tso-enable=true &&
		ovs-vswitchd "unix:$OVN_ROOT/db.sock" --pidfile="$OVN_ROOT/vswitchd.pid" \
			--detach --log-file="$OVN_ROOT/vswitchd.log" 2>/dev/null &&
		ovn_db nb /usr/share/ovn/ovn-nb.ovsschema &&
		ovn_db sb /usr/share/ovn/ovn-sb.ovsschema &&
		ovn-northd --ovnnb-db="unix:$OVN_NB" --ovnsb-db="unix:$OVN_ROOT/sb.sock" \
			--pidfile="$OVN_ROOT/northd.pid" --detach --log-file="$OVN_ROOT/northd.log" 2>/dev/null &&
		ovs-vsctl set open . external_ids:system-id=corral-test \
			"external_ids:ovn-remote=unix:$OVN_ROOT/sb.sock" \
			external_ids:ovn-encap-type=geneve external_ids:ovn-encap-ip=127.0.0.1 \
			"external_ids:ovn-bridge=$OVN_BRIDGE" external_ids:ovn-bridge-datapath-type=netdev &&
		ovn-controller "unix:$OVN_ROOT/db.sock" --pidfile="$OVN_ROOT/controller.pid" \
			--detach --log-file="$OVN_ROOT/controller.log" 2>/dev/null || {
		echo "Open vSwitch/OVN did not start:" >&2
		tail -n 5 "$OVN_ROOT"/*.log >&2
		exit 1
	}
	# ovn-controller makes the integration bridge once it has the chassis.
	local i
	for i in $(seq 100); do
		ovs-vsctl br-exists "$OVN_BRIDGE" 2>/dev/null && return 0
		sleep 0.1
	done
	echo "ovn-controller made no integration bridge" >&2
	exit 1
}

# ovn_db NAME SCHEMA: a database NAME.db served by its own ovsdb-server on
# NAME.sock (db.sock: Open vSwitch's own, where ovs-vsctl looks).
ovn_db() {
	ovsdb-tool create "$OVN_ROOT/$1.db" "$2" &&
		ovsdb-server "$OVN_ROOT/$1.db" --remote="punix:$OVN_ROOT/$1.sock" \
			--pidfile="$OVN_ROOT/$1.pid" --unixctl="$OVN_ROOT/$1.ctl" --detach \
			--log-file="$OVN_ROOT/$1.log" 2>/dev/null
}

ovn_nbctl() { ovn-nbctl --db="unix:$OVN_NB" "$@"; }

ovn_lxd() {
	local p=${LXD_GW%.1} id
	OVN_UPLINK=$LXD_BRIDGE
	lxd_rest PATCH /1.0 "{\"config\": {\"network.ovn.northbound_connection\": \"unix:$OVN_NB\", \"network.ovn.integration_bridge\": \"$OVN_BRIDGE\"}}" |
		jq -e '.status_code == 200' >/dev/null && lxd_dnsmasq_gone &&
		lxd_rest PATCH "/1.0/networks/$OVN_UPLINK" "{\"config\": {\"ipv4.dhcp.ranges\": \"$p.2-$p.199\", \"ipv4.ovn.ranges\": \"$p.200-$p.220\"}}" |
		jq -e '.status_code == 200' >/dev/null || {
		echo "lxd would not take OVN" >&2
		exit 1
	}
	id=$(lxd sql global "SELECT id FROM networks WHERE name = '$OVN_UPLINK'" | awk '$2 ~ /^[0-9]+$/ {print $2}')
	OVN_UPLINK_OVS=lxdovn$id
	ovs-vsctl --may-exist add-br "$OVN_UPLINK_OVS" -- set bridge "$OVN_UPLINK_OVS" datapath_type=netdev
}

# The daemon first (its instances' ports leave the bridges), then OVN and
# Open vSwitch, then the tap devices a netdev datapath leaves behind.
ovn_stop() {
	[ -n "${OVN_ROOT:-}" ] || return 0
	lxd_stop
	local f
	for f in controller northd sb nb vswitchd db; do
		[ -s "$OVN_ROOT/$f.pid" ] && kill "$(cat "$OVN_ROOT/$f.pid")" 2>/dev/null
	done
	sleep 0.5
	ip link del "$OVN_BRIDGE" 2>/dev/null
	[ -z "$OVN_NETDEV_TAP" ] || ip link del "$OVN_NETDEV_TAP" 2>/dev/null
	if [ -n "${OVN_UPLINK_OVS:-}" ]; then
		ip link del "$OVN_UPLINK_OVS" 2>/dev/null
		ip link del "${OVN_UPLINK_OVS}a" 2>/dev/null # LXD's veth to the uplink
	fi
	rm -rf "$OVN_ROOT"
	OVN_ROOT=
	return 0
}
