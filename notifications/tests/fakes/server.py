"""What the fake providers share: a threaded server on 127.0.0.1, and JSON answers."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any


class LocalServer:
    """A fake whose ``socketserver`` server runs in a daemon thread until ``stop()``."""

    server: socketserver.BaseServer | None = None

    def serve(self, server: socketserver.BaseServer) -> None:
        """Serve ``server`` (already bound, e.g. to 127.0.0.1:0) in a thread of its own."""
        self.server = server
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet keep-alive HTTP handler answering JSON."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle's algorithm holds the
    # body until the client's delayed ACK (40 ms) on every keep-alive request.
    disable_nagle_algorithm = True

    def log_message(self, *args: Any) -> None:
        pass

    def send_json(self, code: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout), as clients do
