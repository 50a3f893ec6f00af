"""The database tier: SQLite behind a small HTTP API, a stand-in for a
database server that needs nothing from the network. GET /items answers
the items table as JSON. Settings from the environment: DB_FILE, SCHEMA,
PORT."""
import json
import os
import sqlite3
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DB_FILE = os.environ.get("DB_FILE", "/var/lib/inventory/inventory.db")


def items():
    with sqlite3.connect(DB_FILE) as db:
        rows = db.execute("SELECT name, stock FROM items ORDER BY name")
        return [{"name": name, "stock": stock} for name, stock in rows]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/items":
            self.send_error(404)
            return
        body = json.dumps(items()).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    with sqlite3.connect(DB_FILE) as db, open(os.environ["SCHEMA"]) as schema:
        db.executescript(schema.read())
    ThreadingHTTPServer(("", int(os.environ.get("PORT", "5000"))), Handler).serve_forever()
