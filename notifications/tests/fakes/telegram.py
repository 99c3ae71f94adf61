"""A fake Telegram Bot API on 127.0.0.1, answering like the real one.

Run in a thread by the tests (``FakeTelegram().start()``), or as a process of its own for
manual checks and benchmarks::

    python -m notifications.tests.fakes.telegram --port 8081 [--mode 403] [--latency 0.05]

``sendMessage`` behaviours, per chat id or as the default: ``ok``, ``400`` (chat not found),
``403`` (bot blocked), ``401`` (bad token), ``500``, ``timeout`` (answers 504 after ``hang``
seconds, nothing delivered), ``429`` (Too Many Requests with retry_after),
``migrate:<new id>`` (group upgraded to a supergroup), ``accept_then_hang`` (the message IS
delivered, the answer comes only after ``hang`` seconds: a client with a shorter timeout
sees a read timeout) and ``accept_then_drop`` (delivered, then the connection is closed
without an answer). ``queue`` holds one-shot behaviours consumed before the default, to
script "fails twice, then recovers". ``rate_limit`` makes it enforce N messages/second and
answer 429 beyond it, as Telegram does; a message sent with ``allow_paid_broadcast`` (paid
broadcast) is not counted there but against ``paid_rate_limit`` (Telegram's 1,000/s; None:
no limit); ``paid_messages()`` lists those accepted. ``flood`` makes a 429 the bot's flood control, as
Telegram's is: for its ``retry_after`` seconds every ``sendMessage`` of the bot gets 429 too,
each counted in ``flood_hits`` (a send made while told to wait: a self-caused 429). ``flaky`` (a fraction) fails that share of sends at
random with 500, 502 or a timeout, drawn from a generator seeded with ``seed``. Text that is
empty or only whitespace once entities are parsed (``parse_mode`` HTML, Markdown,
MarkdownV2) is refused with 400 "Bad Request: message text is empty", text over 4096
characters with 400 "Bad Request: message is too long". ``messages`` keeps ``message_id``,
``chat_id``, ``text`` and whichever of ``parse_mode``, ``reply_markup`` (decoded to a dict),
``entities``, ``link_preview_options``, ``disable_notification``, ... the call carried.

Updates, as the Bot API hands them out:

* ``push_update(update) -> update_id`` queues an update (ids increase by one); build one with
  ``message_update(chat_id, text, ...)``, ``my_chat_member_update(chat_id, "kicked")`` or
  ``callback_query_update(chat_id, data, message_id=...)`` (an inline button pressed on a
  message the bot sent, which comes with its text and keyboard, as Telegram sends it).
  An update whose type the bot's ``allowed_updates`` leaves out is never queued (Telegram
  never creates it); by default every type but chat_member, message_reaction and
  message_reaction_count is allowed.
* ``getUpdates`` (``offset``, ``limit``, ``timeout``, ``allowed_updates``): updates with an
  id below ``offset`` are confirmed and dropped for good; a negative offset keeps only the
  last ``-offset`` updates; ``timeout`` long-polls (answers as soon as an update arrives);
  ``allowed_updates`` is remembered for later calls. A newer getUpdates ends a waiting one
  with 409 "Conflict: terminated by other getUpdates request; ...". ``polling`` counts the
  getUpdates calls in progress (a test can wait until its client is long-polling).
* ``setWebhook`` (``url``, ``secret_token``, ``allowed_updates``, ``drop_pending_updates``),
  ``deleteWebhook`` (``drop_pending_updates``), ``getWebhookInfo``. While a webhook is set,
  getUpdates answers 409 like Telegram. Any http(s) URL is accepted (Telegram wants HTTPS on
  443, 80, 88 or 8443). Updates are not pushed by themselves: ``post_pending_to_webhook()``
  POSTs each pending update (JSON, header ``X-Telegram-Bot-Api-Secret-Token`` when a secret
  is set), confirms those answered 2xx and returns the status codes (0: no answer); failures
  show in getWebhookInfo's ``last_error_message``. ``post_update_to_webhook(update,
  secret=...)`` posts one update with any secret (or none), confirming nothing.

Inline keyboards: ``answerCallbackQuery`` answers a query this fake issued, once (a second
answer or an unknown id: 400, as Telegram says for an expired query; text over 200
characters: 400); ``callback_answers`` keeps the answers. ``editMessageReplyMarkup`` replaces
the keyboard of a message in ``messages`` (400 when there is no such message in that chat, or
when the keyboard is the same, as Telegram refuses a "not modified" edit).

Every call is recorded in ``requests``, answered or not.

Control over HTTP (for a separate process): ``POST /_fake/config`` with JSON fields
``mode``, ``per_chat``, ``queue``, ``latency``, ``hang``, ``retry_after``, ``rate_limit``,
``paid_rate_limit``, ``flaky``, ``seed``; ``GET /_fake/messages``; ``GET /_fake/stats`` (counts only);
``POST /_fake/reset``; ``POST /_fake/updates`` (an update, or ``{"chat_id", "text"}`` for a
message update; answers its ``update_id``); ``GET /_fake/updates`` (the pending ones);
``POST /_fake/webhook/flush`` (``post_pending_to_webhook``; answers the codes).
"""

