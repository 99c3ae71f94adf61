"""Digests, in process against the fakes: items with a key join one digest per user,
category and key, sent once at the end of the category's window as one message with their
count; each item shows the digest that carried it and the channel; a single item goes as
itself; an item arriving after the digest was claimed opens the next one; a failed digest is
retried as one message; cancelled items stay out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from notifications import delivery, services
from notifications.models import Notification, Template
from notifications.preferences.models import Category

pytestmark = pytest.mark.django_db(transaction=True)

Status = Notification.Status


@pytest.fixture
def comments() -> Category:
    return Category.objects.create(
        key="comments", name_en="Comments", digest_window=timedelta(minutes=15)
    )


def item(user, text: str, category, key: str = "post-1", **kwargs) -> Notification:
    return services.notification_create(
        user=user, message=text, category=category, digest_key=key, **kwargs
    )


def run_digest(digest_id: int) -> Notification:
    """The window ends: the digest is due and a worker takes it."""
    Notification.objects.filter(pk=digest_id).update(next_attempt_at=timezone.now())
    delivery.deliver_now([digest_id])
    return Notification.objects.get(pk=digest_id)


def test_items_join_one_digest_sent_once_at_the_end_of_the_window(
    chain, telegram, make_user, comments
):
    user = make_user(telegram_chat_id="91")
    before = timezone.now()
    items = [item(user, f"Bob commented: nice {n}", comments) for n in range(3)]
    digest_id = Notification.objects.get(pk=items[0].pk).digest_id
    digest = Notification.objects.get(pk=digest_id)
    assert digest.digest_size == 3 and digest.status == Status.SCHEDULED
    assert before + timedelta(minutes=15) <= digest.next_attempt_at
    assert digest.next_attempt_at <= timezone.now() + timedelta(minutes=15)
    assert {n.digest_id for n in Notification.objects.filter(pk__in=[i.pk for i in items])} == {
        digest_id
    }
    assert all(i.status == Status.BATCHED for i in items)
    delivery.deliver_now([digest_id])  # not due yet: nothing goes
    assert telegram.messages == []

    digest = run_digest(digest_id)

    assert (digest.status, digest.channel) == (Status.SENT, "telegram")
    (message,) = telegram.delivered_to("91")
    assert message.splitlines() == [
        "3 new notifications:",
        "• Bob commented: nice 0",
        "• Bob commented: nice 1",
        "• Bob commented: nice 2",
    ]
    for sent in Notification.objects.filter(pk__in=[i.pk for i in items]):
        assert (sent.status, sent.channel, sent.digest_id) == (Status.SENT, "telegram", digest_id)
        assert sent.sent_at == digest.sent_at
        assert sent.last_error.startswith(f"in digest #{digest_id}")
    run_digest(digest_id)  # a second doorbell: nothing more
    assert len(telegram.delivered_to("91")) == 1


def test_a_digest_of_one_item_is_sent_as_that_item(chain, telegram, smtp, make_user, comments):
    user = make_user(email="one@example.com")
    only = item(user, "Only one comment", comments, subject="A comment")
    digest = run_digest(Notification.objects.get(pk=only.pk).digest_id)
    assert digest.status == Status.SENT
    (mail,) = smtp.received
    assert mail.message["Subject"] == "A comment"
    assert mail.body.strip() == "Only one comment"


def test_an_item_arriving_after_the_digest_was_claimed_opens_the_next_one(
    chain, telegram, make_user, comments, monkeypatch
):
    user = make_user(telegram_chat_id="92")
    first = item(user, "first", comments)
    digest_id = Notification.objects.get(pk=first.pk).digest_id
    Notification.objects.filter(pk=digest_id).update(next_attempt_at=timezone.now())
    (job,) = delivery.claim([digest_id])  # claimed: its items are fixed now
    late = item(user, "late", comments)
    delivery.run_to_end(job)
    late.refresh_from_db()
    assert late.digest_id not in (None, digest_id)
    assert late.status == Status.BATCHED
    assert telegram.delivered_to("92") == ["first"]
    run_digest(late.digest_id)
    assert telegram.delivered_to("92") == ["first", "late"]


def test_digests_are_per_user_category_and_key(chain, telegram, make_user, comments):
    ann, bob = make_user(telegram_chat_id="93"), make_user(telegram_chat_id="94")
    keys = {
        item(ann, "a1", comments, "post-1").pk,
        item(ann, "a2", comments, "post-2").pk,
        item(bob, "b1", comments, "post-1").pk,
    }
    digests = set(Notification.objects.filter(pk__in=keys).values_list("digest_id", flat=True))
    assert len(digests) == 3


def test_a_failed_digest_is_retried_as_one_message(chain, telegram, make_user, comments):
    user = make_user(telegram_chat_id="95")
    items = [item(user, f"c{n}", comments) for n in range(2)]
    digest_id = Notification.objects.get(pk=items[0].pk).digest_id
    telegram.per_chat["95"] = "500"
    digest = run_digest(digest_id)
    assert digest.status == Status.QUEUED  # a later round
    assert all(i.status == Status.BATCHED for i in Notification.objects.filter(digest_id=digest_id))
    telegram.per_chat.pop("95")
    digest = run_digest(digest_id)
    assert digest.status == Status.SENT
    assert telegram.delivered_to("95") == ["2 new notifications:\n• c0\n• c1"]


def test_a_cancelled_item_stays_out_and_a_cancelled_digest_takes_its_items(
    chain, telegram, make_user, comments
):
    user = make_user(telegram_chat_id="96")
    keep, drop = item(user, "keep", comments), item(user, "drop", comments)
    services.notifications_cancel(queryset=Notification.objects.filter(pk=drop.pk))
    digest = run_digest(Notification.objects.get(pk=keep.pk).digest_id)
    assert digest.status == Status.SENT
    assert telegram.delivered_to("96") == ["keep"]
    assert Notification.objects.get(pk=drop.pk).status == Status.CANCELLED

    other = item(user, "other", comments, "post-9")
    digest_id = Notification.objects.get(pk=other.pk).digest_id
    services.notifications_cancel(queryset=Notification.objects.filter(pk=digest_id))
    assert Notification.objects.get(pk=other.pk).status == Status.CANCELLED


def test_a_templates_digest_text_names_the_count_and_the_items(
    chain, telegram, make_user, comments
):
    template = Template.objects.create(
        key="comment",
        name="Comment",
        category=comments,
        digest_key="post",
        telegram_text_en="{{ who }} commented",
        email_subject_en="A comment",
        email_text_en="{{ who }} commented",
        sms_text_en="{{ who }} commented",
        digest_text_en=(
            "{{ count }} new comments on your post:{% for item in items %}\n"
            "- {{ item.message }}{% endfor %}"
        ),
    )
    user = make_user(telegram_chat_id="97")
    for who in ("Ann", "Bob"):
        services.notification_create(user=user, template=template, context={"who": who})
    digest_id = Notification.objects.filter(user=user).exclude(digest_id=None).first().digest_id
    run_digest(digest_id)
    assert telegram.delivered_to("97") == [
        "2 new comments on your post:\n- Ann commented\n- Bob commented"
    ]


def test_a_digest_key_needs_a_category_with_a_window(chain, make_user):
    plain = Category.objects.create(key="plain", name_en="Plain")
    with pytest.raises(ValidationError, match="collects no digests"):
        item(make_user(), "x", plain)
    assert not Notification.objects.exists()
