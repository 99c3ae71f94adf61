"""The fake SMSC behaves as a real client sees a real one.

Each test talks to the fake over its socket with an ordinary client, smpplib's ``Client``.
Waits are bounded by client timeouts or ``wait_for``; nothing asserts how long anything took.
"""

from __future__ import annotations

import random
import re
import socket
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import smpplib.client
import smpplib.consts as c
import smpplib.exceptions
from smpplib import smpp
from smpplib.gsm import make_parts

from notifications.tests.fake_clients import NUMBER
from notifications.tests.fakes.smpp import ESM_CLASS_RECEIPT, UNKNOWN_COMMAND_ID, FakeSmpp
from notifications.tests.fixtures import wait_for


@contextmanager
def smsc_client(fake: FakeSmpp, bind: str = "bind_transceiver") -> Iterator[smpplib.client.Client]:
    client = smpplib.client.Client("127.0.0.1", fake.port, timeout=5, allow_unknown_opt_params=True)
    client.connect()
    getattr(client, bind)(system_id=fake.system_id, password=fake.password)
    try:
        yield client
    finally:
        client.state = c.SMPP_CLIENT_STATE_OPEN  # no warning for closing while bound
        client.disconnect()


def submit(client: smpplib.client.Client, text: str = "Hello", registered_delivery: int = 1):
    """submit_sm each part of ``text`` to NUMBER, asking for a receipt unless told not to."""
    parts, encoding, esm_class = make_parts(text)
    for part in parts:
        client.send_message(
            source_addr="NotifySvc",
            destination_addr=NUMBER,
            data_coding=encoding,
            esm_class=esm_class,
            short_message=part,
            registered_delivery=registered_delivery,
        )


def read(client: smpplib.client.Client, count: int) -> list[Any]:
    """The next ``count`` PDUs (each read bounded by the client's timeout)."""
    return [client.read_pdu() for _ in range(count)]


RECEIPT_FIELD = re.compile(
    r"(id|sub|dlvrd|submit date|done date|stat|err|text):(.*?)"
    r"(?= (?:sub|dlvrd|submit date|done date|stat|err|text):|$)"
)


def receipt_fields(pdu: Any) -> dict[str, str]:
    """``id:… sub:… stat:…`` of a receipt's short_message as a dict."""
    return dict(RECEIPT_FIELD.findall(pdu.short_message.decode()))


def respond(client: smpplib.client.Client, request: Any, status: int = c.SMPP_ESME_ROK) -> None:
    """Answer the SMSC's deliver_sm or enquire_link ``request``."""
    response = smpp.make_pdu(request.command + "_resp", client=client, status=status)
    response.sequence = request.sequence
    client.send_pdu(response)


def enquire(client: smpplib.client.Client) -> None:
    client.send_pdu(smpp.make_pdu("enquire_link", client=client))


def test_transceiver_gets_a_delivery_receipt(smpp):
    with smsc_client(smpp) as client:
        submit(client, "Hello there")
        resp, receipt = read(client, 2)
        assert (resp.command, resp.status) == ("submit_sm_resp", 0)
        message_id = resp.message_id.decode()
        assert receipt.command == "deliver_sm"
        assert receipt.esm_class == ESM_CLASS_RECEIPT
        assert receipt.receipted_message_id.decode() == message_id
        assert receipt.message_state == c.SMPP_MESSAGE_STATE_DELIVERED
        assert (receipt.source_addr.decode(), receipt.destination_addr.decode()) == (
            NUMBER,
            "NotifySvc",
        )
        fields = receipt_fields(receipt)
        assert fields["id"] == message_id
        assert (fields["sub"], fields["dlvrd"], fields["stat"], fields["err"]) == (
            "001",
            "001",
            "DELIVRD",
            "000",
        )
        assert len(fields["submit date"]) == len(fields["done date"]) == 10
        assert fields["text"] == "Hello there"
        respond(client, receipt)
        wait_for(lambda: smpp.acks == [(message_id, 0)], 10, "the deliver_sm_resp")
    [part] = smpp.parts
    assert (part.message_id, part.registered_delivery) == (message_id, 1)
    assert smpp.bind_counts == {"bind_transceiver": 1}


