#!/usr/bin/env python3
"""The demo's front end: one page that counts a visit through the API and shows the total."""
import html
import json
import os
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_URL = os.environ["API_URL"]
TITLE = os.environ.get("TITLE", "demo")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/":
            self.send_error(404)
            return
        try:
            req = urllib.request.Request(f"{API_URL}/visits", data=b"", method="POST")
            with urllib.request.urlopen(req, timeout=2) as r:
                visits = json.load(r)["visits"]
            status = f"{visits} visits so far"
        except OSError as e:
            status = f"the API is not answering: {e}"
        page = (
            f"<!doctype html><title>{html.escape(TITLE)}</title>"
            f"<h1>{html.escape(TITLE)}</h1><p>{html.escape(status)}</p>"
            f"<p>API: <code>{html.escape(os.environ.get('PUBLIC_API_URL', API_URL))}</code></p>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, fmt, *args):
        print("web:", fmt % args, flush=True)


port = int(os.environ.get("PORT", "7000"))
print(f"web listening on 127.0.0.1:{port}, api at {API_URL}", flush=True)
ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
