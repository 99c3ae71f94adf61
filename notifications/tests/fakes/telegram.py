"""A fake Telegram Bot API on 127.0.0.1, answering like the real one.

Run in a thread by the tests (``FakeTelegram().start()``), or as a process of its own for
manual checks and benchmarks::

    python -m notifications.tests.fakes.telegram --port 8081 [--mode 403] [--latency 0.05]

Behaviours, per chat id or as the default: ``ok``, ``400`` (chat not found), ``403`` (bot
blocked), ``401`` (bad token), ``500``, ``timeout`` (answers after ``hang`` seconds),
``429`` (Too Many Requests with retry_after), ``migrate:<new id>`` (group upgraded to a
supergroup). ``queue`` holds one-shot behaviours consumed before the default, to script
"fails twice, then recovers". ``rate_limit`` makes it enforce N messages/second and answer
429 beyond it, as Telegram does. ``flaky`` (a fraction) fails that share of sends at random
with 500, 502 or a timeout, drawn from a generator seeded with ``seed``.

Control over HTTP (for a separate process): ``POST /_fake/config`` with JSON fields
``mode``, ``per_chat``, ``queue``, ``latency``, ``rate_limit``, ``flaky``, ``seed``;
``GET /_fake/messages``; ``GET /_fake/stats`` (counts only); ``POST /_fake/reset``.
"""

from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from notifications.tests.fakes.server import JsonHandler, LocalServer

ERRORS = {
    "400": (400, "Bad Request: chat not found"),
    "401": (401, "Unauthorized"),
    "403": (403, "Forbidden: bot was blocked by the user"),
    "500": (500, "Internal Server Error"),
    "502": (502, "Bad Gateway"),
}


