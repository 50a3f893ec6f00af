#!/usr/bin/env bash
# A real role layout (roles/, group_vars/, a handler that restarts the
# service, the service enabled at boot) provisioned on a three-machine
# topology, then `corral reload`: the service must be back without
# provisioning again. Twice: on a box made by mmdebstrap without systemd
# (sysvinit scripts, users made by useradd; corral's init starts rc2.d)
# and on the Debian box whose init is systemd.
. "$(dirname "$0")/../lib.sh"

for recipe in debian-12-sysv debian-12; do
	box=$(test_box "$recipe")
	name=corral/$recipe
	P=$T/$recipe
	cp -r "$ROOT/tests/fixtures/roles-topology" "$P"
	export BOX=$name
	expect_out "$recipe: box add" 0 "$name" "$CORRAL" box add "$(dirname "$box")/catalog.json"
	on_exit "BOX=$name \"\$CORRAL\" -C \"$P\" destroy -f >/dev/null 2>&1"
	expect_out "$recipe: validate (no group named like a machine)" 0 "ok (3 machines)" \
		"$CORRAL" -C "$P" validate
	out=$("$CORRAL" -C "$P" up 2>&1)
	rc=$?
	check "$recipe: up provisions the topology with the roles" [ "$rc" -eq 0 ]
	[ "$rc" -eq 0 ] || printf '%s\n' "$out" | tail -n 25 | sed 's/^/#   /'
	if [ "$recipe" = debian-12-sysv ]; then
		expect_out "$recipe: status -v lists the rc2.d services the built-in init started" 0 \
			"/etc/rc2.d: S01ssh started" "$CORRAL" -C "$P" -v status db
		expect_out "$recipe: the built-in init is PID 1" 0 "__init" \
			"$CORRAL" -C "$P" ssh db -c "tr '\\0' ' ' </proc/1/cmdline"
		expect_out "$recipe: the guest's own sshd serves port 22" 0 \
			"port 22 is served by the guest's own sshd" cat "$P/.corral/machines/db/console.log"
	fi
	serves() { "$CORRAL" -C "$P" ssh "$1" -c 'python3 -c "import urllib.request as u; print(u.urlopen(\"http://127.0.0.1:8081/\").read().decode())"' 2>&1; }
	expect_out "$recipe: web-1 serves its page" 0 "hello from web-1" serves web-1
	expect_out "$recipe: web-2 too" 0 "hello from web-2" serves web-2
	check "$recipe: the service runs as the useradd-made user" \
		sh -c '"$0" -C "$1" ssh web-1 -c "ps -o user= -C python3" | grep -qx webapp' "$CORRAL" "$P"
	again=$("$CORRAL" -C "$P" provision 2>&1)
	check "$recipe: a second run changes nothing" grep -Eq 'web-1 +: ok=[0-9]+ +changed=0 ' <<<"$again"
	expect_out "$recipe: reload" 0 "" "$CORRAL" -C "$P" reload
	expect_out "$recipe: after reload the enabled service is back on web-1" 0 "hello from web-1" serves web-1
	expect_out "$recipe: and on web-2" 0 "hello from web-2" serves web-2
	"$CORRAL" -C "$P" halt web-2 >/dev/null 2>&1
	"$CORRAL" -C "$P" up web-2 >/dev/null 2>&1
	expect_out "$recipe: after halt and up too" 0 "hello from web-2" serves web-2
	expect_out "$recipe: destroy" 0 "destroyed" "$CORRAL" -C "$P" destroy -f
done
