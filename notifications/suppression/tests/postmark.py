"""Postmark's tracking webhooks as Postmark documents them (postmarkapp.com/developer/webhooks:
bounce, spam complaint and delivery webhooks), and how to post one to anymail's view."""

from __future__ import annotations

import base64
import json
from typing import Any

import requests

TRACKING_PATH = "/anymail/postmark/tracking/"
SECRET = "postmark-hook:s3cret-Pa55word-0123456789"


def bounce(
    email: str = "john@example.com",
    *,
    kind: str = "HardBounce",
    event_id: int = 4323372036854775807,
    message_id: str = "883953f4-6105-42a2-a16a-77a8eac79483",
    bounced_at: str = "2026-12-03T16:33:54.9070259Z",
) -> dict[str, Any]:
    """A Bounce webhook. ``kind``: HardBounce, SoftBounce, Transient, DnsError, DMARCPolicy…"""
    names = {
        "HardBounce": (
            1,
            "Hard bounce",
            "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
        ),
        "SoftBounce": (4096, "Soft bounce", "Unable to temporarily deliver this message"),
        "Transient": (
            2,
            "Message delayed",
            "The server could not temporarily deliver your "
            "message (ex: Message is delayed due to network troubles).",
        ),
        "DMARCPolicy": (
            100009,
            "DMARC Policy",
            "Message was rejected by the receiving server due to the DMARC policy.",
        ),
    }
    code, name, description = names[kind]
    return {
        "RecordType": "Bounce",
        "MessageStream": "outbound",
        "ID": event_id,
        "Type": kind,
        "TypeCode": code,
        "Name": name,
        "Tag": "Test",
        "MessageID": message_id,
        "Metadata": {"a_key": "a_value", "b_key": "b_value"},
        "ServerID": 23,
        "Description": description,
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist.",
        "Email": email,
        "From": "sender@example.com",
        "BouncedAt": bounced_at,
        "DumpAvailable": True,
        "Inactive": kind == "HardBounce",
        "CanActivate": True,
        "Subject": "Test subject",
        "Content": "Return-Path: <>\r\nReceived: …\r\n",
    }


def spam_complaint(
    email: str = "john@example.com",
    *,
    event_id: int = 42,
    message_id: str = "00000000-0000-0000-0000-000000000000",
) -> dict[str, Any]:
    return {
        "RecordType": "SpamComplaint",
        "MessageStream": "outbound",
        "ID": event_id,
        "Type": "SpamComplaint",
        "TypeCode": 100001,
        "Name": "Spam complaint",
        "Tag": "Test",
        "MessageID": message_id,
        "Metadata": {"a_key": "a_value", "b_key": "b_value"},
        "ServerID": 1234,
        "Description": "The subscriber explicitly marked this message as spam.",
        "Details": "Test spam complaint details",
        "Email": email,
        "From": "sender@example.com",
        "BouncedAt": "2026-12-03T16:33:54.9070259Z",
        "DumpAvailable": True,
        "Inactive": True,
        "CanActivate": False,
        "Subject": "Test subject",
        "Content": "<Abuse report dump>",
    }


def delivery(
    message_id: str, recipient: str = "john@example.com", *, at: str = "2026-12-03T16:33:54Z"
) -> dict[str, Any]:
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": recipient,
        "Tag": "welcome-email",
        "DeliveredAt": at,
        "Details": "Test delivery webhook details",
        "Metadata": {"a_key": "a_value", "b_key": "b_value"},
    }


def open_event(message_id: str, recipient: str = "john@example.com") -> dict[str, Any]:
    return {
        "RecordType": "Open",
        "MessageStream": "outbound",
        "FirstOpen": True,
        "Client": {"Name": "Chrome 35.0.1916.153", "Company": "Google", "Family": "Chrome"},
        "OS": {"Name": "OS X 10.7 Lion", "Company": "Apple Computer, Inc.", "Family": "OS X"},
        "Platform": "WebMail",
        "UserAgent": "Mozilla/5.0",
        "ReadSeconds": 5,
        "Geo": {},
        "MessageID": message_id,
        "Metadata": {},
        "ReceivedAt": "2026-12-03T16:33:54Z",
        "Tag": "welcome-email",
        "Recipient": recipient,
    }


def authorization(secret: str = SECRET) -> str:
    return "Basic " + base64.b64encode(secret.encode()).decode()


def post(
    http: requests.Session,
    base_url: str,
    payload: Any = None,
    *,
    secret: str | None = SECRET,
    body: bytes | None = None,
) -> requests.Response:
    """POST ``payload`` (JSON; or raw ``body``) to the Postmark tracking webhook as Postmark
    does: basic auth from the URL's credentials (``secret``; None: none)."""
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["Authorization"] = authorization(secret)
    data = body if body is not None else json.dumps(payload).encode()
    return http.post(base_url + TRACKING_PATH, data=data, headers=headers, timeout=30)