class FakeTelegram(LocalServer):
    def __init__(self, token: str = "123456:TEST-token-s3cr3t", port: int = 0) -> None:
        self.token = token
        self.port = port
        self.lock = threading.Lock()
        self.reset()

    # --- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.mode = "ok"
            self.per_chat: dict[str, str] = {}
            self.queue: deque[str] = deque()
            self.latency = 0.0
            self.hang = 5.0
            self.retry_after = 1
            self.rate_limit: float | None = None
            self.flaky = 0.0
            self.random = random.Random(0)
            self._window: deque[float] = deque()
            self.requests: list[dict[str, Any]] = []  # every call, answered or not
            self.messages: list[dict[str, Any]] = []  # messages accepted (delivered)
            self.too_many = 0
            self._next_id = 1000

    def delivered_to(self, chat_id: str | int) -> list[str]:
        with self.lock:
            return [m["text"] for m in self.messages if str(m["chat_id"]) == str(chat_id)]

    def delivered_texts(self) -> list[str]:
        """The text of every message accepted, in order (a duplicate appears twice)."""
        with self.lock:
            return [m["text"] for m in self.messages]

    # --- answering --------------------------------------------------------------------------
    def _behaviour(self, chat_id: str) -> str:
        with self.lock:
            if self.queue:
                return self.queue.popleft()
            if self.flaky and self.random.random() < self.flaky:
                return self.random.choice(["500", "502", "timeout"])
            return self.per_chat.get(chat_id, self.mode)

    def _over_rate(self) -> bool:
        if not self.rate_limit:
            return False
        now = time.monotonic()
        with self.lock:
            while self._window and now - self._window[0] >= 1.0:
                self._window.popleft()
            if len(self._window) >= self.rate_limit:
                self.too_many += 1
                return True
            self._window.append(now)
            return False

    def answer(self, token: str, method: str, body: dict[str, Any]) -> tuple[int, dict]:
        chat_id = str(body.get("chat_id", ""))
        with self.lock:
            self.requests.append({"method": method, "token": token, **body})
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if method == "getMe":
            return 200, {"ok": True, "result": {"id": 1, "is_bot": True, "username": "fake_bot"}}
        if method != "sendMessage":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if self.latency:
            time.sleep(self.latency)
        if self._over_rate():
            return 429, self._too_many()
        behaviour = self._behaviour(chat_id)
        if behaviour == "ok":
            if len(str(body.get("text", ""))) > 4096:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message is too long",
                }
            with self.lock:
                self._next_id += 1
                message = {
                    "message_id": self._next_id,
                    "chat_id": chat_id,
                    "text": body.get("text"),
                }
                self.messages.append(message)
            return 200, {
                "ok": True,
                "result": {"message_id": message["message_id"], "chat": {"id": chat_id}},
            }
        if behaviour == "timeout":
            time.sleep(self.hang)
            return 504, {"ok": False, "error_code": 504, "description": "Gateway Timeout"}
        if behaviour == "429":
            return 429, self._too_many()
        if behaviour.startswith("migrate:"):
            new_id = behaviour.split(":", 1)[1]
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: group chat was upgraded to a supergroup chat",
                "parameters": {"migrate_to_chat_id": int(new_id)},
            }
        code, description = ERRORS[behaviour]
        return code, {"ok": False, "error_code": code, "description": description}

    def _too_many(self) -> dict:
        return {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {self.retry_after}",
            "parameters": {"retry_after": self.retry_after},
        }

    # --- serving ----------------------------------------------------------------------------
    def configure(self, config: dict[str, Any]) -> None:
        with self.lock:
            if "mode" in config:
                self.mode = config["mode"]
            if "per_chat" in config:
                self.per_chat = {str(k): v for k, v in config["per_chat"].items()}
            if "queue" in config:
                self.queue = deque(config["queue"])
            for name in ("latency", "hang", "retry_after", "rate_limit", "flaky"):
                if name in config:
                    setattr(self, name, config[name])
            if "seed" in config:
                self.random = random.Random(config["seed"])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):
            def _body(self) -> dict[str, Any] | None:
                """The request's fields; None when the body was cut off before its end."""
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if len(raw) < length:
                    return None
                if not raw:
                    return {}
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    return json.loads(raw)
                from urllib.parse import parse_qsl

                return dict(parse_qsl(raw.decode()))

            def do_GET(self) -> None:
                if self.path == "/_fake/messages":
                    with fake.lock:
                        self.send_json(200, {"messages": fake.messages, "too_many": fake.too_many})
                    return
                if self.path == "/_fake/stats":
                    with fake.lock:
                        stats = {
                            "messages": len(fake.messages),
                            "requests": len(fake.requests),
                            "too_many": fake.too_many,
                        }
                    self.send_json(200, stats)
                    return
                self._dispatch()

            def do_POST(self) -> None:
                if self.path == "/_fake/config":
                    fake.configure(self._body() or {})
                    self.send_json(200, {"ok": True})
                    return
                if self.path == "/_fake/reset":
                    fake.reset()
                    self.send_json(200, {"ok": True})
                    return
                self._dispatch()

            def _dispatch(self) -> None:
                # /bot<token>/<method>
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                if len(parts) != 2 or not parts[0].startswith("bot"):
                    self.send_json(
                        404, {"ok": False, "error_code": 404, "description": "Not Found"}
                    )
                    return
                body = self._body() if self.command == "POST" else {}
                if body is None:
                    # The client died between headers and body (urllib3 writes them apart): a
                    # request never completed is never delivered, as with the real Bot API.
                    self.close_connection = True
                    return
                code, payload = fake.answer(parts[0][3:], parts[1], body)
                self.send_json(code, payload)

        return Handler

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeTelegram:
        self.serve(ThreadingHTTPServer(("127.0.0.1", self.port), self._handler()))
        return self


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="123456:TEST-token-s3cr3t")
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=None)
    args = parser.parse_args()
    fake = FakeTelegram(token=args.token, port=args.port)
    fake.configure({"mode": args.mode, "latency": args.latency, "rate_limit": args.rate_limit})
    fake.start()
    print(
        f"fake Telegram Bot API on {fake.url} (token {args.token!r}, mode {args.mode})", flush=True
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
