"""A fake SMS Aero HTTP gate (API v2) on 127.0.0.1, over plain HTTP or HTTPS.

``FakeSmsAero(tls=True)`` serves HTTPS with a throw-away certificate for 127.0.0.1 from a
test CA made by ``make_test_certificate`` (trustme); clients trust it by
pointing ``REQUESTS_CA_BUNDLE`` (or ``verify``) at ``.ca_bundle``.

Answers like the real gate: ``auth``, ``balance``, ``sms/send`` and ``sms/testsend``,
``sms/status`` and ``sms/teststatus`` (``id``), ``sms/list`` and ``sms/testlist`` (``number``,
``text``, ``page``), with HTTP Basic credentials checked. Fields come as JSON, a form or a
query string, by POST or GET. Every request is recorded with its scheme and the credentials
it carried.

Behaviours of ``sms/send``, one-shot from ``queue`` first, then per number or as the default
(``mode``): ``ok``, ``reject``, ``no_credits``, ``invalid_number``, ``500``, ``timeout``
(answers, and sends, after ``hang`` seconds), ``accept_then_hang`` (the SMS is accepted and
recorded at once, the answer comes after ``hang`` seconds: a client with a shorter timeout
sees a read timeout though it was sent) and ``accept_then_drop`` (accepted and recorded, then
the connection is closed without an answer).

Statuses (numeric ``status``, as SMS Aero's client libraries list them; ``extendStatus`` is a
plausible word for it, the v2 examples show "queue" and "delivery"): 0 queue, 1 delivered,
2 not delivered, 3 transferred to the operator, 4 waiting, 6 rejected, 8 moderation. A sent
SMS starts at 0. Time moves only when the test says: ``set_status(id, status)``, or
``advance()`` which moves every SMS not yet final (1, 2, 6) to its number's
``final_status`` (default ``default_final_status``, 1), or ``advance(3)`` which moves them all
to that status. A final status stamps ``dateAnswer``. ``sms/status`` only sees SMS sent the
same way (test or not), answers 404 for an unknown id. ``sms/list`` pages newest first,
``page_size`` a page, as ``{"0": sms, "1": sms, ..., "links": {...}, "totalCount": "N"}``.

Callbacks: an ``sms/send`` carrying ``callbackUrl`` has it remembered
(``callback_urls[id]``); ``fire_callbacks(kind="json"|"form")`` POSTs each such SMS's
current status there (id, number, text, status, extendStatus, from, channel, cost,
dateCreate, dateSend, dateAnswer when final) and returns the HTTP codes (0: no answer); each
attempt is recorded in ``callbacks``.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import trustme
from smpplib.gsm import make_parts

from notifications.tests.fakes.server import JsonHandler, LocalServer, post


def make_test_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost (chain and key in one file) and its CA's bundle."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    chain, ca_bundle = directory / "server.pem", directory / "ca.pem"
    certificate.private_key_and_cert_chain_pem.write_to_path(str(chain))
    authority.cert_pem.write_to_path(str(ca_bundle))
    return chain, ca_bundle


STATUS_WORDS = {
    0: "queue",
    1: "delivery",
    2: "delivery failure",
    3: "smsc submit",
    4: "wait status",
    6: "reject",
    8: "moderation",
}
FINAL_STATUSES = {1, 2, 6}
DROP = 0  # answer()'s code for "close the connection without answering"


class FakeSmsAero(LocalServer):
    def __init__(
        self,
        email: str = "owner@example.com",
        api_key: str = "smsaero-test-key-0123456789abcd",
        tls: bool = False,
    ) -> None:
        self.email = email
        self.api_key = api_key
        self.tls = tls
        self.lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory | None = None
        self.ca_bundle: Path | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.mode = "ok"
            self.per_number: dict[str, str] = {}
            self.queue: deque[str] = deque()  # one-shot behaviours, before the others
            self.hang = 3.0
            self.balance = 337.03
            self.requests: list[dict[str, Any]] = []
            self.sent: list[dict[str, Any]] = []
            self._next_id = 5000
            self.final_status: dict[str, int] = {}  # number -> status advance() moves it to
            self.default_final_status = 1
            self.page_size = 20
            self.callback_urls: dict[int, str] = {}
            self.callback_timeout = 5.0
            self.callbacks: list[dict[str, Any]] = []  # every callback POST and its answer

    # --- statuses: time moves when the test says ----------------------------------------------
    def _find(self, message_id: int | str) -> dict[str, Any]:
        for message in self.sent:
            if str(message["id"]) == str(message_id):
                return message
        raise KeyError(f"no SMS with id {message_id}")

    def _set(self, message: dict[str, Any], status: int) -> None:
        message["status"] = status
        message["extendStatus"] = STATUS_WORDS.get(status, "unknown")
        if status in FINAL_STATUSES:
            message["dateAnswer"] = int(time.time())
        else:
            message.pop("dateAnswer", None)

    def set_status(self, message_id: int | str, status: int) -> None:
        """Give the SMS ``message_id`` the numeric ``status`` (KeyError if no such SMS)."""
        with self.lock:
            self._set(self._find(message_id), status)

    def status_of(self, message_id: int | str) -> int:
        with self.lock:
            return self._find(message_id)["status"]

    def advance(self, status: int | None = None) -> list[int]:
        """Move every SMS not yet final to ``status``, or to its number's final status.

        Returns the ids that changed.
        """
        changed = []
        with self.lock:
            for message in self.sent:
                if message["status"] in FINAL_STATUSES:
                    continue
                target = status
                if target is None:
                    target = self.final_status.get(message["number"], self.default_final_status)
                if target != message["status"]:
                    self._set(message, target)
                    changed.append(message["id"])
        return changed

    # --- callbacks ------------------------------------------------------------------------------
    def fire_callbacks(self, kind: str = "json", ids: list[int] | None = None) -> list[int]:
        """POST the current status of each SMS sent with a callbackUrl (or of ``ids``) there.

        ``kind`` ``"json"`` sends a JSON object, ``"form"`` the same fields form-encoded.
        Returns the HTTP status of each POST in send order (0: no answer).
        """
        if kind not in ("json", "form"):
            raise ValueError(f"kind must be 'json' or 'form', not {kind!r}")
        with self.lock:
            due = [
                (self.callback_urls[m["id"]], dict(m))
                for m in self.sent
                if m["id"] in self.callback_urls and (ids is None or m["id"] in ids)
            ]
            timeout = self.callback_timeout
        codes = []
        for url, message in due:
            fields = {k: v for k, v in message.items() if k != "test"}
            if kind == "json":
                body = json.dumps(fields).encode()
                content_type = "application/json"
            else:
                body = urlencode({k: "" if v is None else v for k, v in fields.items()}).encode()
                content_type = "application/x-www-form-urlencoded"
            code = post(url, body, {"Content-Type": content_type}, timeout)
            codes.append(code)
            with self.lock:
                self.callbacks.append(
                    {
                        "id": message["id"],
                        "url": url,
                        "kind": kind,
                        "status": message["status"],
                        "code": code,
                    }
                )
        return codes

    # --- answering --------------------------------------------------------------------------
    def answer(self, path: str, credentials: tuple[str, str] | None, body: dict) -> tuple:
        """The HTTP status and JSON answer to a call; status ``DROP`` (0): hang up."""
        if credentials != (self.email, self.api_key):
            return 401, {
                "success": False,
                "data": None,
                "message": "Your request was made with invalid credentials.",
            }
        endpoint = path.split("?", 1)[0].removeprefix("/v2/").strip("/")
        if endpoint == "auth":
            return 200, {"success": True, "data": None, "message": "Successful authorization."}
        if endpoint == "balance":
            return 200, {"success": True, "data": {"balance": self.balance}, "message": None}
        if endpoint in ("sms/status", "sms/teststatus"):
            return self._status(body, test=endpoint == "sms/teststatus")
        if endpoint in ("sms/list", "sms/testlist"):
            return self._list(body, endpoint)
        if endpoint not in ("sms/send", "sms/testsend"):
            return 404, {"success": False, "data": None, "message": "Not Found"}
        number = str(body.get("number", ""))
        with self.lock:
            if self.queue:
                behaviour = self.queue.popleft()
            else:
                behaviour = self.per_number.get(number, self.mode)
        if behaviour == "timeout":
            time.sleep(self.hang)
            behaviour = "ok"
        if behaviour == "500":
            return 500, {"message": "Internal Server Error"}
        if behaviour == "reject":
            return 200, {"success": False, "result": "reject", "reason": "Number is blacklisted"}
        if behaviour == "no_credits":
            return 200, {"success": False, "result": "no credits", "reason": "No credits"}
        if behaviour == "invalid_number":
            return 400, {
                "success": False,
                "data": {"number": ["Invalid number"]},
                "message": "Validation error.",
            }
        text = str(body.get("text", ""))
        parts = len(make_parts(text)[0])
        with self.lock:
            self._next_id += 1
            message = {
                "id": self._next_id,
                "from": body.get("sign"),
                "number": number,
                "text": text,
                "status": 0,
                "extendStatus": "queue",
                "channel": "FREE SIGN",
                "cost": round(5.49 * parts, 2),
                "dateCreate": int(time.time()),
                "dateSend": int(time.time()),
                "test": endpoint == "sms/testsend",
            }
            self.sent.append(message)
            if body.get("callbackUrl"):
                self.callback_urls[message["id"]] = str(body["callbackUrl"])
            answer = dict(message)
        if behaviour == "accept_then_drop":
            return DROP, {}
        if behaviour == "accept_then_hang":
            time.sleep(self.hang)
        return 200, {"success": True, "data": answer, "message": None}

    def _status(self, body: dict, test: bool) -> tuple:
        with self.lock:
            try:
                message = self._find(body.get("id", ""))
            except KeyError:
                message = None
            if message is not None and message["test"] == test:
                return 200, {"success": True, "data": dict(message), "message": None}
        return 404, {"success": False, "data": None, "message": "Message not found."}

    def _list(self, body: dict, endpoint: str) -> tuple:
        numbers = body.get("numbers") or ([body["number"]] if body.get("number") else [])
        if isinstance(numbers, str):
            numbers = [numbers]
        wanted = {str(n) for n in numbers}
        text = str(body.get("text") or "")
        try:
            page = max(int(body.get("page") or 1), 1)
        except ValueError:
            page = 1
        with self.lock:
            matching = [
                dict(m)
                for m in reversed(self.sent)
                if m["test"] == (endpoint == "sms/testlist")
                and (not wanted or m["number"] in wanted)
                and text in m["text"]
            ]
            size = self.page_size
        last = max((len(matching) + size - 1) // size, 1)
        data: dict[str, Any] = {
            str(i): m for i, m in enumerate(matching[(page - 1) * size : page * size])
        }
        links = {
            "self": f"/v2/{endpoint}?page={page}",
            "first": f"/v2/{endpoint}?page=1",
            "last": f"/v2/{endpoint}?page={last}",
        }
        if page > 1:
            links["prev"] = f"/v2/{endpoint}?page={page - 1}"
        if page < last:
            links["next"] = f"/v2/{endpoint}?page={page + 1}"
        data["links"] = links
        data["totalCount"] = str(len(matching))
        return 200, {"success": True, "data": data, "message": None}

    # --- serving ----------------------------------------------------------------------------
    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else {}
                except ValueError:
                    body = dict(parse_qsl(raw.decode(errors="replace")))
                if not isinstance(body, dict):
                    body = {}
                body = {**dict(parse_qsl(self.path.partition("?")[2])), **body}
                credentials = None
                header = self.headers.get("Authorization", "")
                if header.startswith("Basic "):
                    user, _, key = base64.b64decode(header[6:]).decode().partition(":")
                    credentials = (user, key)
                with fake.lock:
                    fake.requests.append(
                        {
                            "scheme": "https" if fake.tls else "http",
                            "path": self.path,
                            "credentials": credentials,
                            "body": body,
                        }
                    )
                code, payload = fake.answer(self.path, credentials, body)
                if code == DROP:
                    self.drop()
                    return
                self.send_json(code, payload)

            do_GET = do_POST

        return Handler

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        """The base URL for ``SMSAERO_API_URL``."""
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v2/"

    def start(self) -> FakeSmsAero:
        server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="fake-smsaero-")
            chain, ca_bundle = make_test_certificate(Path(self._tmp.name))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(chain)
            server.socket = context.wrap_socket(server.socket, server_side=True)
            self.ca_bundle = ca_bundle
        self.serve(server)
        return self

    def stop(self) -> None:
        super().stop()
        if self._tmp is not None:
            self._tmp.cleanup()
