"""Webhooks in the admin: bad input is an error beside its field and saves nothing; a new
secret is shown once and masked everywhere after; a disabled endpoint says why; an operator
replays a delivery and rotates a secret."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import Notification
from notifications.webhooks import outbox, signing
from notifications.webhooks.models import EventType, WebhookDelivery, WebhookEndpoint
from notifications.webhooks.services import webhook_endpoint_create
from notifications.webhooks.tests.util import set_status

pytestmark = pytest.mark.django_db

ADD = reverse("admin:webhooks_webhookendpoint_add")
LIST = reverse("admin:webhooks_webhookendpoint_changelist")
DELIVERIES = reverse("admin:webhooks_webhookdelivery_changelist")
HOOK = "https://hooks.example.com/notify"
GOOD = {"url": HOOK, "description": "Shop", "event_types": list(EventType.values), "enabled": "on"}


def errors_of(response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code  # the form again, not a redirect
    form = response.context["adminform"].form
    return {name: list(messages) for name, messages in form.errors.items()}


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"url": "http://hooks.example.com/notify"}, "url", "https://"),
        ({"url": "not a url"}, "url", "valid URL"),
        ({"new_secret": "hunter2"}, "new_secret", "whsec_"),
        ({"new_secret": "whsec_c2hvcnQ="}, "new_secret", "whsec_"),
        ({"event_types": []}, "event_types", "required"),
    ],
)
def test_bad_input_is_refused_beside_its_field(admin_client, changes, field, words):
    errors = errors_of(admin_client.post(ADD, {**GOOD, **changes}))
    assert words in " ".join(errors[field]), errors
    assert not WebhookEndpoint.objects.exists()


def test_a_private_address_is_refused_with_the_reason(admin_client, settings):
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    errors = errors_of(admin_client.post(ADD, {**GOOD, "url": "https://169.254.169.254/x"}))
    assert "private network" in errors["url"][0]


def test_the_new_secret_is_shown_once_then_masked(admin_client):
    page = admin_client.post(ADD, GOOD)
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.secret in page.content.decode()
    signing.validate_secret(endpoint.secret)
    for url in (LIST, reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])):
        html = admin_client.get(url).content.decode()
        assert endpoint.secret not in html
        assert endpoint.secret[6:-4] not in html
        assert signing.masked(endpoint.secret) in html


def test_a_typed_secret_is_kept(admin_client):
    secret = signing.secret_make()
    admin_client.post(ADD, {**GOOD, "new_secret": secret})
    assert WebhookEndpoint.objects.get().secret == secret


def test_a_new_secret_on_the_change_page_rotates(admin_client):
    endpoint, old = webhook_endpoint_create(url=HOOK)
    new = signing.secret_make()
    change = reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])
    answer = admin_client.post(change, {**GOOD, "new_secret": new})
    assert answer.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.signing_secrets() == [new, old]
    admin_client.post(change, {**GOOD, "end_rotation": "on"})
    endpoint.refresh_from_db()
    assert endpoint.signing_secrets() == [new]


def test_a_disabled_endpoint_says_why_in_the_list_and_on_its_page(admin_client):
    endpoint, _ = webhook_endpoint_create(url=HOOK)
    reason = "Disabled automatically: delivery #7 failed 8 times. The last try: HTTP 500"
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        enabled=False, disabled_at=timezone.now(), disabled_reason=reason
    )
    assert reason in admin_client.get(LIST).content.decode()
    page = admin_client.get(reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk]))
    assert page.content.decode().count(reason) >= 2  # the warning and the field


def test_actions_enable_disable_and_rotate(admin_client):
    endpoint, old = webhook_endpoint_create(url=HOOK)
    selected = {"_selected_action": [endpoint.pk]}
    admin_client.post(LIST, {**selected, "action": "disable_selected"})
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "admin" in endpoint.disabled_reason
    admin_client.post(LIST, {**selected, "action": "enable_selected"})
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.disabled_reason == ""
    page = admin_client.post(LIST, {**selected, "action": "rotate_secrets"})
    endpoint.refresh_from_db()
    assert endpoint.secret != old and endpoint.secret in page.content.decode()
    assert endpoint.signing_secrets() == [endpoint.secret, old]


def test_deliveries_show_their_tries_and_can_be_replayed(admin_client, make_user):
    endpoint, _ = webhook_endpoint_create(url=HOOK)
    user = make_user(email="a@example.com")
    notification = Notification.objects.create(user=user, message="m", status="sending")
    set_status(notification, "failed")
    outbox.fan_out()
    delivery = WebhookDelivery.objects.get()
    delivery.history.create(
        number=1,
        started_at=timezone.now(),
        outcome="server_error",
        status_code=503,
        duration_ms=41,
        response="maintenance",
        error="HTTP 503 Service Unavailable",
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(
        attempts=1, last_status_code=503, last_duration_ms=41, last_response="maintenance"
    )
    listing = admin_client.get(DELIVERIES).content.decode()
    assert "503" in listing and str(notification.pk) in listing
    page = admin_client.get(reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]))
    html = unescape(page.content.decode())
    assert "maintenance" in html and "HTTP 503 Service Unavailable" in html
    assert f"msg_{delivery.event_id}" in html and '"status": "failed"' in html
    endpoint_page = admin_client.get(
        reverse("admin:webhooks_webhookendpoint_change", args=[endpoint.pk])
    ).content.decode()
    assert reverse("admin:webhooks_webhookdelivery_change", args=[delivery.pk]) in endpoint_page
    admin_client.post(DELIVERIES, {"_selected_action": [delivery.pk], "action": "replay_selected"})
    replay = WebhookDelivery.objects.exclude(pk=delivery.pk).get()
    assert (replay.replay_of, replay.event_id, replay.status) == (
        delivery.pk,
        delivery.event_id,
        WebhookDelivery.Status.PENDING,
    )
