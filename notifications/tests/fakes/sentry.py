"""A fake Sentry on 127.0.0.1: takes the envelopes sentry-sdk posts
(``/api/<project>/envelope/``, gzip or not) and keeps the events in them.

``FakeSentry().start()``; ``dsn`` to configure the SDK with; ``events`` (each event's JSON),
``wait_for_events(n)``.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from http.server import ThreadingHTTPServer
from typing import Any

from notifications.tests.fakes.server import JsonHandler, LocalServer


def parse_envelope(body: bytes) -> list[dict[str, Any]]:
    """The event items of a Sentry envelope: a header line, then item header and payload
    lines (a payload of a given ``length``, or up to the next newline)."""
    events: list[dict[str, Any]] = []
    _header, _, rest = body.partition(b"\n")
    while rest:
        item_header_line, _, rest = rest.partition(b"\n")
        if not item_header_line.strip():
            continue
        item_header = json.loads(item_header_line)
        length = item_header.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:].lstrip(b"\n")
        if item_header.get("type") == "event":
            events.append(json.loads(payload))
    return events


class FakeSentry(LocalServer):
    public_key = "0123456789abcdef0123456789abcdef"
    project = "42"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.events: list[dict[str, Any]] = []
        self.raw: list[bytes] = []

    @property
    def dsn(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{self.public_key}@{host}:{port}/{self.project}"

    def start(self) -> FakeSentry:
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                with fake.lock:
                    fake.raw.append(body)
                    if self.path.startswith(f"/api/{fake.project}/envelope/"):
                        fake.events.extend(parse_envelope(body))
                self.send_json(200, {"id": "0" * 32})

        self.serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        return self

    def wait_for_events(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.events) >= count:
                    return list(self.events)
            time.sleep(0.05)
        with self.lock:
            return list(self.events)
