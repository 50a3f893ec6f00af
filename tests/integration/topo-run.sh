#!/usr/bin/env bash
# Running a topology (issue 17): readiness probes (tcp, http, command; a
# probe that does not pass fails `up` with its output), depends_on waiting
# for the dependency's probes, and `corral reset` back to the `provisioned`
# checkpoint. Two tiny container machines whose services start from
# /etc/rc2.d, so that they come back after a reset.
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny)
url="file://$(dirname "$box")/catalog.json"
# A provisioning step that installs a busybox httpd on PORT as an rc2.d
# service, starts it now, and leaves a file behind.
svc() {
	printf 'mkdir -p /www /etc/rc2.d && echo ok >/www/health && printf "#!/bin/sh\\nhttpd -p %s -h /www\\n" >/etc/rc2.d/S50web && chmod +x /etc/rc2.d/S50web && /etc/rc2.d/S50web && echo provisioned >/root/prov' "$1"
}
mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<EOF
version: 1
defaults: { box: corral/tiny, box_url: "$url", provider: container, ssh: { user: root } }
machines:
  db:
    provision:
      - shell: { inline: '$(svc 5432)', privileged: false }
      - shell: { name: extra, run: never, inline: "touch /root/extra", privileged: false }
    ready:
      - { tcp: 5432 }
      - { command: "test -f /root/prov", interval: 200ms }
  web:
    depends_on: [db]
    ports: [{ guest: 8080, auto_correct: true }]
    provision:
      - shell: { inline: '$(svc 8080)', privileged: false }
    ready:
      - { http: "http://localhost:8080/health", status: 200 }
EOF
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
expect_out "validate takes ready probes" 0 "" "$CORRAL" validate
out=$("$CORRAL" up 2>&1)
rc=$?
check "up with probes" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | sed 's/^/#   /'
check "each probe is reported ready" \
	grep -q 'db: ready: tcp 5432' <<<"$out"
check "the http probe went through the forwarded port" grep -q 'web: ready: http http://localhost:8080/health' <<<"$out"
# depends_on: web starts only after db's probes passed.
ready_line=$(grep -n 'db: ready: command' <<<"$out" | head -n1 | cut -d: -f1)
web_line=$(grep -n 'web: creating' <<<"$out" | head -n1 | cut -d: -f1)
check "depends_on waits for the dependency's probes" bash -c '[ -n "$1" ] && [ -n "$2" ] && [ "$1" -lt "$2" ]' _ "$ready_line" "$web_line"
check "the provisioned checkpoint is taken" grep -q "db: checkpoint \`provisioned\` taken" <<<"$out"

# reset: what changed after provisioning goes, what provisioning made stays.
"$CORRAL" ssh db -c 'echo later >/root/after && rm /root/prov.keep 2>/dev/null; true'
"$CORRAL" ssh web -c 'echo later >/root/after'
"$CORRAL" provision db --provision-with extra >/dev/null 2>&1
check "a step run after the checkpoint is recorded" \
	test "$(jq '.provisioned | length' .corral/machines/db/state.json)" = 2
t0=${EPOCHREALTIME/./}
out=$("$CORRAL" reset 2>&1)
rc=$?
ms=$(((${EPOCHREALTIME/./} - t0) / 1000))
check "reset" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | sed 's/^/#   /'
check "reset prints each machine's time" grep -q "web: reset to \`provisioned\` (" <<<"$out"
echo "# reset of 2 machines: ${ms} ms"
expect_out "a file written after provisioning is gone" 1 "" "$CORRAL" ssh db -c 'test -e /root/after'
expect_out "the provisioned file stays" 0 "provisioned" "$CORRAL" ssh db -c 'cat /root/prov'
expect_out "what a later step made is gone" 1 "" "$CORRAL" ssh db -c 'test -e /root/extra'
check "... and the step is no longer recorded as run" \
	test "$(jq '.provisioned | length' .corral/machines/db/state.json)" = 1
expect_out "services are back, probes passed" 0 "web: ready: http" echo "$out"
expect_out "reset of a machine never provisioned is refused" 2 "no machine" "$CORRAL" reset nosuch

# A probe that never passes: up fails with its last output and the console.
mkdir -p "$T/bad"
cat >"$T/bad/corral.yaml" <<EOF
version: 1
machines:
  lone:
    box: corral/tiny
    box_url: "$url"
    provider: container
    ready:
      - { tcp: 9, timeout: 2s, interval: 500ms }
