#!/usr/bin/env bash
# The layers run one way: cmd -> engine -> providers, provisioners -> core
# subsystems (ssh, box -> host -> config) -> core/base. A file may include
# headers of its own folder and of lower layers only; headers named
# *_priv.h, and every header inside one provider's folder, are private to
# their folder. Tests may include anything. One TAP line per source folder.
set -u
cd "$(dirname "$0")/../.."

# layer DIR: the rank of a source folder (higher may include lower).
layer() {
	case $1 in
	core/base) echo 0 ;; core/config) echo 1 ;; core/host | core/vagrant) echo 2 ;;
	core/box | core/ssh) echo 3 ;;
	providers | providers/* | provisioners) echo 4 ;;
	engine) echo 5 ;; cmd) echo 6 ;;
	*) echo -1 ;;
	esac
}

# cmd/ reaches providers only through engine/ (cmd -> engine -> providers):
# no header of providers/, provider.h included.
skips_engine() { [ "$1" = cmd ] && [ "${2%%/*}" = providers ]; }

# A provider's folder may include providers/provider.h, its own layer's table.
both_providers() { [ "${1%%/*}" = providers ] && [ "${2%%/*}" = providers ]; }

# violation FILE HEADER: prints why FILE may not include HEADER, if so.
violation() {
	local from to fr tr
	from=$(dirname "$1") to=$(dirname "$2")
	[ -e "$2" ] || { echo "$1 includes $2, which does not exist"; return; }
	[ "$from" = "$to" ] && return
	if [[ $2 == *_priv.h ]] || [[ $to == providers/* ]]; then
		echo "$1 includes $2, private to $to/"
		return
	fi
	if skips_engine "$from" "$to"; then
		echo "$1 includes $2: cmd/ reaches providers through engine/ only"
		return
	fi
	fr=$(layer "$from") tr=$(layer "$to")
	if [ "$tr" -lt 0 ] || [ "$fr" -lt 0 ]; then
		echo "$1 includes $2: $from or $to is in no layer (add it to tests/integration/layers.sh)"
	elif [ "$tr" -gt "$fr" ] || { [ "$tr" -eq "$fr" ] && ! both_providers "$from" "$to"; }; then
		echo "$1 includes $2: $from may not include $to (a layer at or above its own)"
	fi
}

# The sources, found in the tree (a release tarball has no .git to ask).
sources=$(find . \( -path ./tests -o -path ./build -o -path ./.git \) -prune -o \
	\( -name '*.c' -o -name '*.h' \) -print | sed 's|^\./||' | sort)
dirs=$(sed 's|/[^/]*$||' <<<"$sources" | sort -u)
for dir in $dirs; do
	bad=""
	for f in $(grep "^$dir/[^/]*$" <<<"$sources"); do
		while read -r h; do
			v=$(violation "$f" "$h")
			[ -n "$v" ] && bad+="$v"$'\n'
		done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
	done
	if [ -z "$bad" ]; then
		echo "ok - $dir includes only its own folder and lower layers"
	else
		echo "not ok - $dir includes upward or private headers"
		printf '%s' "$bad" | sed 's/^/#   /'
	fi
done
