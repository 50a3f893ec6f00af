#!/usr/bin/env bash
# Container limits (cgroups): a fork bomb stops at the pids limit with the
# host and the machine's SSH fine; a memory hog is killed by the memory
# limit; root in the guest that mounts the cgroup controllers writes only
# its own sub-cgroup, never the machine's limits; the device controller
# lets the guest open only the basic nodes; a limit the host cannot apply
# fails `up` naming it, and is a warning under `limits: best-effort`;
# `disk:` bounds the upper layer (an image of its own), which persists.
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny)
"$CORRAL" box add "$(dirname "$box")/catalog.json" >/dev/null 2>&1
mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<YAML
version: 1
defaults: { box: corral/tiny, provider: container, ssh: { user: root } }
machines:
  lim:
    memory: 64M
    provider_options: { container: { pids: 64 } }
  small: { autostart: false, disk: 64M }
  nofs: { autostart: false, disk: 64M }
  nofslax:
    autostart: false
    disk: 64M
    provider_options: { container: { limits: best-effort } }
  strict: { autostart: false }
  lax:
    autostart: false
    provider_options: { container: { limits: best-effort } }
YAML
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'

expect_out "up" 0 "lim: ssh ready" "$CORRAL" up
id=$(jq -r .machine_id .corral/machines/lim/state.json)
if [ "$(stat -f -c %T /sys/fs/cgroup)" = cgroup2fs ]; then
	cg() { echo "/sys/fs/cgroup/corral/$id/$2"; }
	oom_kills() { awk '$1 == "oom_kill" { print $2 }' "$(cg memory memory.events)"; }
	memfile=memory.max lost=cpus
else
	cg() { echo "/sys/fs/cgroup/$1/corral/$id/$2"; }
	oom_kills() { awk '$1 == "oom_kill" { print $2 }' "$(cg memory guest/memory.oom_control)"; }
	memfile=memory.limit_in_bytes lost=pids
fi
check "the pids limit is set" [ "$(cat "$(cg pids pids.max)")" = 64 ]
check "the memory limit is set" [ "$(cat "$(cg memory $memfile)")" = 67108864 ]

# The bomb runs for a few seconds. Whether the session's own shell can
# still fork afterwards is a race (busybox sh exits 2 when it cannot), so
# only the refusal is checked here; the checks below show the host and the
# machine survive.
bomb=$(timeout 60 "$CORRAL" ssh lim -c 'b() { b | b & }; b; sleep 3; echo done' 2>&1)
check "a fork bomb hits the pids limit" grep -q "can't fork" <<<"$bomb"
check "the machine never held more tasks than the limit" bash -c \
	"[ \$(cat '$(cg pids pids.peak)' 2>/dev/null || echo 64) -le 64 ]"
check "the host still forks" bash -c 'for i in $(seq 50); do /bin/true || exit 1; done'
expect_out "the machine still answers over SSH" 0 "alive" timeout 30 "$CORRAL" ssh lim -c 'echo alive'

expect_out "a memory hog is killed" 0 "rc=137" "$CORRAL" ssh lim -c 'tail /dev/zero; echo rc=$?'
check "by the machine's memory limit (an OOM kill in its cgroup)" [ "$(oom_kills)" -ge 1 ]

