# Sourced by tests and benches: boxserver_start VAR DIR [boxserver args...]
# starts tests/server/boxserver.py on loopback, waits until it listens and
# sets $VAR to its port. The server exits with the calling shell.
BOXSERVER=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/boxserver.py
boxserver_start() {
	local var=$1 dir=$2; shift 2
	local pf
	pf=$(mktemp -u /tmp/boxserver-port.XXXXXX)
	/usr/bin/python3 "$BOXSERVER" "$dir" --port-file "$pf" --parent $$ "$@" &
	local pid=$! i
	for i in $(seq 200); do
		[ -s "$pf" ] && break
		kill -0 "$pid" 2>/dev/null || { echo "boxserver failed to start" >&2; return 1; }
		sleep 0.05
	done
	printf -v "$var" '%s' "$(cat "$pf")"
	rm -f "$pf"
	BOXSERVER_PIDS="${BOXSERVER_PIDS:-} $pid"
}
boxserver_stop_all() {
	local p
	for p in ${BOXSERVER_PIDS:-}; do kill "$p" 2>/dev/null; done
	BOXSERVER_PIDS=
}
