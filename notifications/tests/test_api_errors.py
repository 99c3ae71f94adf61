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
        {"user": 1, "message": "m", "send_at": "9999-12-31T23:59:59Z"},
        {"user": 1, "message": "m", "send_at": "0001-01-01T00:00:00+14:00"},
        {"user": 1, "message": "m", "expires_at": "2030-02-30T00:00:00Z"},
        {"user": 1, "message": "m", "send_at": 1_700_000_000},
        {"\ud800": 1},
    ],
)
def test_wrong_types_and_values_get_400_not_500(api, make_user, body):
    make_user()  # user 1 may exist; the other fields are wrong anyway
    response = raw_post(api, URL, json.dumps(body).encode())
    assert assert_shape(response, 400)["code"] in {"invalid", "parse_error"}
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
