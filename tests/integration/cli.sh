#!/usr/bin/env bash
# The command line itself: help, version, unknown commands, init, completion,
# envfile discovery, and the lock between two commands.
. "$(dirname "$0")/../lib.sh"

expect_out "version" 0 "corral " "$CORRAL" --version
expect_out "help lists commands" 0 "validate" "$CORRAL" help
expect_out "help COMMAND" 0 "usage: corral init" "$CORRAL" help init
expect_out "COMMAND --help" 0 "usage: corral status" "$CORRAL" status --help
expect_out "no command is a usage error" 2 "usage: corral" "$CORRAL"
expect_out "unknown command suggests" 2 'did you mean `status`?' "$CORRAL" statsu
expect_out "unknown global option" 2 "corral" "$CORRAL" --bogus status

mkdir -p "$T/proj/sub/deeper"
cd "$T/proj" || exit 1
expect_out "init writes corral.yaml" 0 "wrote corral.yaml" "$CORRAL" init
check "init wrote the box" grep -q 'box: corral/debian-12' corral.yaml
expect_out "init refuses to overwrite" 1 "--force" "$CORRAL" init
expect_out "init --force with a box" 0 "wrote" "$CORRAL" init --force example/other
check "init used the box" grep -q 'box: example/other' corral.yaml
expect_out "init rejects a hostile box name" 2 "not a box name" "$CORRAL" init --force 'x"; rm -rf /'

expect_out "status finds the envfile in a parent" 0 "default" "$CORRAL" -C sub/deeper status
expect_out "status --json" 0 '"state": "not created"' "$CORRAL" status --json
expect_out "status of an unknown machine" 2 "no machine \`nope\`" "$CORRAL" status nope
expect_out "-f names the envfile" 0 "default" "$CORRAL" -f "$T/proj/corral.yaml" -C / status
cd "$T" || exit 1
expect_out "no envfile anywhere" 2 "corral init" "$CORRAL" status

expect_out "bash completion" 0 "complete -F _corral corral" "$CORRAL" completion bash
expect_out "zsh completion" 0 "compdef _corral corral" "$CORRAL" completion zsh
expect_out "completion of an unknown shell" 2 "fish" "$CORRAL" completion fish
expect_out "completion words: machines" 0 "default" "$CORRAL" -C "$T/proj" __complete machines
mkdir -p "$CORRAL_HOME/boxes/corral-VAGRANTSLASH-debian-12"
expect_out "completion words: boxes" 0 "corral/debian-12" "$CORRAL" __complete boxes
words=$(bash -c "eval \"\$('$CORRAL' completion bash)\"; COMP_WORDS=(corral sta); COMP_CWORD=1; PATH='$(dirname "$CORRAL")':\$PATH _corral; echo \"\${COMPREPLY[*]}\"")
check "bash completion completes a command" test "$words" = "status"

# Files corral writes as root in a directory a user controls are never
# opened through a link: a planted lock or state.json is refused, and the
# file it points at is untouched.
mkdir -p "$T/planted/.corral/machines/web"
printf 'version: 1\nmachines:\n  web: { box: corral/tiny, provider: container }\n' >"$T/planted/corral.yaml"
echo precious >"$T/victim"
ln -s "$T/victim" "$T/planted/.corral/lock"
expect_out "a symlinked lock is refused" 1 "is a symbolic link" "$CORRAL" -C "$T/planted" halt
check "the lock's target is untouched" [ "$(cat "$T/victim")" = precious ]
rm "$T/planted/.corral/lock"
ln -s "$T/victim" "$T/planted/.corral/machines/web/state.json"
expect_out "a symlinked state.json is refused" 1 "is a symbolic link" "$CORRAL" -C "$T/planted" halt
check "the state's target is untouched" [ "$(cat "$T/victim")" = precious ]
