#!/usr/bin/env bash
# Golden VBoxManage call sequences: for each case in tests/golden/virtualbox/
# (corral.yaml + `ops`, one corral command per line), every command's
# VBoxManage calls, as the fake logs them, must equal NN-OP.calls (UUIDs,
# machine hashes, the SSH host port and the scratch dir normalised; repeated
# state polls collapsed). Each case starts from an empty fake VirtualBox
# and boots real stand-in guests, so `up` really reaches SSH.
# VBOX_GOLDEN_UPDATE=1 rewrites the golden files instead of comparing.
. "$(dirname "$0")/../lib.sh"
. "$ROOT/tests/fakes/vbox-env.sh"

GOLDEN=$ROOT/tests/golden/virtualbox

run_case() {
	local dir=$1 case op file out n=0
	case=$(basename "$dir")
	rm -rf "$T/$case" "$VBOX_FAKE_HOME"
	mkdir -p "$T/$case" "$VBOX_FAKE_HOME"
	cp "$dir/corral.yaml" "$T/$case/"
	while IFS= read -r op; do
		[ -n "$op" ] || continue
		n=$((n + 1))
		file=$dir/$(printf '%02d' "$n")-${op// /-}.calls
		: >"$VBOX_FAKE_HOME/calls.log"
		# shellcheck disable=SC2086 # ops are plain words
		if ! out=$("$CORRAL" -C "$T/$case" $op 2>&1); then
			not_ok "$case: corral $op"
			printf '%s\n' "$out" | head -n 20 | sed 's/^/#   /'
			continue
		fi
		if [ "${VBOX_GOLDEN_UPDATE:-}" = 1 ]; then
			vbox_calls >"$file"
			ok "$case: $op (golden file written)"
		elif diff -u "$file" <(vbox_calls) >"$T/diff"; then
			ok "$case: $op"
		else
			not_ok "$case: $op: VBoxManage calls differ from ${file#"$ROOT"/}"
			sed 's/^/#   /' "$T/diff" | head -n 40
		fi
	done <"$dir/ops"
	"$CORRAL" -C "$T/$case" destroy -f >/dev/null 2>&1
	vbox_poweroff_all
}

for dir in "$GOLDEN"/*/; do
	run_case "${dir%/}"
done
