"""A small SMPP 3.4 server (SMSC) on 127.0.0.1, built on smpplib's own PDU classes.

``FakeSmpp(system_id, password).start()``; ``.port``; ``.stop()``. It answers
``bind_transmitter``, ``bind_receiver`` and ``bind_transceiver`` (checking the password),
``submit_sm``, ``enquire_link`` and ``unbind``, and records every submitted part in
``parts`` (a resent part appears twice) with its ``message_id`` and ``registered_delivery``.
``messages()`` reassembles concatenated (UDH) parts into texts, each message once.
Counts: ``connections``, ``open_connections``, ``binds`` ((system_id, accepted) each),
``bind_counts`` (per bind command), ``unbinds``, ``enquire_links`` (received),
``enquire_links_sent`` and ``enquire_link_resps`` (the SMSC's own, see below).

Behaviours for ``submit_sm``: one-shot from ``queue`` first ("part 1 ok, part 2 syserr"),
then per destination (``per_destination``) or the default (``mode``): ``ok``, ``throttled``
(ESME_RTHROTTLED), ``syserr`` (ESME_RSYSERR), ``invalid`` (ESME_RINVDSTADR), ``silent``
(never answers, nothing accepted), ``accept_then_close`` (accepted and recorded, then the
socket is closed without an answer) and ``accept_then_silent`` (accepted and recorded,
never answered). Message ids: ``id_style`` ``"counter"`` (smsc-1, smsc-2, ...), ``"uuid"``
(uuid4 strings) or ``"hex"`` (8 upper-case hex digits: 00001A2B, 00001A2C, ...).

Delivery receipts. A part accepted with ``registered_delivery`` asking for one (low bits 01:
always; 10: on failure only) gets a ``deliver_sm`` with esm_class 0x04 (SMSC delivery
receipt; smpplib's SMPP_MSGTYPE_DELIVERYACK, 0x08, is the SME acknowledgement instead) and
short_message ``id:<id> sub:001 dlvrd:001 submit date:YYMMDDhhmm done date:YYMMDDhhmm
stat:DELIVRD err:000 text:<first 20 chars>`` (``receipt_style="minimal"``: only id, submit
date, done date, stat, err), plus the ``receipted_message_id`` and ``message_state`` TLVs
unless ``receipt_tlvs`` is False. It goes to the session that submitted the part if that
one can receive (transceiver or receiver), else to any bound receiving session, else it is
stored (``stored_receipts``) and delivered when a transceiver or receiver binds. Options:

* ``receipt_stat`` {destination: stat} over ``default_stat`` ("DELIVRD"); stats DELIVRD,
  UNDELIV, REJECTD, EXPIRED, DELETED, ACCEPTD, UNKNOWN; ``receipt_stat_part`` overrides one
  part, keyed by its UDH sequence number (1 for a single-part SMS) or (destination, seq):
  ``{2: "UNDELIV"}`` makes part 2 of every message undeliverable.
* ``receipt_order`` for the parts of one concatenated message: ``"in_order"`` (each part's
  receipt as soon as it is accepted), ``"reversed"`` or ``"shuffled"`` (held until every part
  is accepted, then sent in that order; shuffled from ``random``, seeded with ``seed``).
* ``receipt_id_style``: how the text writes the id, ``"same"`` as the submit_sm_resp or
  ``"decimal"`` (a hex id's number in 10 decimal digits: 00001A2B is id:0000006699, as some
  SMSCs do); the ``receipted_message_id`` TLV is always the submit_sm_resp's id.
  ``receipt_text_suffix`` is appended to the text (``"\\x00"``: a NUL-terminated text).
* ``receipt_delay`` seconds after the submit_sm_resp; ``receipt_redeliver=N`` sends each
  receipt N extra times; ``receipt_before_resp`` writes it BEFORE the part's submit_sm_resp
  (and wins over the delay).
* ``auto_receipts=False``: receipts are held (``held_receipts``) until ``send_receipts()``
  sends them all (in submission order; reversed or shuffled as ``receipt_order`` says), or
  ``send_receipt(message_id, stat=None)`` sends one for any accepted part, now.

Each deliver_sm written is in ``deliveries``; each deliver_sm_resp the client sends back in
``acks`` as (message_id, command_status). The SMSC's own ``enquire_link``: every
``enquire_link_interval`` seconds on each bound session, or now with
``send_enquire_link()``. Writes to a session (the handler answering, receipt timers, the
enquire_link loop) are serialised by the session's own lock.

The SMSC's other requests (``REQUEST_KINDS``): ``alert_notification``, ``data_sm`` (a message
from a handset), ``unknown`` (a command id no SMPP version has, with a 4-byte body) and
``malformed`` (an enquire_link whose body is a TLV cut short). ``interject`` (one-shot) writes
each kind listed ahead of the next submit_sm's response, with that submit_sm's sequence
number (each side numbers its own requests, so an SMSC may); ``send_request(kind)`` writes
one to every bound session now. Each written is in ``requests_sent`` as (kind, sequence);
the client's answers to them (``generic_nack``, ``data_sm_resp``, ...) in ``answers`` as
(command, command_status, sequence).
"""

