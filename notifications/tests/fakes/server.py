"""What the fake providers share: a threaded server on 127.0.0.1, JSON answers, callbacks."""

from __future__ import annotations

import http.client
import json
import socket
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit


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
        except OSError:  # broken pipe, reset, or TLS EOF (ssl.SSLError is an OSError)
            pass  # the client gave up (its timeout), as clients do

    def drop(self) -> None:
        """Close the connection without answering, as a provider that died mid-request does."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 5.0) -> int:
    """POST ``body`` to ``url`` (http or https) as a provider's callback would: the HTTP status.

    No proxies (a webhook on 127.0.0.1 is reached directly) and no redirects; 0 when the
    connection failed, was refused or timed out before a status line came back.
    """
    parts = urlsplit(url)
    connection_class = (
        http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    )
    connection = connection_class(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return 0
    finally:
        connection.close()
