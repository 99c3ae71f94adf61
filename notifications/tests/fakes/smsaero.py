"""A fake SMS Aero HTTP gate (API v2) on 127.0.0.1, over plain HTTP or HTTPS.

``FakeSmsAero(tls=True)`` serves HTTPS with a throw-away self-signed certificate for
127.0.0.1 made by ``make_test_certificate`` (the ``openssl`` command); clients trust it by
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
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from smpplib.gsm import make_parts


def make_test_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1/localhost, valid for one day."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


class FakeSmsAero:
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
        self.server: ThreadingHTTPServer | None = None
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

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

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
                data = json.dumps(payload).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

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
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="fake-smsaero-")
            cert, key = make_test_certificate(Path(self._tmp.name))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.ca_bundle = cert
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self._tmp is not None:
            self._tmp.cleanup()
