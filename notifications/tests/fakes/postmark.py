"""A fake Postmark email API on 127.0.0.1, for the email channel through django-anymail.

``FakePostmark(token).start()``; ``.url`` is anymail's ``POSTMARK_API_URL``. It answers
``POST /email`` as Postmark does: the server token checked (401 otherwise), the message
recorded, ``{"To", "SubmittedAt", "MessageID", "ErrorCode": 0, "Message": "OK"}``.
Behaviours, per recipient or as the default (``mode``): ``ok``, ``inactive`` (422,
ErrorCode 406: a recipient that bounced or complained), ``500``, ``429``.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import ThreadingHTTPServer
from typing import Any

from notifications.tests.fakes.server import JsonHandler, LocalServer


class FakePostmark(LocalServer):
    def __init__(self, token: str = "postmark-test-token") -> None:
        self.token = token
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.mode = "ok"
            self.per_recipient: dict[str, str] = {}
            self.sent: list[dict[str, Any]] = []

    def answer(self, token: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if token != self.token:
            return 401, {"ErrorCode": 10, "Message": "Bad or missing Server API token."}
        to = str(body.get("To", ""))
        with self.lock:
            behaviour = self.per_recipient.get(to, self.mode)
        if behaviour == "500":
            return 500, {"ErrorCode": 0, "Message": "Internal server error"}
        if behaviour == "429":
            return 429, {"ErrorCode": 0, "Message": "Rate limit exceeded"}
        if behaviour == "inactive":
            return 422, {
                "ErrorCode": 406,
                "Message": "You tried to send to a recipient that has been marked as "
                f"inactive.\nFound inactive addresses: {to}.\nInactive recipients are ones "
                "that have generated a hard bounce or a spam complaint.",
            }
        message_id = str(uuid.uuid4())
        with self.lock:
            self.sent.append({**body, "MessageID": message_id})
        return 200, {
            "To": to,
            "SubmittedAt": "2026-11-29T12:00:00.0000000Z",
            "MessageID": message_id,
            "ErrorCode": 0,
            "Message": "OK",
        }

    def start(self) -> FakePostmark:
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                token = self.headers.get("X-Postmark-Server-Token", "")
                code, payload = fake.answer(token, body)
                self.send_json(code, payload)

        self.serve(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/"
