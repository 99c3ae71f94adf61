"""Who may call the API: keys (bad, revoked, read-only), staff sessions, per-key throttling."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.utils import timezone

from notifications.api_keys import api_key_create, api_keys_revoke
from notifications.models import ApiKey, Notification
from notifications.tests.api_client import KeyClient

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications"


def assert_error(response, status: int, code: str, detail: str | None = None) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert (body["status"], body["code"], body["fields"]) == (status, code, {})
    if detail is not None:
        assert body["detail"] == detail
    return body


def test_no_credentials_get_401_asking_for_a_bearer_key():
    response = KeyClient().get(URL)
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    ("header", "detail"),
    [
        ("Bearer nsk_0123456789ab" + "x" * 43, "Unknown API key."),
        ("Bearer sk_live_123", "Malformed API key: expected nsk_ followed by 55 characters."),
        ("Bearer", "Send the key as 'Authorization: Bearer <key>', with one space and no other "
                   "words."),
        ("Bearer a b", "Send the key as 'Authorization: Bearer <key>', with one space and no "
                       "other words."),
    ],
)  # fmt: skip
def test_a_bad_key_gets_401(header, detail):
    client = KeyClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_error(client.get(URL), 401, "authentication_failed", detail)


def test_a_right_prefix_with_a_wrong_secret_is_unknown(api):
    forged = api.raw_key[:16] + ("A" if api.raw_key[16] != "A" else "B") + api.raw_key[17:]
    assert_error(KeyClient(forged).get(URL), 401, "authentication_failed", "Unknown API key.")
    assert api.get(URL).status_code == 200


def test_a_revoked_key_gets_401_at_once(api):
    assert api.get(URL).status_code == 200
    api_keys_revoke(queryset=ApiKey.objects.all())
    assert_error(api.get(URL), 401, "authentication_failed", "This API key was revoked.")


def test_a_read_only_key_reads_but_gets_403_for_writes(make_api_client, make_user):
    reader = make_api_client(scope="read", name="reports")
    user = make_user()
    assert reader.get(URL).status_code == 200
    assert reader.get(f"/api/v1/users/{user.pk}/contact").status_code == 200
    response = reader.post(URL, {"user": user.pk, "message": "hi"})
    assert_error(
        response,
        403,
        "permission_denied",
        "The API key 'reports' is read-only; this request needs a read-and-write key.",
    )
    assert not Notification.objects.exists()


def test_only_a_hash_is_stored_and_last_use_is_noted_at_most_once_a_minute(api):
    key = ApiKey.objects.get()
    stored = " ".join(str(v) for v in ApiKey.objects.values_list().get())
    assert api.raw_key not in stored and api.raw_key[16:] not in stored
    assert key.last_used_at is None

    api.get(URL)
    first = ApiKey.objects.get().last_used_at
    assert first is not None
    api.get(URL)
    assert ApiKey.objects.get().last_used_at == first  # no write per request
    ApiKey.objects.update(last_used_at=timezone.now() - timedelta(minutes=2))
    api.get(URL)
    assert ApiKey.objects.get().last_used_at > first


def test_each_key_is_throttled_on_its_own_with_retry_after(settings, make_api_client):
    settings.NOTIFY_API_RATE = (3, 3600.0)  # 3 an hour
    shop, billing = make_api_client(name="shop"), make_api_client(name="billing")
    assert [shop.get(URL).status_code for _ in range(3)] == [200, 200, 200]

    refused = shop.get(URL)
    body = assert_error(refused, 429, "throttled")
    wait = int(refused["Retry-After"])
    assert 1000 < wait <= 1200  # one request comes back every 20 minutes
    assert body["detail"] == f"Too many requests for this API key; try again in {wait} s."
    assert billing.get(URL).status_code == 200  # another key has its own allowance


def test_staff_sessions_work_in_the_browsable_api(admin_client):
    page = admin_client.get(URL, HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert b"Notifications" in page.content and b"<html" in page.content
    assert admin_client.get(URL).json()["results"] == []


def test_a_session_needs_staff_and_the_admin_permission(client, django_user_model):
    user = django_user_model.objects.create_user("clerk", password="pw")
    client.force_login(user)
    assert client.get(URL).status_code == 403
    user.is_staff = True
    user.save()
    assert client.get(URL).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_notification"))
    assert client.get(URL).status_code == 200
    assert client.post(URL, {}, content_type="application/json").status_code == 403


def test_keys_are_made_with_a_prefix_that_names_them():
    key, raw = api_key_create(name="  billing  ", scope="read")
    assert raw.startswith("nsk_" + key.prefix) and len(raw) == 59
    assert (key.name, key.scope, str(key)) == ("billing", "read", f"billing (nsk_{key.prefix}…)")
