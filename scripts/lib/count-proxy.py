"""An HTTP proxy that counts the requests passing through it (for scripts/bench-remote.sh).

    python3 scripts/lib/count-proxy.py UPSTREAM_PORT PORT_FILE

Listens on a free port of 127.0.0.1 (written to PORT_FILE), forwards every request to
127.0.0.1:UPSTREAM_PORT unchanged (Azure's Shared Key signature does not cover the Host), and
answers GET /__count with the counts so far as JSON: {"LIST": n, "GET": n, "PUT": n, ...}, a
listing (comp=list / list-type=2) counted as LIST. Standard library only.
"""
import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

upstream = int(sys.argv[1])
counts = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        if self.path == "/__count":
            with lock:
                body = json.dumps(counts).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        kind = self.command
        if "comp=list" in self.path or "list-type=2" in self.path:
            kind = "LIST"
        with lock:
            counts[kind] = counts.get(kind, 0) + 1
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        conn.request(self.command, self.path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        self.send_response(r.status, r.reason)
        head = self.command == "HEAD"
        for k, v in r.getheaders():
            # A HEAD's Content-Length is the object's size (object_store reads it): kept.
            if k.lower() in ("transfer-encoding", "connection") or (
                k.lower() == "content-length" and not head
            ):
                continue
            self.send_header(k, v)
        if not head:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if not head:
            self.wfile.write(data)
        conn.close()

    def handle_one(self):
        try:
            self.forward()
        except (BrokenPipeError, ConnectionResetError):
            # The client went away (the daemon was stopped mid-request): nothing to answer.
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_one


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
with open(sys.argv[2], "w") as f:
    f.write(str(server.server_address[1]))
server.serve_forever()
