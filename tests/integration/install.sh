#!/usr/bin/env bash
# make install / uninstall with DESTDIR and PREFIX: exactly the binary, the
# two man pages and the two completion files; the installed completion
# files complete from where bash-completion and zsh's compinit load them;
# uninstall leaves none of them.
. "$(dirname "$0")/../lib.sh"

dest=$T/root
files() { (cd "$1" && find . -type f | sort); }
expected="./usr/bin/corral
./usr/share/bash-completion/completions/corral
./usr/share/corral/distros.json
./usr/share/man/man1/corral.1
./usr/share/man/man5/corral.yaml.5
./usr/share/zsh/vendor-completions/_corral"

check "make install DESTDIR PREFIX=/usr" make -s -C "$ROOT" install DESTDIR="$dest" PREFIX=/usr
got=$(files "$dest")
if [ "$got" = "$expected" ]; then
	ok "install puts exactly the expected files"
else
	not_ok "install puts exactly the expected files"
	printf '#   got: %s\n' $got
fi
expect_out "the installed binary runs" 0 "corral " "$dest/usr/bin/corral" --version
expect_out "the installed binary finds its distributions' table in share/corral" 0 "ubuntu/24.04" \
	env -u CORRAL_DATA_DIR "$dest/usr/bin/corral" box search ubuntu
check "the binary is executable, the rest not" \
	test "$(stat -c %a "$dest/usr/bin/corral" "$dest/usr/share/man/man1/corral.1")" = $'755\n644'

# bash-completion sources completions/corral when `corral` is first completed.
bash_words() { # WORD...: what the installed bash completion offers for the last word
	PATH=$dest/usr/bin:$PATH bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _corral; echo "${COMPREPLY[*]}"' \
		_ "$dest/usr/share/bash-completion/completions/corral" corral "$@"
}
check "bash completion file completes a command" test "$(bash_words sta)" = status
check "bash completion file completes box subcommands" test "$(bash_words box pr)" = prune

# compinit registers _corral from its #compdef line; the first completion
# autoloads the file, whose body must complete at once. compadd is stubbed
# to print the candidates.
zsh_words() { # WORD...
	PATH=$dest/usr/bin:$PATH zsh -f -c '
		fpath=("$1" $fpath); autoload -U compinit; compinit -u -d "$2/zcompdump"
		[[ $_comps[corral] == _corral ]] || { echo "not registered"; exit 1 }
		compadd() { [[ $1 == -a ]] && print -r -- ${(P)2} }
		shift 2; words=(corral "$@"); CURRENT=$#words
		_corral' _ "$dest/usr/share/zsh/vendor-completions" "$T" "$@"
}
if command -v zsh >/dev/null; then
	check "zsh completion file lists commands" bash -c '[[ " $1 " == *" status "* ]]' _ "$(zsh_words '')"
	check "zsh completion file completes box subcommands" \
		bash -c '[[ " $1 " == *" prune "* && " $1 " != *" status "* ]]' _ "$(zsh_words box '')"
else
	not_ok "zsh is not installed (make test installs it)"
fi

check "make uninstall" make -s -C "$ROOT" uninstall DESTDIR="$dest" PREFIX=/usr
check "uninstall leaves no file" test -z "$(files "$dest")"

check "PREFIX defaults to /usr/local" make -s -C "$ROOT" install DESTDIR="$T/local"
check "... where the binary lands" test -x "$T/local/usr/local/bin/corral"
