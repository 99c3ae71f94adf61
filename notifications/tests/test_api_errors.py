"""No input makes the API answer 500, and every error has the one JSON shape."""

from __future__ import annotations

import json

import pytest

from notifications.models import Notification

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications"


def raw_post(api, path: str, body: bytes, content_type: str = "application/json"):
    return api.generic("POST", path, body, content_type=content_type)


def assert_shape(response, status: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"status", "code", "detail", "fields"}
    assert body["status"] == status
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"user": 1, "message": ', "The body is not valid JSON"),
        (b'{"user": 1, "message": NaN}', "The body is not valid JSON"),
        (b"\xff\xfe{}", "The body is not valid utf-8"),
        (b"[" * 100_000 + b"]" * 100_000, "The body is not valid JSON"),
    ],
)
def test_malformed_bodies_get_400_parse_error(api, body, detail):
    response = raw_post(api, URL, body)
    assert assert_shape(response, 400)["code"] == "parse_error"
    assert response.json()["detail"].startswith(detail)


@pytest.mark.parametrize(
    "body",
    [
        [],
        "text",
        17,
        None,
        {"user": [1], "message": "m"},
        {"user": 10**30, "message": "m"},
        {"user": -1, "message": "m"},
        {"user": 1.5, "message": "m"},
        {"user": "a\x00b", "message": "m"},
        {"user": "\ud800", "message": "m"},
        {"user": 1, "message": {"text": "m"}},
        {"user": 1, "message": "a\x00b"},
        {"user": 1, "message": "\ud800"},
        {"user": 1, "message": "m", "subject": ["s"]},
        {"user": 1, "message": "m", "channels": "telegram"},
        {"user": 1, "message": "m", "channels": [1, None]},
        {"user": 1, "message": "m", "expires_at": "2030-02-30T00:00:00Z"},
        {"user": 1, "message": "m", "send_at": "2030-01-01 09:00:00+03:00"},
        {"user": 1, "message": "m", "send_at": 1_700_000_000},
        {"\ud800": 1},
    ],
)
def test_wrong_types_and_values_get_400_not_500(api, make_user, body):
    make_user()  # user 1 may exist; the other fields are wrong anyway
    response = raw_post(api, URL, json.dumps(body).encode())
    assert assert_shape(response, 400)["code"] in {"invalid", "parse_error"}
    assert not Notification.objects.exists()


@pytest.mark.parametrize("when", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00+14:00"])
def test_times_beyond_a_hundred_years_get_422_not_500(api, make_user, when):
    """Well-formed (RFC 3339, as the schema says) but out of range: a rule, so 422."""
    body = {"user": make_user().pk, "message": "m", "send_at": when}
    response = raw_post(api, URL, json.dumps(body).encode())
    assert assert_shape(response, 422)["fields"] == {
        "send_at": ["This time is more than 100 years away."]
    }
    assert not Notification.objects.exists()


def test_a_huge_message_gets_400_and_a_huge_body_413(api, make_user, settings):
    user = make_user()
    long = api.post(URL, {"user": user.pk, "message": "x" * 10_001})
    assert assert_shape(long, 400)["fields"]["message"][0].startswith(
        "The message is 10,001 characters long"
    )
    settings.NOTIFY_API_MAX_BODY_BYTES = 2048
    huge = api.post(URL, {"user": user.pk, "message": "x" * 4000})
    assert assert_shape(huge, 413)["code"] == "payload_too_large"


def test_other_content_types_get_415_and_other_methods_405(api):
    assert assert_shape(raw_post(api, URL, b"user=1", "text/plain"), 415)["code"] == (
        "unsupported_media_type"
    )
    assert assert_shape(api.delete(URL), 405)["code"] == "method_not_allowed"
    assert assert_shape(api.get(URL, HTTP_ACCEPT="application/xml"), 406)["code"] == (
        "not_acceptable"
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/api/v1/nothing"),
        ("post", "/api/v1/nothing"),
        ("get", "/api/v1/notifications/abc"),
        ("get", "/api/v1/notifications/-1"),
        ("get", "/api/v1/notifications/99999999999999999999999"),
        ("post", "/api/v1/notifications/99999999999999999999999/cancel"),
        ("put", "/api/v1/users/99999999999999999999999/contact"),
        ("get", "/api/v2/notifications"),
    ],
)
def test_unknown_urls_get_a_json_404(api, method, path):
    assert assert_shape(getattr(api, method)(path), 404)["code"] == "not_found"


