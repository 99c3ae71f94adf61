"""Issue 19: a campaign's message is created a set at a time (``campaign_sets``): one
``INSERT … SELECT`` takes everyone SQL finds surely reachable, Python checks the rest. The
promise: the same recipients and the same skips (with the same reasons) as the per-recipient
check (``composing.unreachable``) gives, every audience member exactly once; and the reachable
majority never goes through Python."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notifications import campaign_sets, tasks
from notifications.composing import CampaignFiller, skip_reason, unreachable
from notifications.models import Campaign, CampaignSkip, Notification, UserContact
from notifications.preferences.models import Category, Preference
from notifications.suppression.models import Suppression

pytestmark = pytest.mark.django_db
User = get_user_model()
CHANNELS = ("telegram", "email", "sms")
SUPPRESSED = "gone@example.org"

contact_st = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "telegram_chat_id": st.sampled_from(["", "7001"]),
            "telegram_blocked": st.booleans(),
            "email": st.sampled_from(["", "own@example.org", SUPPRESSED, "GONE@example.org"]),
            "phone": st.sampled_from(["", "+79161234567"]),
            "telegram_opt_out": st.booleans(),
            "email_opt_out": st.booleans(),
            "sms_opt_out": st.booleans(),
        }
    ),
)
person_st = st.fixed_dictionaries(
    {
        "email": st.sampled_from(["", "user@example.org", SUPPRESSED]),
        "contact": contact_st,
        "choices": st.dictionaries(st.sampled_from(CHANNELS), st.booleans(), max_size=3),
        # Not chosen: a user between the audience's ids, whom a step's range of ids spans.
        "outside": st.booleans(),
    }
)
world_st = st.fixed_dictionaries(
    {
        "people": st.lists(person_st, min_size=1, max_size=12),
        "chain": st.one_of(
            st.just([]), st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True)
        ),
        "required": st.booleans(),
        "opt_in": st.booleans(),
        "defaults": st.lists(st.sampled_from(CHANNELS), max_size=3, unique=True),
        "suppressed": st.booleans(),
        "chunk": st.integers(1, 5),
    }
)


def fill(campaign: Campaign, chunk: int = 1000) -> None:
    filler = CampaignFiller(campaign.pk, chunk=chunk)
    while not filler.step().done:
        pass


def expected(world, users, category, outside) -> dict[int, dict | None]:
    """What the per-recipient check says of each user of the audience (the users but those
    ``outside`` it): None (reachable) or channel → why."""
    suppressed = {SUPPRESSED} if world["suppressed"] else set()
    verdicts = {}
    for person, user in zip(world["people"], users, strict=True):
        if user.pk in outside:
            continue
        turned_off = set()
        if not category.required:
            turned_off = {
                c for c in CHANNELS if not person["choices"].get(c, category.channel_default(c))
            }
        contact = UserContact.objects.filter(user=user).first()
        verdicts[user.pk] = unreachable(
            user, contact, world["chain"], turned_off, frozenset(suppressed)
        )
    return verdicts


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(world=world_st)
def test_a_set_made_campaign_reaches_and_skips_exactly_whom_the_per_recipient_check_does(world):
    with transaction.atomic():
        category = Category.objects.create(
            key="news-sets",
            name_en="News",
            required=world["required"],
            opt_in=world["opt_in"],
            default_channels=world["defaults"],
        )
        users = []
        for n, person in enumerate(world["people"]):
            user = User.objects.create(username=f"p{n}", email=person["email"])
            if person["contact"] is None:  # (a new user may be given a contact on save)
                UserContact.objects.filter(user=user).delete()
            else:
                UserContact.objects.update_or_create(user=user, defaults=person["contact"])
            for channel, enabled in person["choices"].items():
                Preference.objects.create(
                    user=user, category=category, channel=channel, enabled=enabled
                )
            users.append(user)
        if world["suppressed"]:
            Suppression.objects.create(address=SUPPRESSED, reason=Suppression.Reason.HARD_BOUNCE)
        # The first user is chosen, the others outside the audience when drawn so: a step's
        # ids then span users it must not take.
        outside = {
            u.pk
            for u, person in zip(users[1:], world["people"][1:], strict=True)
            if person["outside"]
        }
        campaign = Campaign.objects.create(
            name="sets",
            message="Maintenance tonight",
            channels=world["chain"],
            category=category,
            audience_ids=[u.pk for u in users if u.pk not in outside],
        )
        fill(campaign, chunk=world["chunk"])

        verdicts = expected(world, users, category, outside)
        made = list(Notification.objects.filter(campaign=campaign).values_list("user", flat=True))
        skips = {s.user_id: s for s in CampaignSkip.objects.filter(campaign=campaign)}
        assert len(made) == len(set(made)), "a recipient got two notifications"
        assert set(made) == {pk for pk, why in verdicts.items() if why is None}
        assert set(skips) == {pk for pk, why in verdicts.items() if why is not None}
        for pk, skip in skips.items():
            assert skip.channels == verdicts[pk]
            assert skip.reason == skip_reason(verdicts[pk])
        campaign.refresh_from_db()
        assert (campaign.recipients, campaign.skipped) == (len(made), len(skips))
        assert campaign.state == Campaign.State.READY
        transaction.set_rollback(True)


def test_the_reachable_majority_is_inserted_by_sql_and_only_the_rest_checked_in_python(
    monkeypatch,
):
    """40 users with a Telegram chat, 3 without any address: the 40 never reach the
    per-recipient check; the 3 are skipped by it, with why."""
    reachable = User.objects.bulk_create(User(username=f"r{i}") for i in range(40))
    UserContact.objects.bulk_create(
        UserContact(user=u, telegram_chat_id=str(7000 + u.pk)) for u in reachable
    )
    lost = User.objects.bulk_create(User(username=f"n{i}") for i in range(3))
    checked: list[int] = []
    classify = CampaignFiller._classify

    def spy(self, campaign, users, now, prototype):
        checked.extend(u.pk for u in users)
        return classify(self, campaign, users, now, prototype)

    monkeypatch.setattr(CampaignFiller, "_classify", spy)
    campaign = Campaign.objects.create(
        name="c", message="Hello", audience_ids=[u.pk for u in [*reachable, *lost]]
    )
    fill(campaign, chunk=10)
    assert sorted(checked) == sorted(u.pk for u in lost)
    assert Notification.objects.filter(campaign=campaign).count() == 40
    assert sorted(
        CampaignSkip.objects.filter(campaign=campaign).values_list("user", flat=True)
    ) == (sorted(u.pk for u in lost))
    queued = Notification.objects.filter(campaign=campaign, status=Notification.Status.QUEUED)
    assert queued.count() == 40
    # Each the campaign's message, marked so (the search finds them by the campaign's).
    assert set(queued.values_list("message", "campaign_message")) == {("Hello", True)}


def test_a_template_or_a_local_send_time_is_created_recipient_by_recipient():
    """Each recipient's own text, or own clock: no set-based step."""
    assert campaign_sets.supported()
    user = User.objects.create(username="t")
    UserContact.objects.update_or_create(user=user, defaults={"telegram_chat_id": "7001"})
    local = Campaign.objects.create(
        name="c", message="Hi", local_send_at="2030-01-01T10:00", audience_ids=[user.pk]
    )
    filler = CampaignFiller(local.pk)
    filler._prepare(local)
    assert filler._reach(local) is None
    fill(local)
    made = Notification.objects.get(campaign=local)
    assert made.send_at is not None
    assert made.campaign_message  # a row of the campaign's message, at its own time