from __future__ import annotations

import random
import socket
import socketserver
import struct
import threading
import time
import uuid
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
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
ACCEPTING = ("ok", "accept_then_close", "accept_then_silent")
BINDS = ("bind_transmitter", "bind_receiver", "bind_transceiver")
RECEIVING_BINDS = ("bind_receiver", "bind_transceiver")
# esm_class message type "SMSC Delivery Receipt" (SMPP 3.4, 5.2.12: xx0001xx).
ESM_CLASS_RECEIPT = 0x04
HEX_ID_BASE = 0x1A2A  # id_style "hex": the first id is 00001A2B
REQUEST_KINDS = ("alert_notification", "data_sm", "unknown", "malformed")
UNKNOWN_COMMAND_ID = 0x00010777  # no SMPP version defines it
ENQUIRE_LINK_ID = 0x00000015
MESSAGE_STATES = {
    "DELIVRD": c.SMPP_MESSAGE_STATE_DELIVERED,
    "EXPIRED": c.SMPP_MESSAGE_STATE_EXPIRED,
    "DELETED": c.SMPP_MESSAGE_STATE_DELETED,
    "UNDELIV": c.SMPP_MESSAGE_STATE_UNDELIVERABLE,
    "ACCEPTD": c.SMPP_MESSAGE_STATE_ACCEPTED,
    "UNKNOWN": c.SMPP_MESSAGE_STATE_UNKNOWN,
    "REJECTD": c.SMPP_MESSAGE_STATE_REJECTED,
}


class _Sequence:
    """What smpplib's PDU classes want from a client: a sequence counter."""

    sequence = 0

    def next_sequence(self) -> int:
        return 0


def _decode(data: bytes, data_coding: int) -> str:
    if data_coding == c.SMPP_ENCODING_ISO10646:
        return data.decode("utf-16-be", errors="replace")
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


def smsc_request(kind: str, sequence: int) -> bytes:
    """One of ``REQUEST_KINDS`` as the SMSC writes it, with ``sequence``."""
    if kind == "unknown":
        return struct.pack(">LLLL", 20, UNKNOWN_COMMAND_ID, 0, sequence) + b"\x00" * 4
    if kind == "malformed":  # a TLV header needs 4 bytes; one is there
        return struct.pack(">LLLL", 17, ENQUIRE_LINK_ID, 0, sequence) + b"\x02"
    if kind == "alert_notification":
        fields: dict[str, Any] = {
            "source_addr": "79161234567",
            "esme_addr": "NotifySvc",
            "ms_availability_status": 0,
        }
    elif kind == "data_sm":
        fields = {
            "source_addr": "79161234567",
            "destination_addr": "NotifySvc",
            "message_payload": b"STOP",
        }
    else:
        raise ValueError(f"unknown request kind {kind!r}")
    pdu = smpp.make_pdu(kind, client=_Sequence(), **fields)
    pdu.sequence = sequence
    return pdu.generate()


