#!/usr/bin/env bash
# The container provider as a security boundary (issue 13): the host
# escapes that worked when guest root was host root, tried as guest root
# (sudo) and as the guest user on the corral/debian-12 box, now fail, and
# the host's file, sysctl, keyring and devices are untouched. Also a few of
# the checks runc's and systemd-nspawn's suites make: masked and read-only
# /proc and /sys paths that cannot be unmounted, no host process visible,
# guest root an unprivileged host id, files the guest makes owned by it.
. "$(dirname "$0")/../lib.sh"

[ "$(uname -m)" = x86_64 ] || { echo "ok - skipped: syscall numbers below are x86_64's"; exit 0; }
box=$(test_box debian-12)
catalog=$(dirname "$box")/catalog.json
mkdir -p "$T/env" "$T/sync"
chown 4321:4321 "$T/sync"
cat >"$T/env/corral.yaml" <<YAML
version: 1
machines:
  deb:
    box: corral/debian-12
    box_url: file://$catalog
    provider: container
    synced_folders: [{ host: $T/sync, guest: /vagrant }]
    # corral's init: exactly Docker's capabilities and /dev list (systemd as
    # PID 1 keeps a few more, docs/providers.md; container-debian.sh boots it)
    provider_options: { container: { init: builtin } }
YAML
# open_by_handle_at (the "shocker" read of host files), the keyring, bpf,
# perf and module and kexec calls: each name with the errno it got.
cat >"$T/sync/probe.py" <<'PY'
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(256)
calls = {"open_by_handle_at": (304, -100, buf, 0), "keyctl": (250, 0, -3),
	 "add_key": (248, b"user", b"x", b"y", 1, -3), "request_key": (249, b"user", b"x", None, 0),
	 "bpf": (321, 0, buf, 64), "perf_event_open": (298, buf, 0, -1, -1, 0),
	 "init_module": (175, buf, 1, b""), "finit_module": (313, 0, b"", 0),
	 "delete_module": (176, b"ext4", 0), "kexec_load": (246, 0, 0, None, 0),
	 "kexec_file_load": (320, -1, -1, 0, None, 0)}
out = []
for name, args in calls.items():
	ctypes.set_errno(0)
	r = libc.syscall(*args)
	out.append("%s=%d" % (name, ctypes.get_errno() if r < 0 else -r))
print(" ".join(out))
PY
chmod 644 "$T/sync/probe.py"
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
on_exit 'kill $marker 2>/dev/null'
M=$T/env/.corral/machines/deb
g() { "$CORRAL" ssh deb -c "$1" 2>&1; }

core_before=$(cat /proc/sys/kernel/core_pattern)
key=corral-escape-$$
python3 -c "import ctypes; l=ctypes.CDLL(None); print(l.syscall(248, b'user', b'$key', b'secret', 6, -4))" >/dev/null
sleep 4242.5 &
marker=$!

expect_out "up" 0 "deb: ssh ready" "$CORRAL" up
pid=$(jq -r .pid "$M/state.json")
base=$(jq -r .idmap_base "$M/state.json")
check "the machine has its own id range" [ "$base" -ge 65536 ]
check "guest uid 0 maps to the range" bash -c "'$CORRAL' ssh deb -c 'cat /proc/self/uid_map' | grep -Eq '^ *0 +$base +65536'"
check "the init is an unprivileged host id" [ "$(stat -c %u /proc/$pid)" = "$base" ]

docker=00000000a80425fb # Docker's 14 default capabilities
expect_out "PID 1 holds Docker's capabilities only" 0 "CapEff:	$docker" g 'grep CapEff /proc/1/status'
expect_out "guest root's bounding set is Docker's" 0 "CapBnd:	$docker" g 'sudo -n grep CapBnd /proc/self/status'
expect_out "guest root's effective set is Docker's" 0 "CapEff:	$docker" g 'sudo -n grep CapEff /proc/self/status'