def test_a_trailing_slash_gets_a_hint(api):
    body = assert_shape(api.get(f"{URL}/"), 404)
    assert body["detail"].endswith("Did you mean /api/v1/notifications (no trailing slash)?")


def test_a_batch_of_a_thousand_3_kb_messages_is_taken(api, make_user, settings):
    """About 3 MB: over Django's default 2.5 MB body limit, which is now the API's own."""
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == settings.NOTIFY_API_MAX_BODY_BYTES
    user = make_user()
    items = [{"user": user.pk, "message": f"{i:04d}" + "x" * 2996} for i in range(1000)]
    body = json.dumps({"notifications": items}).encode()
    assert 3_000_000 < len(body) < settings.NOTIFY_API_MAX_BODY_BYTES

    response = raw_post(api, f"{URL}/batch", body)

    assert response.status_code == 202, response.content[:300]
    assert Notification.objects.count() == 1000


@pytest.mark.parametrize("path", [URL, f"{URL}/batch"])
def test_a_body_over_the_limit_gets_413_and_creates_nothing(api, make_user, settings, path):
    limit = settings.NOTIFY_API_MAX_BODY_BYTES
    assert limit == 8 * 1024 * 1024  # the default, as the README says
    head = json.dumps({"user": make_user().pk, "message": "m"}).encode()
    body = head[:-1] + b" " * (limit + 1 - len(head)) + b"}"  # valid JSON, one byte too many
    assert len(body) == limit + 1

    response = raw_post(api, path, body)

    body = assert_shape(response, 413)
    assert body["code"] == "payload_too_large"
    assert body["detail"].startswith("The request body is larger than 8,388,608 bytes")
    assert not Notification.objects.exists()


@pytest.mark.parametrize("charset", ["undefined", "rot13", "base64"])
def test_a_charset_the_api_cannot_read_gets_415_not_500(api, make_user, charset):
    body = json.dumps({"user": make_user().pk, "message": "m"}).encode()
    response = raw_post(api, URL, body, f"application/json; charset={charset}")
    assert assert_shape(response, 415)["code"] == "unsupported_media_type"
    assert response.json()["detail"] == (
        f"The charset {charset!r} is not one the API reads; send UTF-8 JSON."
    )
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("notifications", {"message": 12345}, "message"),
        ("notifications", {"message": True}, "message"),
        ("notifications", {"message": "m", "subject": 5}, "subject"),
        ("notifications", {"message": "m", "subject": 1.5}, "subject"),
        ("contact", {"telegram_chat_id": 12345}, "telegram_chat_id"),
        ("contact", {"email": 5}, "email"),
        ("contact", {"phone": 79161234567}, "phone"),
        ("contact", {"language": 1}, "language"),
        ("contact", {"sms_opt_out": 1}, "sms_opt_out"),
        ("contact", {"sms_opt_out": "true"}, "sms_opt_out"),
    ],
)
def test_a_number_or_flag_is_never_taken_for_a_string(api, make_user, path, body, field):
    """Strict types: a string field takes a JSON string, a flag true or false; nothing is
    coerced ("12345" stored from 12345) and nothing is stored."""
    user = make_user()
    if path == "notifications":
        response = api.post(URL, {"user": user.pk, **body})
    else:
        response = api.put(f"/api/v1/users/{user.pk}/contact", body)
    assert list(assert_shape(response, 400)["fields"]) == [field]
    assert not Notification.objects.exists()
    contact = user.contact
    contact.refresh_from_db()
    assert (contact.telegram_chat_id, contact.email, contact.phone, contact.sms_opt_out) == (
        "",
        "",
        "",
        False,
    )
