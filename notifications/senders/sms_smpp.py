"""SMS over SMPP 3.4: one bound transceiver session per consumer process, kept alive.

``SmppSession`` connects, binds as a transceiver, and keeps the session: a reader thread
reads every PDU the SMSC sends and sends ``enquire_link`` after ``SMPP_ENQUIRE_LINK_SECONDS``
of quiet. The SMSC's requests share sequence numbers with ours (each side counts its own),
so only a *response* (``command_id`` with bit 31 set) resolves a waiting ``submit_sm``, and
only a ``submit_sm_resp`` or ``generic_nack``. The SMSC's requests are answered as SMPP 3.4
says: ``enquire_link`` and ``unbind`` at once; ``deliver_sm`` and ``data_sm`` (receipts or
messages from handsets) by a second thread that calls the handlers registered with
``on_deliver_sm`` and only then acknowledges it, so a slow handler (a database write) never
holds up a ``submit_sm_resp``; with no handler registered, or when one raises, it is left
unacknowledged for the SMSC to deliver again. ``alert_notification`` has no response; any
other request, or a command id we do not know, gets ``generic_nack`` (ESME_RINVCMDID).
Anything else that goes wrong in the reader (a PDU that will not parse, a write that fails)
marks the session broken: waiting submits fail as ambiguous, and the next submit (or
``tasks.keep_smpp_bound``) binds again. Any number of threads submit at once, each waiting
for its own response. smpplib provides the PDUs; the socket and the reading are ours, so a
read timeout never loses half a PDU.

Each part of a long text is its own ``submit_sm`` with a UDH (``sms.sms_encoding``); delivery
records the parts accepted and resumes after the last one.

Classification (``classify_status``): ``ESME_RINVDSTADR`` (and the other "this address is
wrong" statuses) are permanent; ``ESME_RTHROTTLED`` is rate limiting (``retry_after``); bind
failures are configuration errors; ``ESME_RSYSERR`` and other statuses are transient. A
connection that broke after a ``submit_sm`` was written, or no answer within the timeout, is
ambiguous: the SMSC may have taken the part.
"""

from __future__ import annotations

import itertools
import logging
import queue
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import smpplib.consts as c
from django.conf import settings
from django.db import connections
from smpplib import smpp
from smpplib.exceptions import UnknownCommandError

from notifications.operations import metrics
from notifications.senders.base import ConfigurationError, DeliveryError, PartResult, Prepared
from notifications.senders.http import Unreachable
from notifications.senders.sms import SmsSender, phone_digits

logger = logging.getLogger(__name__)

# Seconds to wait before the SMS channel is tried again after ESME_RTHROTTLED.
THROTTLED_RETRY_AFTER = 5.0
PERMANENT_STATUSES = {
    c.SMPP_ESME_RINVDSTADR,  # invalid destination address
    c.SMPP_ESME_RINVDSTTON,
    c.SMPP_ESME_RINVDSTNPI,
}
BIND_STATUSES = {c.SMPP_ESME_RBINDFAIL, c.SMPP_ESME_RINVPASWD, c.SMPP_ESME_RINVSYSID}
# At most this many submit_sm awaiting their response at once (SMSCs limit the window).
WINDOW = 10
# command_id bit 31: a response (SMPP 3.4, 5.1.2.1).
RESPONSE_BIT = 0x80000000
# The SMSC's requests handed to the deliver_sm handlers, then answered with <command>_resp.
DELIVERY_COMMANDS = ("deliver_sm", "data_sm")


def describe_status(status: int) -> str:
    return f"{c.DESCRIPTIONS.get(status, 'unknown status')} (0x{status:08X})"


def classify_status(status: int, command: str, server: str) -> DeliveryError:
    """The ``DeliveryError`` an SMPP error status in a response to ``command`` means."""
    detail = f"{server} answered {command} with {describe_status(status)}"
    if status == c.SMPP_ESME_RTHROTTLED:
        metrics.rate_limited("sms_smpp")
        return DeliveryError(f"{detail}: throttled", retry_after=THROTTLED_RETRY_AFTER)
    if status in PERMANENT_STATUSES:
        return DeliveryError(detail, permanent=True)
    if status in BIND_STATUSES:
        return ConfigurationError(f"{detail}; check SMPP_SYSTEM_ID/SMPP_PASSWORD")
    return DeliveryError(detail)


