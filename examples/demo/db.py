#!/usr/bin/env python3
"""A toy key/value store over HTTP: GET /<key> reads, POST /<key> adds the body to a counter."""
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

store = {}


class Handler(BaseHTTPRequestHandler):
    def _send(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        key = self.path.strip("/")
        self._send(200, {"key": key, "value": store.get(key, 0)})

    def do_POST(self):
        key = self.path.strip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b"1"
        try:
            store[key] = store.get(key, 0) + int(raw or b"1")
        except ValueError:
            return self._send(400, {"error": "body must be an integer"})
        self._send(200, {"key": key, "value": store[key]})

    def log_message(self, fmt, *args):
        print("db:", fmt % args, flush=True)


port = int(os.environ.get("PORT", "7001"))
print(f"db listening on 127.0.0.1:{port}", flush=True)
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
