"""The admin's notification list at any size: the search finds by id, username, email and the
message's words, each through an index on PostgreSQL; a page never counts the whole table
nor skips more than the pages it offers."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from notifications import search
from notifications.admin.notifications import CappedPaginator, NotificationAdmin
from notifications.models import Campaign, Notification

pytestmark = pytest.mark.django_db
CHANGELIST = reverse("admin:notifications_notification_changelist")


@pytest.fixture
def listed(admin_user):
    """A notification each for three users (the admin's email is admin@example.com)."""
    User = get_user_model()
    ann = User.objects.create_user("ann.smith42", email="ann.smith42@example.org")
    boris = User.objects.create_user("boris.ivanov", email="boris@mail.example.com")
    made = {
        "ann": Notification.objects.create(user=ann, message="Your order A-1001 has shipped"),
        "boris": Notification.objects.create(user=boris, message="Refund of 500 RUB is on its way"),
        "admin": Notification.objects.create(user=admin_user, message="Chargeback opened"),
    }
    return made


def found(client, query: str) -> set[int]:
    page = client.get(CHANGELIST, {"q": query})
    assert page.status_code == 200
    return {int(pk) for pk in re.findall(r'name="_selected_action" value="(\d+)"', page.text)}


@pytest.mark.parametrize(
    ("query", "who"),
    [
        ("ann.smith42", {"ann"}),  # a username
        ("ANN.SMITH42@EXAMPLE.ORG", {"ann"}),  # an email, in any case
        ("mail.example", {"boris"}),  # part of an email
        ("refund", {"boris"}),  # a word of the message
        ("order shipped", {"ann"}),  # every word must match
        ('"order A-1001"', {"ann"}),  # a quoted phrase
        ("example", {"ann", "boris", "admin"}),
        ("nobody", set()),
    ],
)
def test_search_finds_by_username_email_and_the_words_of_the_message(
    admin_client, listed, query, who
):
    assert found(admin_client, query) == {listed[name].pk for name in who}


def test_search_finds_a_notification_by_its_id_and_still_by_the_number_in_a_message(
    admin_client, listed
):
    number = listed["boris"].pk
    Notification.objects.filter(pk=listed["ann"].pk).update(message=f"Ticket {number} closed")
    assert found(admin_client, str(number)) == {number, listed["ann"].pk}
    assert found(admin_client, str(2**63)) == set()  # no id can be that large: no error


def test_a_word_that_many_users_share_finds_all_their_notifications(
    admin_client, listed, monkeypatch
):
    monkeypatch.setattr(search, "USERS_LISTED", 1)  # more users than listed: a subquery
    assert found(admin_client, "example") == {n.pk for n in listed.values()}


def counts(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]


@pytest.mark.parametrize(
    "params", [{}, {"q": "order"}, {"status__exact": "pending"}, {"campaign__id__exact": "1"}]
)
def test_a_list_page_counts_at_most_what_it_pages(admin_client, listed, params):
    Campaign.objects.create(pk=1, name="Spring")
    with CaptureQueriesContext(connection) as queries:
        assert admin_client.get(CHANGELIST, params).status_code == 200
    notification_counts = [sql for sql in counts(queries) if "notifications_notification" in sql]
    assert notification_counts  # the list counts its rows...
    for sql in notification_counts:
        assert re.search(rf"LIMIT {CappedPaginator.CAP + 1}\b", sql), sql  # ...up to a bound


@pytest.fixture
def capped(monkeypatch, admin_user):
    """Nine notifications in pages of two, counted up to five."""
    monkeypatch.setattr(CappedPaginator, "CAP", 5)
    monkeypatch.setattr(NotificationAdmin, "list_per_page", 2)
    Notification.objects.bulk_create(
        Notification(user=admin_user, message=f"m{i}") for i in range(9)
    )


def test_past_the_bound_the_list_says_more_and_offers_its_pages_only(admin_client, capped):
    first = admin_client.get(CHANGELIST)
    text = re.sub(r"\s+", " ", first.text)
    assert "more than 5 notifications" in text
    assert "Select all matching notifications (more than 5)" in text
    assert first.context["selection_note_all"] == (
        "All matching notifications selected (more than 5)"
    )
    last = admin_client.get(CHANGELIST, {"p": 3})
    assert last.status_code == 200
    assert len(re.findall(r'name="_selected_action"', last.text)) == 1  # the 5th newest
    assert admin_client.get(CHANGELIST, {"p": 4}).status_code == 302  # not offered


def test_an_action_across_pages_still_acts_on_every_row_that_matches(admin_client, capped):
    newest = Notification.objects.order_by("-created_at", "-id").first()
    admin_client.post(
        CHANGELIST,
        {
            "action": "cancel_selected",
            "select_across": "1",
            "index": "0",
            "_selected_action": [newest.pk],  # the page's ticks, as the browser sends them
        },
    )
    assert Notification.objects.filter(status=Notification.Status.CANCELLED).count() == 9


def test_a_short_list_is_counted_as_it_is(admin_client, listed):
    text = re.sub(r"\s+", " ", admin_client.get(CHANGELIST).text)
    assert "3 notifications" in text and "more than" not in text


def plan(sql: str) -> str:
    """PostgreSQL's plan for ``sql`` with scans and sorts ruled out: what index it reads."""
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def test_on_postgresql_the_search_and_the_campaign_page_read_their_indexes(
    admin_client, listed, monkeypatch
):
    """Each part of the query has an index it can read: the trigram indexes match the
    expressions Django's search writes (the message's leaves a campaign's message rows out,
    which are found by their campaign's index), and a campaign's page reads it newest
    first."""
    if connection.vendor != "postgresql":
        pytest.skip("pg_trgm is PostgreSQL's")
    monkeypatch.setattr(NotificationAdmin, "list_per_page", 1)
    Notification.objects.update(campaign=Campaign.objects.create(name="Spring"))
    campaign = Campaign.objects.get()
    sale = Campaign.objects.create(name="Sale", message="Chargeback rules changed")
    Notification.objects.create(
        user=listed["ann"].user, message=sale.message, campaign=sale, campaign_message=True
    )
    with CaptureQueriesContext(connection) as queries:
        admin_client.get(CHANGELIST, {"q": "chargeback"})
        admin_client.get(CHANGELIST, {"campaign__id__exact": campaign.pk})
    sqls = [q["sql"] for q in queries.captured_queries]
    users = next(s for s in sqls if 'FROM "auth_user"' in s and "LIKE" in s)
    message = next(
        s
        for s in sqls
        if '"message"::text) LIKE' in s
        and 'FROM "notifications_campaign"' not in s.split("WHERE")[0]
    )
    page = next(
        s
        for s in sqls
        if "campaign_id" in s and "ORDER BY" in s and "LIMIT 1" in s and "LIKE" not in s
    )
    assert "user_username_trgm_idx" in plan(users) and "user_email_trgm_idx" in plan(users)
    assert "notif_message_trgm_idx" in plan(message)
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'notif_message_trgm_idx'")
        assert "WHERE ((NOT campaign_message) OR (campaign_id IS NULL))" in cursor.fetchone()[0]
    assert "notif_campaign_" in plan(message)  # the campaign's message rows
    assert "notif_campaign_created_idx" in plan(page)


def test_a_campaign_message_is_found_by_its_campaign_and_an_own_message_by_its_text(
    admin_client, listed
):
    """The rows of a campaign's message are found by the campaign's message; a row with a
    message of its own (a template's rendering, an edit) by its own, even in a campaign;
    a campaign's message row whose campaign was deleted, by its own."""
    ann = listed["ann"].user
    sale = Campaign.objects.create(name="Sale", message="Winter sale starts today")
    shared = Notification.objects.create(
        user=ann, message=sale.message, campaign=sale, campaign_message=True
    )
    rendered = Notification.objects.create(
        user=ann, message="Dear Ann, winter is here", campaign=sale
    )
    gone = Campaign.objects.create(name="Gone", message="Autumn sale is over")
    orphan = Notification.objects.create(
        user=ann, message=gone.message, campaign=gone, campaign_message=True
    )
    gone.delete()
    assert found(admin_client, "winter") == {shared.pk, rendered.pk}
    assert found(admin_client, "sale starts") == {shared.pk}
    assert found(admin_client, "dear") == {rendered.pk}
    assert found(admin_client, "autumn") == {orphan.pk}
    assert found(admin_client, "sale") == {shared.pk, orphan.pk}
