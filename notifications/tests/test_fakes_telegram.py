"""The fake Telegram Bot API behaves as a real client sees the real one.

Each test talks to the fake over its socket with an ordinary client, ``requests``. Waits are
bounded by client timeouts or ``wait_for``; nothing asserts how long anything took.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests

from notifications.tests.fake_clients import Receiver, plain_session
from notifications.tests.fakes.telegram import FakeTelegram
from notifications.tests.fixtures import wait_for


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


def test_a_button_press_is_answered_once_and_its_keyboard_edited_like_telegram(http, telegram):
    markup = {"inline_keyboard": [[{"text": "❌ Email", "callback_data": "pref:1:email:1"}]]}
    code, sent = bot(
        http, telegram, "sendMessage", chat_id=42, text="Settings", reply_markup=markup
    )
    assert code == 200
    message_id = sent["result"]["message_id"]
    press = telegram.callback_query_update(42, "pref:1:email:1", message_id=message_id)
    query = press["callback_query"]
    assert query["from"]["id"] == query["message"]["chat"]["id"] == 42
    assert query["message"]["reply_markup"] == markup  # the keyboard pressed comes along

    def answer(query_id: str, text: str) -> tuple[int, dict[str, Any]]:
        return bot(http, telegram, "answerCallbackQuery", callback_query_id=query_id, text=text)

    assert answer(query["id"], "On")[0] == 200
    again = answer(query["id"], "On")
    assert again[0] == 400 and "query ID is invalid" in again[1]["description"]
    too_long = telegram.callback_query_update(42, "x")["callback_query"]["id"]
    assert answer(too_long, "x" * 201)[0] == 400
    assert telegram.callback_answers == [{"callback_query_id": query["id"], "text": "On"}]

    redrawn = {"inline_keyboard": [[{"text": "✅ Email", "callback_data": "pref:1:email:0"}]]}
    edit = {"chat_id": 42, "message_id": message_id, "reply_markup": redrawn}
    assert bot(http, telegram, "editMessageReplyMarkup", **edit)[0] == 200
    assert telegram.messages[0]["reply_markup"] == redrawn
    same = bot(http, telegram, "editMessageReplyMarkup", **edit)
    assert same[0] == 400 and "message is not modified" in same[1]["description"]
    elsewhere = bot(http, telegram, "editMessageReplyMarkup", **{**edit, "chat_id": 43})
    assert elsewhere[0] == 400 and "message to edit not found" in elsewhere[1]["description"]


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


def test_a_webhook_nobody_listens_on_answers_0(telegram):
    gone = Receiver()
    gone.close()
    assert telegram.post_update_to_webhook({"update_id": 1}, url=gone.url) == 0


def test_flagged_messages_are_recorded_and_limited_apart_from_the_free_ones(http, telegram):
    """Paid broadcast: a message with allow_paid_broadcast is kept with it, and counts against
    the paid limit, not the free one (as Telegram lets it past the broadcasting limits)."""
    telegram.rate_limit = 1
    telegram.paid_rate_limit = 2
    free = [bot(http, telegram, "sendMessage", chat_id=1, text="free")[0] for _ in range(2)]
    paid = [
        bot(http, telegram, "sendMessage", chat_id=2, text="paid", allow_paid_broadcast=True)[0]
        for _ in range(3)
    ]
    assert (free, paid) == ([200, 429], [200, 200, 429])
    assert [m["chat_id"] for m in telegram.paid_messages()] == ["2", "2"]
    assert "allow_paid_broadcast" not in telegram.messages[0]


def test_the_rate_window_counts_messages_by_when_they_arrived(telegram):
    """Telegram counts a message when it arrives. Handler threads that reach the check
    together (woken from ``latency``, or after the test's process stalled) and out of arrival
    order must not be counted as a burst: 30 arrivals 30 ms apart are within 30/s whatever
    the order they are checked in; a 31st inside the same second is not, and one a second
    after the first is again."""
    telegram.rate_limit = 30
    start = 1_000.0
    arrivals = [start + 0.03 * i for i in range(30)]
    order = arrivals[15:] + arrivals[:15][::-1]  # checked late, and out of order
    assert [telegram._over_rate(at) for at in order] == [False] * 30
    assert telegram._over_rate(start + 0.99) is True
    assert telegram._over_rate(start + 1.0) is False  # the first left the window
    assert telegram.too_many == 1
