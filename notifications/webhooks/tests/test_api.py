"""``/api/v1/webhooks`` through the HTTP API: endpoints made, read (secrets masked), changed,
rotated and deleted; bad input refused with the reason (400 for what the schema states, 422
for a private address); recent deliveries and a replay. Every answer is checked against the
served schema by the ``api`` client."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth.models import Permission
from standardwebhooks.webhooks import Webhook

from notifications.models import ApiKey, Notification
from notifications.tests.api_client import KeyClient
from notifications.webhooks import outbox, signing
from notifications.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint
from notifications.webhooks.services import webhook_endpoint_create
from notifications.webhooks.tests.util import set_status

pytestmark = pytest.mark.django_db
WEBHOOKS = "/api/v1/webhooks"
HOOK = "https://hooks.example.com/notify"


def test_create_answers_the_secret_once_and_reads_show_it_masked(api):
    created = api.post(WEBHOOKS, {"url": HOOK, "description": "Shop"})
    assert created.status_code == 201, created.json()
    body = created.json()
    secret = body["secret"]
    signing.validate_secret(secret)
    assert body["event_types"] == list(EventType.values)
    assert body["enabled"] is True
    assert body["secrets"] == [f"whsec_…{secret[-4:]}"]
    assert created["Location"].endswith(f"{WEBHOOKS}/{body['id']}")
    for answer in (api.get(WEBHOOKS), api.get(f"{WEBHOOKS}/{body['id']}")):
        assert answer.status_code == 200
        assert secret not in answer.content.decode()
        assert secret[6:-4] not in answer.content.decode()
    [listed] = api.get(WEBHOOKS).json()["webhooks"]
    assert listed["secrets"] == body["secrets"] and "secret" not in listed


def test_a_given_secret_and_event_types_are_kept(api):
    secret = signing.secret_make()
    created = api.post(
        WEBHOOKS,
        {
            "url": HOOK,
            "secret": secret,
            "event_types": ["notification.failed", "campaign.finished"],
        },
    )
    assert created.status_code == 201
    assert created.json()["secret"] == secret
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret == secret
    assert endpoint.event_types == ["notification.failed", "campaign.finished"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://hooks.example.com/notify"}, "url"),
        ({"url": "ftp://hooks.example.com/notify"}, "url"),
        ({"url": HOOK, "secret": "not-a-secret"}, "secret"),
        ({"url": HOOK, "secret": "whsec_c2hvcnQ="}, "secret"),
        ({"url": HOOK, "event_types": ["notification.opened"]}, "event_types.0"),
        ({"url": HOOK, "event_types": []}, "event_types"),
        ({"url": HOOK, "secrets": []}, "secrets"),
    ],
)
def test_bad_input_is_a_400_with_the_reason(api, body, field):
    answer = api.post(WEBHOOKS, body)
    assert answer.status_code == 400, answer.json()
    assert field in answer.json()["fields"], answer.json()
    assert not WebhookEndpoint.objects.exists()


def test_the_secret_rule_names_the_whsec_form(api):
    answer = api.post(WEBHOOKS, {"url": HOOK, "secret": "hunter2"})
    assert "whsec_" in answer.json()["fields"]["secret"][0]
    assert "hunter2" not in answer.content.decode()


def test_plain_http_is_taken_with_debug(api, settings):
    settings.DEBUG = True
    answer = api.post(WEBHOOKS, {"url": "http://127.0.0.1:9/hook"})
    assert answer.status_code == 201, answer.json()


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1/hook",
        "https://localhost:8443/hook",
        "https://10.1.2.3/hook",
        "https://192.168.0.10/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[fd00::1]/hook",
        "https://100.64.0.1/hook",
    ],
)
def test_a_host_on_a_private_network_is_a_422(api, settings, url):
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    answer = api.post(WEBHOOKS, {"url": url})
    assert answer.status_code == 422, answer.json()
    assert "private network" in answer.json()["fields"]["url"][0]
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("url", ["https://exa mple/", "https://-bad-.example/", "https://a"])
def test_what_is_not_shaped_as_a_url_is_a_400(api, url):
    assert api.post(WEBHOOKS, {"url": url}).status_code == 400


@pytest.mark.parametrize("url", ["https://999.1.1.1/hook", "https://hooks.example.com:99999/"])
def test_a_url_shaped_right_that_is_not_one_is_a_422(api, url):
    answer = api.post(WEBHOOKS, {"url": url})
    assert answer.status_code == 422, answer.json()
    assert answer.json()["fields"]["url"] == ["Enter a valid URL."]


def test_patch_changes_what_it_names_and_re_enabling_resumes(api, settings):
    endpoint, _ = webhook_endpoint_create(url=HOOK)
    url = f"{WEBHOOKS}/{endpoint.pk}"
    answer = api.patch(url, {"enabled": False, "description": "paused"}, format="json")
    assert answer.status_code == 200
    assert answer.json()["enabled"] is False
    assert "the API key 'shop'" in answer.json()["disabled_reason"]
    assert answer.json()["url"] == HOOK
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False  # the saved URL is not looked up again
    answer = api.patch(url, {"enabled": True}, format="json")
    assert answer.json()["enabled"] is True and answer.json()["disabled_reason"] == ""
    refused = api.patch(url, {"url": "https://10.0.0.1/x"}, format="json")
    assert refused.status_code == 422
    assert api.patch(url, {"url": "http://x.example/"}, format="json").status_code == 400
    assert WebhookEndpoint.objects.get().url == HOOK


def test_rotating_answers_the_new_secret_and_both_sign_for_a_day(api):
    endpoint, old = webhook_endpoint_create(url=HOOK)
    answer = api.post(f"{WEBHOOKS}/{endpoint.pk}/rotate-secret", {})
    assert answer.status_code == 200
    new = answer.json()["secret"]
    assert new != old
    assert answer.json()["secrets"] == [signing.masked(new), signing.masked(old)]
    assert answer.json()["previous_secret_until"] is not None
    answer = api.post(
        f"{WEBHOOKS}/{endpoint.pk}/rotate-secret", {"keep_previous": False}, format="json"
    )
    assert answer.json()["secrets"] == [signing.masked(answer.json()["secret"])]
    assert api.post(f"{WEBHOOKS}/{endpoint.pk}/rotate-secret", {"secret": "x"}).status_code == 400


def test_delete_removes_the_endpoint(api):
    endpoint, _ = webhook_endpoint_create(url=HOOK)
    assert api.delete(f"{WEBHOOKS}/{endpoint.pk}").status_code == 204
    assert api.get(f"{WEBHOOKS}/{endpoint.pk}").status_code == 404
    assert api.delete(f"{WEBHOOKS}/{endpoint.pk}").status_code == 404


def test_deliveries_are_listed_newest_first_and_one_can_be_replayed(api, make_user):
    endpoint, _ = webhook_endpoint_create(url=HOOK)
    user = make_user(email="a@example.com")
    notification = Notification.objects.create(user=user, message="m", status="sending")
    set_status(notification, "sent")
    set_status(notification, "delivered")
    outbox.fan_out()
    WebhookDelivery.objects.filter(event__type="notification.sent").update(
        status="failed", last_status_code=500, last_duration_ms=12, last_response="oops"
    )
    answer = api.get(f"{WEBHOOKS}/{endpoint.pk}/deliveries")
    assert answer.status_code == 200
    newest, oldest = answer.json()["deliveries"]
    assert (newest["event_type"], oldest["event_type"]) == (
        "notification.delivered",
        "notification.sent",
    )
    assert oldest["last_status_code"] == 500 and oldest["last_response"] == "oops"
    assert oldest["notification"] == notification.pk
    assert newest["version"] > oldest["version"]
    failed = api.get(f"{WEBHOOKS}/{endpoint.pk}/deliveries?status=failed&limit=5")
    assert [d["id"] for d in failed.json()["deliveries"]] == [oldest["id"]]
    assert api.get(f"{WEBHOOKS}/{endpoint.pk}/deliveries?limit=0").status_code == 400
    assert api.get(f"{WEBHOOKS}/{endpoint.pk}/deliveries?status=lost").status_code == 400
    replay = api.post(f"{WEBHOOKS}/deliveries/{oldest['id']}/replay")
    assert replay.status_code == 202
    assert replay.json()["replay_of"] == oldest["id"]
    assert replay.json()["webhook_id"] == oldest["webhook_id"]
    assert replay.json()["status"] == "pending"
    endpoint.enabled = False
    endpoint.save()
    refused = api.post(f"{WEBHOOKS}/deliveries/{oldest['id']}/replay")
    assert refused.status_code == 409
    assert api.post(f"{WEBHOOKS}/deliveries/999999/replay").status_code == 404


def test_a_read_only_key_reads_but_does_not_write(make_api_client):
    reader = make_api_client(scope=ApiKey.Scope.READ)
    assert reader.get(WEBHOOKS).status_code == 200
    assert reader.post(WEBHOOKS, {"url": HOOK}).status_code == 403


def test_staff_need_the_admin_permissions(django_user_model):
    staff = django_user_model.objects.create_user("op", is_staff=True)
    client = KeyClient()
    client.force_login(staff)
    assert client.get(WEBHOOKS).status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_webhookendpoint"))
    assert client.get(WEBHOOKS).status_code == 200
    assert client.post(WEBHOOKS, {"url": HOOK}).status_code == 403


def test_the_created_secret_verifies_what_is_signed_for_the_endpoint(api):
    secret = api.post(WEBHOOKS, {"url": HOOK}).json()["secret"]
    endpoint = WebhookEndpoint.objects.get()
    body = b'{"type":"notification.sent"}'
    headers = signing.headers("msg_1", int(time.time()), body, endpoint.signing_secrets())
    assert Webhook(secret).verify(body, headers) == {"type": "notification.sent"}
