#!/usr/bin/env python3
"""A small Incus/LXD server on a unix socket, for the calls of the incus
provider that need what this host cannot run (virtual-machine instances
need KVM). It answers with responses recorded from LXD 5.0.2 (Debian 12's
`lxd`) in tests/fakes/incus-vm/: GET /1.0 (driver edited to "lxc | qemu"
and instance_types to both, as a KVM host reports them), the default
profile, a managed bridge, its leases (DELETE of a network: an empty
sync answer, shaped by hand as the API docs give it), operation envelopes (created, and
/wait when done), image upload results, 404 errors, and an instance and
its state (taken from a container, "type" made "virtual-machine"; the
state's NIC keyed by device name with a lease address, as LXD's
driver_qemu.go getNetworkState reports a VM without its agent). What
varies (names, config, devices, fingerprints, status) comes from the
requests, kept in memory. Every request is logged as one JSON line
{method, path, body} to LOG (an upload's body as {"bytes", "members"} of
its tarball); a request no route takes is answered 404 and logged with
"unexpected": true.

usage: incus-fake.py SOCKET RECORDINGS_DIR LOG
"""
import hashlib
import io
import json
import os
import re
import socketserver
import sys
import tarfile
import threading
import uuid
from http.server import BaseHTTPRequestHandler

SOCK, REC, LOG = sys.argv[1], sys.argv[2], sys.argv[3]
lock = threading.Lock()
images = {}     # fingerprint -> properties
aliases = {}    # name -> fingerprint
instances = {}  # name -> {"body": create body, "status": ..., "stateful": bool}
operations = {}  # id -> metadata of the finished operation


def rec(name):
    with open(os.path.join(REC, name + ".json")) as f:
        return json.load(f)


def log(entry):
    with lock, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def operation(meta=None):
    """An async envelope; its /wait answers the done operation."""
    op = rec("operation-created")
    oid = str(uuid.uuid4())
    op["operation"] = "/1.0/operations/" + oid
    op["metadata"]["id"] = oid
    done = rec("operation-done")["metadata"]
    done["id"] = oid
    done["metadata"] = meta
    operations[oid] = done
    return 202, op


def sync(meta):
    r = rec("sync")
    r["metadata"] = meta
    return 200, r


def not_found(what):
    r = rec("not-found")
    r["error"] = what + " not found"
    return 404, r


def instance_view(name):
    i = instances[name]
    v = rec("instance")["metadata"]
    body = i["body"]
    v.update(name=name, type=body.get("type", "container"), config=body.get("config", {}),
             devices=body.get("devices", {}), profiles=body.get("profiles", ["default"]),
             stateful=i["stateful"], status=i["status"])
    v["expanded_config"] = dict(v["config"])
    v["expanded_devices"] = dict(v["devices"])
    return v


def state_view(name):
    i = instances[name]
    s = rec("state")["metadata"]
    s["status"] = i["status"]
    s["status_code"] = 103 if i["status"] == "Running" else 102
    eth0 = i["body"].get("devices", {}).get("eth0", {})
    if i["status"] == "Running":
        s["network"]["eth0"]["hwaddr"] = eth0.get("hwaddr", "")
    else:
        s["network"] = {}
    return s


def upload_members(data):
    try:
        with tarfile.open(fileobj=io.BytesIO(data)) as t:
            return sorted(m.name for m in t.getmembers())
    except tarfile.TarError:
        return []


def state_action(name, body):
    i = instances[name]
    act = body.get("action")
    if act == "start":
        i.update(status="Running", stateful=False)
    elif act == "stop":
        i.update(status="Stopped", stateful=bool(body.get("stateful")))
    elif act == "freeze":
        i["status"] = "Frozen"
    elif act == "unfreeze":
        i["status"] = "Running"
    return operation()


def route(method, path, query, body, raw):
    p = path
    if method == "GET" and p == "/1.0":
        return 200, rec("server")
    if method == "GET" and p == "/1.0/profiles/default":
        return 200, rec("profile")
    m = re.fullmatch(r"/1\.0/networks/([^/]+)(/leases)?", p)
    if method == "GET" and m:
        if m.group(2):
            return 200, rec("leases")
        r = rec("network")
        r["metadata"]["name"] = m.group(1)
        r["metadata"]["used_by"] = ["/1.0/instances/" + n for n in instances]
        return 200, r
    if method == "DELETE" and m and not m.group(2):
        return sync(None)
    m = re.fullmatch(r"/1\.0/operations/([^/]+)/wait", p)
    if method == "GET" and m and m.group(1) in operations:
        return sync(operations.pop(m.group(1)))
    if method == "GET" and p == "/1.0/images":
        return sync(["/1.0/images/" + f for f in images])
    if method == "POST" and p == "/1.0/images":
        fp = hashlib.sha256(raw).hexdigest()
        images[fp] = {}
        return operation({"fingerprint": fp, "size": str(len(raw))})
    m = re.fullmatch(r"/1\.0/images/([0-9a-f]{64})", p)
    if method == "DELETE" and m:
        if images.pop(m.group(1), None) is None:
            return not_found("Image")
        return operation()
    if method == "GET" and p == "/1.0/images/aliases":
        return sync(["/1.0/images/aliases/" + a for a in aliases])
    if method == "POST" and p == "/1.0/images/aliases":
        aliases[body["name"]] = body["target"]
        return sync(None)
    m = re.fullmatch(r"/1\.0/images/aliases/([^/]+)", p)
    if method == "GET" and m:
        a = m.group(1)
        if a not in aliases or aliases[a] not in images:
            return not_found("Image alias")
        return sync({"name": a, "target": aliases[a], "description": "", "type": ""})
    if method == "GET" and p == "/1.0/instances":
        if query.get("recursion") == "1":
            return sync([instance_view(n) for n in instances])
        return sync(["/1.0/instances/" + n for n in instances])
    if method == "POST" and p == "/1.0/instances":
        instances[body["name"]] = {"body": body, "status": "Stopped", "stateful": False}
        return operation()
    m = re.fullmatch(r"/1\.0/instances/([^/]+)(/state)?", p)
    if m and m.group(1) not in instances:
        return not_found("Instance")
    if m and method == "GET":
        return sync(state_view(m.group(1)) if m.group(2) else instance_view(m.group(1)))
    if m and method == "PUT" and m.group(2):
        return state_action(m.group(1), body)
    if m and method == "PUT":
        instances[m.group(1)]["body"].update(body)
        return operation()
    if m and method == "DELETE" and not m.group(2):
        del instances[m.group(1)]
        return operation()
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def address_string(self):
        return "unix"

    def log_message(self, *args):
        pass

    def handle_one(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        path, _, qs = self.path.partition("?")
        query = dict(kv.partition("=")[::2] for kv in qs.split("&") if kv)
        ctype = self.headers.get("Content-Type", "")
        body = None
        entry = {"method": self.command, "path": path, "query": query}
        if raw and ctype.startswith("application/json"):
            body = json.loads(raw)
            entry["body"] = body
        elif raw:
            entry["body"] = {"bytes": len(raw), "members": upload_members(raw)}
        with lock:
            answer = route(self.command, path, query, body or {}, raw)
        if answer is None:
            entry["unexpected"] = True
            answer = not_found("Route")
        log(entry)
        code, doc = answer
        out = json.dumps(doc).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if os.path.exists(SOCK):
    os.unlink(SOCK)
Server(SOCK, Handler).serve_forever()