def source_address(source: str) -> dict[str, Any]:
    """TON/NPI for a numeric source (international number) or an alphanumeric sender name."""
    if source.lstrip("+").isdigit():
        return {
            "source_addr_ton": c.SMPP_TON_INTL,
            "source_addr_npi": c.SMPP_NPI_ISDN,
            "source_addr": source.lstrip("+"),
        }
    return {
        "source_addr_ton": c.SMPP_TON_ALNUM,
        "source_addr_npi": c.SMPP_NPI_UNK,
        "source_addr": source,
    }


class _Waiter:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.pdu: Any = None
        self.error: DeliveryError | None = None


class _Unsupported:
    """A PDU whose command smpplib cannot parse (an unknown command id, or one it has no
    class for): its header, enough to answer it."""

    def __init__(self, command_id: int, status: int, sequence: int) -> None:
        self.command_id, self.status, self.sequence = command_id, status, sequence
        self.command = f"command_id 0x{command_id:08X}"

    def is_response(self) -> bool:
        return bool(self.command_id & RESPONSE_BIT)


class _Sequence:
    """What smpplib's PDU classes want from a client: the next sequence number."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)
        self._lock = threading.Lock()

    def next_sequence(self) -> int:
        with self._lock:
            return next(self._counter) % 0x7FFFFFFF or 1


# Called with each deliver_sm or data_sm (a delivery receipt or a mobile-originated message)
# before it is acknowledged; an exception leaves it unacknowledged, so the SMSC delivers it
# again.
DeliverHandler = Callable[[Any], None]
_deliver_handlers: list[DeliverHandler] = []


def on_deliver_sm(handler: DeliverHandler) -> DeliverHandler:
    """Register ``handler`` for every ``deliver_sm`` and ``data_sm`` any session receives
    (once, however often it is registered)."""
    if handler not in _deliver_handlers:
        _deliver_handlers.append(handler)
    return handler


class SmppSession:
    """One bound transceiver session, shared by every thread of the process."""

    def __init__(
        self,
        host: str,
        port: int,
        system_id: str,
        password: str,
        *,
        timeout: float,
        use_tls: bool = False,
        enquire_link_seconds: float = 30.0,
    ) -> None:
        self.host, self.port = host, port
        self.server = f"SMPP server {host}:{port}"
        self.system_id, self.password = system_id, password
        self.timeout = timeout
        self.use_tls = use_tls
        self.enquire_link_seconds = enquire_link_seconds
        self.sequence = _Sequence()
        self._socket: socket.socket | None = None
        self._bound = False
        self._open_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._window = threading.BoundedSemaphore(WINDOW)
        self._waiting: dict[int, _Waiter] = {}
        self._waiting_lock = threading.Lock()
        self._last_io = time.monotonic()
        self._enquire_sent_at: float | None = None
        self._inbox: queue.Queue | None = None  # deliver_sm waiting for the handlers
        self.binds = 0

    # --- opening and closing ----------------------------------------------------------------
    @property
    def bound(self) -> bool:
        return self._bound

    def open(self) -> None:
        """Connect and bind as a transceiver, unless bound already; raises ``DeliveryError``
        (``Unreachable`` when the connection could not be made)."""
        if self._bound:
            return
        with self._open_lock:
            if self._bound:
                return
            sock = self._connect()
            try:
                early = self._bind(sock)
            except BaseException:
                sock.close()
                raise
            self._socket = sock
            self._bound = True
            self._last_io = time.monotonic()
            self._enquire_sent_at = None
            self.binds += 1
            self._inbox = queue.Queue()
            threading.Thread(
                target=self._read_loop, args=(sock, early), name="smpp-reader", daemon=True
            ).start()
            threading.Thread(
                target=self._deliver_loop,
                args=(sock, self._inbox),
                name="smpp-deliver",
                daemon=True,
            ).start()

    def _connect(self) -> socket.socket:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as err:
            raise Unreachable(f"{self.server} unreachable: {type(err).__name__}: {err}") from err
        if self.use_tls:
            try:
                context = ssl.create_default_context()
                sock = context.wrap_socket(sock, server_hostname=self.host)
            except (OSError, ssl.SSLError) as err:
                sock.close()
                raise Unreachable(f"{self.server}: TLS handshake failed: {err}") from err
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def _bind(self, sock: socket.socket) -> bytearray:
        """Bind as a transceiver; returns what the SMSC sent after the bind response (stored
        receipts often follow it at once), for the reader."""
        pdu = smpp.make_pdu(
            "bind_transceiver",
            client=self.sequence,
            system_id=self.system_id,
            password=self.password,
            system_type="",
        )
        try:
            sock.sendall(pdu.generate())
            buffer = bytearray()
            while True:
                response = self._next_pdu(buffer)
                if response is not None:
                    break
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed during bind")
                buffer += chunk
        except (OSError, ConnectionError) as err:
            raise Unreachable(f"{self.server} did not answer the bind: {err}") from err
        if response.command not in ("bind_transceiver_resp", "generic_nack"):
            raise Unreachable(f"{self.server} answered the bind with {response.command}")
        if response.is_error():
            raise classify_status(response.status, "bind_transceiver", self.server)
        return buffer

    def close(self) -> None:
        """Unbind (politely, without waiting long) and close the socket."""
        sock, self._socket = self._socket, None
        was_bound, self._bound = self._bound, False
        self._stop_inbox()
        if sock is None:
            return
        if was_bound:
            try:
                with self._write_lock:
                    sock.sendall(smpp.make_pdu("unbind", client=self.sequence).generate())
            except OSError:
                pass
        try:
            sock.close()
        except OSError:
            pass
        self._fail_waiting(f"{self.server}: session closed", ambiguous=True)

    def _broken(self, sock: socket.socket, reason: str) -> None:
        if self._socket is sock:
            self._socket = None
            self._bound = False
            self._stop_inbox()
        try:
            sock.close()
        except OSError:
            pass
        self._fail_waiting(f"{self.server}: {reason}", ambiguous=True)

    def _stop_inbox(self) -> None:
        """End the handler thread; deliver_sm not handled yet stay unacknowledged."""
        inbox, self._inbox = self._inbox, None
        if inbox is not None:
            inbox.put(None)

    def _fail_waiting(self, message: str, *, ambiguous: bool) -> None:
        with self._waiting_lock:
            waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            waiter.error = DeliveryError(
                f"{message} before it answered submit_sm (the part may have been accepted)",
                ambiguous=ambiguous,
            )
            waiter.done.set()

    # --- reading ------------------------------------------------------------------------------
    @staticmethod
    def _next_pdu(buffer: bytearray) -> Any:
        """The next whole PDU in ``buffer`` (removed from it), or None until one is there; an
        ``_Unsupported`` for a command smpplib cannot parse. Raises on a malformed PDU."""
        if len(buffer) < 4:
            return None
        (length,) = struct.unpack(">L", bytes(buffer[:4]))
        if length < 16 or length > 70_000:
            raise ConnectionError(f"malformed PDU length {length}")
        if len(buffer) < length:
            return None
        raw = bytes(buffer[:length])
        del buffer[:length]
        try:
            return smpp.parse_pdu(raw, client=_Sequence(), allow_unknown_opt_params=True)
        except UnknownCommandError:  # the command id (unknown TLVs are allowed above)
            return _Unsupported(*struct.unpack(">LLL", raw[4:16]))

    def _read_loop(self, sock: socket.socket, buffer: bytearray) -> None:
        """Read and dispatch until the session ends; whatever goes wrong breaks it (a reader
        that died would leave a session that looks bound but answers nothing)."""
        try:
            while (pdu := self._next_pdu(buffer)) is not None:  # what came with the bind
                self._dispatch(sock, pdu)
            while self._socket is sock:
                readable, _, _ = select.select([sock], [], [], 1.0)
                if readable:
                    chunk = sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("the SMSC closed the connection")
                    buffer += chunk
                    self._last_io = time.monotonic()
                    while (pdu := self._next_pdu(buffer)) is not None:
                        self._dispatch(sock, pdu)
                self._keep_alive(sock)
        except Exception as err:
            if self._socket is sock:
                expected = isinstance(err, OSError | ConnectionError)
                logger.warning(
                    "%s: session lost (%s: %s); it reopens on the next send",
                    self.server,
                    type(err).__name__,
                    err,
                    exc_info=not expected,
                )
                self._broken(sock, f"connection lost ({err})")

    def _keep_alive(self, sock: socket.socket) -> None:
        now = time.monotonic()
        if self._enquire_sent_at is not None:
            if now - self._enquire_sent_at > max(self.timeout, 1.0):
                raise ConnectionError("no answer to enquire_link")
            return
        if now - self._last_io >= self.enquire_link_seconds:
            self._enquire_sent_at = now
            self._write(sock, smpp.make_pdu("enquire_link", client=self.sequence))

    def _dispatch(self, sock: socket.socket, pdu: Any) -> None:
        if pdu.is_response():
            self._on_response(pdu)
        else:
            self._on_request(sock, pdu)

    def _on_response(self, pdu: Any) -> None:
        """A response to one of our requests; a submit_sm's resolves the thread waiting."""
        command = pdu.command
        if command == "enquire_link_resp":
            self._enquire_sent_at = None
            return
        waiter = None
        if command in ("submit_sm_resp", "generic_nack"):
            with self._waiting_lock:
                waiter = self._waiting.pop(pdu.sequence, None)
        if waiter is None:
            logger.debug("%s: %s for no one (sequence %s)", self.server, command, pdu.sequence)
            return
        waiter.pdu = pdu
        waiter.done.set()

    def _on_request(self, sock: socket.socket, pdu: Any) -> None:
        """One of the SMSC's requests (its sequence numbers are its own, never ours)."""
        command = pdu.command
        if command == "enquire_link":
            self._respond(sock, pdu, "enquire_link_resp")
        elif command in DELIVERY_COMMANDS:
            inbox = self._inbox
            if inbox is not None:
                inbox.put(pdu)
        elif command == "unbind":
            self._respond(sock, pdu, "unbind_resp")
            raise ConnectionError("the SMSC unbound the session")
        elif command == "alert_notification":  # no response (SMPP 3.4, 4.12)
            logger.info("%s: alert_notification for %r", self.server, pdu.source_addr)
        else:
            logger.warning("%s: %s not supported; answered generic_nack", self.server, command)
            self._respond(sock, pdu, "generic_nack", status=c.SMPP_ESME_RINVCMDID)

    def _deliver_loop(self, sock: socket.socket, inbox: queue.Queue) -> None:
        """Hand each deliver_sm (or data_sm) to the handlers, then acknowledge it; one that is
        not handled (no handler, or one raised) is left unacknowledged: the SMSC delivers it
        again. Anything else going wrong here breaks the session."""
        try:
            while (pdu := inbox.get()) is not None:
                if not _deliver_handlers:
                    logger.debug(
                        "%s: %s with no handler; left unacknowledged", self.server, pdu.command
                    )
                    continue
                try:
                    for handler in _deliver_handlers:
                        handler(pdu)
                except Exception:
                    logger.exception(
                        "%s: %s not handled; left for redelivery", self.server, pdu.command
                    )
                    continue
                try:
                    self._respond(sock, pdu, pdu.command + "_resp", message_id="")
                except OSError as err:
                    logger.warning("%s: %s_resp not sent (%s)", self.server, pdu.command, err)
        except Exception as err:
            logger.exception("%s: receipts stopped; session closed", self.server)
            self._broken(sock, f"receipt handling failed ({err})")
        finally:
            connections.close_all()  # this thread's own database connections

    def _respond(self, sock: socket.socket, request: Any, command: str, **fields: Any) -> None:
        response = smpp.make_pdu(command, client=self.sequence, **fields)
        response.sequence = request.sequence
        self._write(sock, response)

    def _write(self, sock: socket.socket, pdu: Any) -> None:
        data = pdu.generate()
        with self._write_lock:
            sock.sendall(data)

    # --- submitting ---------------------------------------------------------------------------
    def submit(self, **fields: Any) -> str:
        """One ``submit_sm``; returns the SMSC's message id. Raises ``DeliveryError``."""
        self.open()
        sock = self._socket
        if sock is None:
            raise DeliveryError(f"{self.server}: session closed")
        pdu = smpp.make_pdu("submit_sm", client=self.sequence, **fields)
        waiter = _Waiter()
        if not self._window.acquire(timeout=self.timeout):
            raise DeliveryError(f"{self.server}: {WINDOW} submits already waiting for answers")
        try:
            with self._waiting_lock:
                self._waiting[pdu.sequence] = waiter
            try:
                self._write(sock, pdu)
            except OSError as err:
                with self._waiting_lock:
                    self._waiting.pop(pdu.sequence, None)
                self._broken(sock, f"write failed ({err})")
                # sendall failed before the whole PDU went out: the SMSC can't have taken it.
                raise DeliveryError(f"{self.server}: connection lost while sending") from err
            if not waiter.done.wait(self.timeout):
                with self._waiting_lock:
                    self._waiting.pop(pdu.sequence, None)
                self._broken(sock, "no answer in time")
                raise DeliveryError(
                    f"{self.server} did not answer submit_sm in {self.timeout:g}s "
                    "(the part may have been accepted)",
                    ambiguous=True,
                )
        finally:
            self._window.release()
        if waiter.error is not None:
            raise waiter.error
        response = waiter.pdu
        if response.command == "generic_nack" or response.is_error():
            raise classify_status(response.status, "submit_sm", self.server)
        message_id = response.message_id or b""
        return (
            message_id.decode("ascii", "replace")
            if isinstance(message_id, bytes)
            else str(message_id)
        )