def test_uuid_ids_minimal_receipts_without_tlvs(smpp):
    smpp.id_style = "uuid"
    smpp.receipt_style = "minimal"
    smpp.receipt_tlvs = False
    smpp.receipt_stat = {NUMBER: "UNDELIV"}
    with smsc_client(smpp) as client:
        submit(client)
        resp, receipt = read(client, 2)
        message_id = resp.message_id.decode()
        assert len(message_id) == 36 and message_id.count("-") == 4
        assert receipt.receipted_message_id is None and receipt.message_state is None
        fields = receipt_fields(receipt)
        assert set(fields) == {"id", "submit date", "done date", "stat", "err"}
        assert (fields["id"], fields["stat"]) == (message_id, "UNDELIV")


def test_no_receipt_unless_asked_for(smpp):
    with smsc_client(smpp) as client:
        submit(client, registered_delivery=2)  # on failure only, and it is delivered
        submit(client, registered_delivery=0)
        assert [p.command for p in read(client, 2)] == ["submit_sm_resp"] * 2
        enquire(client)
        assert read(client, 1)[0].command == "enquire_link_resp"  # nothing came in between
    assert smpp.deliveries == []


def test_concatenated_receipts_reversed_with_part_two_undelivered(smpp):
    smpp.receipt_order = "reversed"
    smpp.receipt_stat_part = {2: "UNDELIV"}
    with smsc_client(smpp) as client:
        submit(client, "Привет! " * 20)  # 160 UCS2 characters: three parts
        pdus = read(client, 6)
    assert [p.command for p in pdus] == ["submit_sm_resp"] * 3 + ["deliver_sm"] * 3
    ids = [p.message_id.decode() for p in pdus[:3]]
    receipts = [receipt_fields(p) for p in pdus[3:]]
    assert [r["id"] for r in receipts] == ids[::-1]
    assert [r["stat"] for r in receipts] == ["DELIVRD", "UNDELIV", "DELIVRD"]
    assert pdus[4].message_state == c.SMPP_MESSAGE_STATE_UNDELIVERABLE


def test_shuffled_receipts_follow_the_seed(smpp):
    smpp.receipt_order = "shuffled"
    smpp.random = random.Random(7)
    with smsc_client(smpp) as client:
        submit(client, "x" * 400)  # GSM 7-bit, three parts
        pdus = read(client, 6)
    ids = [p.message_id.decode() for p in pdus[:3]]
    random.Random(7).shuffle(ids)
    assert [receipt_fields(p)["id"] for p in pdus[3:]] == ids


def test_receipt_before_resp_and_redelivered(smpp):
    smpp.receipt_before_resp = True
    smpp.receipt_redeliver = 2
    with smsc_client(smpp) as client:
        submit(client)
        pdus = read(client, 4)
    assert [p.command for p in pdus] == ["deliver_sm"] * 3 + ["submit_sm_resp"]
    message_id = pdus[-1].message_id.decode()
    assert {receipt_fields(p)["id"] for p in pdus[:3]} == {message_id}
    assert len(smpp.deliveries) == 3


def test_receipt_delay(smpp):
    smpp.receipt_delay = 0.2
    with smsc_client(smpp) as client:
        submit(client)
        resp, receipt = read(client, 2)
    assert receipt_fields(receipt)["id"] == resp.message_id.decode()


def test_manual_receipts(smpp):
    smpp.auto_receipts = False
    with smsc_client(smpp) as client:
        submit(client, "one")
        submit(client, "two")
        first, second = (p.message_id.decode() for p in read(client, 2))
        assert [r.message_id for r in smpp.held_receipts] == [first, second]
        enquire(client)
        assert read(client, 1)[0].command == "enquire_link_resp"  # no receipt meanwhile

        assert smpp.send_receipt(second, "EXPIRED") is True
        [receipt] = read(client, 1)
        assert (receipt_fields(receipt)["id"], receipt_fields(receipt)["stat"]) == (
            second,
            "EXPIRED",
        )
        assert receipt.message_state == c.SMPP_MESSAGE_STATE_EXPIRED

        assert smpp.send_receipts() == 1  # only the first is still held
        [receipt] = read(client, 1)
        assert receipt_fields(receipt)["id"] == first


