"""Postmark's tracking webhooks, as Postmark sends them, posted over a real socket to
django-anymail's own view under /anymail/, with the email channel on anymail's Postmark
backend (a fake of Postmark's API): a delivery marks the email delivered, a hard bounce or a
spam complaint suppresses the address at once, soft bounces after NOTIFY_SOFT_BOUNCE_LIMIT of
them; wrong credentials get 401, a malformed body 400, and a well-formed event that means
nothing here 200 and changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from notifications.models import DeliveryAttempt, Notification, ReceiptStatus
from notifications.operations import metrics
from notifications.suppression import tracking
from notifications.suppression.models import Suppression, TrackingEvent
from notifications.suppression.services import suppression_lift
from notifications.suppression.tests import postmark
from notifications.suppression.tests.helpers import attempts, send
from notifications.tests.fakes.postmark import FakePostmark

pytestmark = pytest.mark.django_db(transaction=True)

Status = Notification.Status
Outcome = DeliveryAttempt.Outcome
PHONE = "+79161234567"


@pytest.fixture
def postmark_api(mail_chain, webhook_secret):
    """Email through anymail's Postmark backend to a fake of Postmark's API; SMS behind it."""
    fake = FakePostmark().start()
    mail_chain.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    mail_chain.ANYMAIL = {
        **mail_chain.ANYMAIL,
        "POSTMARK_SERVER_TOKEN": fake.token,
        "POSTMARK_API_URL": fake.url,
    }
    yield fake
    fake.stop()


@pytest.fixture
def hook(http, live_server):
    """Post one Postmark webhook to the service; the response."""

    def post(payload=None, **kwargs):
        return postmark.post(http, live_server.url, payload, **kwargs)

    return post


def counted(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_delivery_event_marks_the_email_delivered(postmark_api, hook, make_user):
    notification = send(make_user(email="ann@example.com"))
    (mail,) = postmark_api.sent
    assert (notification.status, notification.channel) == (Status.SENT, "email")
    response = hook(postmark.delivery(mail["MessageID"], "ann@example.com"))
    assert response.status_code == 200
    assert tracking.process() == {"delivered": 1}
    notification.refresh_from_db()
    attempt = notification.attempts.get(channel="email")
    assert notification.status == Status.DELIVERED
    assert (attempt.receipt_status, attempt.receipt_at) == (
        ReceiptStatus.DELIVERED,
        datetime(2026, 12, 3, 16, 33, 54, tzinfo=UTC),
    )
    assert TrackingEvent.objects.count() == 0  # worked off: nothing left to keep
    assert Suppression.objects.count() == 0


def test_a_hard_bounce_suppresses_the_address_and_the_next_one_goes_by_sms(
    postmark_api, hook, sms_smtp, make_user
):
    user = make_user(email="Ann@Example.com", phone=PHONE)
    first = send(user, channels=["email"])
    (mail,) = postmark_api.sent
    before = counted("notify_suppressions_total", reason="hard_bounce")
    payload = postmark.bounce("Ann@Example.com", message_id=mail["MessageID"])
    assert hook(payload).status_code == 200
    assert tracking.process() == {"suppressed": 1}

    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason, suppression.active) == (
        "ann@example.com",
        Suppression.Reason.HARD_BOUNCE,
        True,
    )
    assert (suppression.provider, suppression.event_type, suppression.event_id) == (
        "Postmark",
        "bounced",
        "4323372036854775807",
    )
    assert suppression.occurred_at == datetime(2026, 12, 3, 16, 33, 54, 907025, tzinfo=UTC)
    assert suppression.provider_event == payload
    assert "unknown user, mailbox not found" in suppression.detail
    assert counted("notify_suppressions_total", reason="hard_bounce") == before + 1
    # The email it bounced is undelivered.
    first.refresh_from_db()
    assert first.status == Status.UNDELIVERED
    assert first.last_error.startswith("not delivered, says Postmark (hard bounce: The server")

    second = send(user)
    assert (second.status, second.channel) == (Status.SENT, "sms")
    assert len(postmark_api.sent) == 1  # nothing more to the dead address
    assert [r.rcpt_tos for r in sms_smtp.received] == [["79161234567@sms.example.net"]]
    assert attempts(second)[1][:2] == ("email", Outcome.SKIPPED)
    assert attempts(second)[1][2].startswith("suppressed: hard bounce on 3 Dec")


def test_a_spam_complaint_suppresses_the_address_and_leaves_the_email_delivered(
    postmark_api, hook, make_user
):
    notification = send(make_user(email="ann@example.com"))
    (mail,) = postmark_api.sent
    assert hook(postmark.delivery(mail["MessageID"], "ann@example.com")).status_code == 200
    complaint = postmark.spam_complaint("ann@example.com", message_id=mail["MessageID"])
    assert hook(complaint).status_code == 200
    assert tracking.process() == {"delivered": 1, "suppressed": 1}
    notification.refresh_from_db()
    assert notification.status == Status.DELIVERED
    suppression = Suppression.objects.get()
    assert (suppression.reason, suppression.event_type, suppression.event_id) == (
        Suppression.Reason.COMPLAINT,
        "complained",
        "42",
    )


def test_a_bounce_sent_again_is_stored_and_counted_once(postmark_api, hook):
    payload = postmark.bounce("bob@example.com")
    before = counted("notify_email_events_total", kind="hard_bounce")
    for _ in range(3):
        assert hook(payload).status_code == 200
    assert TrackingEvent.objects.count() == 1
    assert counted("notify_email_events_total", kind="hard_bounce") == before + 1
    assert tracking.process() == {"suppressed": 1}
    assert hook(payload).status_code == 200  # after it was worked off: changes nothing
    assert tracking.process() == {"suppressed already": 1}
    assert Suppression.objects.count() == 1


def soft(address: str, n: int, days_ago: float = 0.0) -> dict:
    at = timezone.now() - timedelta(days=days_ago)
    return postmark.bounce(
        address,
        kind="SoftBounce" if n % 2 else "Transient",  # Postmark's soft ones: both kinds
        event_id=1000 + n,
        bounced_at=at.isoformat().replace("+00:00", "Z"),
    )


def test_soft_bounces_suppress_after_the_limit_within_the_window(postmark_api, hook, settings):
    settings.NOTIFY_SOFT_BOUNCE_LIMIT, settings.NOTIFY_SOFT_BOUNCE_DAYS = 3, 7
    address = "carol@example.com"
    assert hook(soft(address, 1, days_ago=8)).status_code == 200  # outside the window
    assert hook(soft(address, 2, days_ago=3)).status_code == 200
    assert hook(soft(address, 3, days_ago=1)).status_code == 200
    assert hook(soft(address, 3, days_ago=1)).status_code == 200  # the same one again
    assert tracking.process() == {"counted": 3}
    assert Suppression.objects.count() == 0
    assert hook(soft(address, 4)).status_code == 200
    assert tracking.process() == {"suppressed": 1}
    suppression = Suppression.objects.get()
    assert suppression.reason == Suppression.Reason.SOFT_BOUNCES
    assert suppression.detail.startswith("3 soft bounces in 7 days; the last: ")
    # Soft bounces stay, counted, until retention forgets them.
    assert TrackingEvent.objects.filter(kind=TrackingEvent.Kind.SOFT_BOUNCE).count() == 4


def test_after_a_lift_only_new_soft_bounces_count(postmark_api, hook, settings, admin_user):
    settings.NOTIFY_SOFT_BOUNCE_LIMIT = 2
    address = "dan@example.com"
    for n in (1, 2):
        hook(soft(address, n, days_ago=1))
    tracking.process()
    assert suppression_lift(suppressions=Suppression.objects.all(), user=admin_user) == 1
    hook(soft(address, 3))
    assert tracking.process() == {"counted": 1}
    assert not Suppression.objects.filter(lifted_at__isnull=True).exists()
    hook(soft(address, 4))
    assert tracking.process() == {"suppressed": 1}
    assert Suppression.objects.count() == 2  # the lifted one kept, a new one active


def test_a_delivery_that_raced_its_send_waits_for_it_then_gives_up(postmark_api, hook):
    assert hook(postmark.delivery("not-recorded-yet")).status_code == 200
    assert tracking.process() == {"waiting": 1}
    later = timezone.now() + timedelta(seconds=tracking.DELIVERY_WAIT_SECONDS + 1)
    assert tracking.process(now=later) == {"unmatched": 1}
    assert TrackingEvent.objects.count() == 0


def test_wrong_or_missing_credentials_get_401_and_change_nothing(postmark_api, hook):
    payload = postmark.bounce("eve@example.com")
    for secret in ("postmark-hook:wrong", None, "someone:" + postmark.SECRET):
        response = hook(payload, secret=secret)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert TrackingEvent.objects.count() == 0
    assert Suppression.objects.count() == 0


def test_without_a_secret_the_webhook_is_not_there(postmark_api, hook, settings):
    settings.ANYMAIL = {k: v for k, v in settings.ANYMAIL.items() if k != "WEBHOOK_SECRET"}
    assert hook(postmark.bounce("eve@example.com")).status_code == 404
    assert TrackingEvent.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b"\xff\xfe", b'["Bounce"]', b'"Bounce"', b"42"],
    ids=["broken", "empty", "not utf-8", "a list", "a string", "a number"],
)
def test_a_malformed_body_gets_400_and_suppresses_nothing(postmark_api, hook, body):
    assert hook(body=body).status_code == 400
    assert TrackingEvent.objects.count() == 0
    assert Suppression.objects.count() == 0


@pytest.mark.parametrize(
    "payload",
    [
        postmark.open_event("abc", "ann@example.com"),
        {},
        {"RecordType": "Bounce"},  # no address, no type
        {**postmark.bounce(), "Email": None},
        {**postmark.bounce(), "Email": "not an address"},
        {**postmark.bounce(), "Type": "SomethingNew"},
        postmark.bounce(kind="DMARCPolicy"),  # our domain's policy, not the address
        {**postmark.delivery(""), "MessageID": None},
        {"RecordType": "SubscriptionChange", "SuppressSending": False, "Recipient": "a@b.c"},
    ],
    ids=[
        "open",
        "empty object",
        "bare bounce",
        "no email",
        "not an address",
        "unknown type",
        "dmarc",
        "delivery without id",
        "reactivated",
    ],
)
def test_a_well_formed_event_that_means_nothing_here_gets_200_and_changes_nothing(
    postmark_api, hook, payload
):
    response = hook(payload)
    assert response.status_code == 200
    tracking.process()
    assert Suppression.objects.count() == 0
    assert DeliveryAttempt.objects.exclude(receipt_status="").count() == 0


def test_a_bounce_with_odd_fields_still_suppresses(postmark_api, hook):
    payload = {**postmark.bounce(" Zed@Example.com "), "BouncedAt": "yesterday", "ID": [1]}
    before = timezone.now()
    assert hook(payload).status_code == 200
    assert tracking.process() == {"suppressed": 1}
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.event_id) == ("zed@example.com", "[1]")
    assert suppression.occurred_at >= before  # no time given: when it was heard of
