#!/usr/bin/env bash
# examples/kvm, run as its README and its envfile's comment say: the tiny
# kvm box built and added from its catalog, corral up (QEMU, direct kernel
# boot, first-boot key swap, the shell step), ssh -c, a snapshot with
# memory saved and restored, halt, destroy. Prints which accelerator ran.
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny-kvm) # the README's `boxes/build tiny-kvm | tail -n 1`
expect_out "box add (README)" 0 "corral/tiny-kvm" corral box add "$(dirname "$box")/catalog.json"
example kvm

out=$(corral up 2>&1)
accel=$(grep -o 'starting QEMU ([A-Z]*)' <<<"$out" | tail -n 1 | tr -dc A-Z)
echo "# accelerator: ${accel#QEMU}"
check "corral up: QEMU, ssh ready, provisioned" grep -qz 'starting QEMU.*vm: ssh ready.*hello from vm' <<<"$out"
[[ $out == *"ssh ready"* ]] || printf '%s\n' "$out" | tail -n 30 | sed 's/^/#   /'
expect_out "corral ssh -c 'cat ~/hello'" 0 "hello from vm, kernel" corral ssh -c 'cat ~/hello'
expect_out "corral snapshot save clean" 0 "snapshot clean saved" corral snapshot save clean
corral ssh -c 'echo later > ~/later' >/dev/null 2>&1
expect_out "corral snapshot restore clean" 0 "snapshot clean restored" corral snapshot restore clean
expect_out "the restored machine is as it was saved" 1 "" corral ssh -c 'test -e ~/later'
expect_out "corral halt" 0 "vm: stopped" corral halt
expect_out "corral destroy" 0 "vm: destroyed" corral destroy
check "no QEMU left" bash -c '! pgrep -f -- "-pidfile $1/" >/dev/null' _ "$EX/.corral/machines/vm"
