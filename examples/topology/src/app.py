"""The web tier, served from the synced folder /srv/app: every GET answers
with this machine's name, the release and the items it read from the
database over the backend network. Edit it here on the host, then
`corral ssh web-1 -c 'sudo systemctl restart app'`. Settings from the
environment (/etc/default/app): DB_URL, RELEASE, PORT."""
import json
import os
import socket
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def page():
    with urllib.request.urlopen(os.environ["DB_URL"], timeout=5) as answer:
        items = json.load(answer)
    names = ", ".join("%s (%d)" % (i["name"], i["stock"]) for i in items)
    return "%s: release %s, %d items from db: %s\n" % (
        socket.gethostname(), os.environ.get("RELEASE", "?"), len(items), names)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            status, body = 200, page()
        except OSError as e:
            status, body = 502, "%s: the database did not answer: %s\n" % (socket.gethostname(), e)
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    ThreadingHTTPServer(("", int(os.environ.get("PORT", "80"))), Handler).serve_forever()
