"""The operator's side: suppressions listed and searched, lifted by an action (the row kept,
with who and when), never deleted, added by hand; a contact's page says whether its address is
suppressed and links to it, and the contacts list filters by it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from notifications.models import UserContact
from notifications.suppression.models import Suppression, TrackingEvent
from notifications.suppression.services import suppression_create

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:suppression_suppression_changelist"


def suppress(address: str, reason: str = Suppression.Reason.HARD_BOUNCE) -> Suppression:
    suppression = suppression_create(address=address, reason=reason, provider="Postmark")
    assert suppression is not None
    return suppression


def test_the_list_shows_and_finds_suppressions(admin_client):
    suppress("ann@example.com")
    suppress("bob@example.com", Suppression.Reason.COMPLAINT)
    page = admin_client.get(reverse(CHANGELIST), {"q": "ann@"})
    assert page.status_code == 200
    text = page.content.decode()
    assert "ann@example.com" in text and "bob@example.com" not in text
    detail = admin_client.get(
        reverse("admin:suppression_suppression_change", args=[Suppression.objects.first().pk])
    )
    assert detail.status_code == 200


def test_lifting_keeps_the_row_with_who_and_when(admin_client, admin_user):
    ann, bob = suppress("ann@example.com"), suppress("bob@example.com")
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "lift", "_selected_action": [ann.pk]},
        follow=True,
    )
    assert response.status_code == 200
    assert "1 suppression lifted" in response.content.decode()
    ann.refresh_from_db()
    bob.refresh_from_db()
    assert ann.lifted_by == admin_user and ann.lifted_at is not None and not ann.active
    assert bob.active
    assert Suppression.objects.count() == 2
    # Lifting again changes nothing.
    admin_client.post(reverse(CHANGELIST), {"action": "lift", "_selected_action": [ann.pk]})
    lifted_at = ann.lifted_at
    ann.refresh_from_db()
    assert ann.lifted_at == lifted_at
    active = admin_client.get(reverse(CHANGELIST), {"state": "active"}).content.decode()
    assert "bob@example.com" in active and "ann@example.com" not in active


def test_suppressions_are_never_deleted_from_the_admin(admin_client):
    suppression = suppress("ann@example.com")
    page = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert "delete_selected" not in page
    url = reverse("admin:suppression_suppression_delete", args=[suppression.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 403
    assert Suppression.objects.filter(pk=suppression.pk).exists()


def test_an_operator_adds_one_by_hand(admin_client, admin_user):
    url = reverse("admin:suppression_suppression_add")
    response = admin_client.post(url, {"address": " Foo@Example.COM ", "detail": "asked to"})
    assert response.status_code == 302
    suppression = Suppression.objects.get()
    assert (suppression.address, suppression.reason, suppression.created_by) == (
        "foo@example.com",
        Suppression.Reason.MANUAL,
        admin_user,
    )
    again = admin_client.post(url, {"address": "foo@example.com", "detail": ""})
    assert again.status_code == 200
    assert "suppressed already" in again.content.decode()
    assert admin_client.post(url, {"address": "nobody", "detail": ""}).status_code == 200
    assert Suppression.objects.count() == 1


def test_a_contacts_page_says_whether_its_address_is_suppressed(admin_client, make_user):
    dead = make_user(email="dead@example.com")
    alive = make_user(email="alive@example.com")
    UserContact.objects.filter(user=dead).update(email="Dead@Example.com")
    suppress("dead@example.com")
    page = admin_client.get(
        reverse("admin:notifications_usercontact_change", args=[dead.contact.pk])
    ).content.decode()
    assert "Suppressed since" in page
    assert reverse(CHANGELIST) + "?q=dead%40example.com" in page
    page = admin_client.get(
        reverse("admin:notifications_usercontact_change", args=[alive.contact.pk])
    ).content.decode()
    assert "Not suppressed." in page
    listed = admin_client.get(
        reverse("admin:notifications_usercontact_changelist"), {"email_suppressed": "yes"}
    )
    assert [c.pk for c in listed.context["cl"].result_list] == [dead.contact.pk]
    others = admin_client.get(
        reverse("admin:notifications_usercontact_changelist"), {"email_suppressed": "no"}
    )
    assert dead.contact.pk not in [c.pk for c in others.context["cl"].result_list]


def test_the_providers_events_are_listed_read_only(admin_client):
    event = TrackingEvent.objects.create(
        provider="Postmark",
        event_type="bounced",
        kind=TrackingEvent.Kind.SOFT_BOUNCE,
        address="ann@example.com",
        occurred_at=timezone.now() - timedelta(days=1),
    )
    assert (
        admin_client.get(reverse("admin:suppression_trackingevent_changelist")).status_code == 200
    )
    page = admin_client.get(reverse("admin:suppression_trackingevent_change", args=[event.pk]))
    assert page.status_code == 200
    assert admin_client.get(reverse("admin:suppression_trackingevent_add")).status_code == 403
