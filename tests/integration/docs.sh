#!/usr/bin/env bash
# The documentation stays inside the repository: every relative link in a
# Markdown file (README.md, docs/, the READMEs beside the code) names a file
# or directory of the checkout, never one outside it, and a #fragment names
# a heading of its target (GitHub's anchors: lower case, punctuation
# dropped, spaces as -). Web links are not followed.
source "$(dirname "$0")/../lib.sh"

# The anchors of a Markdown file's headings, one a line.
anchors() {
	sed -n 's/^#\{1,6\} \{1,\}//p' "$1" | tr '[:upper:]' '[:lower:]' |
		sed 's/[^a-z0-9 _-]//g; s/ /-/g'
}

# check_links FILE: prints what is wrong with its links, nothing when all are good.
check_links() {
	local md=$1 dir link path frag target
	dir=$(dirname "$md")
	grep -o '\]([^)]*)' "$md" | sed 's/^](//; s/)$//; s/ .*//' | while read -r link; do
		case $link in http://* | https://* | mailto:*) continue ;; esac
		path=${link%%#*}
		frag=${link#"$path"}
		frag=${frag#\#}
		target=$md
		if [ -n "$path" ]; then
			target=$(realpath -m "$dir/$path")
			case $target/ in "$ROOT"/*) ;; *) echo "$link: outside the repository"; continue ;; esac
			[ -e "$target" ] || { echo "$link: no such file"; continue; }
		fi
		if [ -n "$frag" ] && [ -f "$target" ] && ! anchors "$target" | grep -qx -- "$frag"; then
			echo "$link: no heading #$frag"
		fi
	done
}

while IFS= read -r md; do
	rel=${md#"$ROOT"/}
	bad=$(check_links "$md")
	if [ -z "$bad" ]; then
		ok "links in $rel"
	else
		not_ok "links in $rel"
		printf '%s\n' "$bad" | sed 's/^/#   /'
	fi
done < <(find "$ROOT" \( -name build -o -name .git \) -prune -o -name '*.md' -print | sort)

for doc in envfile providers boxes architecture; do
	expect_out "README links docs/$doc.md" 0 "](docs/$doc.md)" cat "$ROOT/README.md"
done
