#!/usr/bin/env bash
# Multi-machine `up` on real containers of the tiny box: --parallel N bounds
# how many machines boot/provision at once (still in depends_on order), a
# failing machine stops its dependents while the others finish, the same
# addresses after destroy and up whatever the boot order, the summary table
# and its --json form, --provision-with on up, and a sensitive step's
# secret kept out of the live output; Ctrl-C mid-up, and the up after it.
. "$(dirname "$0")/../lib.sh"

box=$(test_box tiny)
mkdir -p "$T/env"
cat >"$T/env/corral.yaml" <<'YAML'
version: 1
defaults: { box: corral/tiny, provider: container, memory: 128M }
machines:
  a:
    provision:
      - shell: { name: probe, inline: "sleep 0.5; echo done", privileged: false }
  b:
    provision:
      - shell: { name: probe, inline: "sleep 0.5; echo done", privileged: false }
  c:
    provision:
      - shell: { name: probe, inline: "sleep 0.5; echo done", privileged: false }
  d:
    depends_on: [a]
    provision:
      - shell: { name: probe, inline: "sleep 0.5; echo done", privileged: false }
  bad:
    autostart: false
    provision:
      - shell: { inline: "echo first", privileged: false }
      - shell: { name: setup, inline: "echo failing; exit 4", privileged: false }
  after:
    count: 2
    autostart: false
    depends_on: [bad]
  indep:
    autostart: false
    provision:
      - shell:
          name: secret
          sensitive: true
          env: { TOKEN: s3cr3t-value }
          inline: 'echo "token=$TOKEN"; sleep 0.3'
          privileged: false
      - shell:
          name: plain
          env: { TOKEN: visible-value }
          inline: 'echo "token=$TOKEN"'
          privileged: false
      - shell: { name: mark, inline: "touch /tmp/marked", run: never, privileged: false }
      - shell:
          name: leak
          sensitive: true
          env: { TOKEN: s3cr3t-value }
          inline: 'echo "leaking $TOKEN"; exit 1'
          run: never
          privileged: false
  fresh:
    autostart: false
    provision:
      - shell: { name: one, inline: "echo one", privileged: false }
      - shell: { name: two, inline: "echo two", privileged: false }
  slow:
    autostart: false
    provision:
      - shell: { name: first, inline: "echo started; sleep 1; echo finished", privileged: false }
      - shell: { name: second, inline: "echo second", privileged: false }
  later:
    autostart: false
YAML
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'

# The most machines at work at once, from the output: a machine is at work
# from its "NAME: creating" line to its probe step's "done".
most_at_once() {
	awk '/^[a-z0-9-]+: creating$/ { n++; if (n > m) m = n }
	     /^[a-z0-9-]+:probe \| done$/ { n-- }
	     END { print m + 0 }' <<<"$1"
}
# line_of TEXT: the number of the first output line holding TEXT.
line_of() { grep -nF -m1 "$1" <<<"$out" | cut -d: -f1; }
up_probes() {
	"$CORRAL" destroy -f >/dev/null 2>&1
	out=$("$CORRAL" up "$@" 2>&1)
	rc=$?
}

expect_out "box add" 0 "corral/tiny" "$CORRAL" box add "$(dirname "$box")/catalog.json"

up_probes --parallel 1
check "--parallel 1: up succeeds" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || printf '%s\n' "$out" | tail -n 20 | sed 's/^/#   /'
check "--parallel 1: one machine at a time" [ "$(most_at_once "$out")" -eq 1 ]
check "--parallel 1: every machine came up" [ "$(grep -c ':probe | done$' <<<"$out")" -eq 4 ]
# The addresses corral picked, in machine order.
addrs() { for m in a b c d; do jq -r .ip ".corral/machines/$m/state.json"; done | tr '\n' ' '; }
addrs1=$(addrs)
up_probes --parallel 2
check "--parallel 2: two at a time, never three" [ "$(most_at_once "$out")" -eq 2 ]
check "destroy and up --parallel: every machine gets the same address again" [ "$(addrs)" = "$addrs1" ]
check "--parallel 2: d starts after a is done" [ "$(line_of 'd: creating')" -gt "$(line_of 'a:probe | done')" ]
up_probes
check "default: all at once (d waits for a)" [ "$(most_at_once "$out")" -eq 3 ]
check "default: d starts after a is done" [ "$(line_of 'd: creating')" -gt "$(line_of 'a:probe | done')" ]
table() { grep -Eq "$1" <<<"$out"; }
check "summary table after a multi-machine up" table '^MACHINE +STATE +BOOT +PROVISION +FAILED STEP$'
check "summary: a running, with its time" table '^a +running +[0-9]+\.[0-9]s +[0-9]+\.[0-9]s$'
expect_out "--parallel 0 is refused" 2 "--parallel takes a number of machines from 1" \
	"$CORRAL" up --parallel 0
expect_out "--parallel x is refused" 2 "--parallel takes a number" "$CORRAL" up --parallel x