from __future__ import annotations

import argparse
import bisect
import copy
import html
import json
import math
import random
import re
import secrets
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

from notifications.tests.fakes.server import JsonHandler, LocalServer
from notifications.tests.fakes.telegram_webhook import WebhookMixin, _decoded

ERRORS = {
    "400": (400, "Bad Request: chat not found"),
    "401": (401, "Unauthorized"),
    "403": (403, "Forbidden: bot was blocked by the user"),
    "500": (500, "Internal Server Error"),
    "502": (502, "Bad Gateway"),
}
DELIVERING = ("ok", "accept_then_hang", "accept_then_drop")
DROP = 0  # answer()'s code for "close the connection without answering"
BOT_USER = {"id": 1, "is_bot": True, "first_name": "Fake Bot", "username": "fake_bot"}
# sendMessage fields kept in ``messages`` when a call carries them.
MESSAGE_FIELDS = (
    "parse_mode",
    "reply_markup",
    "entities",
    "link_preview_options",
    "disable_web_page_preview",
    "disable_notification",
    "protect_content",
    "reply_parameters",
    "message_thread_id",
    "allow_paid_broadcast",
)
# Update types Telegram leaves out unless allowed_updates names them.
NOT_BY_DEFAULT = {"chat_member", "message_reaction", "message_reaction_count"}
WEBHOOK_ACTIVE = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
TERMINATED = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)


def visible_text(text: str, parse_mode: str | None) -> str:
    """What is left of ``text`` once Telegram has parsed its entities (roughly)."""
    mode = (parse_mode or "").lower()
    if mode == "html":
        return html.unescape(re.sub(r"<[^>]*>", "", text))
    if mode in ("markdown", "markdownv2"):
        text = re.sub(r"\]\([^)]*\)", "]", text)  # a link keeps its text
        if mode == "markdownv2":
            # An escaped character is text; an unescaped markup character is not.
            return re.sub(r"\\(.)|[*_~`|\[\]]", lambda m: m.group(1) or "", text)
        return re.sub(r"[*_`\[\]]", "", text)
    return text


def _update_type(update: dict[str, Any]) -> str:
    return next((key for key in update if key != "update_id"), "")


