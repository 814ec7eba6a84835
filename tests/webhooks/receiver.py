#!/usr/bin/python3
"""A webhook receiver for the [e2e][webhooks] tests: HTTPS on 127.0.0.1
with a certificate of the test CA (Python's http.server and ssl), checking
each delivery's Standard Webhooks signature itself (HMAC-SHA256 over
"id.timestamp.body" with the subscription secret, timestamp within 5
minutes). Each request is appended to --log as one JSON line: the
webhook-id, whether the signature verified, and the CloudEvent. Answers
204 when it verified, 401 when not. --hang-first N: the first request is
logged, then held N seconds and answered 503 (a receiver that never
acknowledged it).
"""
import argparse
import base64
import hashlib
import hmac
import http.server
import json
import ssl
import sys
import threading
import time

MAX_BODY = 1 << 20


def verify(key, headers, body):
    msg_id = headers.get("webhook-id", "")
    ts = headers.get("webhook-timestamp", "")
    sigs = headers.get("webhook-signature", "").split()
    try:
        if abs(time.time() - int(ts)) > 300:
            return False
    except ValueError:
        return False
    mac = hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256)
    want = "v1," + base64.b64encode(mac.digest()).decode()
    return any(hmac.compare_digest(want, s) for s in sigs)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--secret", required=True)
    p.add_argument("--log", required=True)
    p.add_argument("--hang-first", type=float, default=0)
    a = p.parse_args()
    key = base64.b64decode(a.secret.removeprefix("whsec_"))
    lock = threading.Lock()
    state = {"first": a.hang_first > 0}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            if n < 0 or n > MAX_BODY:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(n)
            ok = verify(key, self.headers, body)
            try:
                event = json.loads(body)
            except ValueError:
                event = None
            with lock:
                hang = state["first"]
                state["first"] = False
                with open(a.log, "a") as f:
                    f.write(json.dumps({
                        "id": self.headers.get("webhook-id", ""),
                        "valid": ok,
                        "content_type": self.headers.get("Content-Type", ""),
                        "hung": hang,
                        "received_at": time.time(),
                        "event": event}) + "\n")
            if hang:
                time.sleep(a.hang_first)
                self.send_response(503)
            else:
                self.send_response(204 if ok else 401)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    server.daemon_threads = True
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print("listening", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
