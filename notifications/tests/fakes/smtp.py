"""A real SMTP server (aiosmtpd) on 127.0.0.1 that records what it receives.

Recipients can be refused permanently (550) or temporarily (451); logins are checked when
``username`` is set. Used for the Email channel and the SMS Aero SMTP gateway.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


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
    sessions: int = 0  # EHLOs seen: one per SMTP session

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        with self.lock:
            self.sessions += 1
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse_permanently:
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address in self.refuse_temporarily:
            return f"451 4.3.0 <{address}>: Temporary lookup failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        with self.lock:
            self.received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 2.0.0 Ok: queued"


class FakeSmtp:
    """``FakeSmtp().start()``; ``.port``, ``.handler.received``; ``.stop()``."""

    def __init__(self, username: str = "", password: str = "") -> None:
        self.handler = RecordingHandler()
        self.username = username
        self.password = password
        self.port = free_port()
        self.controller: Controller | None = None

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        )
        return AuthResult(success=ok, handled=False)

    def start(self) -> FakeSmtp:
        kwargs = {}
        if self.username:
            kwargs = {"authenticator": self._authenticate, "auth_require_tls": False}
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port, **kwargs)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()

    @property
    def received(self) -> list[Received]:
        with self.handler.lock:
            return list(self.handler.received)

    @property
    def sessions(self) -> int:
        with self.handler.lock:
            return self.handler.sessions

    def reset(self) -> None:
        with self.handler.lock:
            self.handler.received.clear()
            self.handler.sessions = 0
        self.handler.refuse_permanently.clear()
        self.handler.refuse_temporarily.clear()