def _analyzed() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = %s",
            [Notification._meta.db_table],
        )
        return cursor.fetchone()[0]


def test_a_large_campaign_ends_its_creation_by_refreshing_postgresqls_statistics(monkeypatch):
    """A campaign of ``ANALYZE_FROM`` notifications or more, once created, has PostgreSQL
    ANALYZE their table (its statistics otherwise say none of a million new rows is waiting,
    and "Cancel the rest" read the whole table for each chunk); a smaller one does not."""
    if connection.vendor != "postgresql":
        assert campaign_sets.analyze_after(10**6) is False  # SQLite: nothing to refresh
        return
    monkeypatch.setattr(campaign_sets, "ANALYZE_FROM", 30)
    users = User.objects.bulk_create(User(username=f"a{i}") for i in range(40))
    UserContact.objects.bulk_create(UserContact(user=u, telegram_chat_id="7001") for u in users)
    small = Campaign.objects.create(
        name="small", message="Hi", audience_ids=[u.pk for u in users[:20]]
    )
    large = Campaign.objects.create(name="large", message="Hi", audience_ids=[u.pk for u in users])
    before = _analyzed()
    assert tasks.fill(small.pk) == 20
    assert _analyzed() == before
    assert tasks.fill(large.pk) == 40
    assert _analyzed() == before + 1
    assert tasks.fill(large.pk) == 0  # a second filler finds it created: nothing to refresh
    assert _analyzed() == before + 1


def test_a_large_campaigns_creation_resumed_elsewhere_is_counted_whole(monkeypatch, settings):
    """A creation stopped after a step (its process stopped) and finished by another
    filler refreshes the statistics by the campaign's total, not by what the last filler
    made."""
    if connection.vendor != "postgresql":
        pytest.skip("the statistics refreshed are PostgreSQL's")
    monkeypatch.setattr(campaign_sets, "ANALYZE_FROM", 35)
    settings.NOTIFY_CAMPAIGN_CHUNK = 1  # a set-based step of CHUNKS (10) recipients
    users = User.objects.bulk_create(User(username=f"r{i}") for i in range(40))
    UserContact.objects.bulk_create(UserContact(user=u, telegram_chat_id="7001") for u in users)
    campaign = Campaign.objects.create(
        name="resumed", message="Hi", audience_ids=[u.pk for u in users]
    )
    before = _analyzed()
    assert tasks.fill(campaign.pk, stop=lambda: True) == 10
    assert _analyzed() == before
    assert tasks.fill(campaign.pk) == 30  # under ANALYZE_FROM by itself; 40 in all
    assert _analyzed() == before + 1