_sessions: dict[tuple, SmppSession] = {}
_sessions_lock = threading.Lock()


def session() -> SmppSession:
    """The process's session for the current SMPP settings (a new one when they change)."""
    key = (
        settings.SMPP_HOST,
        settings.SMPP_PORT,
        settings.SMPP_SYSTEM_ID,
        settings.SMPP_PASSWORD,
        settings.SMPP_USE_TLS,
        settings.SMPP_TIMEOUT or settings.NOTIFY_HTTP_TIMEOUT,
        settings.SMPP_ENQUIRE_LINK_SECONDS,
    )
    with _sessions_lock:
        current = _sessions.get(key)
        if current is None:
            for stale in _sessions.values():
                stale.close()
            _sessions.clear()
            current = _sessions[key] = SmppSession(
                key[0],
                key[1],
                key[2],
                key[3],
                use_tls=key[4],
                timeout=key[5],
                enquire_link_seconds=key[6],
            )
        return current


def close_sessions() -> None:
    """Unbind and close every session (at consumer shutdown)."""
    with _sessions_lock:
        for current in _sessions.values():
            current.close()
        _sessions.clear()


class SmppSender(SmsSender):
    transport = "sms_smpp"
    required_settings = ("SMPP_HOST", "SMPP_SYSTEM_ID")
    provider = "SMPP"
    sends_parts = True

    def submit(self, prepared: Prepared, index: int) -> PartResult:
        encoding = prepared.extra["encoding"]
        source = settings.SMPP_SOURCE_ADDR or settings.SMSAERO_SIGN
        message_id = session().submit(
            **source_address(source),
            dest_addr_ton=c.SMPP_TON_INTL,
            dest_addr_npi=c.SMPP_NPI_ISDN,
            destination_addr=phone_digits(prepared.address),
            short_message=prepared.parts[index],
            data_coding=encoding.data_coding,
            esm_class=encoding.esm_class,
            registered_delivery=1,  # ask for a delivery receipt
        )
        return PartResult(provider_message_id=message_id)

    def check(self) -> str:
        probe = SmppSession(
            settings.SMPP_HOST,
            settings.SMPP_PORT,
            settings.SMPP_SYSTEM_ID,
            settings.SMPP_PASSWORD,
            timeout=settings.SMPP_TIMEOUT or settings.NOTIFY_HTTP_TIMEOUT,
            use_tls=settings.SMPP_USE_TLS,
        )
        probe.open()
        probe.close()
        return f"{probe.server} accepts the bind as {settings.SMPP_SYSTEM_ID!r} (then unbound)"