denied="open_by_handle_at=1 keyctl=1 add_key=1 request_key=1 bpf=1 perf_event_open=1 init_module=1 finit_module=1 delete_module=1 kexec_load=1 kexec_file_load=1"
expect_out "guest root: the dangerous system calls get EPERM" 0 "$denied" g 'sudo -n python3 /vagrant/probe.py'
expect_out "guest user: the same" 0 "$denied" g 'python3 /vagrant/probe.py'

for who in "sudo -n" ""; do
	as=${who:+root}; as=${as:-user}
	expect_fail() { check "guest $as: $1 fails" bash -c "! '$CORRAL' ssh deb -c '$who $2' >/dev/null 2>&1"; }
	expect_fail "a new proc mount" "mount -t proc proc /mnt"
	expect_fail "writing core_pattern" "sh -c \"echo \\\"|/bin/sh -c id\\\" > /proc/sys/kernel/core_pattern\""
	expect_fail "remounting /sys read-write" "mount -o remount,rw /sys"
	expect_fail "a read-write sysfs" "mount -t sysfs sysfs /mnt"
	expect_fail "a devtmpfs" "mount -t devtmpfs devtmpfs /mnt"
	expect_fail "making a block device" "mknod /tmp/vda b 253 0"
	expect_fail "unmounting the mask on /proc/timer_list" "umount /proc/timer_list"
	expect_fail "unmounting read-only /proc/sys" "umount /proc/sys"
	expect_fail "sysrq-trigger" "sh -c \"echo h > /proc/sysrq-trigger\""
	expect_fail "a kernel module" "modprobe dummy"
done
check "the host's core_pattern is unchanged" [ "$(cat /proc/sys/kernel/core_pattern)" = "$core_before" ]
check "the host's keyring is not visible" bash -c "! '$CORRAL' ssh deb -c 'sudo -n cat /proc/keys; cat /proc/keys' | grep -q '$key'"
check "/proc/keys is masked" [ -z "$(g 'sudo -n cat /proc/keys')" ]
check "/proc/kcore is masked" [ -z "$(g 'sudo -n head -c 16 /proc/kcore 2>/dev/null')" ]
check "/proc/timer_list is masked" [ -z "$(g 'sudo -n cat /proc/timer_list')" ]
check "/sys/firmware is empty" [ -z "$(g 'sudo -n ls -A /sys/firmware')" ]
expect_out "/proc/sys is read-only" 0 "ro," g "awk '\$2 == \"/proc/sys\" {print \$4}' /proc/mounts"
check "no block device in /dev" [ -z "$(g 'sudo -n find /dev -type b')" ]
expect_out "/dev holds the allow-list" 0 "full null ptmx pts random shm stderr stdin stdout tty urandom zero" g 'ls /dev | grep -v "^fd$" | xargs'
check "no host process is visible" bash -c "! '$CORRAL' ssh deb -c 'sudo -n cat /proc/[0-9]*/cmdline' | tr '\\0' ' ' | grep -q 4242.5"
check "the host process is alive" kill -0 "$marker"

expect_out "guest root makes a file" 0 "" g 'sudo -n touch /root/made'
check "on the host it belongs to the machine's root id" [ "$(stat -c %u "$M/upper/root/made")" = "$base" ]
expect_out "the synced folder is the guest user's" 0 "vagrant vagrant" g 'stat -c "%U %G" /vagrant'
expect_out "the guest user writes in it" 0 "" g 'touch /vagrant/by-user'
check "on the host its file is the folder owner's" [ "$(stat -c %u:%g "$T/sync/by-user")" = 4321:4321 ]
check "guest root cannot make host root's files there" bash -c "! '$CORRAL' ssh deb -c 'sudo -n touch /vagrant/by-root' 2>/dev/null && [ ! -e '$T/sync/by-root' ]"

expect_out "destroy" 0 "deb: destroyed" "$CORRAL" destroy -f
check "destroy frees the id range" bash -c "! grep -q '$M' \${CORRAL_LIB_DIR:-/var/lib/corral}/idmap.json"