# A failing machine: its dependents are not started, the others finish.
out=$("$CORRAL" up bad after indep 2>&1)
rc=$?
check "a failed machine fails up" [ "$rc" -eq 1 ]
check "its dependents are not started" grep -q 'after-1: not started: depends on bad, which failed' <<<"$out"
check "the others finish" grep -q '^indep:plain | token=visible-value$' <<<"$out"
check "after-2 never booted" [ ! -e .corral/machines/after-2/state.json ]
check "summary: the failed step" table '^bad +failed +[0-9]+\.[0-9]s +[0-9]+\.[0-9]s +#2 setup$'
check "summary: the skipped dependent" table '^after-1 +skipped +- +- +\(depends on bad\)$'
check "summary: the independent machine" table '^indep +running +[0-9]+\.[0-9]s +[0-9]+\.[0-9]s$'

# sensitive: the secret the script prints is masked in the live output.
check "sensitive: the printed secret is masked" grep -q '^indep:secret | token=\*\*\*$' <<<"$out"
check "sensitive: the secret appears nowhere" bash -c '! grep -q s3cr3t-value <<<"$1"' _ "$out"
out=$("$CORRAL" provision indep --provision-with leak 2>&1)
rc=$?
check "sensitive failing step: fails" [ "$rc" -eq 1 ]
check "sensitive failing step: masked live and in the report" \
	bash -c '[ "$(grep -c "leaking \*\*\*" <<<"$1")" -eq 2 ] && ! grep -q s3cr3t-value <<<"$1"' _ "$out"
check "provision: summary of a failed machine" table '^indep +failed +[0-9]+\.[0-9]s +[0-9]+\.[0-9]s +#4 leak$'

json=$("$CORRAL" up --json bad after indep 2>/dev/null)
rc=$?
jq_is() { [ "$(jq -r 'select(.event == "summary") | .machines' <<<"$json" | jq -r "$1" 2>/dev/null)" = "$2" ]; }
check "--json: exit 1 on failure" [ "$rc" -eq 1 ]
check "--json: the failed step" jq_is '.[] | select(.machine == "bad") | "\(.state) \(.failed_step.number) \(.failed_step.name)"' "failed 2 setup"
check "--json: the skipped one" jq_is '.[] | select(.machine == "after-2") | "\(.state) \(.blocked_by) \(.seconds)"' "skipped bad null"
check "--json: seconds of a running one" jq_is '.[] | select(.machine == "indep") | (.seconds | type)' "number"

# --provision-with on up: those steps only, `run: never` ones included.
out=$("$CORRAL" up indep --provision-with plain,mark 2>&1)
check "--provision-with: the named step ran" grep -q '^indep:plain | token=visible-value$' <<<"$out"
check "--provision-with: the others did not" bash -c '! grep -q "^indep:secret" <<<"$1"' _ "$out"
check "--provision-with: a never step runs when named" "$CORRAL" ssh indep -c 'test -e /tmp/marked'
check "one machine, all well: no table" bash -c '! grep -q "^MACHINE" <<<"$1"' _ "$out"
out=$("$CORRAL" up fresh --provision-with two 2>&1)
new_only() { grep -q '^fresh:two | two$' <<<"$out" && ! grep -q '^fresh:one' <<<"$out"; }
check "--provision-with on a new machine: only that step" new_only
expect_out "--provision-with an unknown step" 2 "no provision step named \`nope\`" \
	"$CORRAL" up --provision-with nope
expect_out "--provision-with and --no-provision" 2 "contradict" \
	"$CORRAL" up --no-provision --provision-with plain

# Ctrl-C during up: the step underway finishes, no further step or machine
# starts, the summary says so; the next up resumes the plan.
"$CORRAL" up --parallel 1 slow later >"$T/int.out" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q '^slow:first | started$' "$T/int.out" && break; sleep 0.1; done
kill -INT "$pid"
wait "$pid"
rc=$? out=$(cat "$T/int.out")
check "Ctrl-C: up fails" [ "$rc" -eq 1 ]
check "Ctrl-C: says what happens" grep -q '^interrupted: no more machines start' <<<"$out"
check "Ctrl-C: the step underway finished" grep -q '^slow:first | finished$' <<<"$out"
check "Ctrl-C: the next step did not run" bash -c '! grep -q "^slow:second" <<<"$1"' _ "$out"
check "Ctrl-C: the machine underway failed, interrupted" grep -q 'slow: interrupted' <<<"$out"
check "Ctrl-C: summary: the machine not started" table '^later +skipped +- +- +\(interrupted\)$'
check "Ctrl-C: it was never created" [ ! -e .corral/machines/later/state.json ]
out=$("$CORRAL" up slow later 2>&1)
check "after Ctrl-C: up resumes the plan (the second step only)" \
	bash -c 'grep -q "^slow:second | second$" <<<"$1" && ! grep -q "^slow:first" <<<"$1"' _ "$out"
check "after Ctrl-C: the other machine comes up" table '^later +running'