class FakeTelegram(WebhookMixin, LocalServer):
    def __init__(
        self,
        token: str = "123456:TEST-token-s3cr3t",
        port: int = 0,
        host: str = "127.0.0.1",
        record_peers: bool = False,
    ) -> None:
        self.token = token
        self.port = port
        self.host = host
        # Each message keeps the address it came from ("peer", which host sent it) and when
        # it came ("at", Unix time).
        self.record_peers = record_peers
        self.lock = threading.Lock()
        # Long polls wait on this; push_update, setWebhook, reset and stop wake them.
        self.updates_changed = threading.Condition(self.lock)
        self._epoch = 0  # reset() and stop() end waiting long polls
        self._poll_generation = 0  # each getUpdates call takes the next
        self.polling = 0  # getUpdates calls in progress
        self.reset()

    # --- state ------------------------------------------------------------------------------
    def reset(self) -> None:
        with self.lock:
            self.mode = "ok"
            self.per_chat: dict[str, str] = {}
            self.queue: deque[str] = deque()
            self.latency = 0.0
            self.hang = 5.0
            self.retry_after = 1
            self.rate_limit: float | None = None
            self.paid_rate_limit: float | None = None
            self.flaky = 0.0
            self.random = random.Random(0)
            self._window: deque[float] = deque()
            self._paid_window: deque[float] = deque()
            self.requests: list[dict[str, Any]] = []  # every call, answered or not
            self.messages: list[dict[str, Any]] = []  # messages accepted (delivered)
            self.too_many = 0
            self.flood = False
            self.flood_until = 0.0  # time.monotonic(): the bot's penalty ends
            self.flood_hits = 0
            self._next_id = 1000
            # Inline keyboards: the queries issued, and the answers given to them.
            self.callback_queries: set[str] = set()
            self.callback_answers: list[dict[str, Any]] = []
            # Updates and the webhook.
            self.updates: list[dict[str, Any]] = []  # pending: not confirmed yet
            self.allowed_updates: list[str] = []  # [] = Telegram's default set
            self._next_update_id = 100_000_001
            self.webhook_url = ""
            self.webhook_secret: str | None = None
            self.webhook_timeout = 5.0
            self.webhook_last_error: tuple[int, str] | None = None  # (unix time, message)
            self.webhook_posts: list[dict[str, Any]] = []  # (update_id, secret sent, status)
            self._epoch += 1
            self.updates_changed.notify_all()

    def stop(self) -> None:
        with self.lock:
            self._epoch += 1
            self.updates_changed.notify_all()
        super().stop()

    def delivered_to(self, chat_id: str | int) -> list[str]:
        with self.lock:
            return [m["text"] for m in self.messages if str(m["chat_id"]) == str(chat_id)]

    def delivered_texts(self) -> list[str]:
        """The text of every message accepted, in order (a duplicate appears twice)."""
        with self.lock:
            return [m["text"] for m in self.messages]

    # --- updates: what users do -------------------------------------------------------------
    def _user_and_chat(
        self, chat_id: str | int, first_name: str, username: str | None, language_code: str
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        try:
            ident: int | str = int(chat_id)
        except ValueError:
            ident = chat_id
        user: dict[str, Any] = {"id": ident, "is_bot": False, "first_name": first_name}
        chat: dict[str, Any] = {"id": ident, "first_name": first_name}
        if username:
            user["username"] = chat["username"] = username
        user["language_code"] = language_code
        chat["type"] = "private"
        return user, chat

    def message_update(
        self,
        chat_id: str | int,
        text: str,
        *,
        language_code: str = "en",
        first_name: str = "Ann",
        username: str | None = None,
    ) -> dict[str, Any]:
        """A private-chat text message from user ``chat_id`` (push it with ``push_update``)."""
        user, chat = self._user_and_chat(chat_id, first_name, username, language_code)
        with self.lock:
            self._next_id += 1
            message_id = self._next_id
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            message["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
        return {"message": message}

    def my_chat_member_update(
        self, chat_id: str | int, new_status: str, *, first_name: str = "Ann"
    ) -> dict[str, Any]:
        """The user blocked (``"kicked"``) or unblocked/started (``"member"``) the bot."""
        user, chat = self._user_and_chat(chat_id, first_name, None, "en")
        old_status = "member" if new_status == "kicked" else "kicked"
        new_member: dict[str, Any] = {"user": dict(BOT_USER), "status": new_status}
        if new_status == "kicked":
            new_member["until_date"] = 0
        return {
            "my_chat_member": {
                "chat": chat,
                "from": user,
                "date": int(time.time()),
                "old_chat_member": {"user": dict(BOT_USER), "status": old_status},
                "new_chat_member": new_member,
            }
        }

    def callback_query_update(
        self,
        chat_id: str | int,
        data: str,
        *,
        message_id: int | None = None,
        from_id: int | None = None,
        language_code: str = "en",
        first_name: str = "Ann",
    ) -> dict[str, Any]:
        """User ``from_id`` (default: the chat's own, as in a private chat) pressed a button
        with ``data`` on message ``message_id`` of chat ``chat_id``; a message this fake
        delivered comes with its text and keyboard."""
        user, chat = self._user_and_chat(chat_id, first_name, None, language_code)
        if from_id is not None:
            user["id"] = from_id
        with self.lock:
            self._next_id += 1
            query_id = f"{self._next_id}{secrets.randbelow(10**9):09d}"
            self.callback_queries.add(query_id)
            sent = next(
                (
                    m
                    for m in self.messages
                    if m["message_id"] == message_id and m["chat_id"] == str(chat_id)
                ),
                None,
            )
            message: dict[str, Any] = {
                "message_id": message_id or 1,
                "from": dict(BOT_USER),
                "chat": chat,
                "date": int(time.time()),
                "text": str(sent["text"]) if sent else "",
            }
            if sent is not None and "reply_markup" in sent:
                message["reply_markup"] = copy.deepcopy(sent["reply_markup"])
        return {
            "callback_query": {
                "id": query_id,
                "from": user,
                "message": message,
                "chat_instance": str(chat_id),
                "data": data,
            }
        }

    def _allowed(self, kind: str) -> bool:
        if self.allowed_updates:
            return kind in self.allowed_updates
        return kind not in NOT_BY_DEFAULT

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue ``update`` under the next update_id and return the id.

        An update of a type ``allowed_updates`` leaves out gets its id but is never queued.
        """
        with self.lock:
            update_id = self._next_update_id
            self._next_update_id += 1
            queued = {"update_id": update_id}
            queued.update({k: v for k, v in update.items() if k != "update_id"})
            if self._allowed(_update_type(queued)):
                self.updates.append(queued)
                self.updates_changed.notify_all()
        return update_id

    def push_raw_update(self, update: dict[str, Any]) -> None:
        """Queue ``update`` exactly as given, its ``update_id`` included: a malformed one (an
        id past 64 bits), to see that the bot survives it."""
        with self.lock:
            self.updates.append(dict(update))
            self.updates_changed.notify_all()

    def pending_updates(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.updates)

    def _confirm(self, offset: int) -> None:
        """Drop updates as getUpdates with ``offset`` does (lock held)."""
        if offset > 0:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        elif offset < 0:
            self.updates = self.updates[offset:]

    def get_updates(self, body: dict[str, Any]) -> tuple[int, dict]:
        offset = int(body.get("offset") or 0)
        limit = min(max(int(body.get("limit") or 100), 1), 100)
        timeout = max(float(body.get("timeout") or 0), 0.0)
        deadline = time.monotonic() + timeout
        with self.lock:
            if self.webhook_url:
                return 409, {"ok": False, "error_code": 409, "description": WEBHOOK_ACTIVE}
            if "allowed_updates" in body:
                self.allowed_updates = list(_decoded(body["allowed_updates"]) or [])
            self._poll_generation += 1
            generation, epoch = self._poll_generation, self._epoch
            self._confirm(offset)
            self.updates_changed.notify_all()  # an older long poll ends (409)
            self.polling += 1
            try:
                while not self.updates:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0 or epoch != self._epoch:
                        break
                    self.updates_changed.wait(remaining)
                    if epoch != self._epoch:
                        break
                    if self.webhook_url:
                        return 409, {"ok": False, "error_code": 409, "description": WEBHOOK_ACTIVE}
                    if generation != self._poll_generation:
                        return 409, {"ok": False, "error_code": 409, "description": TERMINATED}
            finally:
                self.polling -= 1
            return 200, {"ok": True, "result": [dict(u) for u in self.updates[:limit]]}

    # --- answering --------------------------------------------------------------------------
    def _behaviour(self, chat_id: str) -> str:
        with self.lock:
            if self.queue:
                return self.queue.popleft()
            if self.flaky and self.random.random() < self.flaky:
                return self.random.choice(["500", "502", "timeout"])
            return self.per_chat.get(chat_id, self.mode)

    def _over_rate(self, arrived: float, paid: bool = False) -> bool:
        """Whether this message, which arrived at ``arrived`` (``time.monotonic()``), is one
        too many in the second before it: a flagged one (paid broadcast) counts against
        ``paid_rate_limit``, any other against ``rate_limit``.

        Telegram counts a message when it arrives, so the window is kept by arrival time,
        not by when this handler thread got round to it (after ``latency``, and after
        whatever else the test's process was doing): handler threads that wake together must
        not bunch messages that arrived apart. They may also come here out of arrival order,
        so the window is kept sorted."""
        limit = self.paid_rate_limit if paid else self.rate_limit
        if not limit:
            return False
        with self.lock:
            window = self._paid_window if paid else self._window
            while window and arrived - window[0] >= 2.0:  # older than any check still to come
                window.popleft()
            earlier = bisect.bisect_right(window, arrived) - bisect.bisect_right(
                window, arrived - 1.0
            )
            if earlier >= limit:
                self.too_many += 1
                return True
            bisect.insort(window, arrived)
            return False

    def paid_messages(self) -> list[dict[str, Any]]:
        """The messages accepted with ``allow_paid_broadcast``."""
        with self.lock:
            return [m for m in self.messages if m.get("allow_paid_broadcast") is True]

    def answer(
        self, token: str, method: str, body: dict[str, Any], peer: str = ""
    ) -> tuple[int, dict]:
        """The HTTP status and JSON answer to a Bot API call; status ``DROP`` (0): hang up."""
        chat_id = str(body.get("chat_id", ""))
        with self.lock:
            self.requests.append({"method": method, "token": token, **body})
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if method == "getMe":
            return 200, {"ok": True, "result": dict(BOT_USER)}
        if method == "getUpdates":
            return self.get_updates(body)
        if method == "setWebhook":
            return self.set_webhook(body)
        if method == "deleteWebhook":
            return self.delete_webhook(body)
        if method == "getWebhookInfo":
            return 200, {"ok": True, "result": self.webhook_info()}
        if method == "answerCallbackQuery":
            return self.answer_callback_query(body)
        if method == "editMessageReplyMarkup":
            return self.edit_reply_markup(body)
        if method != "sendMessage":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        arrived = time.monotonic()
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            penalty = self.flood_until - time.monotonic()
            if penalty > 0:
                self.flood_hits += 1
                return 429, self._too_many(max(1, math.ceil(penalty)))
        if self._over_rate(arrived, paid=_decoded(body.get("allow_paid_broadcast")) is True):
            with self.lock:
                return 429, self._too_many()
        behaviour = self._behaviour(chat_id)
        if behaviour in DELIVERING:
            return self._deliver(chat_id, body, behaviour, peer)
        if behaviour == "timeout":
            time.sleep(self.hang)
            return 504, {"ok": False, "error_code": 504, "description": "Gateway Timeout"}
        if behaviour == "429":
            with self.lock:
                return 429, self._too_many()
        if behaviour.startswith("migrate:"):
            new_id = behaviour.split(":", 1)[1]
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: group chat was upgraded to a supergroup chat",
                "parameters": {"migrate_to_chat_id": int(new_id)},
            }
        code, description = ERRORS[behaviour]
        return code, {"ok": False, "error_code": code, "description": description}

    def _deliver(
        self, chat_id: str, body: dict[str, Any], behaviour: str, peer: str = ""
    ) -> tuple[int, dict]:
        text = visible_text(str(body.get("text") or ""), body.get("parse_mode"))
        if not text.strip():
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message text is empty",
            }
        if len(text) > 4096:
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: message is too long",
            }
        with self.lock:
            self._next_id += 1
            message = {"message_id": self._next_id, "chat_id": chat_id, "text": body.get("text")}
            for name in MESSAGE_FIELDS:
                if name in body:
                    message[name] = _decoded(body[name]) if name != "parse_mode" else body[name]
            if self.record_peers:
                message["peer"], message["at"] = peer, time.time()
            self.messages.append(message)
        if behaviour == "accept_then_drop":
            return DROP, {}
        if behaviour == "accept_then_hang":
            time.sleep(self.hang)
        result: dict[str, Any] = {
            "message_id": message["message_id"],
            "from": dict(BOT_USER),
            "chat": {"id": chat_id},
            "date": int(time.time()),
            "text": text.strip(),
        }
        if "reply_markup" in message:
            result["reply_markup"] = message["reply_markup"]
        return 200, {"ok": True, "result": result}

    def answer_callback_query(self, body: dict[str, Any]) -> tuple[int, dict]:
        query_id = str(body.get("callback_query_id", ""))
        text = str(body.get("text") or "")
        if len(text) > 200:
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: MESSAGE_TOO_LONG",
            }
        with self.lock:
            if query_id not in self.callback_queries:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: query is too old and response timeout expired "
                    "or query ID is invalid",
                }
            self.callback_queries.discard(query_id)
            self.callback_answers.append({"callback_query_id": query_id, "text": text})
        return 200, {"ok": True, "result": True}

    def edit_reply_markup(self, body: dict[str, Any]) -> tuple[int, dict]:
        chat_id, markup = str(body.get("chat_id", "")), _decoded(body.get("reply_markup"))
        with self.lock:
            message = next(
                (
                    m
                    for m in self.messages
                    if m["chat_id"] == chat_id
                    and str(m["message_id"]) == str(body.get("message_id"))
                ),
                None,
            )
            if message is None:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message to edit not found",
                }
            if message.get("reply_markup") == markup:
                return 400, {
                    "ok": False,
                    "error_code": 400,
                    "description": "Bad Request: message is not modified: specified new message "
                    "content and reply markup are exactly the same as a current content and "
                    "reply markup of the message",
                }
            message["reply_markup"] = markup
            result = {"message_id": message["message_id"], "chat": {"id": chat_id}}
        return 200, {"ok": True, "result": {**result, "reply_markup": markup}}

    def _too_many(self, retry_after: float | None = None) -> dict:
        """A 429 answer; with ``flood``, the bot's penalty starts (called with the lock held)."""
        retry_after = self.retry_after if retry_after is None else retry_after
        if self.flood:
            self.flood_until = max(self.flood_until, time.monotonic() + retry_after)
        return {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry_after}",
            "parameters": {"retry_after": retry_after},
        }

    # --- serving ----------------------------------------------------------------------------
    def configure(self, config: dict[str, Any]) -> None:
        with self.lock:
            if "mode" in config:
                self.mode = config["mode"]
            if "per_chat" in config:
                self.per_chat = {str(k): v for k, v in config["per_chat"].items()}
            if "queue" in config:
                self.queue = deque(config["queue"])
            for name in (
                "latency",
                "hang",
                "retry_after",
                "rate_limit",
                "paid_rate_limit",
                "flaky",
                "flood",
            ):
                if name in config:
                    setattr(self, name, config[name])
            if "seed" in config:
                self.random = random.Random(config["seed"])

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):
            def _body(self) -> dict[str, Any] | None:
                """The request's fields; None when the body was cut off before its end."""
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                if len(raw) < length:
                    return None
                if not raw:
                    return {}
                if self.headers.get("Content-Type", "").startswith("application/json"):
                    return json.loads(raw)
                return dict(parse_qsl(raw.decode()))

            def _query(self) -> dict[str, Any]:
                return dict(parse_qsl(self.path.partition("?")[2]))

            def do_GET(self) -> None:
                if self.path == "/_fake/messages":
                    with fake.lock:
                        self.send_json(200, {"messages": fake.messages, "too_many": fake.too_many})
                    return
                if self.path == "/_fake/stats":
                    with fake.lock:
                        stats = {
                            "messages": len(fake.messages),
                            "paid_messages": sum(
                                m.get("allow_paid_broadcast") is True for m in fake.messages
                            ),
                            "requests": len(fake.requests),
                            "too_many": fake.too_many,
                            "flood_hits": fake.flood_hits,
                            "pending_updates": len(fake.updates),
                        }
                    self.send_json(200, stats)
                    return
                if self.path == "/_fake/updates":
                    self.send_json(200, {"updates": fake.pending_updates()})
                    return
                self._dispatch()

            def do_POST(self) -> None:
                if self.path == "/_fake/config":
                    fake.configure(self._body() or {})
                    self.send_json(200, {"ok": True})
                    return
                if self.path == "/_fake/reset":
                    fake.reset()
                    self.send_json(200, {"ok": True})
                    return
                if self.path == "/_fake/updates":
                    update = self._body() or {}
                    if "chat_id" in update and "text" in update:
                        update = fake.message_update(update["chat_id"], str(update["text"]))
                    self.send_json(200, {"ok": True, "update_id": fake.push_update(update)})
                    return
                if self.path == "/_fake/webhook/flush":
                    try:
                        self.send_json(200, {"ok": True, "codes": fake.post_pending_to_webhook()})
                    except RuntimeError as err:
                        self.send_json(400, {"ok": False, "description": str(err)})
                    return
                self._dispatch()

            def _dispatch(self) -> None:
                # /bot<token>/<method>
                parts = self.path.split("?", 1)[0].strip("/").split("/")
                if len(parts) != 2 or not parts[0].startswith("bot"):
                    self.send_json(
                        404, {"ok": False, "error_code": 404, "description": "Not Found"}
                    )
                    return
                body = self._body() if self.command == "POST" else {}
                if body is None:
                    # The client died between headers and body (urllib3 writes them apart): a
                    # request never completed is never delivered, as with the real Bot API.
                    self.close_connection = True
                    return
                code, payload = fake.answer(
                    parts[0][3:], parts[1], {**self._query(), **body}, self.client_address[0]
                )
                if code == DROP:
                    self.drop()
                    return
                self.send_json(code, payload)

        return Handler

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://{self.host}:{self.server.server_address[1]}"

    def start(self) -> FakeTelegram:
        self.serve(ThreadingHTTPServer((self.host, self.port), self._handler()))
        return self


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--host", default="127.0.0.1", help="the address to listen on (make scaleout's host)"
    )
    parser.add_argument(
        "--record-peers", action="store_true", help="keep each message's sender address"
    )
    parser.add_argument("--token", default="123456:TEST-token-s3cr3t")
    parser.add_argument("--mode", default="ok")
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rate-limit", type=float, default=None)
    args = parser.parse_args()
    fake = FakeTelegram(
        token=args.token, port=args.port, host=args.host, record_peers=args.record_peers
    )
    fake.configure({"mode": args.mode, "latency": args.latency, "rate_limit": args.rate_limit})
    fake.start()
    print(
        f"fake Telegram Bot API on {fake.url} (token {args.token!r}, mode {args.mode})", flush=True
    )
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
