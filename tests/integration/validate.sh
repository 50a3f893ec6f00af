#!/usr/bin/env bash
# corral validate on the envfile fixtures: every bad-*.yaml fails with exit 2
# and exactly the stderr of its .expected file (@DIR@ stands for the fixture
# directory); every good-*.yaml and examples/*/corral.yaml is valid. Then
# finding the envfile, --json, and inputs that must fail fast.
source "$(dirname "$0")/../lib.sh"
FX=$FIXTURES/envfile
unset CORRAL_TEST_UNSET CORRAL_TEST_BOX CORRAL_TEST_MEMORY

for f in "$FX"/bad-*.yaml; do
	name=$(basename "$f")
	want=$(sed "s|@DIR@|$FX|g" "${f%.yaml}.expected")
	got=$(cd "$FX" && "$CORRAL" -f "$name" validate 2>&1 >/dev/null)
	rc=$?
	if [ "$rc" -eq 2 ] && [ "$got" == "$want" ]; then
		ok "invalid: $name"
	else
		not_ok "invalid: $name (exit $rc)"
		diff <(printf '%s\n' "$want") <(printf '%s\n' "$got") | sed 's/^/#   /'
	fi
done

for f in "$FX"/good-*.yaml "$ROOT"/examples/*/corral.yaml; do
	expect_out "valid: ${f#"$ROOT"/}" 0 ": ok (" "$CORRAL" -f "$f" validate
done

expect_out "ok line names the file and counts machines" 0 \
	"good-count.yaml: ok (6 machines)" bash -c "cd '$FX' && '$CORRAL' -f good-count.yaml validate"
expect_out "--json lists the machines after count" 0 \
	'{"ok":true,"file":"'"$FX"'/good-count.yaml","machines":["db","worker-1","worker-2","worker-3","worker-4","monitor"],"warnings":[]}' \
	"$CORRAL" -f "$FX/good-count.yaml" validate --json
expect_out "\${VAR} from the environment is checked like any value" 2 \
	'machines.dev.box: "not a box" is not a box name' \
	env CORRAL_TEST_BOX="not a box" "$CORRAL" -f "$FX/good-env.yaml" validate
expect_out "validate takes no arguments" 2 "unexpected argument \`extra\`" \
	"$CORRAL" -f "$FX/good-env.yaml" validate extra

# Finding the envfile: -f, else here or the nearest parent, like git.
mkdir -p "$T/proj/a/b" "$T/none"
cp "$ROOT/examples/quickstart/corral.yaml" "$T/proj/"
expect_out "found in a parent directory" 0 "$T/proj/corral.yaml: ok (1 machine)" \
	bash -c "cd '$T/proj/a/b' && '$CORRAL' validate"
expect_out "-C picks the start directory" 0 "ok (1 machine)" "$CORRAL" -C "$T/proj/a" validate
expect_out "none anywhere up the tree" 2 \
	"corral: error: no corral.yaml in $T/none or any parent directory
  hint: run \`corral init\` to create one, or pass -f FILE" \
	bash -c "cd '$T/none' && '$CORRAL' validate"
expect_out "-f names a missing file" 2 "corral: error: nope.yaml: no such file" \
	bash -c "cd '$T/none' && '$CORRAL' -f nope.yaml validate"
expect_out "-f names a directory" 2 "is a directory, not a file" "$CORRAL" -f "$T/proj" validate

# fails_fast NAME TEXT FILE: exit 2 with TEXT, in under 2 seconds.
fails_fast() {
	local start ms
	start=$(date +%s%N)
	expect_out "$1: a clear error" 2 "$2" "$CORRAL" -f "$3" validate
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	if [ "$ms" -lt 2000 ]; then ok "$1: refused in ${ms}ms"; else not_ok "$1: took ${ms}ms"; fi
}

# A 100 MB file is refused before it is read.
yes 'key: value' | head -c 100M >"$T/big.yaml"
fails_fast "100 MB file" "is too large (104857600 bytes; the limit is 4194304)" "$T/big.yaml"

# Under the size cap, hostile YAML still fails fast: 4 MB of one list,
# a mapping merged 20000 times.
{ printf 'machines: ['; yes '1,' | head -c 4000000 | tr -d '\n'; printf '1]\n'; } >"$T/many.yaml"
fails_fast "4 MB of nodes" "more than 100000 YAML nodes" "$T/many.yaml"
{
	printf 'big: &b {'; seq -f 'k%g: 1,' 40000 | tr -d '\n'; printf ' last: 1}\nl: ['
	yes '{<<: *b},' | head -n 20000 | tr -d '\n'; printf ' {}]\n'
} >"$T/merges.yaml"
fails_fast "20000 merges of a big mapping" "aliases expand to more than 100000 nodes" "$T/merges.yaml"

# Valid but probably not meant: a warning with its position, exit 0.
mkdir -p "$T/warn"
cat >"$T/warn/corral.yaml" <<'YAML'
version: 1
defaults: { box: corral/tiny }
machines:
  web: {}
provision:
  - ansible:
      playbook: site.yml
      groups: { web: [web], "web:vars": { ports: [80, 443], tls: { on: true } } }
YAML
touch "$T/warn/site.yml"
expect_out "a group named like a machine: a warning at its position" 0 \
	"corral.yaml:8:17: warning: provision[1].ansible.groups.web: group \`web\` has the name of a machine" \
	"$CORRAL" -C "$T/warn" validate
expect_out "and still ok" 0 "ok (1 machine, with warnings)" "$CORRAL" -C "$T/warn" validate
expect_out "--json lists it" 0 '"warnings":[{"file":' "$CORRAL" -C "$T/warn" --json validate

# Forwards bind IPv4 host addresses; an IPv6 host_ip is refused with the reason.
mkdir -p "$T/v6"
printf 'version: 1\nmachines:\n  web: { box: b, ports: [{ guest: 80, host: 8080, host_ip: "::1" }] }\n' >"$T/v6/corral.yaml"
expect_out "an IPv6 host_ip is refused at validate" 2 "is not an IPv4 address (forwards bind IPv4 host addresses only)" \
	"$CORRAL" -C "$T/v6" validate
