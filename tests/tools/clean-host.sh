#!/bin/bash
# Removes what earlier test runs left on this host (machines' processes, mounts,
# /run/corral, /run/sshd, corral bridges and links, the nft table, cgroups) but
# the private LXD daemons and registries the incus and OCI tests start, the
# users the rootless tests make, but keeps installed packages and box caches: run it before `bash .ci/run` in a
# fresh clone to check that every test creates what it needs. Root only.
pkill -f "corral __init" 2>/dev/null; pkill -f "corral __portfwd" 2>/dev/null; pkill -f qemu-system 2>/dev/null
pkill -f "lxd --group root --logfile /tmp/(corral-test-tmpfs[^/]*/)?corral-lxd" 2>/dev/null
# what such a daemon leaves when it was killed: its containers' monitors, dnsmasq
pkill -f "lxc monitor\] /tmp/.*corral-lxd" 2>/dev/null; pkill -f "dnsmasq.*/tmp/.*corral-lxd" 2>/dev/null
pkill -f "docker-registry serve" 2>/dev/null; pkill -x pasta 2>/dev/null
sleep 1
for m in $(awk '$2 ~ "^/tmp/(corral-test-tmpfs[^/]*/)?corral-lxd" {print $2}' /proc/mounts | sort -r); do umount -l "$m" 2>/dev/null; done
rm -rf /tmp/corral-lxd.* /tmp/corral-test-tmpfs.*/corral-lxd.*
# the Open vSwitch and OVN daemons of incus-ovn.sh (tests/fakes/ovn-env.sh), by their pid files
for p in /tmp/corral-ovn.*/*.pid /tmp/corral-test-tmpfs.*/corral-ovn.*/*.pid; do [ -s "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
pgrep -x ovs-vswitchd >/dev/null || ip link delete ovs-netdev 2>/dev/null # its netdev datapath's tap
rm -rf /tmp/corral-ovn.*
# Users made by the rootless tests (names start with "crl"), their processes first.
for u in $(awk -F: '$1 ~ /^crl/ {print $1}' /etc/passwd); do
	pkill -KILL -u "$u" 2>/dev/null; userdel -r "$u" >/dev/null 2>&1
	sed -i "/^$u:/d" /etc/subuid /etc/subgid
done
for m in $(awk '$5 ~ /corral/ {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null; done
# (that was also the scratch tmpfs of a tests/run that was killed)
rmdir /tmp/corral-test-tmpfs.* 2>/dev/null
rm -rf /run/corral /run/sshd
for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(corral|ct|cr|vc)' ); do ip link delete "$l" 2>/dev/null; done
nft delete table inet corral 2>/dev/null
for c in /sys/fs/cgroup/*/corral; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null; done
# the cgroups tests delegate to their users (tests/lib.sh user_cgroup) and
# the ones tests/run counts each job's CPU in
for c in /sys/fs/cgroup/corral-test* /sys/fs/cgroup/*/corral-test*; do
	[ -d "$c" ] || continue
	for p in $(find "$c" -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null
done
# veth pairs a killed LXD made for a container that never started: both
# ends still here ("vethA@vethB"; a live container's peer shows as @ifN)
for l in $(ip -o link show type veth | awk -F': ' '{print $2}' | grep -E '^veth[0-9a-f]{8}@veth[0-9a-f]{8}$' | cut -d@ -f1); do
	ip link delete "$l" 2>/dev/null
done
# the network namespace of LXD's second cluster member (lxd-env.sh, LXD_MEMBERS=2)
for n in $(ip netns list 2>/dev/null | awk '$1 ~ /^corral-lxd-/ {print $1}'); do ip netns del "$n"; done
true
