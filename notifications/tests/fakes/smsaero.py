"""A fake SMS Aero HTTP gate (API v2) on 127.0.0.1, over plain HTTP or HTTPS.

``FakeSmsAero(tls=True)`` serves HTTPS with a throw-away certificate for 127.0.0.1 from a
test CA made by ``make_test_certificate`` (trustme); clients trust it by
pointing ``REQUESTS_CA_BUNDLE`` (or ``verify``) at ``.ca_bundle``.

Answers like the real gate: ``auth``, ``balance``, ``sms/send`` and ``sms/testsend``, with
HTTP Basic credentials checked. Behaviours, per number or as the default (``mode``): ``ok``,
``reject``, ``no_credits``, ``invalid_number``, ``500``, ``timeout`` (answers after ``hang``
seconds). Every request is recorded with its scheme and the credentials it carried.
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from smpplib.gsm import make_parts

from notifications.tests.fakes.server import JsonHandler, LocalServer


def make_test_certificate(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1/localhost (chain and key in one file) and its CA's bundle."""
    authority = trustme.CA()
    certificate = authority.issue_cert("127.0.0.1", "localhost")
    chain, ca_bundle = directory / "server.pem", directory / "ca.pem"
    certificate.private_key_and_cert_chain_pem.write_to_path(str(chain))
    authority.cert_pem.write_to_path(str(ca_bundle))
    return chain, ca_bundle


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
            self.hang = 3.0
            self.balance = 337.03
            self.requests: list[dict[str, Any]] = []
            self.sent: list[dict[str, Any]] = []
            self._next_id = 5000

    # --- answering --------------------------------------------------------------------------
    def answer(self, path: str, credentials: tuple[str, str] | None, body: dict) -> tuple:
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
        if endpoint not in ("sms/send", "sms/testsend"):
            return 404, {"success": False, "data": None, "message": "Not Found"}
        number = str(body.get("number", ""))
        with self.lock:
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
        return 200, {"success": True, "data": message, "message": None}

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
                    body = {}
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
