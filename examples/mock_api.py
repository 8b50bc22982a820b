"""A local stand-in for the deployments API, for the demo.

Accepts `POST /api/v1/deployments/`, prints what it received (the API key masked) and answers
201 with an id. Prints `listening on PORT` first, so a script can find it.
"""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    received = 0

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        if self.path != "/api/v1/deployments/":
            self.send_response(404)
            self.end_headers()
            return
        auth = self.headers.get("authorization", "")
        masked = auth[:10] + "…" if auth.startswith("Bearer ") else "(none)"
        Handler.received += 1
        event = json.loads(body)
        print(
            f"[mock API] #{Handler.received} {self.headers.get('user-agent')} auth={masked}\n"
            f"           {json.dumps(event, sort_keys=True)}",
            flush=True,
        )
        answer = json.dumps({"id": Handler.received, "status": "received"}).encode()
        self.send_response(201)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()
