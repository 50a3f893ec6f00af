# shellcheck shell=bash
# Shared by the Debian recipes; sourced inside a recipe's subshell by
# boxes/build, so BOXES, RECIPE_DIR, log and die are defined.

DEBIAN_SUITE=bookworm
DEBIAN_MIRRORS=(
	"deb http://deb.debian.org/debian bookworm main"
	"deb http://deb.debian.org/debian bookworm-updates main"
	"deb http://deb.debian.org/debian-security bookworm-security main"
)
# What every corral Debian box has, whatever the provider: an init that can
# boot it, sshd, sudo for privileged provisioning, python3 for Ansible, and
# the everyday tools a provisioning script expects (ip, ps, useradd, TLS roots).
DEBIAN_PACKAGES=systemd-sysv,openssh-server,sudo,python3,iproute2,ca-certificates,procps,passwd,netbase

# Debian's .debs, kept for every box build of the host (lib/apt-cache):
# beside the box cache (tests: /var/cache/corral-test/apt), or
# CORRAL_APT_CACHE. Delete it freely; nothing is ever pruned from it.
DEBIAN_APT_CACHE=${CORRAL_APT_CACHE:-$(dirname "$CACHE")/apt}
# mmdebstrap's options for it: the cache in before the download, what it
# lacks out after the install; essential/unlink would remove the Essential
# packages' .debs before the customize hook could keep them.
DEBIAN_APT_CACHE_OPTS=(
	--skip=essential/unlink
	--setup-hook="\"$BOXES/lib/apt-cache\" in \"\$1\" \"$DEBIAN_APT_CACHE\""
	--customize-hook="\"$BOXES/lib/apt-cache\" out \"\$1\" \"$DEBIAN_APT_CACHE\""
)

# debian_apt_locked COMMAND...: the command (a bootstrap) holding the
# archive's lock, so that of two builds started at once the second takes
# the first's .debs from the cache instead of downloading them too. The
# lock goes with the command's process, however it ends.
debian_apt_locked() {
	install -d -m 0755 "$DEBIAN_APT_CACHE"
	flock -n "$DEBIAN_APT_CACHE/.lock" true ||
		log "waiting for another build's Debian bootstrap (it fills $DEBIAN_APT_CACHE)"
	flock "$DEBIAN_APT_CACHE/.lock" "$@"
}

