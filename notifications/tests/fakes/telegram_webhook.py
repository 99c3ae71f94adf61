"""The fake Telegram Bot API's webhook: ``setWebhook``, ``deleteWebhook``,
``getWebhookInfo``, and posting pending updates to the webhook as Telegram does (a mixin of
``FakeTelegram``, whose state and lock it uses; see that module's docstring)."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from notifications.tests.fakes.server import post

SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_UNSET: Any = object()


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("true", "1", "yes")
    return bool(value)


def _decoded(value: Any) -> Any:
    """A JSON-serialised field (as form-encoded calls send reply_markup), decoded."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class WebhookMixin:
    """What ``FakeTelegram`` answers about, and does with, its webhook."""

    def set_webhook(self, body: dict[str, Any]) -> tuple[int, dict]:
        url = str(body.get("url") or "")
        secret = body.get("secret_token")
        if secret is not None and not SECRET_TOKEN.fullmatch(str(secret)):
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: secret token contains unallowed characters",
            }
        if url and not url.startswith(("http://", "https://")):
            return 400, {
                "ok": False,
                "error_code": 400,
                "description": "Bad Request: bad webhook: "
                "An HTTPS URL must be provided for webhook",
            }
        if not url:
            return self.delete_webhook(body)
        with self.lock:
            already = url == self.webhook_url
            self.webhook_url = url
            self.webhook_secret = str(secret) if secret is not None else None
            if "allowed_updates" in body:
                self.allowed_updates = list(_decoded(body["allowed_updates"]) or [])
            if _flag(body.get("drop_pending_updates")):
                self.updates = []
            self.webhook_last_error = None
            self.updates_changed.notify_all()  # waiting long polls end with 409
        description = "Webhook is already set" if already else "Webhook was set"
        return 200, {"ok": True, "result": True, "description": description}

    def delete_webhook(self, body: dict[str, Any]) -> tuple[int, dict]:
        with self.lock:
            was_set = bool(self.webhook_url)
            self.webhook_url = ""
            self.webhook_secret = None
            self.webhook_last_error = None
            if _flag(body.get("drop_pending_updates")):
                self.updates = []
        description = "Webhook was deleted" if was_set else "Webhook is already deleted"
        return 200, {"ok": True, "result": True, "description": description}

    def webhook_info(self) -> dict[str, Any]:
        with self.lock:
            info: dict[str, Any] = {
                "url": self.webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": len(self.updates),
            }
            if self.webhook_url:
                info["max_connections"] = 40
                info["ip_address"] = "127.0.0.1"
            if self.allowed_updates:
                info["allowed_updates"] = list(self.allowed_updates)
            if self.webhook_last_error:
                info["last_error_date"], info["last_error_message"] = self.webhook_last_error
        return info

    def post_update_to_webhook(
        self, update: dict[str, Any], secret: str | None = _UNSET, url: str | None = None
    ) -> int:
        """POST one update to the webhook (or ``url``) as Telegram does; the HTTP status.

        ``secret`` defaults to the secret set with setWebhook; ``None`` sends no header.
        Nothing is confirmed. 0 when no answer came (refused, timed out, dropped).
        """
        with self.lock:
            target = url or self.webhook_url
            if secret is _UNSET:
                secret = self.webhook_secret
            timeout = self.webhook_timeout
        if not target:
            raise RuntimeError("no webhook is set (setWebhook first, or pass url=)")
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        status = post(target, json.dumps(update).encode(), headers, timeout)
        with self.lock:
            self.webhook_posts.append(
                {"update_id": update.get("update_id"), "secret": secret, "status": status}
            )
        return status

    def post_pending_to_webhook(self) -> list[int]:
        """POST every pending update to the webhook in order; confirm those answered 2xx.

        Returns the status of each POST (0: no answer). Updates not confirmed stay pending,
        as Telegram keeps retrying them.
        """
        with self.lock:
            pending = [dict(u) for u in self.updates]
            if not self.webhook_url:
                raise RuntimeError("no webhook is set (setWebhook first)")
        codes: list[int] = []
        for update in pending:
            status = self.post_update_to_webhook(update)
            codes.append(status)
            with self.lock:
                if 200 <= status < 300:
                    self.updates = [
                        u for u in self.updates if u["update_id"] != update["update_id"]
                    ]
                else:
                    error = (
                        f"Wrong response from the webhook: {status}"
                        if status
                        else "Connection refused or timed out"
                    )
                    self.webhook_last_error = (int(time.time()), error)
        return codes
