"""Requests without a valid key: throttled per client address (``NOTIFY_API_ANON_RATE``), as
are the browsable API's login attempts; the schema and docs are public unless
``NOTIFY_API_DOCS_PUBLIC`` is off."""

from __future__ import annotations

import secrets

import pytest

from notifications.tests.api_client import KeyClient

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications"
LOGIN = "/api/v1/auth/login/"


def new_address() -> str:
    """An address of its own (the schedule outlives a test, in Redis)."""
    return f"2001:db8::{secrets.token_hex(2)}:{secrets.token_hex(2)}"


@pytest.fixture
def here(settings, client) -> dict[str, str]:
    """3 requests an hour per address, and the address the test's clients send from."""
    settings.NOTIFY_API_ANON_RATE = (3, 3600.0)
    client.defaults["REMOTE_ADDR"] = new_address()
    return {"REMOTE_ADDR": client.defaults["REMOTE_ADDR"]}


def test_requests_without_a_valid_key_are_throttled_per_address(here, api):
    anonymous = KeyClient(**here)
    guessing = KeyClient("nsk_0123456789ab" + "x" * 43, **here)
    assert [anonymous.get(URL).status_code for _ in range(2)] == [401, 401]
    assert guessing.get(URL).status_code == 401  # the same address: one allowance

    refused = guessing.get(URL)

    assert refused.status_code == 429
    wait = int(refused["Retry-After"])
    assert 1000 < wait <= 1200  # one comes back every 20 minutes
    assert (
        refused.json()["detail"] == f"Too many requests from this address; try again in {wait} s."
    )
    assert anonymous.post(URL, {}).status_code == 429
    assert anonymous.get(URL, REMOTE_ADDR=new_address()).status_code == 401  # another one
    assert api.get(URL, **here).status_code == 200  # a valid key: its own allowance


def test_login_attempts_of_the_browsable_api_are_throttled_per_address(
    here, client, django_user_model
):
    django_user_model.objects.create_user("clerk", password="right", is_staff=True)
    wrong = {"username": "clerk", "password": "wrong"}
    assert [client.post(LOGIN, wrong).status_code for _ in range(3)] == [200, 200, 200]

    refused = client.post(LOGIN, {"username": "clerk", "password": "right"})

    assert refused.status_code == 429  # even the right password: the address is refused
    assert 1000 < int(refused["Retry-After"]) <= 1200
    assert "_auth_user_id" not in client.session
    assert client.get(LOGIN).status_code == 200  # the form itself is not a login attempt
    right = {"username": "clerk", "password": "right"}
    elsewhere = client.post(LOGIN, right, REMOTE_ADDR=new_address())
    assert elsewhere.status_code == 302


def test_the_public_schema_is_throttled_per_address_too(here, client):
    assert [client.get("/api/v1/schema/").status_code for _ in range(3)] == [200, 200, 200]
    refused = client.get("/api/v1/docs/")  # an HTML page: the 429 is one too
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 1000


def test_the_schema_and_docs_need_a_key_or_staff_when_not_public(
    settings, client, admin_client, api
):
    for page in ("/api/v1/schema/", "/api/v1/docs/", "/api/v1/redoc/"):
        assert client.get(page).status_code == 200
    settings.NOTIFY_API_DOCS_PUBLIC = False
    for page in ("/api/v1/schema/", "/api/v1/docs/", "/api/v1/redoc/"):
        refused = client.get(page)
        assert refused.status_code == 401, page
        assert refused["WWW-Authenticate"] == 'Bearer realm="api"'
        assert admin_client.get(page).status_code == 200, page
    schema = api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/v1/notifications" in schema.json()["paths"]
