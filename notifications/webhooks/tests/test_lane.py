"""The webhook lane against a real receiver on 127.0.0.1: what arrives (signed, verified by
the reference library), how each bad answer is recorded and retried with the same id, when
an endpoint is disabled, and that no delivery is lost or sent twice — also with two lanes
at once, and after a lane died holding a claim. The lane runs in the test process here;
``test_e2e`` runs the real consumer's."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import Campaign, Notification
from notifications.tests.fixtures import wait_for
from notifications.webhooks import outbox
from notifications.webhooks.models import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from notifications.webhooks.services import (
    webhook_deliveries_replay,
    webhook_endpoint_rotate_secret,
)
from notifications.webhooks.tests.receiver import Answer, WebhookReceiver
from notifications.webhooks.tests.util import set_status
from notifications.webhooks.transport import RESPONSE_LIMIT

Status = Notification.Status
Delivery = WebhookDelivery.Status
Outcome = WebhookAttempt.Outcome


@pytest.fixture
def notifications(make_user):
    """``notifications(n)``: n notifications being sent, to one user."""
    user = make_user(email="a@example.com")

    def make(n: int = 1, **fields) -> list[Notification]:
        return [
            Notification.objects.create(user=user, message=f"m{i}", status="sending", **fields)
            for i in range(n)
        ]

    return make


def finished() -> bool:
    """Every event fanned out, and every delivery ended."""
    if outbox.unfanned().exists():
        return False
    rows = WebhookDelivery.objects.all()
    return rows.exists() and not rows.filter(status=Delivery.PENDING).exists()


def test_an_event_arrives_signed_verified_and_recorded(
    webhook_receiver, make_endpoint, notifications, run_lane
):
    _, secret = make_endpoint(webhook_receiver.url)
    [notification] = notifications()
    set_status(notification, Status.SENT, channel="email", sent_at=timezone.now())
    run_lane()
    wait_for(lambda: webhook_receiver.count() == 1 and finished(), what="one delivery")
    [payload] = webhook_receiver.verified(secret)
    event = WebhookEvent.objects.get()
    assert payload["type"] == "notification.sent"
    assert payload["data"]["id"] == notification.pk
    assert payload["data"]["status"] == "sent"
    assert payload["data"]["channel"] == "email"
    assert payload["data"]["version"] == event.pk
    [request] = webhook_receiver.requests()
    assert request.path == "/hooks/notify"
    assert request.id == event.message_id
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("notification-service-webhooks/")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == (
        Delivery.SUCCEEDED,
        1,
        200,
    )
    assert delivery.last_response == "ok"
    assert delivery.lease_expires_at is None and delivery.finished_at is not None
    assert delivery.last_duration_ms is not None
    assert not delivery.history.exists()  # taken at once: the delivery is its own record


def test_while_a_secret_rotates_both_secrets_verify(
    webhook_receiver, make_endpoint, notifications, run_lane
):
    endpoint, old = make_endpoint(webhook_receiver.url)
    new = webhook_endpoint_rotate_secret(endpoint=endpoint)
    set_status(notifications()[0], Status.FAILED)
    run_lane()
    wait_for(lambda: webhook_receiver.count() == 1, what="the delivery")
    assert webhook_receiver.verified(old) == webhook_receiver.verified(new)
    assert len(webhook_receiver.requests()[0].headers["webhook-signature"].split()) == 2


def test_a_failing_endpoint_gets_retries_with_the_same_id_until_it_answers(
    webhook_receiver, make_endpoint, notifications, run_lane
):
    _, secret = make_endpoint(webhook_receiver.url)
    webhook_receiver.answer(Answer(status=500), Answer(status=503))
    set_status(notifications()[0], Status.SENT)
    lane = run_lane()
    wait_for(finished, what="the delivery to succeed")
    lane.stop()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Delivery.SUCCEEDED
    requests = webhook_receiver.requests()
    assert len(requests) == 3  # nothing after the success
    assert {r.id for r in requests} == {delivery.event.message_id}
    assert len(webhook_receiver.verified(secret)) == 3
    assert list(delivery.history.values_list("number", "outcome", "status_code")) == [
        (1, Outcome.SERVER_ERROR, 500),
        (2, Outcome.SERVER_ERROR, 503),
        (3, Outcome.SUCCESS, 200),
    ]
    assert WebhookEndpoint.objects.get().enabled


def test_every_bad_answer_is_recorded_truncated_and_retried(
    webhook_receiver, make_endpoint, notifications, run_lane, settings
):
    settings.NOTIFY_WEBHOOK_RETRY_SCHEDULE = [0.1] * 6
    elsewhere = WebhookReceiver()
    try:
        make_endpoint(webhook_receiver.url)
        webhook_receiver.answer(
            Answer(status=302, location=elsewhere.url),
            Answer(status=404, body=b"n" * 5000),
            Answer(status=500, body="ошибка".encode() * 400),
            Answer(status=502, huge=True),
            Answer(hang=True),
        )
        set_status(notifications()[0], Status.SENT)
        run_lane()
        wait_for(finished, what="the delivery to succeed at the sixth try")
        assert elsewhere.count() == 0  # the redirect was not followed
    finally:
        elsewhere.close()
    delivery = WebhookDelivery.objects.get()
    tries = list(delivery.history.all())
    assert [t.outcome for t in tries] == [
        Outcome.REDIRECT,
        Outcome.CLIENT_ERROR,
        Outcome.SERVER_ERROR,
        Outcome.SERVER_ERROR,
        Outcome.TIMEOUT,
        Outcome.SUCCESS,
    ]
    assert [t.status_code for t in tries] == [302, 404, 500, 502, None, 200]
    assert elsewhere.url in tries[0].error
    assert tries[1].response == "n" * RESPONSE_LIMIT
    assert len(tries[2].response.encode()) <= RESPONSE_LIMIT + 3  # a cut character replaced
    assert tries[2].response.startswith("ошибка")
    assert len(tries[3].response) == RESPONSE_LIMIT
    assert "no answer within" in tries[4].error
    assert len({r.id for r in webhook_receiver.requests()}) == 1
    assert delivery.status == Delivery.SUCCEEDED


def test_an_endpoint_that_never_takes_one_is_disabled_with_the_reason(
    webhook_receiver, make_endpoint, notifications, run_lane, fast_retries
):
    webhook_receiver.default = Answer(status=500, body=b"down for maintenance")
    endpoint, _ = make_endpoint(webhook_receiver.url)
    first, second = notifications(2)
    set_status(first, Status.SENT)
    run_lane()
    wait_for(lambda: not WebhookEndpoint.objects.get().enabled, what="the endpoint disabled")
    endpoint.refresh_from_db()
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == Delivery.FAILED
    assert delivery.attempts == len(fast_retries) + 1
    assert webhook_receiver.count() == len(fast_retries) + 1
    assert f"failed {len(fast_retries) + 1} times" in endpoint.disabled_reason
    assert "HTTP 500" in endpoint.disabled_reason
    assert endpoint.disabled_at is not None
    set_status(second, Status.SENT)  # a disabled endpoint gets no new events
    assert outbox.fan_out() == 0 and WebhookDelivery.objects.count() == 1


def test_one_event_it_refuses_does_not_disable_an_endpoint_that_takes_others(
    webhook_receiver, make_endpoint, notifications, run_lane, fast_retries
):
    make_endpoint(webhook_receiver.url)
    taken, refused = notifications(2)
    set_status(taken, Status.SENT)
    set_status(refused, Status.SENT)
    webhook_receiver.answer(Answer(status=200), *[Answer(status=422)] * len(fast_retries) * 2)
    run_lane(threads=1)
    wait_for(finished, what="both deliveries to end")
    assert sorted(WebhookDelivery.objects.values_list("status", flat=True)) == [
        Delivery.FAILED,
        Delivery.SUCCEEDED,
    ]
    assert WebhookEndpoint.objects.get().enabled


def test_an_address_on_a_private_network_is_refused_at_send(
    webhook_receiver, make_endpoint, notifications, run_lane, settings
):
    make_endpoint(webhook_receiver.url)  # saved while private addresses were allowed
    settings.NOTIFY_WEBHOOK_ALLOW_PRIVATE = False
    set_status(notifications()[0], Status.SENT)
    run_lane()
    wait_for(lambda: WebhookAttempt.objects.exists(), what="a try")
    attempt = WebhookAttempt.objects.first()
    assert attempt.outcome == Outcome.REFUSED
    assert "127.0.0.1" in attempt.error
    assert webhook_receiver.count() == 0


def test_two_lanes_send_each_delivery_once(
    webhook_receiver, make_endpoint, notifications, run_lane
):
    other = WebhookReceiver()
    try:
        _, secret = make_endpoint(webhook_receiver.url)
        _, other_secret = make_endpoint(other.url, event_types=["notification.sent"])
        for notification in notifications(40):
            set_status(notification, Status.SENT)
        assert outbox.fan_out() == 40
        assert WebhookDelivery.objects.count() == 80
        run_lane(threads=3)
        run_lane(threads=3)
        wait_for(finished, what="all 80 deliveries")
        for receiver, key in ((webhook_receiver, secret), (other, other_secret)):
            sent = Counter(r.id for r in receiver.requests())
            assert len(sent) == 40 and set(sent.values()) == {1}
            assert len(receiver.verified(key)) == 40
    finally:
        other.close()
    assert set(WebhookDelivery.objects.values_list("attempts", flat=True)) == {1}


def test_a_claim_left_by_a_dead_lane_is_sent_after_its_lease(
    webhook_receiver, make_endpoint, notifications, run_lane
):
    make_endpoint(webhook_receiver.url)
    set_status(notifications()[0], Status.SENT)
    outbox.fan_out()
    batch = outbox.claim(lambda endpoint: 10)  # and the lane that claimed it dies
    assert batch is not None and len(batch.deliveries) == 1
    assert outbox.claim(lambda endpoint: 10) is None  # held while the lease holds
    WebhookDelivery.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    run_lane()
    wait_for(finished, what="the delivery")
    assert webhook_receiver.count() == 1
    assert outbox.record(batch, [], []) == []  # the dead lane's late record changes nothing
    assert WebhookDelivery.objects.get().status == Delivery.SUCCEEDED


def test_claims_take_each_due_delivery_once_oldest_first_and_only_due_ones(
    make_endpoint, notifications, db
):
    make_endpoint("https://hooks.example.com/x")
    for notification in notifications(5):
        set_status(notification, Status.SENT)
    outbox.fan_out()
    later = WebhookDelivery.objects.order_by("id").last()
    WebhookDelivery.objects.filter(pk=later.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)  # a retry not due yet
    )
    first = outbox.claim(lambda endpoint: 2)
    second = outbox.claim(lambda endpoint: 2)
    taken = [d.pk for d in first.deliveries] + [d.pk for d in second.deliveries]
    assert taken == list(WebhookDelivery.objects.exclude(pk=later.pk).order_by("id").values_list(
        "id", flat=True
    ))  # fmt: skip
    assert outbox.claim(lambda endpoint: 2) is None  # the rest is leased, or not due
    assert all(d.attempts == 1 and d.lease_expires_at == first.lease for d in first.deliveries)
    assert WebhookDelivery.objects.get(pk=later.pk).attempts == 0


def test_a_claim_told_an_endpoint_another_lane_emptied_takes_the_next_ones_due(
    make_endpoint, notifications, db
):
    """The lane looks for the endpoint due first, then claims it: if another lane took its
    deliveries in between, the claim takes the next endpoint's, not nothing; an endpoint
    the lane may not post to now (``exclude``) is looked past, hint or not."""
    first, _ = make_endpoint("https://hooks.example.com/first")
    second, _ = make_endpoint("https://hooks.example.com/second")
    for notification in notifications(2):
        set_status(notification, Status.SENT)
    outbox.fan_out()
    assert WebhookDelivery.objects.count() == 4
    assert outbox.next_endpoint() in (first.pk, second.pk)
    seen = outbox.next_endpoint()
    other = second.pk if seen == first.pk else first.pk
    taken = outbox.claim(lambda endpoint: 10, endpoint_id=seen)  # the other lane
    assert {d.endpoint_id for d in taken.deliveries} == {seen}
    late = outbox.claim(lambda endpoint: 10, endpoint_id=seen)  # this lane, told the same
    assert late is not None and {d.endpoint_id for d in late.deliveries} == {other}
    assert len(late.deliveries) == 2
    assert outbox.claim(lambda endpoint: 10, endpoint_id=seen) is None  # nothing left due
    outbox.record(late, [], late.deliveries)  # given back: due again
    assert outbox.claim(lambda endpoint: 10, exclude=[other], endpoint_id=other) is None


def test_deliveries_a_lane_did_not_try_go_back_at_once(make_endpoint, notifications, db):
    make_endpoint("https://hooks.example.com/x")
    for notification in notifications(3):
        set_status(notification, Status.SENT)
    outbox.fan_out()
    batch = outbox.claim(lambda endpoint: 10)
    assert len(batch.deliveries) == 3
    outbox.record(batch, [], batch.deliveries)
    assert set(WebhookDelivery.objects.values_list("attempts", "lease_expires_at")) == {(0, None)}
    assert len(outbox.claim(lambda endpoint: 10).deliveries) == 3


def test_a_replay_sends_the_same_message_again(
    webhook_receiver, make_endpoint, notifications, run_lane
):
    _, secret = make_endpoint(webhook_receiver.url)
    set_status(notifications()[0], Status.CANCELLED)
    run_lane()
    wait_for(finished, what="the delivery")
    original = WebhookDelivery.objects.get()
    result = webhook_deliveries_replay(queryset=WebhookDelivery.objects.filter(pk=original.pk))
    assert [d.replay_of for d in result.replayed] == [original.pk]
    wait_for(lambda: webhook_receiver.count() == 2 and finished(), what="the replay")
    first, again = webhook_receiver.verified(secret)
    assert first == again
    assert len({r.id for r in webhook_receiver.requests()}) == 1


def test_campaign_finished_is_sent_once_when_the_last_notification_ends(
    webhook_receiver, make_endpoint, notifications, run_lane
):
    _, secret = make_endpoint(webhook_receiver.url, event_types=["campaign.finished"])
    campaign = Campaign.objects.create(name="Sale", state=Campaign.State.READY, recipients=3)
    first, second, third = notifications(3, campaign=campaign)
    set_status(first, Status.SENT)
    set_status(second, Status.FAILED)
    assert outbox.finish_campaigns() == 0  # one still waiting
    set_status(third, Status.DELIVERED)
    run_lane()
    wait_for(lambda: webhook_receiver.count() == 1 and finished(), what="campaign.finished")
    [payload] = webhook_receiver.verified(secret)
    assert payload["type"] == "campaign.finished"
    assert payload["data"]["id"] == campaign.pk
    assert payload["data"]["notifications"]["sent"] == 1
    assert payload["data"]["notifications"]["failed"] == 1
    assert payload["data"]["notifications"]["delivered"] == 1
    set_status(third, Status.UNDELIVERED)  # a late receipt: watched again, but sent once
    assert outbox.finish_campaigns() == 0
    assert WebhookEvent.objects.filter(type="campaign.finished").count() == 1