@dataclass
class Part:
    destination: str
    source: str
    data_coding: int
    esm_class: int
    short_message: bytes
    registered_delivery: int = 0
    message_id: str = ""
    connection: int = 0  # which connection (1, 2, ...) submitted it
    sequence: int = 0  # its submit_sm's sequence number
    submitted_at: float = field(default_factory=time.time)

    @property
    def udh(self) -> tuple[int, int, int] | None:
        """(reference, total, sequence) of a concatenated part; None for a whole SMS."""
        if not self.esm_class & c.SMPP_GSMFEAT_UDHI:
            return None
        data = self.short_message
        header = data[1 : 1 + data[0]]
        if header[:2] == b"\x00\x03":  # IE 0x00: concatenated SM, 8-bit reference
            return header[2], header[3], header[4]
        if header[:2] == b"\x08\x04":  # IE 0x08: 16-bit reference
            return (header[2] << 8) | header[3], header[4], header[5]
        raise AssertionError(f"unexpected UDH {header!r}")

    @property
    def text(self) -> str:
        """This part's own text (without its UDH)."""
        data = self.short_message
        if self.esm_class & c.SMPP_GSMFEAT_UDHI:
            data = data[1 + data[0] :]
        return _decode(data, self.data_coding)


@dataclass
class Receipt:
    message_id: str
    destination: str  # the handset the part went to: the deliver_sm's source_addr
    source: str  # who sent the part: the deliver_sm's destination_addr
    stat: str
    submitted_at: float
    text: str
    connection: int  # the connection that submitted the part (preferred for delivery)


@dataclass
class Delivered:
    """One deliver_sm the SMSC wrote (a redelivery is one more)."""

    message_id: str
    stat: str
    connection: int
    sequence: int
    short_message: bytes


