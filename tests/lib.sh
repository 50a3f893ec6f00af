# Sourced by integration tests: assertions that print TAP lines, and a
# scratch directory that is removed on exit.
set -u
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CORRAL=${CORRAL:-$ROOT/build/corral}
FIXTURES=$ROOT/tests/fixtures
# Built boxes are cached outside the checkout, keyed by recipe hash.
export CORRAL_BOX_CACHE=${CORRAL_BOX_CACHE:-/var/cache/corral-test/boxes}
# test_box RECIPE: builds the box, or reuses the cached one; prints its path.
# Under tests/run, each call adds "RECIPE MICROSECONDS built|reused" to the
# file $CORRAL_TEST_BOX_TIMES for its time summary (a reuse may have waited
# for another test's build of the same box).
test_box() {
	local t0=${EPOCHREALTIME//[^0-9]/} err box how=reused
	err=$(mktemp)
	box=$("$ROOT/boxes/build" "$1" 2>"$err" | tail -n 1)
	grep -q '^boxes: built ' "$err" && how=built
	rm -f "$err"
	[ -z "${CORRAL_TEST_BOX_TIMES:-}" ] ||
		echo "$1 $((${EPOCHREALTIME//[^0-9]/} - t0)) $how" >>"$CORRAL_TEST_BOX_TIMES"
	printf '%s\n' "$box"
}
T=$(mktemp -d "${TMPDIR:-/tmp}/corral-test.XXXXXX")
# Vagrant's box store is listed and used too: none unless a test makes one.
export CORRAL_HOME=$T/home VAGRANT_HOME=$T/vagrant.d NO_COLOR=1
cleanup_hooks=()
on_exit() { cleanup_hooks+=("$1"); }
trap 'for h in "${cleanup_hooks[@]}"; do eval "$h"; done; rm -rf "$T"' EXIT

# example NAME: runs the rest of the script in a copy of examples/NAME (as
# a user's checkout would be: no .corral of an earlier run), its machines
# destroyed on exit. `corral` there is the binary under test, so the
# script's lines read as the example's README and comments do.
example() {
	EX=$T/examples/$1
	mkdir -p "$T/examples"
	cp -r "$ROOT/examples/$1" "$EX"
	rm -rf "$EX/.corral"
	on_exit '"$CORRAL" -C "$EX" destroy -f >/dev/null 2>&1'
	cd "$EX" || exit 1
}
corral() { "$CORRAL" "$@"; }

# --- corral as an ordinary user (issue 18) ---
# user_make NAME: an ordinary user NAME<pid> in $U, made by useradd (home
# $UH, with its /etc/subuid and /etc/subgid range), removed on exit after
# every hook user_first put before it.
user_make() {
	U=$1$$ UH=$T/u
	chmod 755 "$T"
	users_locked useradd -m -d "$UH" -s /bin/sh "$U" || { not_ok "useradd $U"; exit 1; }
	# The home (boxes, machines) goes first, outside the lock; userdel
	# removes the user's subuid and subgid lines too.
	on_exit 'rm -rf "$UH"; users_locked userdel "$U" >/dev/null 2>&1'
	# useradd gives a range when SUB_UID_COUNT allows it; else one is added.
	grep -q "^$U:" /etc/subuid ||
		users_locked usermod --add-subuids 500000-565535 --add-subgids 500000-565535 "$U"
}
# users_locked CMD...: CMD holding the lock every test takes to change the
# host's users, groups, /etc/subuid or /etc/subgid. shadow's tools lock
# /etc/passwd for each other, but tests run side by side and one that
# waits behind a long userdel, or edits /etc/subuid itself, would lose to
# the other (a useradd failing under load left a user without its key).
# In /tmp, not $TMPDIR: the users are the host's, whoever runs the test.
users_locked() { flock /tmp/corral-test-users.lock "$@"; }
# user_first HOOK: an exit hook that runs before all others (the user's
# machines go before the user does).
user_first() { cleanup_hooks=("$1" "${cleanup_hooks[@]}"); }

# user_cgroup: what systemd-logind does for a login session (user@UID.service,
# Delegate=yes): a cgroup of the v2 hierarchy (/sys/fs/cgroup, or its
# unified/ on a hybrid host) delegated to $U — the directory, cgroup.procs,
# cgroup.threads and cgroup.subtree_control are the user's — in which
# as_user runs from then on. Removed on exit, with what corral left in it.
user_cgroup() {
	local v2=/sys/fs/cgroup
	[ "$(stat -fc %T "$v2")" = cgroup2fs ] || v2=$v2/unified
	UCG=$v2/corral-test-$U
	mkdir "$UCG" && chown "$U:" "$UCG" "$UCG/cgroup.procs" "$UCG/cgroup.threads" \
		"$UCG/cgroup.subtree_control" || { not_ok "delegate a cgroup to $U"; exit 1; }
	on_exit 'find "$UCG" -depth -type d -exec rmdir {} + 2>/dev/null'
}

# as_user CMD...: CMD as $U in its login environment, none of the test's
# corral variables (so the defaults are what is tested); in its delegated
# cgroup when user_cgroup made one. $UPATH replaces the PATH.
as_user() {
	local env=(env -i HOME="$UH" USER="$U" PATH="${UPATH:-/usr/sbin:/usr/bin:/sbin:/bin}" NO_COLOR=1)
	if [ -n "${UCG:-}" ]; then
		sh -c 'echo $$ >"$0/cgroup.procs" && exec "$@"' "$UCG" runuser -u "$U" -- "${env[@]}" "$@"
	else
		runuser -u "$U" -- "${env[@]}" "$@"
	fi
}

# tun_open: /dev/net/tun as Debian's udev makes it (0666: pasta opens it as
# the user; some VMs leave it 0600) for the run, as it was after.
tun_open() {
	on_exit "chmod $(stat -c %a /dev/net/tun) /dev/net/tun"
	chmod 0666 /dev/net/tun
}

# user_example NAME: `example NAME` as $U: the copy is in $U's home and
# the user's, `corral` runs as $U, and $U destroys its machines on exit.
user_example() {
	EX=$UH/examples/$1
	as_user mkdir -p "$UH/examples"
	cp -r "$ROOT/examples/$1" "$EX" && rm -rf "$EX/.corral" && chown -R "$U:" "$EX"
	user_first 'as_user "$CORRAL" -C "$EX" destroy -f >/dev/null 2>&1'
	cd "$EX" || exit 1
	corral() { as_user "$CORRAL" "$@"; }
}

# gone PID: the process runs no more — gone, or a zombie its parent (for a
# daemon, the host's init) has yet to reap.
gone() { [ ! -e "/proc/$1" ] || [ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" = Z ]; }

ok() { echo "ok - $*"; }
not_ok() { echo "not ok - $*"; }

# check NAME COMMAND...: passes when the command succeeds; returns its
# verdict, so `check ... || print-the-details` prints them on failure.
check() {
	local name=$1; shift
	if "$@"; then ok "$name"; else not_ok "$name"; return 1; fi
}

# expect_out NAME EXPECTED_EXIT EXPECTED_SUBSTRING COMMAND...: runs the
# command, checks its exit code and that stdout+stderr contain the text.
expect_out() {
	local name=$1 want_rc=$2 want=$3; shift 3
	local out rc
	out=$("$@" 2>&1); rc=$?
	if [ "$rc" -eq "$want_rc" ] && [[ "$out" == *"$want"* ]]; then
		ok "$name"
	else
		not_ok "$name"
		echo "#   wanted exit $want_rc and text: $want"
		echo "#   got exit $rc:"
		printf '%s\n' "$out" | head -n 30 | sed 's/^/#     /'
	fi
}

# run_ok NAME COMMAND...: runs a long command (an `up`), its stdout+stderr
# kept in $out for the checks that follow; passes when it exits 0, else
# fails with the output's last lines.
run_ok() {
	local name=$1 rc; shift
	out=$("$@" 2>&1); rc=$?
	check "$name" [ "$rc" -eq 0 ] || printf '%s\n' "$out" | tail -n 30 | sed 's/^/#   /'
}

# tiny_web DIR [YAML_LINE...]: DIR/corral.yaml with one container machine
# `web` of the tiny box (from its catalog), each YAML_LINE added to it.
tiny_web() {
	local dir=$1 box line
	shift
	box=$(test_box tiny)
	mkdir -p "$dir"
	{
		printf 'version: 1\nmachines:\n  web:\n    box: corral/tiny\n'
		printf '    box_url: file://%s/catalog.json\n    provider: container\n' "$(dirname "$box")"
		for line in "$@"; do printf '    %s\n' "$line"; done
	} >"$dir/corral.yaml"
}

# tiny_tree DIR: the tiny box unpacked into DIR (metadata.json, rootfs/),
# to be changed into a box of another shape and packed with pack_box.
tiny_tree() { mkdir -p "$1" && tar -C "$1" -xf "$(test_box tiny)"; }
# pack_box DIR FILE: DIR's metadata.json and rootfs/ as a .box file
# (gzip -1: a .tar.gz all the same, in a third of -6's CPU).
pack_box() { tar -C "$1" -cf - metadata.json rootfs | gzip -1 >"$2"; }

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# Forwards' host ports are drawn from 20000 up to 100 below the ephemeral
# range: in that range other jobs' connections hold their local ports, and
# a port held so cannot be bound though nothing listens.
port_ceiling() {
	local eph
	read -r eph _ </proc/sys/net/ipv4/ip_local_port_range
	echo $((eph > 21100 ? eph - 100 : 21000))
}
rand_port() { echo $((20000 + RANDOM % ($(port_ceiling) - 20000))); }

# hold_port ADDR SECONDS: a listener of the test's own on ADDR, on a port
# drawn from that range whose next port and the one 10 above could be
# bound too when it started (what "a taken port goes to the next free one"
# checks need). It binds before it reports, so no other job takes the port
# in between. Sets HELD_PORT and HOLDER (its pid, killed on exit).
hold_port() {
	local f=$T/.held-port.$RANDOM
	python3 -c 'import random, socket, sys, time
addr, secs, top = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
def sock():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    return s
def can(p):
    with sock() as t:
        try:
            t.bind((addr, p))
            return True
        except OSError:
            return False
for _ in range(200):
    p, s = random.randrange(20000, top - 10), sock()
    try:
        s.bind((addr, p))
        s.listen(1)
    except OSError:
        s.close()
        continue
    if can(p + 1) and can(p + 10):
        break
    s.close()
else:
    sys.exit(1)
print(p, flush=True)
time.sleep(secs)' "$1" "$2" "$(port_ceiling)" >"$f" &
	HOLDER=$!
	on_exit "kill $HOLDER 2>/dev/null"
	for _ in $(seq 100); do [ -s "$f" ] && break; sleep 0.05; done
	read -r HELD_PORT <"$f"
	[ -n "$HELD_PORT" ]
}

# registry_start VAR NAME [YAML auth block]: Debian's docker-registry on
# loopback with TLS from the test CA in $T/ca (made by tests/server/mkca);
# its port in VAR.
registry_start() {
	local var=$1 name=$2 auth=${3:-} port i
	port=$(free_port)
	mkdir -p "$T/reg-$name"
	cat >"$T/reg-$name.yml" <<-EOF
	version: 0.1
	log: {level: error}
	storage:
	  filesystem: {rootdirectory: $T/reg-$name}
	http:
	  addr: 127.0.0.1:$port
	  tls: {certificate: $T/ca/server.pem, key: $T/ca/server.key}
	$auth
	EOF
	# (its REGISTRY_* variables would override the config: not ours)
	env -u REGISTRY_AUTH_FILE docker-registry serve "$T/reg-$name.yml" >"$T/reg-$name.log" 2>&1 &
	on_exit "kill $!"
	for i in $(seq 100); do
		curl -s -o /dev/null --cacert "$T/ca/ca.pem" "https://localhost:$port/v2/" && break
		sleep 0.05
	done
	printf -v "$var" '%s' "$port"
}
