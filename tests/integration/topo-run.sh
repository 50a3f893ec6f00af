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
check "depends_on waits for the dependency's probes" [ -n "$ready_line" ] && [ -n "$web_line" ] && [ "$ready_line" -lt "$web_line" ]
check "the provisioned checkpoint is taken" grep -q "db: checkpoint \`provisioned\` taken" <<<"$out"

# reset: what changed after provisioning goes, what provisioning made stays.
"$CORRAL" ssh db -c 'echo later >/root/after && rm /root/prov.keep 2>/dev/null; true'
"$CORRAL" ssh web -c 'echo later >/root/after'
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
expect_out "a probe with two kinds is an envfile error" 2 "exactly one of" \
	sh -c "printf 'version: 1\nmachines:\n  a:\n    box: x/y\n    ready: [{ tcp: 1, command: x }]\n' >'$T/two.yaml' && '$CORRAL' -f '$T/two.yaml' validate"