EOF
on_exit '"$CORRAL" -C "$T/bad" destroy -f >/dev/null 2>&1'
expect_out "a failing probe fails up with its output" 1 "did not pass in" "$CORRAL" -C "$T/bad" up
expect_out "... naming the last output" 1 "Connection refused" "$CORRAL" -C "$T/bad" up
expect_out "... and the console's last lines" 1 "last console lines" "$CORRAL" -C "$T/bad" up
sed -i 's/{ tcp: 9, timeout: 2s, interval: 500ms }/{ command: "echo waiting; sleep 30", timeout: 2s }/' "$T/bad/corral.yaml"
t0=$SECONDS
expect_out "a command probe that hangs ends with its timeout" 1 "(timed out)" "$CORRAL" -C "$T/bad" up
check "... in about that time" [ $((SECONDS - t0)) -lt 15 ]
expect_out "a probe with two kinds is an envfile error" 2 "exactly one of" \
	sh -c "printf 'version: 1\nmachines:\n  a:\n    box: x/y\n    ready: [{ tcp: 1, command: x }]\n' >'$T/two.yaml' && '$CORRAL' -f '$T/two.yaml' validate"

# ports: auto: what the guest starts listening on is forwarded (same port
# when free, else the next free one), listed by `corral port`, removed when
# it stops listening; excluded ranges are not.
mkdir -p "$T/auto"
cat >"$T/auto/corral.yaml" <<EOF2
version: 1
machines:
  svc:
    box: corral/tiny
    box_url: "$url"
    provider: container
    ssh: { user: root }
    ports: { auto: true, exclude: [6000-6100] }
EOF2
on_exit '"$CORRAL" -C "$T/auto" destroy -f >/dev/null 2>&1'
# Guest ports A (whose host port another program holds: it goes to A+1)
# and B, picked free on this host so that parallel tests do not collide.
hold_port 127.0.0.1 120 || not_ok "a port held for the test"
A=$HELD_PORT B=$((HELD_PORT + 10))
expect_out "up with ports: auto" 0 "ssh ready" "$CORRAL" -C "$T/auto" up
"$CORRAL" -C "$T/auto" port --watch >"$T/watch.txt" 2>&1 &
watcher=$!
"$CORRAL" -C "$T/auto" --json port --watch >"$T/watch.json" 2>&1 &
on_exit "kill $watcher $! 2>/dev/null"
"$CORRAL" -C "$T/auto" ssh -c "mkdir -p /www && echo auto-hello >/www/index.html && httpd -p $B -h /www && httpd -p $A -h /www && httpd -p 6050 -h /www"
ports() { "$CORRAL" -C "$T/auto" --json port | jq -r '.[] | select(.auto) | "\(.guest):\(.host)"' | sort -n | tr '\n' ' '; }
wait_ports() { # WANT: until `corral port` lists exactly these auto forwards (5 s)
	local i
	for i in $(seq 50); do [ "$(ports)" = "$1" ] && return 0; sleep 0.1; done
	echo "#   auto forwards: $(ports), wanted: $1"
	return 1
}
check "listening ports are forwarded: same port, a busy one to the next free, 6050 excluded" \
	wait_ports "$A:$((A + 1)) $B:$B "
expect_out "... and reached from the host" 0 "auto-hello" curl -s "http://127.0.0.1:$B/"
expect_out "corral port marks it auto" 0 "$B (guest) => $B (host 127.0.0.1, tcp, auto)" "$CORRAL" -C "$T/auto" port
# (busybox has no pkill: the httpd whose command line has port B; the
# sed-made pattern keeps the shell doing it from matching itself)
pat=$(sed 's/^\(.\)/[\1]/' <<<"$B")
"$CORRAL" -C "$T/auto" ssh -c "for p in /proc/[0-9]*; do grep -q '$pat' \$p/cmdline 2>/dev/null && kill \${p#/proc/}; done; true"
check "a port the guest stops listening on is removed" wait_ports "$A:$((A + 1)) "
expect_out "halt stops the watcher" 0 "stopped" "$CORRAL" -C "$T/auto" halt
check "... and its forwards are gone" [ ! -e "$T/auto/.corral/machines/svc/auto-ports" ]
for _ in $(seq 50); do gone "$watcher" && break; sleep 0.1; done
check "port --watch: each forward as it came" grep -qx "svc: forwarding 127.0.0.1:$B -> $B" "$T/watch.txt"
check "port --watch: ... and went" grep -qx "svc: guest port $B closed: forward 127.0.0.1:$B removed" "$T/watch.txt"
check "port --watch: ends when the machine stops" grep -qx "svc: stopped" "$T/watch.txt"
check "port --watch --json: port events" test "$(jq -r 'select(.event == "port" and .guest == '"$B"') | .state' \
	"$T/watch.json" | xargs)" = "forwarded removed"