class _Session:
    """One client connection: its socket, bind state and SMSC-side sequence numbers."""

    def __init__(self, sock: socket.socket, number: int) -> None:
        self.sock = sock
        self.number = number
        self.write_lock = threading.Lock()
        self.bind: str | None = None  # the bind command accepted, None when unbound
        self.alive = True
        self.closed = threading.Event()
        self._sequence = 0
        self.outstanding: dict[int, str] = {}  # deliver_sm sequence -> message_id
        self.before: list[Callable[[], Any]] = []  # run before this PDU's answer
        self.after: list[Callable[[], Any]] = []  # run after it
        self.close_after = False

    @property
    def receives(self) -> bool:
        return self.alive and self.bind in RECEIVING_BINDS

    def write(self, data: bytes) -> bool:
        with self.write_lock:
            if not self.alive:
                return False
            try:
                self.sock.sendall(data)
                return True
            except OSError:
                self.alive = False
                return False

    def request(self, command: str, message_id: str | None = None, **fields: Any) -> int | None:
        """Write an SMSC-initiated PDU; its sequence number, None when it could not go."""
        with self.write_lock:
            if not self.alive:
                return None
            self._sequence += 1
            pdu = smpp.make_pdu(command, client=_Sequence(), **fields)
            pdu.sequence = self._sequence
            if message_id is not None:
                self.outstanding[self._sequence] = message_id
            try:
                self.sock.sendall(pdu.generate())
                return self._sequence
            except OSError:
                self.alive = False
                return None

    def send_request(self, kind: str, sequence: int | None = None) -> int | None:
        """Write one of ``REQUEST_KINDS`` (with ``sequence``, else the next of this side's
        own); its sequence number, None when it could not go."""
        with self.write_lock:
            if not self.alive:
                return None
            if sequence is None:
                self._sequence += 1
                sequence = self._sequence
            try:
                self.sock.sendall(smsc_request(kind, sequence))
                return sequence
            except OSError:
                self.alive = False
                return None

    def close(self) -> None:
        self.alive = False
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class FakeSmpp(LocalServer):
    def __init__(self, system_id: str = "smppuser", password: str = "smpp-pw1") -> None:
        self.system_id = system_id
        self.password = password
        self.lock = threading.Lock()
        self._live: dict[int, _Session] = {}  # open connections, kept over reset()
        self._connection_numbers = 0
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.mode = "ok"
            self.per_destination: dict[str, str] = {}
            self.queue: deque[str] = deque()  # one-shot submit_sm behaviours, consumed first
            self.id_style = "counter"
            self.parts: list[Part] = []
            self.binds: list[tuple[str, bool]] = []  # (system_id, accepted)
            self.bind_counts: Counter[str] = Counter()  # bind command -> attempts
            self.unbinds = 0
            self.open_connections = len(self._live)
            self.connections = 0
            self.enquire_links = 0  # received from clients
            self.enquire_links_sent = 0
            self.enquire_link_resps = 0
            self.enquire_link_interval: float | None = None
            self._next_id = 0
            # Delivery receipts.
            self.auto_receipts = True
            self.receipt_style = "full"
            self.receipt_tlvs = True
            self.default_stat = "DELIVRD"
            self.receipt_stat: dict[str, str] = {}
            self.receipt_stat_part: dict[Any, str] = {}
            self.receipt_err: dict[str, str] = {}  # stat -> err (default 000 / 001)
            self.receipt_order = "in_order"
            self.receipt_delay = 0.0
            self.receipt_redeliver = 0
            self.receipt_before_resp = False
            self.seed = 0
            self.random = random.Random(self.seed)
            self.held_receipts: list[Receipt] = []
            self.stored_receipts: list[Receipt] = []
            self._groups: dict[tuple[str, int, int], dict[str, Any]] = {}
            self.deliveries: list[Delivered] = []
            self.acks: list[tuple[str, int]] = []  # (message_id, command_status)
            self.receipt_id_style = "same"
            self.receipt_text_suffix = ""
            # The SMSC's other requests.
            self.interject: list[str] = []
            self.requests_sent: list[tuple[str, int]] = []  # (kind, sequence)
            self.answers: list[tuple[str, int, int]] = []  # (command, status, sequence)

    # --- what arrived -----------------------------------------------------------------------
    def messages(self) -> list[tuple[str, str]]:
        """``(destination, text)`` of every message, concatenated parts joined in order.

        A message appears once its last missing part arrives; a part resent after that (same
        destination, reference and sequence) is a duplicate and adds nothing (see ``parts``).
        """
        with self.lock:
            parts = list(self.parts)
        whole: list[tuple[str, str]] = []
        groups: dict[tuple[str, int], dict[int, str]] = defaultdict(dict)
        done: set[tuple[str, int]] = set()
        for part in parts:
            udh = part.udh
            if udh is None:
                whole.append((part.destination, part.text))
                continue
            ref, total, seq = udh
            key = (part.destination, ref)
            if key in done:
                continue
            groups[key][seq] = part.text
            if len(groups[key]) == total:
                whole.append(
                    (part.destination, "".join(groups[key].get(i, "") for i in range(1, total + 1)))
                )
                done.add(key)
        return whole

    def part(self, message_id: str) -> Part:
        with self.lock:
            for part in reversed(self.parts):
                if part.message_id == message_id:
                    return part
        raise KeyError(f"no part with message id {message_id}")

    # --- receipts -----------------------------------------------------------------------------
    def _stat_for(self, part: Part) -> str:
        udh = part.udh
        seq = udh[2] if udh else 1
        for key in ((part.destination, seq), seq):
            if key in self.receipt_stat_part:
                return self.receipt_stat_part[key]
        return self.receipt_stat.get(part.destination, self.default_stat)

    def _receipt(self, part: Part, stat: str) -> Receipt:
        return Receipt(
            message_id=part.message_id,
            destination=part.destination,
            source=part.source,
            stat=stat,
            submitted_at=part.submitted_at,
            text=part.text[:20],
            connection=part.connection,
        )

    def receipt_text(self, receipt: Receipt, done_at: float | None = None) -> str:
        """The short_message of ``receipt``'s deliver_sm, in ``receipt_style``."""

        def date(moment: float) -> str:
            return time.strftime("%y%m%d%H%M", time.gmtime(moment))

        err = self.receipt_err.get(receipt.stat, "000" if receipt.stat == "DELIVRD" else "001")
        submit, done = date(receipt.submitted_at), date(done_at or time.time())
        message_id = receipt.message_id
        if self.receipt_id_style == "decimal":
            message_id = f"{int(message_id, 16):010d}"
        if self.receipt_style == "minimal":
            text = (
                f"id:{message_id} submit date:{submit} done date:{done} "
                f"stat:{receipt.stat} err:{err}"
            )
        else:
            delivered = "001" if receipt.stat == "DELIVRD" else "000"
            text = (
                f"id:{message_id} sub:001 dlvrd:{delivered} submit date:{submit} "
                f"done date:{done} stat:{receipt.stat} err:{err} text:{receipt.text}"
            )
        return text + self.receipt_text_suffix

    def _route(self, receipt: Receipt) -> _Session | None:
        with self.lock:
            own = self._live.get(receipt.connection)
            if own is not None and own.receives:
                return own
            receiving = [s for s in self._live.values() if s.receives]
        return receiving[-1] if receiving else None

    def _write_receipt(self, receipt: Receipt) -> bool:
        """Send ``receipt`` (1 + ``receipt_redeliver`` times); store it when nobody receives."""
        with self.lock:
            times = 1 + self.receipt_redeliver
            text = self.receipt_text(receipt).encode("ascii", errors="replace")
            tlvs: dict[str, Any] = {}
            if self.receipt_tlvs:
                tlvs = {
                    "receipted_message_id": receipt.message_id,
                    "message_state": MESSAGE_STATES.get(receipt.stat, c.SMPP_MESSAGE_STATE_UNKNOWN),
                }
        for attempt in range(times):
            session = self._route(receipt)
            sequence = None
            if session is not None:
                sequence = session.request(
                    "deliver_sm",
                    message_id=receipt.message_id,
                    source_addr_ton=1,
                    source_addr_npi=1,
                    source_addr=receipt.destination,
                    destination_addr=receipt.source,
                    esm_class=ESM_CLASS_RECEIPT,
                    data_coding=0,
                    short_message=text,
                    **tlvs,
                )
            if sequence is None:
                if attempt == 0:
                    with self.lock:
                        self.stored_receipts.append(receipt)
                        bound_meanwhile = any(s.receives for s in self._live.values())
                    if bound_meanwhile:
                        # A session bound, and flushed the store, after the route above.
                        self._flush_stored()
                    return False
                return True  # it went out once; a redelivery that cannot go is dropped
            assert session is not None
            with self.lock:
                self.deliveries.append(
                    Delivered(receipt.message_id, receipt.stat, session.number, sequence, text)
                )
        return True

    def _emit(self, receipts: list[Receipt]) -> int:
        return sum(self._write_receipt(receipt) for receipt in receipts)

    def _schedule(self, receipts: list[Receipt], session: _Session) -> None:
        with self.lock:
            before, delay = self.receipt_before_resp, self.receipt_delay
        if before:
            session.before.append(lambda: self._emit(receipts))
        elif delay > 0:
            timer = threading.Timer(delay, self._emit, args=(receipts,))
            timer.daemon = True
            timer.start()
        else:
            session.after.append(lambda: self._emit(receipts))

    def _ordered(self, batch: list[tuple[int, Receipt]]) -> list[Receipt]:
        """Receipts in ``receipt_order`` (lock held); ``batch`` is (sequence, receipt)."""
        ordered = [receipt for _, receipt in sorted(batch, key=lambda item: item[0])]
        if self.receipt_order == "reversed":
            ordered.reverse()
        elif self.receipt_order == "shuffled":
            self.random.shuffle(ordered)
        return ordered

    def _receipts_for(self, part: Part, session: _Session) -> None:
        """Hold, schedule or group the receipt a just-accepted ``part`` asked for."""
        with self.lock:
            stat = self._stat_for(part)
            asked = part.registered_delivery & 0x03
            wanted = asked == 1 or (asked == 2 and stat != "DELIVRD")
            receipt = self._receipt(part, stat)
            udh = part.udh
            if udh is not None and self.receipt_order != "in_order":
                key = (part.destination, udh[0], udh[1])
                group = self._groups.setdefault(key, {"seqs": set(), "receipts": []})
                group["seqs"].add(udh[2])
                if wanted:
                    group["receipts"].append((udh[2], receipt))
                if len(group["seqs"]) < udh[1]:
                    return  # wait for the other parts
                del self._groups[key]
                batch = self._ordered(group["receipts"])
            else:
                batch = [receipt] if wanted else []
            if not batch:
                return
            if not self.auto_receipts:
                self.held_receipts.extend(batch)
                return
        self._schedule(batch, session)

    def send_receipts(self) -> int:
        """Send every held receipt (and those waiting for the rest of their message) now.

        In submission order, reversed or shuffled as ``receipt_order`` says. Returns how many
        went to a session; the others are stored for the next receiving bind.
        """
        with self.lock:
            waiting = [
                (receipt.submitted_at, receipt)
                for group in self._groups.values()
                for _, receipt in group["receipts"]
            ]
            self._groups.clear()
            held = [(r.submitted_at, r) for r in self.held_receipts] + waiting
            self.held_receipts = []
            ordered = [receipt for _, receipt in sorted(held, key=lambda item: item[0])]
            if self.receipt_order == "reversed":
                ordered.reverse()
            elif self.receipt_order == "shuffled":
                self.random.shuffle(ordered)
        return self._emit(ordered)

    def send_receipt(self, message_id: str, stat: str | None = None) -> bool:
        """Send a receipt for the accepted part ``message_id`` now (``stat`` or its own).

        Whether it asked for one or not; a receipt held for it is dropped. True when it went
        to a session, False when it was stored for the next receiving bind.
        """
        part = self.part(message_id)
        with self.lock:
            receipt = self._receipt(part, stat or self._stat_for(part))
            self.held_receipts = [r for r in self.held_receipts if r.message_id != message_id]
        return self._write_receipt(receipt)

    def _flush_stored(self) -> None:
        with self.lock:
            stored, self.stored_receipts = self.stored_receipts, []
        self._emit(stored)

    # --- the SMSC's own enquire_link ------------------------------------------------------------
    def send_enquire_link(self) -> int:
        """Send an enquire_link on every bound session now; how many went out."""
        with self.lock:
            sessions = [s for s in self._live.values() if s.alive and s.bind]
        sent = sum(session.request("enquire_link") is not None for session in sessions)
        with self.lock:
            self.enquire_links_sent += sent
        return sent

    def _enquire_loop(self, session: _Session) -> None:
        while True:
            with self.lock:
                interval = self.enquire_link_interval
            if not interval or session.closed.wait(interval) or not session.alive:
                return
            if session.bind and session.request("enquire_link") is not None:
                with self.lock:
                    self.enquire_links_sent += 1

    # --- the SMSC's other requests -------------------------------------------------------------
    def _request(self, session: _Session, kind: str, sequence: int | None = None) -> bool:
        sent = session.send_request(kind, sequence)
        if sent is not None:
            with self.lock:
                self.requests_sent.append((kind, sent))
        return sent is not None

    def send_request(self, kind: str) -> int:
        """Write one of ``REQUEST_KINDS`` on every bound session now; how many went out."""
        with self.lock:
            sessions = [s for s in self._live.values() if s.alive and s.bind]
        return sum(self._request(session, kind) for session in sessions)

    # --- answering --------------------------------------------------------------------------
    def _respond(self, request: Any, command: str, status: int = 0, **fields: Any) -> bytes:
        response = smpp.make_pdu(command, client=_Sequence(), status=status, **fields)
        response.sequence = request.sequence
        return response.generate()

    def _new_id(self) -> str:
        if self.id_style == "uuid":
            return str(uuid.uuid4())
        self._next_id += 1
        if self.id_style == "hex":
            return f"{HEX_ID_BASE + self._next_id:08X}"
        return f"smsc-{self._next_id}"

    def handle_pdu(self, pdu: Any, session: _Session) -> bytes | None:
        if pdu.command in BINDS:
            system_id = pdu.system_id.decode()
            ok = system_id == self.system_id and pdu.password.decode() == self.password
            with self.lock:
                self.binds.append((system_id, ok))
                self.bind_counts[pdu.command] += 1
                interval = self.enquire_link_interval
            if ok:
                command = pdu.command
                # Bound once its bind_resp is out: no deliver_sm may come before it.
                session.after.append(lambda: setattr(session, "bind", command))
                if command in RECEIVING_BINDS:
                    session.after.append(self._flush_stored)
                if interval:
                    threading.Thread(
                        target=self._enquire_loop, args=(session,), daemon=True
                    ).start()
            status = c.SMPP_ESME_ROK if ok else c.SMPP_ESME_RINVPASWD
            return self._respond(pdu, pdu.command + "_resp", status, system_id="fakesmsc")
        if pdu.command == "enquire_link":
            with self.lock:
                self.enquire_links += 1
            return self._respond(pdu, "enquire_link_resp")
        if pdu.command == "enquire_link_resp":
            with self.lock:
                self.enquire_link_resps += 1
            return None
        if pdu.command == "deliver_sm_resp":
            message_id = session.outstanding.pop(pdu.sequence, "")
            with self.lock:
                self.acks.append((message_id, pdu.status))
            return None
        if pdu.command in ("generic_nack", "data_sm_resp"):
            with self.lock:
                self.answers.append((pdu.command, pdu.status, pdu.sequence))
            return None
        if pdu.command == "unbind":
            with self.lock:
                self.unbinds += 1
            session.bind = None
            return self._respond(pdu, "unbind_resp")
        if pdu.command == "submit_sm":
            if session.bind not in ("bind_transmitter", "bind_transceiver"):
                return self._respond(pdu, "submit_sm_resp", c.SMPP_ESME_RINVBNDSTS)
            destination = pdu.destination_addr.decode()
            with self.lock:
                interject, self.interject = self.interject, []
            for kind in interject:
                session.before.append(
                    lambda kind=kind: self._request(session, kind, sequence=pdu.sequence)
                )
            with self.lock:
                if self.queue:
                    behaviour = self.queue.popleft()
                else:
                    behaviour = self.per_destination.get(destination, self.mode)
            if behaviour == "silent":
                return None
            if behaviour in STATUSES:
                return self._respond(pdu, "submit_sm_resp", STATUSES[behaviour])
            if behaviour not in ACCEPTING:
                raise ValueError(f"unknown submit_sm behaviour {behaviour!r}")
            with self.lock:
                part = Part(
                    destination=destination,
                    source=pdu.source_addr.decode(),
                    data_coding=pdu.data_coding or 0,
                    esm_class=pdu.esm_class or 0,
                    short_message=pdu.short_message or b"",
                    registered_delivery=pdu.registered_delivery or 0,
                    message_id=self._new_id(),
                    connection=session.number,
                    sequence=pdu.sequence,
                )
                self.parts.append(part)
            self._receipts_for(part, session)
            if behaviour == "accept_then_close":
                session.close_after = True
                return None
            if behaviour == "accept_then_silent":
                return None
            return self._respond(pdu, "submit_sm_resp", message_id=part.message_id)
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
                self.request.settimeout(30)
                with fake.lock:
                    fake._connection_numbers += 1
                    session = _Session(self.request, fake._connection_numbers)
                    fake._live[session.number] = session
                    fake.connections += 1
                    fake.open_connections += 1
                try:
                    while session.alive:
                        header = self._read(4)
                        (length,) = struct.unpack(">L", header)
                        pdu = smpp.parse_pdu(
                            header + self._read(length - 4),
                            client=_Sequence(),
                            allow_unknown_opt_params=True,
                        )
                        answer = fake.handle_pdu(pdu, session)
                        before, session.before = session.before, []
                        after, session.after = session.after, []
                        for action in before:
                            action()
                        if answer is not None:
                            session.write(answer)
                        if session.close_after:
                            session.close()
                        for action in after:
                            action()
                    # Read on after unbind: the count of open connections drops only when
                    # the client closes its socket.
                except OSError:  # the client closed, reset or went quiet
                    pass
                finally:
                    session.alive = False
                    session.closed.set()
                    with fake.lock:
                        fake._live.pop(session.number, None)
                        fake.open_connections -= 1

        return Handler

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def start(self) -> FakeSmpp:
        self.serve(socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler()))
        return self

    def close_connections(self, wait: float = 5.0) -> None:
        """Close every open connection, as an SMSC restarting does, and wait (at most
        ``wait`` seconds) until each is gone: a session a client has left but this server has
        not yet noticed is no longer bound, and no receipt can go to it."""
        with self.lock:
            sessions = list(self._live.values())
        for session in sessions:
            session.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self.lock:
                if not self._live:
                    return
            time.sleep(0.01)

    def stop(self) -> None:
        """Stop listening and close every open connection, as an SMSC going down does."""
        self.close_connections(wait=0)
        super().stop()
