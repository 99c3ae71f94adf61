"""A client service's webhook receiver, for the tests: a real HTTP server on 127.0.0.1 (in a
thread of the test process) that records every request and answers as it is told — 200, any
status, a redirect, a huge body, slowly, or never.

``receiver.answer(Answer(status=500), Answer(status=200))`` queues the next answers; once
they are used up it answers ``receiver.default``. ``received`` holds each request as it came
(headers, body); ``verified(secret)`` checks them with the Standard Webhooks reference
library, as a client would.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass(frozen=True)
class Answer:
    """How to answer one request: ``status`` with ``body``; ``location`` for a redirect;
    ``huge``: a body of 10 MB announced and trickled out; ``hang``: nothing at all until the
    receiver closes (the client times out)."""

    status: int = 200
    body: bytes = b"ok"
    location: str = ""
    huge: bool = False
    hang: bool = False


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


class WebhookReceiver:
    """The server; ``url`` is where it listens, ``close()`` stops it."""

    def __init__(self, default: Answer | None = None) -> None:
        self.default = default or Answer()
        self.received: list[Received] = []
        self._script: deque[Answer] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                with receiver._lock:
                    receiver.received.append(Received(self.path, headers, body))
                    answer = receiver._script.popleft() if receiver._script else receiver.default
                receiver._reply(self, answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _reply(self, handler: BaseHTTPRequestHandler, answer: Answer) -> None:
        if answer.hang:
            self._closing.wait(60)
            handler.close_connection = True
            return
        try:
            handler.send_response(answer.status)
            if answer.location:
                handler.send_header("Location", answer.location)
            if answer.huge:
                handler.send_header("Content-Length", str(10 * 2**20))
                handler.end_headers()
                for _ in range(10 * 2**10):  # 1 KB at a time, until the client hangs up
                    handler.wfile.write(b"x" * 1024)
                return
            handler.send_header("Content-Length", str(len(answer.body)))
            handler.end_headers()
            handler.wfile.write(answer.body)
        except OSError:  # the client closed the connection (it had read enough)
            handler.close_connection = True

    # --- for the tests ------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/notify"

    def answer(self, *answers: Answer) -> None:
        with self._lock:
            self._script.extend(answers)

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def requests(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def verified(self, secret: str) -> list[dict[str, Any]]:
        """Every request's payload, each verified with ``secret`` by the reference library
        (raises ``WebhookVerificationError`` for one that does not verify)."""
        webhook = Webhook(secret)
        return [webhook.verify(r.body, r.headers) for r in self.requests()]

    def close(self) -> None:
        self._closing.set()
        self.server.shutdown()
        self.server.server_close()
