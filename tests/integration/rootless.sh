#!/usr/bin/env bash
# corral as an ordinary user (issue 18, phase 1): the test makes a user
# with useradd (and its /etc/subuid and /etc/subgid range), runs corral as
# that user through runuser — no sudo — and removes the user after.
# What phase 1 gives: per-user state (nothing under /run/corral or
# /var/lib/corral), `status` of the user's own machines, and `up` on the
# container provider stopping with an error that names the fix for each
# missing piece of the host (subuid range, uidmap), then, with every piece
# there, saying the rootless mode itself is not there yet.
# (The sysctl case is in tests/unit/test_rootless.c: the host's sysctls are
# not the test's to change.)
. "$(dirname "$0")/../lib.sh"

U=crlrl$$
UH=$T/u
chmod 755 "$T"
useradd -m -d "$UH" -s /bin/sh "$U" || { not_ok "useradd $U"; exit 1; }
on_exit 'userdel -r "$U" >/dev/null 2>&1; sed -i "/^$U:/d" /etc/subuid /etc/subgid'
# useradd gives a range when SUB_UID_COUNT allows it; else one is added.
grep -q "^$U:" /etc/subuid || usermod --add-subuids 500000-565535 --add-subgids 500000-565535 "$U"
check "useradd gave $U a subuid and subgid range" grep -q "^$U:" /etc/subuid /etc/subgid

# as_user CMD...: the user's login environment, none of the test's corral
# variables (so the defaults are what is tested).
as_user() {
	runuser -u "$U" -- env -i HOME="$UH" USER="$U" PATH="${UPATH:-/usr/sbin:/usr/bin:/sbin:/bin}" \
		NO_COLOR=1 "$@"
}

P=$UH/proj
as_user mkdir -p "$P"
as_user sh -c "printf 'version: 1\nmachines:\n  web: { box: corral/tiny, provider: container }\n' >$P/corral.yaml"

expect_out "status as the user: not created, the container provider" 0 "not created (container)" \
	as_user "$CORRAL" -C "$P" status
# Its index is the user's own ($CORRAL_HOME, default ~/.corral): no line
# but the header names a directory outside the user's home.
others() { as_user "$CORRAL" global-status | tail -n +2 | grep -v "$UH/"; }
check "global-status as the user: no machine of anyone else" test -z "$(others)"
expect_out "up as the user, host ready: the rootless mode is named as not there yet" 1 \
	"does not run without root yet" as_user "$CORRAL" -C "$P" up
expect_out "...with the way out" 1 "use the kvm provider" as_user "$CORRAL" -C "$P" up

mkdir -p "$T/bin" && ln -s "$(command -v newgidmap)" "$T/bin/newgidmap"
UPATH=$T/bin expect_out "no newuidmap: the fix is apt-get install uidmap" 1 \
	"apt-get install uidmap" as_user "$CORRAL" -C "$P" up

range=$(grep "^$U:" /etc/subuid | head -n 1 | cut -d: -f2,3)
usermod --del-subuids "${range%:*}-$((${range%:*} + ${range#*:} - 1))" "$U"
expect_out "no subuid range: the fix is usermod --add-subuids" 1 \
	"usermod --add-subuids 100000-165535 --add-subgids 100000-165535 $U" \
	as_user "$CORRAL" -C "$P" up

# Everything the user's corral wrote is the user's, in the user's home.
check "nothing of the user's under /run/corral or /var/lib/corral" \
	test -z "$(find /run/corral /var/lib/corral -user "$U" 2>/dev/null)"
check "every file in the user's project is the user's" \
	test -z "$(find "$P" ! -user "$U")"
