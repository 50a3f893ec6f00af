"""The load balancer: hands each GET to the next web server in turn (round
robin), skipping one that does not answer. Settings from the environment
(/etc/default/lb): BACKENDS (host:port ...), PORT."""
import itertools
import os
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BACKENDS = os.environ["BACKENDS"].split()
turn = itertools.cycle(BACKENDS)
turn_lock = threading.Lock()


def forward(path):
    for _ in BACKENDS:
        with turn_lock:
            backend = next(turn)
        try:
            with urllib.request.urlopen("http://%s%s" % (backend, path), timeout=5) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
        except OSError:
            continue
    return 503, b"lb: no web server answered\n"


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = forward(self.path)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    ThreadingHTTPServer(("", int(os.environ.get("PORT", "80"))), Handler).serve_forever()