# debian_bootstrap ROOT [MMDEBSTRAP_OPTION...]
# mmdebstrap's apt variant (Essential + apt) plus DEBIAN_PACKAGES; callers
# add packages with further --include= options and hooks.
debian_bootstrap() {
	local root=$1
	shift
	# merged-usr hook: bookworm's apt would otherwise pull in usrmerge and
	# with it the full perl (~50 MB) just to convert a tree that mmdebstrap
	# can lay out merged from the start.
	# eatmydata hook: dpkg's fsync after every file is wasted on a tree that
	# is thrown away unless the build completes; it is removed again at the end.
	# path-exclude: no docs, man pages, info or translations (copyright
	# files stay: they are the licence terms). mmdebstrap keeps these
	# options in /etc/dpkg/dpkg.cfg.d/99mmdebstrap, so packages installed
	# later in the box stay slim too.
	# stdin from /dev/null: without a tty mmdebstrap may read sources from it.
	# unshare: the /proc, /sys and /dev mounts mmdebstrap makes in the chroot
	# live in a private mount namespace and vanish with it, even when the
	# build is killed with SIGKILL, so the temp tree can always be deleted.
	debian_apt_locked unshare --mount --propagation private -- mmdebstrap --mode=root \
		--variant=apt --format=directory \
		--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
		--hook-dir=/usr/share/mmdebstrap/hooks/eatmydata \
		--include="$DEBIAN_PACKAGES" "${DEBIAN_APT_CACHE_OPTS[@]}" \
		--dpkgopt='path-exclude=/usr/share/doc/*' \
		--dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/man/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-exclude=/usr/share/lintian/*' \
		"$@" "$DEBIAN_SUITE" "$root" "${DEBIAN_MIRRORS[@]}" </dev/null
	# The top directory's mode comes from the builder's umask, not from a
	# package; a box root must be traversable by every user.
	chmod 0755 "$root"
}

# debian_vagrant_setup ROOT
# The Vagrant box contract: user vagrant (uid 1000) with password-less sudo,
# key-only sshd, and no host keys so every machine gets its own.
debian_vagrant_setup() {
	local root=$1

	chroot "$root" useradd --create-home --uid 1000 --user-group \
		--shell /bin/bash --comment vagrant vagrant
	# '*' matches no password, yet unlike useradd's '!' it does not mark the
	# account locked, which sshd refuses for key logins when UsePAM is off.
	chroot "$root" usermod --password '*' vagrant
	install -d -m 0700 -o 1000 -g 1000 "$root/home/vagrant/.ssh"
	install -m 0600 -o 1000 -g 1000 /dev/null "$root/home/vagrant/.ssh/authorized_keys"

	cat >"$root/etc/sudoers.d/vagrant" <<-'EOF'
		Defaults:vagrant !requiretty
		vagrant ALL=(ALL:ALL) NOPASSWD: ALL
	EOF
	chmod 0440 "$root/etc/sudoers.d/vagrant"
	chroot "$root" visudo --check --quiet --file=/etc/sudoers.d/vagrant

	# A drop-in rather than an edited sshd_config: Debian's sshd_config
	# includes sshd_config.d/*.conf first and sshd keeps the first value it
	# reads, and openssh-server upgrades then never ask about a changed file.
	cat >"$root/etc/ssh/sshd_config.d/corral.conf" <<-'EOF'
		# corral box defaults
		UseDNS no
		PasswordAuthentication no
		KbdInteractiveAuthentication no
		PermitRootLogin prohibit-password
	EOF

	# openssh-server's postinst made host keys; shipping them would give every
	# machine of this box the same identity.
	rm -f "$root"/etc/ssh/ssh_host_*
	# Under systemd, create them on first start unless the runtime wrote one
	# (corral writes an ed25519 key and pins it; ssh-keygen -A would add an
	# RSA key nobody checks, a second or two of CPU at every first boot).
	# The list is reset because Debian's unit first runs `sshd -t`, which
	# fails while there are no keys. Without systemd the runtime runs
	# ssh-keygen -A itself (see boxes/README.md).
	mkdir -p "$root/etc/systemd/system/ssh.service.d"
	cat >"$root/etc/systemd/system/ssh.service.d/corral-hostkeys.conf" <<-'EOF'
		[Service]
		ExecStartPre=
		ExecStartPre=/bin/sh -c 'ls /etc/ssh/ssh_host_*_key >/dev/null 2>&1 || exec /usr/bin/ssh-keygen -A'
		ExecStartPre=/usr/sbin/sshd -t
	EOF

	# C.UTF-8 is built into libc (no locales package needed); without this
	# file pam_env warns on every login and tools fall back to ASCII.
	echo LANG=C.UTF-8 >"$root/etc/default/locale"

	# mmdebstrap copies the build host's hostname and resolver; neither
	# belongs in a box. The provider sets both per machine.
	echo localhost >"$root/etc/hostname"
	if [[ ! -L $root/etc/resolv.conf ]]; then
		: >"$root/etc/resolv.conf"
	fi
}

# debian_container_root ROOT
# What a container box's tree needs beyond the Vagrant contract.
debian_container_root() {
	local root=$1
	# pam_loginuid writes /proc/self/loginuid, which a container without
	# CAP_AUDIT_CONTROL may not; as "required" that would refuse every ssh
	# session. The login uid is audit bookkeeping only.
	sed -i 's/^session\s\+required\s\+pam_loginuid\.so/session optional pam_loginuid.so/' \
		"$root/etc/pam.d/sshd"
	grep -q '^session optional pam_loginuid\.so' "$root/etc/pam.d/sshd" ||
		die "pam_loginuid line not found in /etc/pam.d/sshd"
	# The runtime mounts its own minimal /dev.
	find "$root/dev" -mindepth 1 -delete
}
