#!/usr/bin/env bash
# make deb: the package has what Debian policy asks for, lintian reports no
# error, and it installs with dpkg -i into a fresh Debian chroot that holds
# only its Depends (and Debian's essential packages): there corral runs
# (--version, validate), adds a box (libarchive, loaded on first use), and
# finds every library core/base/lazylib.c loads. The base chroot is built by
# mmdebstrap once per Depends list and cached as a tarball beside the test
# boxes (and unpacked beside it), so a warm run only mounts an overlay on it.
. "$(dirname "$0")/../lib.sh"

for tool in lintian mmdebstrap; do
	command -v "$tool" >/dev/null || { not_ok "$tool is not installed (make test installs it)"; exit 1; }
done

out=$(make -s --no-print-directory -C "$ROOT" deb 2>"$T/make.err")
deb=$ROOT/$(tail -n 1 <<<"$out")
if [ -f "$deb" ]; then
	ok "make deb builds $(basename "$deb")"
else
	not_ok "make deb"
	sed 's/^/#   /' "$T/make.err" | tail -n 20
	exit 1
fi

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/corral ./usr/share/man/man1/corral.1.gz ./usr/share/man/man5/corral.yaml.5.gz \
	./usr/share/bash-completion/completions/corral ./usr/share/zsh/vendor-completions/_corral \
	./usr/share/doc/corral/copyright ./usr/share/doc/corral/changelog.Debian.gz; do
	check "the package holds $f" grep -qxF "$f" <<<"$contents"
done
check "files are root's" bash -c '! dpkg-deb -c "$1" | grep -v " root/root "' _ "$deb"
depends=$(dpkg-deb -f "$deb" Depends)
for lib in libcurl4 libarchive13 libssh-4 libyaml-0-2 libjansson4 libssl3; do
	check "Depends: $lib" grep -qE "(^|, )$lib( |,|$)" <<<"$depends"
done
check "Recommends the kvm provider's and ansible's programs" \
	grep -q "qemu-system-x86.*qemu-utils.*ansible-core" <<<"$(dpkg-deb -f "$deb" Recommends)"
check "the version is corral's" test "$(dpkg-deb -f "$deb" Version)" = "$("$CORRAL" --version | cut -d' ' -f2)-1"

# lintian takes a while: it runs beside the chroot's checks, read at the end.
lintian "$deb" >"$T/lintian.out" 2>&1 &
lint_pid=$!

# The base chroot: essential packages plus the package's Depends, no more.
# Unpacked once beside its tarball; each run mounts its own overlay on it.
suite=bookworm
mirrors=("deb http://deb.debian.org/debian $suite main"
	"deb http://deb.debian.org/debian $suite-updates main"
	"deb http://deb.debian.org/debian-security $suite-security main")
include=$(sed 's/ *([^)]*)//g; s/ //g' <<<"$depends")
options=(--mode=root --variant=essential --include="$include"
	--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*'
	--dpkgopt='path-exclude=/usr/share/locale/*')
cache=${CORRAL_CHROOT_CACHE:-/var/cache/corral-test/chroots}
key=$(printf '%s\n' "${options[@]}" "$suite" "${mirrors[@]}" | sha256sum | cut -c1-16)
base=$cache/deb-$key.tar

