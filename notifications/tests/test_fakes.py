"""The fake providers behave as a real client sees the real ones.

Each test talks to a fake over its socket with an ordinary client: ``requests`` for the
Telegram Bot API and the SMS Aero gate, smpplib's ``Client`` for the SMSC. Waits are bounded
by client timeouts or ``wait_for``; nothing asserts how long anything took.
"""

from __future__ import annotations

import json
import random
import re
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests
import smpplib.client
import smpplib.consts as c
import smpplib.exceptions
from smpplib import smpp
from smpplib.gsm import make_parts

from notifications.tests.fixtures import wait_for
from notifications.tests.fakes.smpp import ESM_CLASS_RECEIPT, UNKNOWN_COMMAND_ID, FakeSmpp
from notifications.tests.fakes.smsaero import FakeSmsAero
from notifications.tests.fakes.telegram import FakeTelegram

NUMBER = "79161234567"


def plain_session() -> requests.Session:
    """A plain client: no proxies or environment settings between it and 127.0.0.1."""
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with plain_session() as session:
        yield session


class Receiver:
    """A small HTTP server on 127.0.0.1 recording the POSTs it gets (a webhook, a callback)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.received: list[tuple[dict[str, str], bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.received.append((dict(self.headers.items()), body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def json_bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


# --- Telegram ----------------------------------------------------------------------------------
def bot(
    session: requests.Session,
    telegram: FakeTelegram,
    method: str,
    client_timeout: float = 10,
    **fields,
) -> tuple[int, dict[str, Any]]:
    response = session.post(
        f"{telegram.url}/bot{telegram.token}/{method}", json=fields, timeout=client_timeout
    )
    return response.status_code, response.json()


def test_get_updates_confirms_with_offset(http, telegram):
    ids = [telegram.push_update(telegram.message_update(42, f"hi {i}")) for i in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3

    code, answer = bot(http, telegram, "getUpdates")
    assert code == 200
    assert [u["update_id"] for u in answer["result"]] == ids
    assert answer["result"][0]["message"]["text"] == "hi 0"

    code, answer = bot(http, telegram, "getUpdates", offset=ids[1], limit=1)
    assert [u["update_id"] for u in answer["result"]] == [ids[1]]  # ids[0] confirmed
    code, answer = bot(http, telegram, "getUpdates", offset=ids[2] + 1)
    assert answer["result"] == []  # all confirmed, for good
    assert telegram.pending_updates() == []
    assert telegram.push_update(telegram.message_update(42, "later")) > ids[2]


def test_get_updates_negative_offset_keeps_the_last_ones(http, telegram):
    ids = [telegram.push_update(telegram.message_update(42, str(i))) for i in range(4)]
    _, answer = bot(http, telegram, "getUpdates", offset=-2)
    assert [u["update_id"] for u in answer["result"]] == ids[2:]


def test_long_poll_answers_when_an_update_arrives(http, telegram):
    answers: list[dict] = []
    poller = threading.Thread(
        target=lambda: answers.append(
            bot(http, telegram, "getUpdates", client_timeout=30, timeout=20)[1]
        )
    )
    poller.start()
    wait_for(lambda: telegram.polling == 1, 10, "the long poll")
    update_id = telegram.push_update(telegram.message_update(42, "/start"))
    poller.join(25)
    [answer] = answers
    [update] = answer["result"]
    assert update["update_id"] == update_id
    assert update["message"]["entities"] == [{"offset": 0, "length": 6, "type": "bot_command"}]


def test_long_poll_without_updates_answers_empty(http, telegram):
    code, answer = bot(http, telegram, "getUpdates", client_timeout=10, timeout=1)
    assert (code, answer) == (200, {"ok": True, "result": []})


def test_a_newer_get_updates_ends_a_waiting_one_with_409(http, telegram):
    answers: list[tuple[int, dict]] = []
    other = plain_session()  # another bot instance
    poller = threading.Thread(
        target=lambda: answers.append(
            bot(other, telegram, "getUpdates", client_timeout=30, timeout=20)
        )
    )
    poller.start()
    wait_for(lambda: telegram.polling == 1, 10, "the long poll")
    assert bot(http, telegram, "getUpdates")[0] == 200
    poller.join(25)
    other.close()
    [(code, answer)] = answers
    assert code == 409
    assert answer["description"].startswith("Conflict: terminated by other getUpdates request")


def test_allowed_updates_is_remembered_and_filters_new_updates(http, telegram):
    telegram.push_update(telegram.my_chat_member_update(42, "kicked"))  # allowed by default
    bot(http, telegram, "getUpdates", allowed_updates=["message"])
    telegram.push_update(telegram.my_chat_member_update(42, "member"))  # not created
    kept = telegram.push_update(telegram.message_update(42, "hello"))
    _, answer = bot(http, telegram, "getUpdates")
    kinds = [next(k for k in u if k != "update_id") for u in answer["result"]]
    assert kinds == ["my_chat_member", "message"]
    assert answer["result"][-1]["update_id"] == kept


def test_webhook_makes_get_updates_answer_409(http, telegram, receiver):
    telegram.push_update(telegram.message_update(42, "pending"))
    code, answer = bot(
        http,
        telegram,
        "setWebhook",
        url=receiver.url,
        secret_token="s3cret_-token",
        allowed_updates=["message", "my_chat_member"],
    )
    assert (code, answer["result"], answer["description"]) == (200, True, "Webhook was set")

    code, answer = bot(http, telegram, "getUpdates")
    assert code == 409
    assert answer == {
        "ok": False,
        "error_code": 409,
        "description": "Conflict: can't use getUpdates method while webhook is active; "
        "use deleteWebhook to delete the webhook first",
    }
    _, info = bot(http, telegram, "getWebhookInfo")
    assert info["result"]["url"] == receiver.url
    assert info["result"]["has_custom_certificate"] is False
    assert info["result"]["pending_update_count"] == 1
    assert info["result"]["allowed_updates"] == ["message", "my_chat_member"]

    assert bot(http, telegram, "deleteWebhook")[1]["description"] == "Webhook was deleted"
    _, answer = bot(http, telegram, "getUpdates")
    assert [u["message"]["text"] for u in answer["result"]] == ["pending"]  # kept
    bot(http, telegram, "setWebhook", url=receiver.url, drop_pending_updates=True)
    assert bot(http, telegram, "getWebhookInfo")[1]["result"]["pending_update_count"] == 0
    assert [r["method"] for r in telegram.requests].count("getUpdates") == 2


def test_webhook_gets_pending_updates_with_the_secret_header(http, telegram, receiver):
    bot(http, telegram, "setWebhook", url=receiver.url, secret_token="s3cret")
    first = telegram.push_update(telegram.message_update(42, "one", username="ann"))
    second = telegram.push_update(telegram.my_chat_member_update(42, "kicked"))

    assert telegram.post_pending_to_webhook() == [200, 200]
    assert [u["update_id"] for u in receiver.json_bodies()] == [first, second]
    assert {h["X-Telegram-Bot-Api-Secret-Token"] for h, _ in receiver.received} == {"s3cret"}
    assert receiver.json_bodies()[0]["message"]["from"]["username"] == "ann"
    assert receiver.json_bodies()[1]["my_chat_member"]["new_chat_member"]["status"] == "kicked"
    assert telegram.pending_updates() == []  # answered 2xx: confirmed

    receiver.status = 500
    telegram.push_update(telegram.message_update(42, "two"))
    assert telegram.post_pending_to_webhook() == [500]
    assert len(telegram.pending_updates()) == 1  # kept for a retry
    info = bot(http, telegram, "getWebhookInfo")[1]["result"]
    assert "500" in info["last_error_message"]

    receiver.status = 200
    update = {"update_id": 1, **telegram.message_update(42, "forged")}
    assert telegram.post_update_to_webhook(update, secret="wrong") == 200
    assert telegram.post_update_to_webhook(update, secret=None) == 200
    assert receiver.received[-2][0]["X-Telegram-Bot-Api-Secret-Token"] == "wrong"
    assert "X-Telegram-Bot-Api-Secret-Token" not in receiver.received[-1][0]


def test_webhook_without_secret_sends_no_header(http, telegram, receiver):
    bot(http, telegram, "setWebhook", url=receiver.url)
    telegram.push_update(telegram.message_update(42, "one"))
    assert telegram.post_pending_to_webhook() == [200]
    assert "X-Telegram-Bot-Api-Secret-Token" not in receiver.received[0][0]


def test_update_builders_look_like_telegram(telegram):
    update = telegram.message_update(42, "hi", language_code="ru", first_name="Иван")
    message = update["message"]
    assert message["chat"] == {"id": 42, "first_name": "Иван", "type": "private"}
    assert message["from"] == {
        "id": 42,
        "is_bot": False,
        "first_name": "Иван",
        "language_code": "ru",
    }
    assert isinstance(message["date"], int) and isinstance(message["message_id"], int)
    member = telegram.my_chat_member_update(42, "member")["my_chat_member"]
    assert (member["old_chat_member"]["status"], member["new_chat_member"]["status"]) == (
        "kicked",
        "member",
    )
    assert member["new_chat_member"]["user"]["is_bot"] is True


def test_updates_can_be_pushed_over_the_control_api(http, telegram):
    answer = http.post(
        f"{telegram.url}/_fake/updates", json={"chat_id": 7, "text": "x"}, timeout=10
    )
    update_id = answer.json()["update_id"]
    pending = http.get(f"{telegram.url}/_fake/updates", timeout=10).json()["updates"]
    assert [(u["update_id"], u["message"]["text"]) for u in pending] == [(update_id, "x")]


def test_send_message_keeps_parse_mode_and_reply_markup(http, telegram):
    markup = {"inline_keyboard": [[{"text": "Open", "url": "https://example.com"}]]}
    code, answer = bot(
        http,
        telegram,
        "sendMessage",
        chat_id=42,
        text="<b>Hi</b>",
        parse_mode="HTML",
        reply_markup=markup,
    )
    assert code == 200 and answer["result"]["text"] == "Hi"
    # A form-encoded call carries reply_markup JSON-serialised; it is kept decoded.
    http.post(
        f"{telegram.url}/bot{telegram.token}/sendMessage",
        data={"chat_id": 42, "text": "plain", "reply_markup": json.dumps(markup)},
        timeout=10,
    )
    first, second = telegram.messages
    assert (first["parse_mode"], first["reply_markup"]) == ("HTML", markup)
    assert second["reply_markup"] == markup and "parse_mode" not in second


@pytest.mark.parametrize(
    ("text", "parse_mode"),
    [("", None), ("  \n ", None), ("<b> </b>", "HTML"), ("*  *", "MarkdownV2")],
)
def test_send_message_refuses_empty_text(http, telegram, text, parse_mode):
    fields = {"chat_id": 42, "text": text}
    if parse_mode:
        fields["parse_mode"] = parse_mode
    code, answer = bot(http, telegram, "sendMessage", **fields)
    assert (code, answer["description"]) == (400, "Bad Request: message text is empty")
    assert telegram.messages == []


def test_accept_then_hang_delivers_but_times_out(http, telegram):
    telegram.queue.extend(["accept_then_hang"])
    telegram.hang = 3
    with pytest.raises(requests.ReadTimeout):
        bot(http, telegram, "sendMessage", client_timeout=0.5, chat_id=42, text="hello")
    assert telegram.delivered_to(42) == ["hello"]  # delivered all the same


def test_accept_then_drop_delivers_but_never_answers(http, telegram):
    telegram.per_chat["42"] = "accept_then_drop"
    with pytest.raises(requests.ConnectionError):
        bot(http, telegram, "sendMessage", chat_id=42, text="hello")
    assert telegram.delivered_to(42) == ["hello"]
    assert bot(http, telegram, "sendMessage", chat_id=43, text="next")[0] == 200


# --- SMPP --------------------------------------------------------------------------------------
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


# --- SMS Aero ----------------------------------------------------------------------------------
def aero(
    session: requests.Session,
    fake: FakeSmsAero,
    endpoint: str,
    client_timeout: float = 10,
    **fields,
) -> tuple[int, dict[str, Any]]:
    response = session.post(
        fake.url + endpoint,
        json=fields,
        auth=(fake.email, fake.api_key),
        timeout=client_timeout,
        verify=str(fake.ca_bundle) if fake.tls else True,
    )
    return response.status_code, response.json()


def test_sms_status_follows_set_status_and_advance(http, smsaero_http):
    fake = smsaero_http
    fake.final_status = {"79160000002": 2}
    _, sent = aero(http, fake, "sms/send", number=NUMBER, text="one", sign="NotifySvc")
    _, other = aero(http, fake, "sms/send", number="79160000002", text="two", sign="NotifySvc")
    first = sent["data"]["id"]

    code, answer = aero(http, fake, "sms/status", id=first)
    assert code == 200
    assert {k: answer["data"][k] for k in ("id", "number", "text", "status", "extendStatus")} == {
        "id": first,
        "number": NUMBER,
        "text": "one",
        "status": 0,
        "extendStatus": "queue",
    }
    fake.set_status(first, 3)
    assert aero(http, fake, "sms/status", id=first)[1]["data"]["status"] == 3
    assert fake.advance() == [first, other["data"]["id"]]
    answer = http.get(
        f"{fake.url}sms/status?id={other['data']['id']}",
        auth=(fake.email, fake.api_key),
        timeout=10,
    ).json()
    assert (answer["data"]["status"], answer["data"]["extendStatus"]) == (2, "delivery failure")
    assert "dateAnswer" in answer["data"]
    assert aero(http, fake, "sms/status", id=first)[1]["data"]["status"] == 1
    assert fake.advance() == []  # final statuses stay
    assert aero(http, fake, "sms/status", id=999)[0] == 404


def test_sms_list_filters_and_pages(http, smsaero_http):
    fake = smsaero_http
    fake.page_size = 2
    for i in range(3):
        aero(http, fake, "sms/send", number=NUMBER, text=f"code {i}", sign="NotifySvc")
    aero(http, fake, "sms/send", number="79160000002", text="other", sign="NotifySvc")

    data = aero(http, fake, "sms/list", number=NUMBER)[1]["data"]
    assert data["totalCount"] == "3"
    assert [data[k]["text"] for k in ("0", "1")] == ["code 2", "code 1"]  # newest first
    assert data["links"]["next"].endswith("page=2")
    response = http.post(
        fake.url + "sms/list?page=2",
        json={"number": NUMBER},
        auth=(fake.email, fake.api_key),
        timeout=10,
    )
    data = response.json()["data"]
    assert data["0"]["text"] == "code 0" and "1" not in data and "next" not in data["links"]
    data = aero(http, fake, "sms/list", text="oth")[1]["data"]
    assert (data["totalCount"], data["0"]["number"]) == ("1", "79160000002")


@pytest.mark.parametrize("kind", ["json", "form"])
def test_callbacks_post_the_current_status(http, smsaero_http, receiver, kind):
    fake = smsaero_http
    _, sent = aero(
        http, fake, "sms/send", number=NUMBER, text="hi", sign="NotifySvc", callbackUrl=receiver.url
    )
    aero(http, fake, "sms/send", number="79160000002", text="no callback", sign="NotifySvc")
    fake.advance()
    assert fake.fire_callbacks(kind) == [200]
    [(headers, body)] = receiver.received
    if kind == "json":
        assert headers["Content-Type"] == "application/json"
        fields = json.loads(body)
    else:
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        fields = dict(parse_qsl(body.decode()))
    assert str(fields["id"]) == str(sent["data"]["id"])
    assert (str(fields["status"]), fields["extendStatus"], fields["number"]) == (
        "1",
        "delivery",
        NUMBER,
    )
    assert "dateSend" in fields


def test_smsaero_accept_then_hang_and_drop_over_tls(http, smsaero):
    smsaero.hang = 3
    smsaero.queue.extend(["accept_then_hang", "accept_then_drop"])
    with pytest.raises(requests.ReadTimeout):
        aero(http, smsaero, "sms/send", client_timeout=0.5, number=NUMBER, text="one", sign="S")
    with pytest.raises(requests.ConnectionError):
        aero(http, smsaero, "sms/send", number=NUMBER, text="two", sign="S")
    assert [m["text"] for m in smsaero.sent] == ["one", "two"]  # both accepted
    assert aero(http, smsaero, "sms/send", number=NUMBER, text="three", sign="S")[0] == 200


def test_a_webhook_nobody_listens_on_answers_0(telegram):
    gone = Receiver()
    gone.close()
    assert telegram.post_update_to_webhook({"update_id": 1}, url=gone.url) == 0