if [ "$memfile" = memory.limit_in_bytes ]; then
	# In its user namespace guest root cannot mount a v1 hierarchy at all;
	# where it could, it would see and raise only its own view. Either way
	# the machine's limits below stay as they were.
	tried=$("$CORRAL" ssh lim -c 'mkdir -p /mnt/p /mnt/m &&
			mount -t cgroup -o pids cg /mnt/p && mount -t cgroup -o memory cg /mnt/m &&
			echo max >/mnt/p/pids.max && echo 1073741824 >/mnt/m/memory.limit_in_bytes &&
			[ ! -e /mnt/p/release_agent ] && echo raised' 2>&1)
	check "guest root's try at the cgroup controllers: refused, or only its own view" \
		grep -Eq 'raised|permission denied|not permitted' <<<"$tried"
else
	expect_out "guest root mounts cgroup2 and writes what it sees" 0 "raised" \
		"$CORRAL" ssh lim -c 'mkdir -p /mnt/c && mount -t cgroup2 cg /mnt/c &&
			echo max >/mnt/c/pids.max; echo max >/mnt/c/memory.max; echo raised'
fi
check "the machine's pids limit is unchanged" [ "$(cat "$(cg pids pids.max)")" = 64 ]
check "the machine's memory limit is unchanged" [ "$(cat "$(cg memory $memfile)")" = 67108864 ]
expect_out "a memory hog is still killed" 0 "rc=137" "$CORRAL" ssh lim -c 'tail /dev/zero; echo rc=$?'

expect_out "the basic device nodes open" 0 "ok" "$CORRAL" ssh lim -c \
	'head -c1 /dev/zero >/dev/null && head -c1 /dev/urandom >/dev/null && echo ok'
if [ "$memfile" = memory.limit_in_bytes ]; then
	# A devtmpfs mount (when root in the guest may still mount one) shows every host device.
	expect_out "other devices do not open" 0 "denied" "$CORRAL" ssh lim -c \
		'mkdir -p /mnt/d; if mount -t devtmpfs d /mnt/d 2>/dev/null; then
			head -c1 /mnt/d/mem >/dev/null 2>&1 || echo denied; else echo denied; fi'
fi

# disk: the upper layer on a 64M image of the machine's own.
expect_out "up with disk:" 0 "small: ssh ready" "$CORRAL" up small
check "the upper layer is on the machine's image" bash -c \
	"findmnt -n -o SOURCE --target .corral/machines/small/layer/upper | grep -q /dev/loop"
expect_out "writing past disk: fails in the guest" 0 "No space left on device" \
	"$CORRAL" ssh small -c 'dd if=/dev/zero of=/big bs=1M count=100 2>&1; rm -f /big; echo kept >/kept'
expect_out "halt" 0 "small: stopped" "$CORRAL" halt small
check "halt unmounts the image" bash -c "! findmnt .corral/machines/small/layer >/dev/null"
expect_out "up again" 0 "small: ssh ready" "$CORRAL" up small
expect_out "the upper layer persists on the image" 0 "kept" "$CORRAL" ssh small -c 'cat /kept'
expect_out "destroy removes the image" 0 "small: destroyed" "$CORRAL" destroy -f small
check "nothing of it is left" bash -c \
	"[ ! -e .corral/machines/small/disk.img ] && ! findmnt .corral/machines/small/layer >/dev/null"

# A host whose mkfs.ext4 fails: the disk limit cannot be made. An error
# naming it and leaving no image; under best-effort a warning, and the
# machine runs without it.
mkdir -p "$T/nofs"
printf '#!/bin/sh\necho "mkfs.ext4: no space for the journal" >&2\nexit 1\n' >"$T/nofs/mkfs.ext4"
chmod +x "$T/nofs/mkfs.ext4"
expect_out "disk: a host that cannot make its image fails up, naming the limit" 1 \
	"nofs: the \`disk\` limit could not be applied: mkfs.ext4" env PATH="$T/nofs:$PATH" "$CORRAL" up nofs
check "...and leaves no image" test ! -e .corral/machines/nofs/disk.img
expect_out "disk: under limits: best-effort it is a warning" 0 \
	"nofslax: the \`disk\` limit is not applied (limits: best-effort): mkfs.ext4" \
	env PATH="$T/nofs:$PATH" "$CORRAL" up nofslax
check "...and the machine runs without it" bash -c \
	"[ ! -e .corral/machines/nofslax/disk.img ] && \"\$1\" ssh nofslax -c true" _ "$CORRAL"

# A host whose pids controller refuses corral: a read-only tmpfs over it,
# in a mount namespace of this test's own.
unable() { unshare -m --propagation private sh -c \
	"mount -t tmpfs -o ro none /sys/fs/cgroup/pids 2>/dev/null || mount -t tmpfs -o ro none /sys/fs/cgroup; exec \"\$@\"" sh "$@"; }
expect_out "a limit the host cannot apply fails up, naming it" 1 "the \`$lost\` limit could not be applied" \
	unable "$CORRAL" up strict
expect_out "under limits: best-effort it is a warning" 0 "the \`$lost\` limit is not applied" \
	unable "$CORRAL" up lax
expect_out "destroy" 0 "lim: destroyed" "$CORRAL" destroy -f
check "no cgroup is left" bash -c "! ls -d /sys/fs/cgroup/*/corral/$id /sys/fs/cgroup/corral/$id 2>/dev/null | grep -q ."
