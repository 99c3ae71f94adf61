"""Making a campaign's notifications chunk by chunk: a fixed number of queries per chunk,
those who can't be reached listed with why, a changelist filter re-evaluated, a second
filler backing off, a creation resumed where it stopped."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.composing import CampaignFiller, notification_build
from notifications.models import Campaign, CampaignSkip, Notification, Template, UserContact

pytestmark = pytest.mark.django_db
User = get_user_model()
Status = Notification.Status


def users(count: int, prefix: str = "u", **contact) -> list:
    created = User.objects.bulk_create(
        User(username=f"{prefix}{i}", email=f"{prefix}{i}@example.com") for i in range(count)
    )
    UserContact.objects.bulk_create(UserContact(user=user, **contact) for user in created)
    return created


def campaign(audience: list, **fields) -> Campaign:
    values = {
        "name": "c",
        "message": "Maintenance tonight",
        "audience_ids": [u.pk for u in audience],
    }
    values.update(fields)
    return Campaign.objects.create(**values)


def fill(campaign: Campaign, chunk: int = 1000) -> list:
    filler = CampaignFiller(campaign.pk, chunk=chunk)
    steps = []
    while True:
        steps.append(filler.step())
        if steps[-1].done:
            return steps


def test_a_chunk_costs_the_same_queries_for_5_or_500_recipients():
    counts = []
    for size in (5, 500):
        target = campaign(users(size, prefix=f"s{size}-"))
        with CaptureQueriesContext(connection) as queries:
            step = CampaignFiller(target.pk, chunk=1000).step()
        assert step.done and step.created == size
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_every_recipient_gets_one_queued_notification_in_chunks():
    audience = users(25)
    target = campaign(audience, channels=["email"])
    steps = fill(target, chunk=10)
    assert [s.created for s in steps] == [10, 10, 5]
    target.refresh_from_db()
    assert (target.state, target.recipients, target.skipped) == (Campaign.State.READY, 25, 0)
    rows = Notification.objects.filter(campaign=target)
    assert sorted(rows.values_list("user_id", flat=True)) == sorted(u.pk for u in audience)
    assert set(rows.values_list("status", flat=True)) == {Status.QUEUED}
    assert all(n.channels == ["email"] for n in rows)
    assert sorted(pk for step in steps for pk, _ in step.due) == sorted(
        rows.values_list("pk", flat=True)
    )


def test_those_who_cannot_be_reached_are_listed_with_why():
    reachable = users(2, prefix="ok")
    opted_out = users(1, prefix="out", telegram_opt_out=True, email_opt_out=True, sms_opt_out=True)
    nowhere = User.objects.create_user("nowhere", email="")  # contact from the signal: empty
    target = campaign([*reachable, *opted_out, nowhere])
    fill(target)
    target.refresh_from_db()
    assert (target.recipients, target.skipped) == (2, 2)
    skips = {s.user.username: s for s in CampaignSkip.objects.filter(campaign=target)}
    assert skips["out0"].reason == CampaignSkip.Reason.OPTED_OUT
    assert skips["nowhere"].reason == CampaignSkip.Reason.NO_ADDRESS
    assert skips["nowhere"].channels == {
        "telegram": "no_address",
        "email": "no_address",
        "sms": "no_address",
    }


def test_the_campaigns_channels_decide_who_is_reachable():
    phone_only = users(1, prefix="p", phone="+79161234567")
    for user in phone_only:
        user.email = ""
        user.save()
    target = campaign(phone_only, channels=["telegram", "email"])
    fill(target)
    skip = CampaignSkip.objects.get(campaign=target)
    assert skip.channels == {"telegram": "no_address", "email": "no_address"}


def test_a_template_renders_per_recipient_and_a_bad_render_skips_only_that_one():
    template = Template.objects.create(
        key="hi",
        name="Hi",
        telegram_text_en="Hi <b>{{ first_name }}</b>" + " {{ first_name }}" * 30,
        email_subject_en="Hi",
        email_text_en="Hi {{ first_name }}",
        sms_text_en="Hi {{ first_name }}",
    )
    audience = users(3)
    User.objects.filter(pk=audience[0].pk).update(first_name="Ann")
    User.objects.filter(pk=audience[1].pk).update(first_name="x" * 150)  # 31 × 150: too long
    target = campaign(audience, message="", template=template)
    fill(target)
    rows = {n.user_id: n for n in Notification.objects.filter(campaign=target)}
    assert rows[audience[0].pk].rendered["telegram"]["text"].startswith("Hi <b>Ann</b> Ann")
    assert rows[audience[0].pk].message == "Hi Ann"
    assert not rows[audience[0].pk].campaign_message  # its own text: the search indexes it
    assert audience[1].pk not in rows
    skip = CampaignSkip.objects.get(campaign=target)
    assert skip.reason == CampaignSkip.Reason.INVALID and "Telegram" in skip.detail


def test_everyone_matching_a_changelist_filter_is_evaluated_when_created(admin_user):
    staff = users(3, prefix="staff")
    User.objects.filter(pk__in=[u.pk for u in staff]).update(is_staff=True)
    users(4, prefix="plain")
    target = Campaign.objects.create(
        name="staff",
        message="hi",
        created_by=admin_user,
        audience_all=True,
        audience_query="is_staff__exact=1&q=staff",
    )
    User.objects.filter(username="staff0").update(is_staff=False)  # changed since the click
    fill(target)
    names = set(
        Notification.objects.filter(campaign=target).values_list("user__username", flat=True)
    )
    assert names == {"staff1", "staff2"}


def test_contacts_changelist_filter_reaches_their_users(admin_user):
    users(2, prefix="tg", telegram_chat_id="42")
    users(3, prefix="none")
    target = Campaign.objects.create(
        name="tg",
        message="hi",
        created_by=admin_user,
        audience_model="notifications.usercontact",
        audience_all=True,
        audience_query="q=tg",
    )
    fill(target)
    assert Notification.objects.filter(campaign=target).count() == 2


def test_a_filter_that_no_longer_works_fails_the_campaign_with_why(admin_user):
    target = Campaign.objects.create(
        name="bad",
        message="hi",
        created_by=admin_user,
        audience_all=True,
        audience_query="no_such_field__exact=1",
    )
    fill(target)
    target.refresh_from_db()
    assert target.state == Campaign.State.FAILED and "filter" in target.error


def test_a_second_filler_backs_off_and_nothing_is_created_twice():
    audience = users(30)
    target = campaign(audience)
    first, second = CampaignFiller(target.pk, chunk=10), CampaignFiller(target.pk, chunk=10)
    first.step()
    second.step()
    first.step()
    while not second.step().done:
        pass
    assert Notification.objects.filter(campaign=target).count() == 30
    assert Notification.objects.filter(campaign=target).values("user").distinct().count() == 30


def test_a_cancelled_campaign_creates_no_more():
    target = campaign(users(30))
    filler = CampaignFiller(target.pk, chunk=10)
    filler.step()
    Campaign.objects.filter(pk=target.pk).update(state=Campaign.State.CANCELLED)
    assert filler.step().done
    assert Notification.objects.filter(campaign=target).count() == 10


def test_building_one_notification_runs_no_query(django_user_model):
    user = django_user_model.objects.create_user("ann", email="ann@example.com")
    with CaptureQueriesContext(connection) as queries:
        notification_build(user=user, message="hello", queue=True)
    assert len(queries) == 0
