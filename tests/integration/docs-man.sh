#!/usr/bin/env bash
# The man pages and the help they share: make builds corral(1) and
# corral.yaml(5); every command `corral help` lists is in corral(1) with the
# very text `corral help COMMAND` prints (and `corral COMMAND --help` is that
# text too); hidden commands are not; both pages render without a groff
# warning; corral.yaml(5) is docs/envfile.md.
. "$(dirname "$0")/../lib.sh"

command -v man >/dev/null || { not_ok "man is not installed (make test installs man-db)"; exit 1; }
MAN1=$ROOT/build/man/corral.1 MAN5=$ROOT/build/man/corral.yaml.5
check "make builds the man pages" make -s -C "$ROOT" build/man/corral.1 build/man/corral.yaml.5

# A page as text, one line per output line, runs of blanks squeezed.
render() { MANWIDTH=${2:-80} LC_ALL=C.UTF-8 man -l "$1" 2>/dev/null | tr -s ' \t' ' '; }
squeeze() { tr -s ' \t' ' ' | sed 's/^ //; s/ $//'; }
# The commands `corral help` lists, from the binary.
commands=$("$CORRAL" help | sed -n '/^commands:$/,/^$/{s/^  \([^ ]*\) .*/\1/p}')
check "corral help lists commands" test "$(wc -w <<<"$commands")" -gt 10

page=$(render "$MAN1" 1000)
missing=""
for c in $commands; do
	grep -qx " $c" <<<"$page" || missing+=" $c"
done
check "every listed command has its section in corral(1)${missing:+ (missing:$missing)}" \
	test -z "$missing"

# Each line of the help, less "usage: " and the "options:" heading, is a
# line of the page (the page is wide enough not to wrap).
help_in_page() { # COMMAND
	local line bad=""
	while IFS= read -r line; do
		line=$(squeeze <<<"${line#usage: }")
		[ -z "$line" ] || [ "$line" = "options:" ] && continue
		grep -qxF " $line" <<<"$page" || bad+="[$line] "
	done < <("$CORRAL" help "$1")
	[ -z "$bad" ] || { echo "#   not in corral(1): $bad"; return 1; }
}
for c in $commands; do
	check "corral help $c is in corral(1)" help_in_page "$c"
	check "corral $c --help is corral help $c" \
		cmp -s <("$CORRAL" help "$c") <("$CORRAL" "$c" --help)
done
check "corral --help is corral help" cmp -s <("$CORRAL" help) <("$CORRAL" --help)

# The global options block of `corral help` is the page's GLOBAL OPTIONS.
global_in_page() {
	local line bad=""
	while IFS= read -r line; do
		line=$(squeeze <<<"$line")
		grep -qxF " $line" <<<"$page" || bad+="[$line] "
	done < <("$CORRAL" help | sed -n '/^global options:$/,${/^global options:$/d;p}')
	[ -z "$bad" ] || { echo "#   not in corral(1): $bad"; return 1; }
}
check "the global options are in corral(1)" global_in_page

check "corral help lists no hidden command" bash -c '! "$1" help | grep -q "^  _"' _ "$CORRAL"
check "completion offers no hidden command" bash -c '! "$1" __complete commands | grep -q "^_"' _ "$CORRAL"
check "corral(1) has no hidden command" bash -c '! grep -q "__[a-z]" <<<"$1"' _ "$page"

for p in "$MAN1" "$MAN5"; do
	name=$(basename "$p")
	warn=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null)
	check "man renders $name without warnings${warn:+: $warn}" test -z "$warn"
	warn=$(groff -man -ww -z "$p" 2>&1)
	check "groff -ww reads $name without warnings${warn:+: $warn}" test -z "$warn"
done

# corral.yaml(5) is docs/envfile.md: every heading under the title is a
# section of the page.
page5=$(render "$MAN5" 1000)
missing=""
while IFS= read -r h; do
	h=$(squeeze <<<"$h")
	grep -qxF "$h" <<<"$page5" || grep -qxF " $h" <<<"$page5" || missing+="[$h] "
done < <(awk '/^ *(```|~~~)/ { f = !f } !f && /^#+ / { if (!n++ && /^# /) next; sub(/^#+ /, ""); gsub(/`/, ""); print }' \
	"$ROOT/docs/envfile.md")
check "corral.yaml(5) has every heading of docs/envfile.md${missing:+ (missing: $missing)}" \
	test -z "$missing"
version=$("$CORRAL" --version | cut -d' ' -f2)
for p in "$MAN1" "$MAN5"; do
	check "$(basename "$p") carries corral's version" grep -q "\"corral $version\"" "$p"
done
