#!/usr/bin/env python3
"""The demo's API: /health, GET /visits, POST /visits; keeps its data in db ($DB_URL)."""
import json
import os
import signal
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DB_URL = os.environ["DB_URL"]


def db(method, key, body=None):
    req = urllib.request.Request(f"{DB_URL}/{key}", data=body, method=method)
    with urllib.request.urlopen(req, timeout=2) as r:
        return json.load(r)


class Handler(BaseHTTPRequestHandler):
    def _send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/health":
            try:
                db("GET", "health")
            except OSError as e:
                return self._send(503, {"healthy": False, "error": str(e)})
            return self._send(200, {"healthy": True})
        if self.path == "/visits":
            return self._send(200, {"visits": db("GET", "visits")["value"]})
        self._send(404, {"error": "not found"})

    def do_POST(self):
        if self.path == "/visits":
            return self._send(200, {"visits": db("POST", "visits", b"1")["value"]})
        self._send(404, {"error": "not found"})

    def log_message(self, fmt, *args):
        print("api:", fmt % args, flush=True)


def stop(signum, frame):
    # Explicit, because a process started in the background by a shell inherits SIGINT
    # ignored, and Python then never raises KeyboardInterrupt.
    raise KeyboardInterrupt


signal.signal(signal.SIGINT, stop)
signal.signal(signal.SIGTERM, stop)

port = int(os.environ.get("PORT", "7002"))
print(f"api listening on 127.0.0.1:{port}, db at {DB_URL}", flush=True)
try:
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
except KeyboardInterrupt:  # stop_signal = "SIGINT" in locald.toml
    print("api: stopping", flush=True)