build_base() {
	mkdir -p "$cache"
	exec {lockfd}>"$cache/.deb-$key.lock"
	flock "$lockfd"
	if [ ! -f "$base" ]; then
		local tmp
		tmp=$(mktemp "$cache/.deb-$key.XXXXXX.tar")
		# the .debs from, and back to, the box recipes' archive (boxes/lib/apt-cache);
		# the temp tree beside it, so they are linked, not copied
		local apt=${CORRAL_APT_CACHE:-/var/cache/corral-test/apt}
		# (and its lock: a box build fetching the same .debs at once waits)
		mkdir -p "$apt"
		if TMPDIR=$cache flock "$apt/.lock" unshare --mount --propagation private -- \
			mmdebstrap -q "${options[@]}" --skip=essential/unlink \
			--setup-hook="\"$ROOT/boxes/lib/apt-cache\" in \"\$1\" \"$apt\"" \
			--customize-hook="\"$ROOT/boxes/lib/apt-cache\" out \"\$1\" \"$apt\"" \
			"$suite" "$tmp" "${mirrors[@]}" </dev/null >"$T/mmdebstrap.log" 2>&1; then
			chmod 0644 "$tmp" && mv "$tmp" "$base"
		else
			tail -n 20 "$T/mmdebstrap.log" | sed 's/^/#   /'
			rm -f "$tmp"
		fi
	fi
	if [ -f "$base" ] && [ ! -d "${base%.tar}" ]; then
		local tree
		tree=$(mktemp -d "$cache/.deb-$key.XXXXXX")
		tar -C "$tree" -xf "$base" && chmod 0755 "$tree" && mv "$tree" "${base%.tar}"
	fi
	exec {lockfd}>&-
	[ -d "${base%.tar}" ]
}
check "a base chroot with the Depends (cached: $(basename "$base"))" build_base || exit 1

root=$T/root
mkdir "$root" "$T/upper" "$T/work"
on_exit "umount '$root' 2>/dev/null"
mount -t overlay overlay -o "lowerdir=${base%.tar},upperdir=$T/upper,workdir=$T/work" "$root" ||
	{ not_ok "an overlay on the base chroot"; exit 1; }
cp "$deb" "$root/tmp/corral.deb"
in_root() { chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root CORRAL_HOME=/tmp/corral "$@"; }
expect_out "dpkg -i installs it" 0 "Setting up corral" in_root dpkg -i /tmp/corral.deb
expect_out "corral --version there" 0 "corral $("$CORRAL" --version | cut -d' ' -f2)" in_root corral --version

mkdir -p "$root/tmp/proj"
cat >"$root/tmp/proj/corral.yaml" <<'EOF'
version: 1
machines:
  dev: { box: test/tiny, provider: container, memory: 256M }
EOF
expect_out "corral validate there" 0 "" in_root corral -C /tmp/proj validate
printf 'version: 1\nmachines:\n  dev: { box: test/tiny, memroy: 1G }\n' >"$root/tmp/proj/bad.yaml"
expect_out "corral validate there finds an error" 2 "did you mean \`memory\`?" \
	in_root corral -f /tmp/proj/bad.yaml validate

# A .box is a tar archive: adding one loads libarchive.
mkdir -p "$T/box/rootfs/etc"
printf '{"provider":"container","format":"rootfs","architecture":"%s"}\n' \
	"$(dpkg --print-architecture)" >"$T/box/metadata.json"
echo 'ID=tiny' >"$T/box/rootfs/etc/os-release"
tar -C "$T/box" -czf "$root/tmp/tiny.box" metadata.json rootfs
expect_out "corral box add there (libarchive)" 0 "" in_root corral box add --name test/tiny /tmp/tiny.box
expect_out "corral box list there" 0 "test/tiny" in_root corral box list

for so in $(grep -o '"lib[a-z]*\.so\.[0-9]*"' "$ROOT/core/base/lazylib.c" | tr -d '"'); do
	check "the chroot has $so, which corral loads on first use" \
		bash -c 'chroot "$1" ldconfig -p | grep -q "^[[:space:]]*$2 "' _ "$root" "$so"
done

wait "$lint_pid"
lint=$(cat "$T/lintian.out")
errors=$(grep '^E:' <<<"$lint")
check "lintian reports no error${errors:+: $errors}" test -z "$errors"
warnings=$(grep -c '^W:' <<<"$lint")
[ "$warnings" -eq 0 ] || echo "# lintian warnings: $(grep '^W:' <<<"$lint" | tr '\n' ' ')"
