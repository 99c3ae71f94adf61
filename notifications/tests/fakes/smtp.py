"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives.

Recipients can be refused permanently (550) or temporarily (451); logins are checked when
``username`` is set. Used for the Email channel and the SMS Aero SMTP gateway.

Costs, to model a remote server: ``session_delay`` seconds are spent once per connection, on
its first EHLO/HELO (standing for TCP + TLS + AUTH set-up), and ``message_delay`` seconds on
every DATA. Both are awaited, so sessions pay them concurrently, as a real server's clients do.
``sessions`` counts the connections opened and ``session_messages`` how many messages each
carried. ``FakeSmtp(tls=True)`` offers STARTTLS with a throw-away certificate for 127.0.0.1
from a test CA (trustme); clients trust it through ``.ca_bundle`` (e.g. ``SSL_CERT_FILE``).

Run in a thread by the tests (``FakeSmtp().start()``), or as a process of its own for
benchmarks, with a small HTTP control channel beside it::

    python -m notifications.tests.fakes.smtp --port 8025 --control-port 8026 \\
        --session-delay 0.1 --message-delay 0.02 [--tls]

Control over HTTP: ``GET /_fake/stats`` (counts, the per-session message counts and the CA
bundle's path), ``POST /_fake/config`` with JSON fields ``session_delay``, ``message_delay``,
``refuse_permanently``, ``refuse_temporarily``; ``POST /_fake/reset`` (counts and messages
cleared, costs back to those the fake was started with).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import socket
import ssl
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from notifications.tests.fakes.server import JsonHandler, LocalServer
from notifications.tests.fakes.smsaero import make_test_certificate


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        return part.get_content() if part is not None else ""


@dataclass
class RecordingHandler:
    refuse_permanently: set[str] = field(default_factory=set)
    refuse_temporarily: set[str] = field(default_factory=set)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    session_delay: float = 0.0
    message_delay: float = 0.0
    # Like servers that cap messages per connection: past this many, MAIL FROM is answered
    # "421 … closing" (0: no cap).
    max_messages_per_session: int = 0
    # Per connection, in the order opened: how many messages it carried.
    session_messages: dict[int, int] = field(default_factory=dict)
    open_sessions: set[int] = field(default_factory=set)
    max_open: int = 0
    _ids: itertools.count = field(default_factory=itertools.count)

    # --- sessions (called by CountingSMTP) --------------------------------------------------
    def session_opened(self) -> int:
        with self.lock:
            number = next(self._ids)
            self.session_messages[number] = 0
            self.open_sessions.add(number)
            self.max_open = max(self.max_open, len(self.open_sessions))
            return number

    def session_closed(self, number: int | None) -> None:
        with self.lock:
            self.open_sessions.discard(number)

    async def _pay_session_delay(self, server: SMTP) -> None:
        if not getattr(server, "fake_setup_paid", False):
            server.fake_setup_paid = True  # once per connection, not again after STARTTLS
            if self.session_delay:
                await asyncio.sleep(self.session_delay)

    # --- aiosmtpd hooks ---------------------------------------------------------------------
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        await self._pay_session_delay(server)
        session.host_name = hostname
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        await self._pay_session_delay(server)
        session.host_name = hostname
        return f"250 {server.hostname}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        cap = self.max_messages_per_session
        with self.lock:
            carried = self.session_messages.get(getattr(server, "fake_session", None), 0)
        if cap and carried >= cap:
            return "421 4.7.0 Too many messages on one connection, closing"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_permanently:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.refuse_temporarily:
            return f"451 4.3.0 <{address}>: Temporary lookup failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.message_delay:
            await asyncio.sleep(self.message_delay)
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
            number = getattr(server, "fake_session", None)
            if number in self.session_messages:
                self.session_messages[number] += 1
        return "250 2.0.0 Ok: queued"


class CountingSMTP(SMTP):
    """aiosmtpd's server, telling the handler when a connection opens and closes."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Called again, on the same object, after STARTTLS: that is still the same session.
        if not hasattr(self, "fake_session"):
            self.fake_session = self.event_handler.session_opened()
        super().connection_made(transport)

    def connection_lost(self, error: Exception | None) -> None:
        self.event_handler.session_closed(getattr(self, "fake_session", None))
        super().connection_lost(error)


class CountingController(Controller):
    def factory(self) -> SMTP:
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


class FakeSmtp:
    """``FakeSmtp().start()``; ``.port``, ``.handler.received``; ``.stop()``."""

    def __init__(
        self,
        username: str = "",
        password: str = "",
        *,
        session_delay: float = 0.0,
        message_delay: float = 0.0,
        tls: bool = False,
        port: int = 0,
    ) -> None:
        self.handler = RecordingHandler(session_delay=session_delay, message_delay=message_delay)
        self.username = username
        self.password = password
        self.session_delay = session_delay
        self.message_delay = message_delay
        self.tls = tls
        self.port = port or free_port()
        self.controller: Controller | None = None
        self.ca_bundle: Path | None = None
        self._tmp: tempfile.TemporaryDirectory | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> FakeSmtp:
        kwargs: dict[str, Any] = {}
        if self.username:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        if self.tls:
            self._tmp = tempfile.TemporaryDirectory(prefix="fake-smtp-")
            chain, self.ca_bundle = make_test_certificate(Path(self._tmp.name))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(chain)
            kwargs.update(tls_context=context, require_starttls=False)
        self.controller = CountingController(
            self.handler, hostname="127.0.0.1", port=self.port, **kwargs
        )
        self.controller.start()
        self.reset()  # start() itself connects once to check the server is up: not a session
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    @property
    def sessions(self) -> int:
        """Connections opened since the last reset."""
        with self.handler.lock:
            return len(self.handler.session_messages)

    @property
    def session_messages(self) -> list[int]:
        """Messages carried by each connection opened since the last reset, in opening order."""
        with self.handler.lock:
            return list(self.handler.session_messages.values())

    def stats(self) -> dict[str, Any]:
        with self.handler.lock:
            per_session = list(self.handler.session_messages.values())
            return {
                "sessions": len(per_session),
                "messages": len(self.handler.received),
                "open": len(self.handler.open_sessions),
                "max_open": self.handler.max_open,
                "session_messages": per_session,
                "session_delay": self.handler.session_delay,
                "message_delay": self.handler.message_delay,
                "ca_bundle": str(self.ca_bundle) if self.ca_bundle else None,
            }

    def configure(self, config: dict[str, Any]) -> None:
        with self.handler.lock:
            for name in ("session_delay", "message_delay"):
                if name in config:
                    setattr(self.handler, name, float(config[name]))
            for name in ("refuse_permanently", "refuse_temporarily"):
                if name in config:
                    setattr(self.handler, name, set(config[name]))

    def reset(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()
            self.handler.session_messages.clear()
            self.handler.open_sessions.clear()  # those still open count from before the reset
            self.handler.max_open = 0
            self.handler.session_delay = self.session_delay
            self.handler.message_delay = self.message_delay
            self.handler.max_messages_per_session = 0
        self.handler.refuse_permanently.clear()
        self.handler.refuse_temporarily.clear()


class ControlServer(LocalServer):
    """``/_fake/stats``, ``/_fake/config`` and ``/_fake/reset`` for a fake SMTP in a process."""

    def __init__(self, fake: FakeSmtp, port: int = 0) -> None:
        self.fake = fake
        self.port = port

    def start(self) -> ControlServer:
        fake = self.fake

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                if self.path == "/_fake/stats":
                    self.send_json(200, fake.stats())
                else:
                    self.send_json(404, {"error": "not found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if self.path == "/_fake/config":
                    fake.configure(json.loads(raw) if raw else {})
                elif self.path == "/_fake/reset":
                    fake.reset()
                else:
                    self.send_json(404, {"error": "not found"})
                    return
                self.send_json(200, {"ok": True})

        handler: type[BaseHTTPRequestHandler] = Handler
        self.serve(ThreadingHTTPServer(("127.0.0.1", self.port), handler))
        return self

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--control-port", type=int, default=0, help="HTTP stats/control port")
    parser.add_argument("--session-delay", type=float, default=0.0)
    parser.add_argument("--message-delay", type=float, default=0.0)
    parser.add_argument("--tls", action="store_true", help="offer STARTTLS (test certificate)")
    parser.add_argument("--username", default="")
    parser.add_argument("--password", default="")
    args = parser.parse_args()
    fake = FakeSmtp(
        args.username,
        args.password,
        session_delay=args.session_delay,
        message_delay=args.message_delay,
        tls=args.tls,
        port=args.port,
    ).start()
    control = ControlServer(fake, args.control_port).start()
    print(
        f"fake SMTP on 127.0.0.1:{fake.port} (session {args.session_delay}s, message "
        f"{args.message_delay}s{', STARTTLS, CA ' + str(fake.ca_bundle) if args.tls else ''}); "
        f"stats on {control.url}/_fake/stats",
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so the CA's directory goes
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        control.stop()
        fake.stop()


if __name__ == "__main__":
    main()
