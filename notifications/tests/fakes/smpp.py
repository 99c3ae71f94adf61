"""A small SMPP 3.4 server (SMSC) on 127.0.0.1, built on smpplib's own PDU classes.

``FakeSmpp(system_id, password).start()``; ``.port``; ``.stop()``. It answers
``bind_transmitter`` (checking the password), ``submit_sm``, ``enquire_link`` and
``unbind``, and records every submitted part. Behaviours for ``submit_sm``, per destination
or as the default (``mode``): ``ok``, ``throttled`` (ESME_RTHROTTLED), ``syserr``
(ESME_RSYSERR), ``invalid`` (ESME_RINVDSTADR), ``silent`` (never answers). ``messages()``
reassembles concatenated (UDH) parts into texts.
"""

from __future__ import annotations

import socketserver
import struct
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import smpplib.consts as c
from smpplib import smpp
from smpplib.gsm import GSM_CHARACTER_TABLE

from notifications.tests.fakes.server import LocalServer

STATUSES = {
    "throttled": c.SMPP_ESME_RTHROTTLED,
    "syserr": c.SMPP_ESME_RSYSERR,
    "invalid": c.SMPP_ESME_RINVDSTADR,
}


class _Sequence:
    """What smpplib's PDU classes want from a client: a sequence counter."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


@dataclass
class Part:
    destination: str
    source: str
    data_coding: int
    esm_class: int
    short_message: bytes


def _decode(data: bytes, data_coding: int) -> str:
    if data_coding == c.SMPP_ENCODING_ISO10646:
        return data.decode("utf-16-be")
    if data_coding == c.SMPP_ENCODING_DEFAULT:
        text, escape = [], False
        for byte in data:
            if byte == 0x1B:
                escape = True
                continue
            text.append(GSM_CHARACTER_TABLE[byte + 0x80 if escape else byte])
            escape = False
        return "".join(text)
    return data.decode("latin-1")


class FakeSmpp(LocalServer):
    def __init__(self, system_id: str = "smppuser", password: str = "smpp-pw1") -> None:
        self.system_id = system_id
        self.password = password
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.mode = "ok"
            self.per_destination: dict[str, str] = {}
            self.parts: list[Part] = []
            self.binds: list[tuple[str, bool]] = []  # (system_id, accepted)
            self.unbinds = 0
            self.open_connections = 0
            self.connections = 0
            self._next_id = 0

    # --- what arrived -----------------------------------------------------------------------
    def messages(self) -> list[tuple[str, str]]:
        """``(destination, text)`` of every message, concatenated parts joined in order."""
        with self.lock:
            parts = list(self.parts)
        whole: list[tuple[str, str]] = []
        groups: dict[tuple[str, int], dict[int, str]] = defaultdict(dict)
        totals: dict[tuple[str, int], int] = {}
        for part in parts:
            data = part.short_message
            if part.esm_class & c.SMPP_GSMFEAT_UDHI:
                header_length = data[0]
                header, body = data[1 : 1 + header_length], data[1 + header_length :]
                # IE 0x00: concatenated SM, 8-bit reference: ref, total, sequence.
                assert header[:2] == b"\x00\x03", f"unexpected UDH {header!r}"
                ref, total, seq = header[2], header[3], header[4]
                key = (part.destination, ref)
                groups[key][seq] = _decode(body, part.data_coding)
                totals[key] = total
                if len(groups[key]) == total:
                    whole.append(
                        (part.destination, "".join(groups[key][i] for i in range(1, total + 1)))
                    )
            else:
                whole.append((part.destination, _decode(data, part.data_coding)))
        return whole

    # --- answering --------------------------------------------------------------------------
    def _respond(self, request: Any, command: str, status: int = 0, **fields: Any) -> bytes:
        response = smpp.make_pdu(command, client=_Sequence(), status=status, **fields)
        response.sequence = request.sequence
        return response.generate()

    def handle_pdu(self, pdu: Any, session: dict) -> bytes | None:
        if pdu.command in ("bind_transmitter", "bind_transceiver"):
            system_id = pdu.system_id.decode()
            ok = system_id == self.system_id and pdu.password.decode() == self.password
            with self.lock:
                self.binds.append((system_id, ok))
            session["bound"] = ok
            status = c.SMPP_ESME_ROK if ok else c.SMPP_ESME_RINVPASWD
            return self._respond(pdu, pdu.command + "_resp", status, system_id="fakesmsc")
        if pdu.command == "enquire_link":
            return self._respond(pdu, "enquire_link_resp")
        if pdu.command == "unbind":
            with self.lock:
                self.unbinds += 1
            session["bound"] = False
            return self._respond(pdu, "unbind_resp")
        if pdu.command == "submit_sm":
            if not session.get("bound"):
                return self._respond(pdu, "submit_sm_resp", c.SMPP_ESME_RINVBNDSTS)
            destination = pdu.destination_addr.decode()
            with self.lock:
                behaviour = self.per_destination.get(destination, self.mode)
            if behaviour == "silent":
                return None
            if behaviour in STATUSES:
                return self._respond(pdu, "submit_sm_resp", STATUSES[behaviour])
            with self.lock:
                self._next_id += 1
                message_id = f"smsc-{self._next_id}"
                self.parts.append(
                    Part(
                        destination=destination,
                        source=pdu.source_addr.decode(),
                        data_coding=pdu.data_coding or 0,
                        esm_class=pdu.esm_class or 0,
                        short_message=pdu.short_message or b"",
                    )
                )
            return self._respond(pdu, "submit_sm_resp", message_id=message_id)
        return self._respond(pdu, "generic_nack", c.SMPP_ESME_RINVCMDID)

    def _handler(self) -> type[socketserver.BaseRequestHandler]:
        fake = self

        class Handler(socketserver.BaseRequestHandler):
            def _read(self, size: int) -> bytes:
                data = b""
                while len(data) < size:
                    chunk = self.request.recv(size - len(data))
                    if not chunk:
                        raise ConnectionError("peer closed")
                    data += chunk
                return data

            def handle(self) -> None:
                with fake.lock:
                    fake.connections += 1
                    fake.open_connections += 1
                session: dict = {}
                self.request.settimeout(30)
                try:
                    while True:
                        header = self._read(4)
                        (length,) = struct.unpack(">L", header)
                        pdu = smpp.parse_pdu(
                            header + self._read(length - 4),
                            client=_Sequence(),
                            allow_unknown_opt_params=True,
                        )
                        answer = fake.handle_pdu(pdu, session)
                        if answer is not None:
                            self.request.sendall(answer)
                    # Read on after unbind: the count of open connections drops only when
                    # the client closes its socket.
                except OSError:  # the client closed, reset or went quiet
                    pass
                finally:
                    with fake.lock:
                        fake.open_connections -= 1

        return Handler

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def start(self) -> FakeSmpp:
        self.serve(socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler()))
        return self
