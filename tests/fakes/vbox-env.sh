# Sourced by tests/integration/virtualbox*.sh after tests/lib.sh: points
# corral at the fake VBoxManage (state in $T/vbox), sets its test hooks, builds the VirtualBox
# test box from the tiny box and adds it to the store as corral/tiny-vbox.
# On exit every VM the fake still runs is powered off, so no stand-in guest
# outlives the test.
# The fake's stand-in guests share the host's network stack (a real VM's
# NAT forward would be its own), so two tests using the fake at once could
# both be given host port 2200 for SSH and reach each other's guest: one
# test at a time holds the fake, until it exits.
exec {vbox_fake_lock}>/tmp/corral-test-vbox-fake.lock
flock "$vbox_fake_lock"
export VBOX_FAKE_HOME=$T/vbox
export CORRAL_VBOXMANAGE=$ROOT/tests/fakes/VBoxManage
# Test hooks read by both corral and the fake, so no test depends on the
# host's /etc/vbox or /etc/resolv.conf: host-only ranges (absent: VirtualBox's
# default 192.168.56.0/21) and the resolver that picks the NAT DNS settings.
export CORRAL_VBOX_NETWORKS_CONF=$T/vbox-networks.conf
export CORRAL_VBOX_RESOLV_CONF=$T/vbox-resolv.conf
echo "nameserver 10.0.2.3" >"$CORRAL_VBOX_RESOLV_CONF"
VBM=$CORRAL_VBOXMANAGE

vbox_poweroff_all() {
	local id
	for id in $("$VBM" list runningvms 2>/dev/null | sed -n 's/.*{\(.*\)}$/\1/p'); do
		"$VBM" controlvm "$id" poweroff >/dev/null 2>&1
	done
}
on_exit vbox_poweroff_all

tiny=$(test_box tiny)
"$ROOT/tests/fakes/vbox-testbox" "$tiny" "$T/tiny-vbox.box"
"$CORRAL" box add --name corral/tiny-vbox "$T/tiny-vbox.box" >/dev/null 2>&1

# calls.log as golden files hold it: run-specific values replaced.
vbox_calls() {
	sed -E -e "s#$T#\$T#g" \
		-e 's/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/<uuid>/g' \
		-e 's/_[0-9a-f]{8,10}\b/_<hash>/g' \
		-e 's/ssh,tcp,127\.0\.0\.1,[0-9]+,,22/ssh,tcp,127.0.0.1,<port>,,22/' \
		"$VBOX_FAKE_HOME/calls.log" | awk '!($0 == prev && /^showvminfo/) { print } { prev = $0 }'
}
