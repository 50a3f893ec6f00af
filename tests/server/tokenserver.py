#!/usr/bin/python3
"""A registry token server for tests: GET /token?service=S&scope=repository:R:pull
with HTTP basic auth USER:PASS answers {"token": JWT}, a JWT (RS256, signed
with openssl, the certificate in its x5c header) that docker-registry's
`auth: token` accepts. Wrong or missing credentials: 401.

tokenserver.py --key K --cert C --user U:P --issuer I --port-file F --parent PID
(TLS with --tls-cert/--tls-key). Exits when PID does."""
import argparse, base64, json, os, ssl, subprocess, threading, time, urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def der_cert(path):
    pem = open(path).read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return "".join(body.split())


def sign(key, data):
    return subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data,
                          capture_output=True, check=True).stdout


def main():
    ap = argparse.ArgumentParser()
    for a in ("--key", "--cert", "--user", "--issuer", "--port-file", "--tls-cert", "--tls-key", "--log"):
        ap.add_argument(a)
    ap.add_argument("--parent", type=int)
    o = ap.parse_args()
    want = "Basic " + base64.b64encode(o.user.encode()).decode()

    class H(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            q = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
            if o.log:
                with open(o.log, "a") as f:
                    f.write(json.dumps({"path": self.path, "auth": bool(self.headers.get("Authorization"))}) + "\n")
            if self.headers.get("Authorization") != want:
                self.send_response(401)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            access = []
            for s in q.get("scope", []):
                kind, name, actions = s.split(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
            now = int(time.time())
            head = {"typ": "JWT", "alg": "RS256", "x5c": [der_cert(o.cert)]}
            claims = {"iss": o.issuer, "sub": o.user.split(":")[0], "aud": q.get("service", [""])[0],
                      "exp": now + 300, "nbf": now - 10, "iat": now, "jti": os.urandom(8).hex(),
                      "access": access}
            msg = (b64(json.dumps(head).encode()) + "." + b64(json.dumps(claims).encode())).encode()
            tok = msg.decode() + "." + b64(sign(o.key, msg))
            body = json.dumps({"token": tok}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    if o.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(o.tls_cert, o.tls_key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    with open(o.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(o.port_file + ".tmp", o.port_file)

    def watch():
        while o.parent and os.path.exists("/proc/%d" % o.parent):
            time.sleep(0.5)
        os._exit(0)
    threading.Thread(target=watch, daemon=True).start()
    srv.serve_forever()


main()
