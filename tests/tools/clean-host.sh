#!/bin/bash
# Removes what earlier test runs left on this host (machines' processes, mounts,
# /run/corral, /run/sshd, corral bridges and links, the nft table, cgroups) but
# keeps installed packages and box caches: run it before `bash .ci/run` in a
# fresh clone to check that every test creates what it needs. Root only.
pkill -f "corral __init" 2>/dev/null; pkill -f "corral __portfwd" 2>/dev/null; pkill -f qemu-system 2>/dev/null
sleep 1
for m in $(awk '$5 ~ /corral/ {print $5}' /proc/self/mountinfo | sort -r); do umount -l "$m" 2>/dev/null; done
rm -rf /run/corral /run/sshd
for l in $(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^(corral|ct|cr|vc)' ); do ip link delete "$l" 2>/dev/null; done
nft delete table inet corral 2>/dev/null
for c in /sys/fs/cgroup/*/corral; do [ -d "$c" ] && find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null; done
true
