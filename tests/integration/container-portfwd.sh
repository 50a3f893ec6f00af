#!/usr/bin/env bash
# The TCP port forwarder under a flood: 1,000 connections opened at once to
# a forwarded port capped at 50 (provider_options.container.max_connections)
# reach the guest 50 at a time; the rest are closed at once; the forwarder
# keeps serving afterwards.
. "$(dirname "$0")/../lib.sh"

tiny_web "$T/env" 'ports: [{ guest: 7000, auto_correct: true }]' 'provider_options: { container: { max_connections: 50 } }'
cd "$T/env" || exit 1
on_exit '"$CORRAL" -C "$T/env" destroy -f >/dev/null 2>&1'
expect_out "up" 0 "ssh ready" "$CORRAL" up
# In the guest: a server that greets each connection and holds it for
# 8 s (busybox httpd, a process per connection, with a CGI that sleeps):
# far longer than the flood takes to be served or refused (about 1 s).
"$CORRAL" ssh -c 'mkdir -p /tmp/www/cgi-bin &&
	printf "#!/bin/sh\necho Content-Type: text/plain\necho\necho hi\nsleep 8\n" >/tmp/www/cgi-bin/hold &&
	chmod +x /tmp/www/cgi-bin/hold && httpd -p 7000 -h /tmp/www'
port=$("$CORRAL" --json port | jq -r '.[] | select(.guest == 7000) | .host')
check "the forwarded port is known" [ -n "$port" ]
flood() {
	/usr/bin/python3 - "$port" <<'PY'
import resource, select, socket, sys, time
port = int(sys.argv[1])
resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096))
socks = []
for _ in range(1000):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex(("127.0.0.1", port))
    socks.append(s)
time.sleep(0.5)
for s in socks:  # connected ones ask; refused ones fail here, silently
    try:
        s.send(b"GET /cgi-bin/hold HTTP/1.0\r\n\r\n")
    except OSError:
        pass
greeted = closed = 0
deadline = time.time() + 15
pending = {s.fileno(): s for s in socks}
poller = select.poll()
for fd in pending:
    poller.register(fd, select.POLLIN)
while pending and time.time() < deadline:
    for fd, _ in poller.poll(200):
        s = pending.pop(fd)
        poller.unregister(fd)
        try:
            data = s.recv(4096)
        except OSError:
            data = b""
        if data and b"hi" not in data:  # headers first: wait for the body
            try:
                s.settimeout(5)
                data += s.recv(4096)
            except OSError:
                pass
        greeted += b"hi" in data
        closed += not data
print(f"greeted={greeted} closed={closed}")
PY
}
out=$(flood)
echo "# $out"
check "no more than 50 reach the guest at once" [ "$(sed -n 's/greeted=\([0-9]*\).*/\1/p' <<<"$out")" -le 50 ]
check "50 of them do" [ "$(sed -n 's/greeted=\([0-9]*\).*/\1/p' <<<"$out")" -ge 45 ]
check "the rest are closed at once" [ "$(sed -n 's/.*closed=\([0-9]*\)/\1/p' <<<"$out")" -ge 900 ]
after() {
	/usr/bin/python3 - "$port" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.settimeout(20)
s.send(b"GET /cgi-bin/hold HTTP/1.0\r\n\r\n")
data = b""
while b"hi" not in data:
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode(errors="replace"))
PY
}
# Once the held connections end, a new one is served: tried every 0.5 s
# (while they are held it is closed at once) for up to 30 s.
served_after() {
	local out
	for _ in $(seq 60); do
		out=$(after 2>/dev/null)
		[[ $out == *hi* ]] && { printf '%s\n' "$out"; return 0; }
		sleep 0.5
	done
	return 1
}
expect_out "afterwards the forwarder still serves" 0 "hi" served_after
