#!/usr/bin/env bash
# corral import on the Vagrantfile corpus: each tests/fixtures/vagrantfiles/
# NAME/Vagrantfile (with the scripts and playbooks it names) becomes exactly
# NAME/expected.yaml, and `corral validate` takes that file. Then the
# command's edges: exit codes, --force, -o elsewhere, a Vagrantfile that does
# not parse, the summary. IMPORT_GOLDEN_UPDATE=1 rewrites expected.yaml.
. "$(dirname "$0")/../lib.sh"
FX=$FIXTURES/vagrantfiles

for dir in "$FX"/*/; do
	name=$(basename "$dir")
	W=$T/corpus/$name
	mkdir -p "$T/corpus"
	cp -r "$dir" "$W"
	rm -f "$W/expected.yaml"
	err=$(cd "$W" && "$CORRAL" import 2>&1)
	rc=$?
	if [ "$rc" -ne 0 ]; then
		not_ok "import $name (exit $rc)"
		printf '%s\n' "$err" | sed 's/^/#   /'
		continue
	fi
	if [ "${IMPORT_GOLDEN_UPDATE:-}" = 1 ]; then
		cp "$W/corral.yaml" "$dir/expected.yaml"
	fi
	if diff -u "$dir/expected.yaml" "$W/corral.yaml" >"$T/diff"; then
		ok "import $name: expected.yaml"
	else
		not_ok "import $name: expected.yaml"
		sed 's/^/#   /' "$T/diff" | head -n 40
	fi
	expect_out "import $name: corral validate takes it" 0 ": ok (" "$CORRAL" -C "$W" validate
done

count=$(find "$FX" -name Vagrantfile | wc -l)
check "the corpus has at least 30 Vagrantfiles ($count)" test "$count" -ge 30

# The command itself.
mkdir -p "$T/cmd/sub"
cat >"$T/cmd/Vagrantfile" <<'RUBY'
Vagrant.configure("2") do |config|
  config.vm.box = "corral/debian-12"
  config.vm.provision "shell", path: "setup.sh"
  config.vm.network "public_network"
end
RUBY
echo 'echo hi' >"$T/cmd/setup.sh"
cd "$T/cmd" || exit 1
expect_out "writes corral.yaml next to the Vagrantfile, summary on stderr" 0 \
	"wrote $T/cmd/corral.yaml from Vagrantfile: 1 machine (default)" corral import
expect_out "the summary lists what was not imported, with its line" 0 \
	'Vagrantfile:4: config.vm.network "public_network" — corral has no public (bridged) networks' \
	corral import --force
expect_out "the file names it as a comment" 0 \
	'# not imported (Vagrantfile line 4): config.vm.network "public_network"' cat corral.yaml
expect_out "an existing output needs --force" 1 "corral.yaml already exists" corral import
expect_out "-o - prints the file" 0 "    provision:" corral import -o -
expect_out "-o elsewhere: paths from the Vagrantfile's directory stay right" 0 \
	"path: $T/cmd/setup.sh" bash -c "'$CORRAL' import -o sub/corral.yaml && cat sub/corral.yaml"
expect_out "and validate takes it there" 0 ": ok (1 machine)" corral -C sub validate
expect_out "a path to the Vagrantfile" 0 "wrote" bash -c "cd sub && '$CORRAL' import --force ../Vagrantfile -o out.yaml"
expect_out "no Vagrantfile: exit 2" 2 "none/Vagrantfile" corral import none/Vagrantfile
printf 'Vagrant.configure("2") do |config|\n  config.vm.box = "x\n' >"$T/cmd/Broken"
expect_out "an unterminated string: exit 2 at file:line:col" 2 "Broken:2:19: error: unterminated string" \
	corral import Broken -o broken.yaml
printf 'Vagrant.configure("2") do |config|\n  config.vm.box = "x"\n' >"$T/cmd/Open"
expect_out "a block without end: exit 2 at the block" 2 "Open:1:24: error: \`do\` has no matching \`end\`" \
	corral import Open -o open.yaml
printf 'x = 1\nend\n' >"$T/cmd/Stray"
expect_out "a stray end: exit 2" 2 "Stray:2:1: error: \`end\` closes nothing" corral import Stray -o stray.yaml
check "nothing written for files that do not parse" test ! -e broken.yaml -a ! -e open.yaml -a ! -e stray.yaml
expect_out "unknown option" 2 "unknown option" corral import --frobnicate
expect_out "help" 0 "corral import [VAGRANTFILE] [-o FILE] [--force]" corral help import
