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
	'{"ok":true,"file":"'"$FX"'/good-count.yaml","machines":["db","worker-1","worker-2","worker-3","worker-4","monitor"]}' \
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

# A 100 MB file is refused before it is read: in well under 2 seconds.
yes 'key: value' | head -c 100M >"$T/big.yaml"
start=$(date +%s%N)
expect_out "100 MB file: a clear error" 2 "is too large (104857600 bytes; the limit is 4194304)" \
	"$CORRAL" -f "$T/big.yaml" validate
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$ms" -lt 2000 ]; then ok "100 MB file refused in ${ms}ms"; else not_ok "100 MB file took ${ms}ms"; fi

# The same bytes under the cap still fail fast: 4 MiB of one long list.
{ printf 'machines: ['; yes '1,' | head -c 4000000 | tr -d '\n'; printf '1]\n'; } >"$T/many.yaml"
start=$(date +%s%N)
expect_out "4 MB of nodes: a clear error" 2 "more than 100000 YAML nodes" \
	"$CORRAL" -f "$T/many.yaml" validate
ms=$(( ($(date +%s%N) - start) / 1000000 ))
if [ "$ms" -lt 2000 ]; then ok "4 MB of nodes refused in ${ms}ms"; else not_ok "4 MB of nodes took ${ms}ms"; fi
