"""Issue 19: a large campaign is created by a process of its own (``fill_process``), out of
the way of the consumer's sending threads. Every recipient gets one notification, sent once;
the consumer counts them in its metrics; whatever the process leaves, the consumer's thread
creates; a process whose consumer is gone stops after its step."""

from __future__ import annotations

import os
import re
import sys

import pytest
from django.core.management import CommandError, call_command
from prometheus_client.parser import text_string_to_metric_families

from notifications import fill_process, services, tasks
from notifications.models import Campaign, Notification
from notifications.operations.tests.scrapes import fetch
from notifications.tests.fakes.smtp import free_port
from notifications.tests.fixtures import wait_for

Status = Notification.Status
TOKEN = "scrape-token-0123456789"


def created_total(text: str, source: str) -> float:
    """``notify_notifications_created_total`` of ``source``, over every category."""
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "notify_notifications_created_total"
        and sample.labels.get("source") == source
    )


@pytest.mark.e2e
def test_a_large_campaign_is_created_by_a_process_of_its_own_and_sent_once_each(
    start_consumer, telegram, make_user, admin_user, settings
):
    port = free_port()
    consumer = start_consumer(
        workers=4,
        NOTIFY_CAMPAIGN_PROCESS_FROM="30",
        NOTIFY_CAMPAIGN_CHUNK="4",  # steps of 40: two of them
        NOTIFY_METRICS_PORT=str(port),
        NOTIFY_METRICS_TOKEN=TOKEN,
    )
    consumer.wait_started()
    settings.NOTIFY_CAMPAIGN_CHUNK = 4  # more than this: the consumer creates it
    audience = [make_user(telegram_chat_id=str(5000 + n)) for n in range(60)]
    campaign = services.campaign_create(
        created_by=admin_user, user_ids=[u.pk for u in audience], message="Works tonight"
    )

    def all_sent() -> bool:
        return Notification.objects.filter(campaign=campaign, status=Status.SENT).count() == 60

    wait_for(all_sent, 60, "the campaign's 60 notifications sent")
    campaign.refresh_from_db()
    assert (campaign.state, campaign.recipients) == (Campaign.State.READY, 60)
    assert sorted(
        Notification.objects.filter(campaign=campaign).values_list("user", flat=True)
    ) == (sorted(u.pk for u in audience))
    for n in range(60):  # each sent once
        assert telegram.delivered_to(str(5000 + n)) == ["Works tonight"]
    child = re.search(rf"campaign {campaign.pk}: created by process (\d+)", consumer.output())
    assert child is not None and int(child.group(1)) != consumer.pid
    assert f"campaign {campaign.pk}: 60 notifications created by this task" in consumer.output()

    def counted() -> float | None:  # by the consumer, from the process's reports
        status, text = fetch(f"http://127.0.0.1:{port}/metrics", TOKEN)
        return created_total(text, "campaign") if status == 200 else None

    assert wait_for(counted, 10, "the consumer's metrics") == 60


@pytest.mark.django_db(transaction=True)
def test_a_process_that_cannot_create_leaves_the_campaign_to_the_consumers_thread(
    settings, monkeypatch, django_user_model, caplog
):
    settings.NOTIFY_CAMPAIGN_PROCESS_FROM = 10
    users = django_user_model.objects.bulk_create(
        django_user_model(username=f"u{n}", email=f"u{n}@example.com") for n in range(25)
    )
    campaign = Campaign.objects.create(
        name="c", message="hi", audience_ids=[u.pk for u in users], audience_size=25
    )
    # It starts, says something that is not a report, and fails before its first step.
    failing = [sys.executable, "-c", "import sys; print('not a report'); sys.exit(3)"]
    monkeypatch.setattr(fill_process, "command", lambda campaign_id: failing)
    assert tasks.campaign_fill.call_local(campaign.pk) == 25
    campaign.refresh_from_db()
    assert (campaign.state, campaign.recipients) == (Campaign.State.READY, 25)
    assert Notification.objects.filter(campaign=campaign).count() == 25
    assert "its process ended with 3 after 0 notifications; the rest is created here" in (
        caplog.text
    )


@pytest.mark.django_db(transaction=True)
def test_a_process_whose_consumer_is_gone_stops_after_its_step_and_the_rest_is_resumed(
    settings, django_user_model
):
    settings.NOTIFY_CAMPAIGN_CHUNK = 2  # a message's step: 20 recipients
    users = django_user_model.objects.bulk_create(
        django_user_model(username=f"u{n}", email=f"u{n}@example.com") for n in range(50)
    )
    campaign = Campaign.objects.create(
        name="c", message="hi", audience_ids=[u.pk for u in users], audience_size=50
    )
    # Told its parent is a process that is not (this one's own pid): as if its consumer died.
    call_command("fill_campaign", campaign.pk, parent=os.getpid())
    campaign.refresh_from_db()
    assert (campaign.state, campaign.recipients) == (Campaign.State.CREATING, 20)
    call_command("fill_campaign", campaign.pk)  # the sweeper's resumption, by hand
    campaign.refresh_from_db()
    assert (campaign.state, campaign.recipients) == (Campaign.State.READY, 50)
    assert Notification.objects.filter(campaign=campaign).count() == 50


def test_a_report_is_what_the_consumer_counts_and_anything_else_is_skipped():
    lines = []
    report = fill_process.reporter(lines.append)
    made = [Notification(message="x"), Notification(message="y")]
    report("campaign", made)
    tallies = list(fill_process.reports(iter([*lines, "Traceback…\n", '{"other": 1}\n'])))
    assert len(tallies) == 1
    assert sum(n for _labels, n in tallies[0]) == 2
    assert tallies[0][0][0][0] == "campaign"


@pytest.mark.django_db
def test_filling_a_campaign_that_does_not_exist_says_so():
    with pytest.raises(CommandError, match="There is no campaign 999"):
        call_command("fill_campaign", 999)