def test_receipts_wait_for_a_receiving_bind(smpp):
    with smsc_client(smpp, "bind_transmitter") as transmitter:
        submit(transmitter)
        message_id = read(transmitter, 1)[0].message_id.decode()
    wait_for(lambda: len(smpp.stored_receipts) == 1, 10, "the stored receipt")
    with smsc_client(smpp) as client:
        [receipt] = read(client, 1)
    assert receipt_fields(receipt)["id"] == message_id
    assert smpp.stored_receipts == []
    assert smpp.bind_counts == {"bind_transmitter": 1, "bind_transceiver": 1}


def test_accept_then_close_and_the_receipt_comes_on_the_next_bind(smpp):
    smpp.queue.extend(["accept_then_close"])
    with smsc_client(smpp) as client:
        submit(client)
        with pytest.raises(smpplib.exceptions.ConnectionError):
            client.read_pdu()
    [part] = smpp.parts  # accepted, though the client never heard
    with smsc_client(smpp) as client:
        [receipt] = read(client, 1)
    assert receipt_fields(receipt)["id"] == part.message_id


def test_queue_scripts_each_part_then_accept_then_silent(smpp):
    smpp.queue.extend(["ok", "syserr", "accept_then_silent"])
    with smsc_client(smpp) as client:
        for text in ("one", "two", "three"):
            submit(client, text, registered_delivery=0)
        first, second = read(client, 2)
        assert (first.status, second.status) == (0, c.SMPP_ESME_RSYSERR)
        client._socket.settimeout(0.5)
        with pytest.raises(socket.timeout):
            client.read_pdu()  # the third is never answered
    assert [p.text for p in smpp.parts] == ["one", "three"]  # but it was accepted
    assert smpp.queue == type(smpp.queue)()


def test_messages_joins_parts_once_despite_a_resent_part(smpp):
    with smsc_client(smpp) as client:
        parts, encoding, esm_class = make_parts("y" * 300)
        for part in [*parts, parts[-1]]:  # the last part resent
            client.send_message(
                source_addr="NotifySvc",
                destination_addr=NUMBER,
                data_coding=encoding,
                esm_class=esm_class,
                short_message=part,
            )
        read(client, len(parts) + 1)
    assert smpp.messages() == [(NUMBER, "y" * 300)]
    assert len(smpp.parts) == len(parts) + 1
    assert smpp.parts[-1].short_message == smpp.parts[-2].short_message
    assert smpp.parts[-1].message_id != smpp.parts[-2].message_id


def test_enquire_links_both_ways(smpp):
    with smsc_client(smpp) as client:
        enquire(client)
        assert read(client, 1)[0].command == "enquire_link_resp"
        assert smpp.send_enquire_link() == 1
        [enquiry] = read(client, 1)
        assert enquiry.command == "enquire_link"
        respond(client, enquiry)
        wait_for(lambda: smpp.enquire_link_resps == 1, 10, "the enquire_link_resp")
    assert (smpp.enquire_links, smpp.enquire_links_sent) == (1, 1)


def test_smsc_sends_enquire_link_on_its_own(smpp):
    smpp.enquire_link_interval = 0.2
    with smsc_client(smpp) as client:
        assert read(client, 1)[0].command == "enquire_link"
    smpp.enquire_link_interval = None


def test_transmitter_bind_and_concatenated_messages_still_work(smpp):
    with smsc_client(smpp, "bind_transmitter") as client:
        text = "Привет, мир! " * 15
        submit(client, text, registered_delivery=0)
        assert all(p.status == 0 for p in read(client, 3))
        client.unbind()
    assert smpp.messages() == [(NUMBER, text)]
    assert smpp.binds == [("smppuser", True)] and smpp.unbinds == 1
    wait_for(lambda: smpp.open_connections == 0, 10, "the connection to close")


