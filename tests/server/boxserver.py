#!/usr/bin/python3
"""A box server for tests: serves a directory over HTTP or HTTPS on loopback,
with Range support, fault injection and a log of every request's headers.

usage: boxserver.py DIR --port-file F [--log F] [--cert PEM --key PEM]
                    [--bind ADDR ...] [--parent PID]

The port (picked free by the kernel, the same on every --bind address) is
written to --port-file once the server listens. Each request appends one
JSON line to --log: method, path, host, range, authorization.

Faults, from the URL's query string (a fault marked "once" fires on the
first request for that exact URL only):
  cut=N           send N bytes of the body, then drop the connection (once)
  status=CODE     answer CODE with no body (every time)
  fail=CODE       answer CODE once, then serve normally
  slow=BPS        send the body at BPS bytes per second (once)
  norange=1       ignore Range: always 200 with the whole file
  redirect=URL    302 to URL
The server exits when --parent's process is gone.
"""
import argparse
import http.server
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

fired = set()
fired_lock = threading.Lock()
log_lock = threading.Lock()


def once(key):
    with fired_lock:
        if key in fired:
            return False
        fired.add(key)
        return True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def record(self):
        if not self.server.log_path:
            return
        entry = {
            "method": self.command,
            "path": self.path,
            "host": self.headers.get("Host", ""),
            "range": self.headers.get("Range"),
            "authorization": self.headers.get("Authorization"),
        }
        with log_lock, open(self.server.log_path, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def empty(self, code, headers=()):
        self.send_response(code)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_HEAD(self):
        self.do_GET(body=False)

    def do_GET(self, body=True):
        self.record()
        url = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        if "redirect" in q:
            return self.empty(302, [("Location", q["redirect"])])
        if "status" in q:
            return self.empty(int(q["status"]))
        if "fail" in q and once(("fail", self.path)):
            return self.empty(int(q["fail"]))
        rel = urllib.parse.unquote(url.path).lstrip("/")
        path = os.path.realpath(os.path.join(self.server.root, rel))
        if not path.startswith(self.server.root + os.sep) or not os.path.isfile(path):
            return self.empty(404)
        size = os.path.getsize(path)
        start, code = 0, 200
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and "norange" not in q:
            start = int(rng[6:].split("-")[0])
            if start >= size:
                return self.empty(416, [("Content-Range", "bytes */%d" % size)])
            code = 206
        self.send_response(code)
        self.send_header("Content-Length", str(size - start))
        self.send_header("Accept-Ranges", "bytes")
        if code == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, size - 1, size))
        self.end_headers()
        if body:
            self.send_body(path, start, q)

    def send_body(self, path, start, q):
        limit = None
        if "cut" in q and once(("cut", self.path)):
            limit = int(q["cut"])
        bps = int(q["slow"]) if "slow" in q and once(("slow", self.path)) else 0
        chunk = max(1, bps // 10) if bps else 1 << 20
        sent = 0
        with open(path, "rb") as f:
            f.seek(start)
            while True:
                want = chunk if limit is None else min(chunk, limit - sent)
                data = f.read(want) if want > 0 else b""
                if not data:
                    break
                try:
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    return
                sent += len(data)
                if bps:
                    time.sleep(0.1)
        if limit is not None:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # Clients that hang up (timeouts, killed downloads) are part of the tests.
        if not isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError)):
            super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--bind", action="append")
    ap.add_argument("--parent", type=int)
    a = ap.parse_args()
    ctx = None
    if a.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.cert, a.key)
    port, servers = 0, []
    for addr in a.bind or ["127.0.0.1"]:
        s = Server((addr, port), Handler)
        port = s.server_address[1]
        s.root = os.path.realpath(a.dir)
        s.log_path = a.log
        if ctx:
            s.socket = ctx.wrap_socket(s.socket, server_side=True)
        servers.append(s)
        threading.Thread(target=s.serve_forever, daemon=True).start()
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.rename(tmp, a.port_file)
    while a.parent is None or os.path.exists("/proc/%d" % a.parent):
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