def read_raw(client: smpplib.client.Client) -> tuple[int, int, int, bytes]:
    """The next PDU off the socket as (command_id, sequence, length, raw): smpplib's reader
    refuses a command id it does not know."""
    sock = client._socket

    def exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            assert chunk, "the SMSC closed the connection"
            data += chunk
        return data

    header = exactly(16)
    length, command_id, _, sequence = struct.unpack(">LLLL", header)
    return command_id, sequence, length, header + exactly(length - 16)


def test_hex_ids_and_receipts_that_write_them_in_decimal_nul_terminated(smpp):
    smpp.id_style = "hex"
    smpp.receipt_id_style = "decimal"
    smpp.receipt_text_suffix = "\x00"
    with smsc_client(smpp) as client:
        submit(client, "one")
        submit(client, "two")
        pdus = read(client, 4)
    resps = [p for p in pdus if p.command == "submit_sm_resp"]
    receipts = [p for p in pdus if p.command == "deliver_sm"]
    assert [p.message_id.decode() for p in resps] == ["00001A2B", "00001A2C"]
    assert [p.receipted_message_id.decode() for p in receipts] == ["00001A2B", "00001A2C"]
    assert [receipt_fields(p)["id"] for p in receipts] == ["0000006699", "0000006700"]
    assert receipts[0].short_message.endswith(b"err:000 text:one\x00")


def test_interjected_requests_come_ahead_of_the_submit_sm_resp_with_its_sequence(smpp):
    smpp.interject = ["alert_notification", "data_sm", "unknown"]
    with smsc_client(smpp) as client:
        submit(client, registered_delivery=0)
        pdus = [read_raw(client) for _ in range(4)]
        assert [command_id for command_id, *_ in pdus] == [
            0x00000102,  # alert_notification
            0x00000103,  # data_sm
            UNKNOWN_COMMAND_ID,
            0x80000004,  # submit_sm_resp
        ]
        [sequence] = {sequence for _, sequence, _, _ in pdus}
        alert, data_sm = (smpp_parse(raw, client) for _, _, _, raw in pdus[:2])
        assert (alert.source_addr, alert.esme_addr) == (NUMBER.encode(), b"NotifySvc")
        assert data_sm.message_payload == b"STOP"
        assert pdus[2][2] == 20  # the unknown command has a body of 4 bytes
        respond(client, data_sm)
        nack(client, sequence)
        wait_for(lambda: len(smpp.answers) == 2, 10, "both answers")

        submit(client, "again", registered_delivery=0)  # one-shot: nothing ahead of it now
        assert read_raw(client)[0] == 0x80000004
    assert smpp.requests_sent == [
        ("alert_notification", sequence),
        ("data_sm", sequence),
        ("unknown", sequence),
    ]
    assert smpp.parts[0].sequence == sequence
    assert smpp.answers == [
        ("data_sm_resp", c.SMPP_ESME_ROK, sequence),
        ("generic_nack", c.SMPP_ESME_RINVCMDID, sequence),
    ]


def test_send_request_writes_a_malformed_or_unknown_pdu_now(smpp):
    with smsc_client(smpp) as client:
        enquire(client)  # answered: the SMSC counts the session bound
        assert read(client, 1)[0].command == "enquire_link_resp"
        assert smpp.send_request("malformed") == 1
        command_id, first, length, raw = read_raw(client)
        assert (command_id, length) == (0x00000015, 17)  # enquire_link with a cut-short TLV
        with pytest.raises(struct.error):
            smpp_parse(raw, client)
        assert smpp.send_request("unknown") == 1
        command_id, second, _, _ = read_raw(client)
        assert (command_id, second) == (UNKNOWN_COMMAND_ID, first + 1)
    assert smpp.requests_sent == [("malformed", first), ("unknown", second)]


def smpp_parse(raw: bytes, client: smpplib.client.Client) -> Any:
    return smpp.parse_pdu(raw, client=client, allow_unknown_opt_params=True)


def nack(client: smpplib.client.Client, sequence: int) -> None:
    """generic_nack (ESME_RINVCMDID) the SMSC's request ``sequence``."""
    response = smpp.make_pdu("generic_nack", client=client, status=c.SMPP_ESME_RINVCMDID)
    response.sequence = sequence
    client.send_pdu(response)
