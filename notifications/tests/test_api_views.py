"""The HTTP API's endpoints as a client application uses them: create (one and in batches),
read with attempts, list with filters and cursors, cancel, resend, and contacts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.models import DeliveryAttempt, Notification, UserContact

pytestmark = pytest.mark.django_db

Status = Notification.Status
URL = "/api/v1/notifications"


def iso(moment) -> str:
    return moment.isoformat()


def test_create_queues_it_and_answers_202_with_its_state(
    api, make_user, django_capture_on_commit_callbacks
):
    user = make_user(email="ann@example.com")
    with django_capture_on_commit_callbacks(execute=False) as rung:
        response = api.post(URL, {"user": user.pk, "message": "Shipped", "subject": "Order 17"})

    assert response.status_code == 202, response.json()
    body = response.json()
    notification = Notification.objects.get()
    assert body["id"] == notification.pk
    assert response["Location"].endswith(f"{URL}/{notification.pk}")
    assert (body["status"], body["user"], body["username"]) == ("queued", user.pk, user.username)
    assert (body["message"], body["subject"], body["channel"]) == ("Shipped", "Order 17", None)
    assert (notification.message, notification.status) == ("Shipped", Status.QUEUED)
    assert len(rung) == 1  # its doorbell, after commit


def test_create_finds_the_user_by_username_and_keeps_a_chain_of_its_own(api, make_user):
    user = make_user()
    response = api.post(
        URL, {"user": user.username, "message": "Hi", "channels": ["email", "telegram"]}
    )
    assert response.status_code == 202, response.json()
    assert response.json()["channels"] == ["email", "telegram"]
    assert Notification.objects.get().user == user


def test_a_future_send_at_schedules_it_and_expiry_defaults_to_the_ttl_after(
    api, make_user, settings
):
    user = make_user()
    send_at = timezone.now() + timedelta(hours=2)
    response = api.post(URL, {"user": user.pk, "message": "Later", "send_at": iso(send_at)})
    assert response.status_code == 202
    notification = Notification.objects.get()
    assert response.json()["status"] == notification.status == Status.SCHEDULED
    assert notification.send_at == send_at
    assert notification.expires_at == send_at + timedelta(seconds=settings.NOTIFY_MESSAGE_TTL)


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"message": ""}, {"message": ["The message is empty; write something to send."]}),
        ({"message": "   "}, {"message": ["The message is empty; write something to send."]}),
        (
            {"subject": "two\nlines"},
            {"subject": ["The subject must be one line: remove the line breaks."]},
        ),
        ({"channels": ["email", "email"]}, {"channels": ["Name each channel at most once."]}),
        ({"channels": ["pigeon"]}, {"channels.0": ['"pigeon" is not a valid choice.']}),
        ({"user": True}, {"user": ["Give the user's id (a number) or username (a string)."]}),
        ({"template": "welcome"}, {"template": ["Unknown field; the fields are user, message, "
                                                "subject, channels, send_at, expires_at, "
                                                "send_at_local, category, digest_key."]}),
    ],
)  # fmt: skip
def test_invalid_input_gets_400_with_the_services_messages_per_field(
    api, make_user, fields, errors
):
    user = make_user()
    response = api.post(URL, {"user": user.pk, "message": "Hello", **fields})
    assert response.status_code == 400
    assert response.json() == {
        "status": 400,
        "code": "invalid",
        "detail": "The request is not valid: see the field errors.",
        "fields": errors,
    }
    assert not Notification.objects.exists()


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"user": 999999}, {"user": ["No user with id 999999."]}),
        ({"user": "nobody"}, {"user": ["No user named 'nobody'."]}),
    ],
)
def test_a_user_who_does_not_exist_gets_422(api, make_user, fields, errors):
    """The body is as its schema says; that the user exists is a rule beyond it."""
    user = make_user()
    response = api.post(URL, {"user": user.pk, "message": "Hello", **fields})
    assert response.json() == {
        "status": 422,
        "code": "invalid",
        "detail": "The request breaks a rule: see the field errors.",
        "fields": errors,
    }
    assert not Notification.objects.exists()


def test_an_expiry_before_the_send_time_is_refused_as_by_notification_create(api, make_user):
    user = make_user()
    now = timezone.now()
    response = api.post(
        URL,
        {
            "user": user.pk,
            "message": "x",
            "send_at": iso(now + timedelta(hours=2)),
            "expires_at": iso(now + timedelta(hours=1)),
        },
    )
    assert response.status_code == 422
    assert response.json()["fields"] == {
        "expires_at": ["The expiry must be after the time the notification is sent."]
    }


def test_a_time_without_offset_is_refused(api, make_user):
    response = api.post(
        URL, {"user": make_user().pk, "message": "x", "send_at": "2030-01-01T09:00:00"}
    )
    assert response.status_code == 400
    assert "with its offset" in response.json()["fields"]["send_at"][0]


def test_batch_creates_all_in_a_few_queries_whatever_its_size(api, make_user, settings):
    users = [make_user() for _ in range(3)]

    def batch(size: int) -> CaptureQueriesContext:
        items = [
            {"user": users[i % 3].pk if i % 2 else users[i % 3].username, "message": f"m{i}"}
            for i in range(size)
        ]
        with CaptureQueriesContext(connection) as queries:
            response = api.post(f"{URL}/batch", {"notifications": items})
        assert response.status_code == 202, response.json()
        created = response.json()["notifications"]
        assert len(created) == size
        assert all(n["status"] == "queued" for n in created)
        stored = Notification.objects.in_bulk([n["id"] for n in created])
        assert [stored[n["id"]].message for n in created] == [f"m{i}" for i in range(size)]
        return queries

    api.get(URL)  # the key's first use notes its last_used_at: not part of a batch's cost
    small, large = batch(2), batch(1000)
    assert Notification.objects.count() == 1002
    inserts = [q["sql"] for q in large.captured_queries if q["sql"].startswith("INSERT")]
    others = [q for q in large.captured_queries if not q["sql"].startswith("INSERT")]
    assert len(others) == len(small.captured_queries) - 1  # the same queries but the INSERT
    # One INSERT, split by Django only where the database limits a statement's parameters
    # (SQLite: 999, so ~55 rows per statement; PostgreSQL: no split).
    limit = connection.features.max_query_params
    if limit is None:
        assert len(inserts) == 1
    else:
        columns = inserts[0].split(")", 1)[0].count(",") + 1
        assert len(inserts) == -(-1000 // (limit // columns))
    assert len(small.captured_queries) <= 5  # key, users, and the INSERT in a transaction


def test_batch_is_all_or_nothing_with_each_bad_item_named(api, make_user):
    user = make_user()
    items = [
        {"user": user.pk, "message": "fine"},
        {"user": user.pk, "message": ""},
        {"user": "ghost", "message": "fine"},
        {"user": user.pk, "message": "fine", "channels": ["sms", "sms"]},
    ]
    response = api.post(f"{URL}/batch", {"notifications": items})
    assert response.status_code == 400  # against the schema: checked first, for every item
    assert response.json()["fields"] == {
        "notifications.1.message": ["The message is empty; write something to send."],
        "notifications.3.channels": ["Name each channel at most once."],
    }
    del items[3], items[1]
    items.append({"user": user.pk, "message": "m", "expires_at": "2000-01-01T00:00:00Z"})
    response = api.post(f"{URL}/batch", {"notifications": items})
    assert response.status_code == 422  # then the rules, for every item
    assert response.json()["fields"] == {
        "notifications.1.user": ["No user named 'ghost'."],
        "notifications.2.expires_at": [
            "The expiry must be after the time the notification is sent."
        ],
    }
    assert not Notification.objects.exists()


def test_batch_takes_at_most_1000(api, make_user):
    user = make_user()
    items = [{"user": user.pk, "message": "m"}] * 1001
    response = api.post(f"{URL}/batch", {"notifications": items})
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "notifications": ["Ensure this field has no more than 1000 elements."]
    }
    empty = api.post(f"{URL}/batch", {"notifications": []})
    assert empty.status_code == 400


def test_read_one_with_its_attempts(api, make_user):
    user = make_user()
    notification = Notification.objects.create(
        user=user, message="m", status=Status.SENT, channel="email", rounds=1
    )
    now = timezone.now()
    DeliveryAttempt.objects.create(
        notification=notification, channel="telegram", transport="telegram",
        outcome="permanent", error="403 blocked", started_at=now,
    )  # fmt: skip
    DeliveryAttempt.objects.create(
        notification=notification, channel="email", transport="smtp", outcome="success",
        provider_message_id="<1@x>", started_at=now + timedelta(seconds=1), duration_ms=12,
    )  # fmt: skip
    response = api.get(f"{URL}/{notification.pk}")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["channel"], body["rounds"]) == ("sent", "email", 1)
    assert [(a["channel"], a["outcome"], a["error"]) for a in body["attempts"]] == [
        ("telegram", "permanent", "403 blocked"),
        ("email", "success", ""),
    ]
    assert body["attempts"][1]["provider_message_id"] == "<1@x>"
    assert api.get(f"{URL}/{notification.pk + 1000}").status_code == 404


def make_rows(user, count: int, **fields) -> list[Notification]:
    return Notification.objects.bulk_create(
        Notification(user=user, message=f"m{i}", **fields) for i in range(count)
    )


def test_list_pages_by_cursor_newest_first_without_gaps_or_repeats(api, make_user):
    user = make_user()
    rows = make_rows(user, 23)
    # Several rows share a creation time: the cursor still neither skips nor repeats one.
    Notification.objects.filter(pk__in=[r.pk for r in rows[5:12]]).update(
        created_at=rows[5].created_at
    )
    seen, url, pages = [], f"{URL}?limit=5", 0
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.json()
        body = response.json()
        seen += [n["id"] for n in body["results"]]
        url, pages = body["next"], pages + 1
    expected = list(
        Notification.objects.order_by("-created_at", "-id").values_list("pk", flat=True)
    )
    assert seen == expected
    assert pages == 5
    previous = api.get(api.get(f"{URL}?limit=5").json()["next"]).json()["previous"]
    assert [n["id"] for n in api.get(previous).json()["results"]] == expected[:5]


def test_list_filters_by_user_status_channel_and_creation_time(api, make_user):
    ann, bob = make_user(), make_user()
    make_rows(ann, 2, status=Status.SENT, channel="email")
    make_rows(ann, 1, status=Status.FAILED)
    make_rows(bob, 3, status=Status.SENT, channel="telegram")
    old = make_rows(bob, 1, status=Status.EXPIRED)[0]
    Notification.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=3))

    def ids(query: str) -> int:
        response = api.get(f"{URL}?{query}")
        assert response.status_code == 200, response.json()
        return len(response.json()["results"])

    assert ids(f"user={ann.pk}") == 3
    assert ids(f"user={bob.username}") == 4
    assert ids("status=sent") == 5
    assert ids("status=failed,expired") == 2
    assert ids("status=failed&status=expired") == 2
    assert ids("channel=telegram") == 3
    assert ids(f"user={ann.pk}&channel=email&status=sent") == 2
    day_ago = (timezone.now() - timedelta(days=1)).isoformat().replace("+00:00", "Z")
    assert ids(f"created_after={day_ago}") == 6
    assert ids(f"created_before={day_ago}") == 1
    assert ids("user=nobody") == 0


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=lost", "status"),
        ("channel=pigeon", "channel"),
        ("created_after=yesterday", "created_after"),
        ("created_after=2026-01-01T00:00:00", "created_after"),  # no offset
        ("created_after=2026-01-01T00:00:00 03:00", "created_after"),  # + not encoded
        ("status=sent,", "status"),
        ("status=", "status"),  # an empty list and a blank status read the same: refused
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
    ],
)
def test_bad_filters_get_400_naming_the_parameter(api, query, field):
    response = api.get(f"{URL}?{query}")
    assert response.status_code == 400
    assert list(response.json()["fields"]) == [field]


@pytest.mark.parametrize(
    "cursor",
    [
        "bz1hYmM%3D",  # o=abc
        "cD1ub3RhZGF0ZQ==",  # p=notadate
        "cD0wMDAxLTAxLTAxIDAwOjAwOjAwKzE0OjAw",  # p=0001-01-01 00:00:00+14:00: before time
        "%E2%9C%93",
    ],
)
def test_a_cursor_the_api_did_not_give_gets_422(api, cursor):
    response = api.get(f"{URL}?cursor={cursor}")
    assert response.status_code == 422
    assert response.json()["fields"] == {
        "cursor": ["Invalid cursor: use the next and previous links as given."]
    }


def test_the_list_uses_an_index_for_each_filter_it_pages_by():
    indexed = {tuple(index.fields) for index in Notification._meta.indexes}
    assert ("user", "created_at", "id") in indexed
    assert ("status", "created_at", "id") in indexed
    assert ("channel", "created_at", "id") in indexed
    assert Notification._meta.get_field("created_at").db_index


def test_cancel_a_scheduled_one_and_the_admins_message_when_left_alone(api, make_user):
    user = make_user()
    scheduled = Notification.objects.create(user=user, message="m", status=Status.SCHEDULED)
    sent = Notification.objects.create(user=user, message="m", status=Status.SENT)

    response = api.post(f"{URL}/{scheduled.pk}/cancel")
    assert response.status_code == 200
    assert response.json()["detail"] == "1 cancelled"
    assert response.json()["notification"]["status"] == "cancelled"

    refused = api.post(f"{URL}/{sent.pk}/cancel")
    assert refused.status_code == 409
    assert refused.json() == {
        "status": 409,
        "code": "left_alone",
        "detail": "0 cancelled, 1 skipped: 1 already sent",
        "fields": {},
    }
    sent.refresh_from_db()
    assert sent.status == Status.SENT
    assert api.post(f"{URL}/{sent.pk + 1000}/cancel").status_code == 404


def test_resend_a_sent_one_and_the_admins_message_when_left_alone(
    api, make_user, django_capture_on_commit_callbacks
):
    user = make_user()
    sent = Notification.objects.create(user=user, message="m", status=Status.SENT, rounds=1)
    queued = Notification.objects.create(user=user, message="m", status=Status.QUEUED)

    with django_capture_on_commit_callbacks(execute=False) as rung:
        response = api.post(f"{URL}/{sent.pk}/resend")
    assert response.status_code == 200
    assert response.json()["detail"] == "1 queued again"
    assert response.json()["notification"]["status"] == "queued"
    assert len(rung) == 1

    refused = api.post(f"{URL}/{queued.pk}/resend")
    assert refused.status_code == 409
    assert refused.json()["detail"] == "0 queued again, 1 skipped: 1 already queued"


def test_contact_read_and_update_with_the_admins_validation(api, make_user):
    user = make_user(email="ann@example.com")
    url = f"/api/v1/users/{user.pk}/contact"
    body = api.get(url).json()
    assert (body["user"], body["username"], body["effective_email"]) == (
        user.pk,
        user.username,
        "ann@example.com",
    )

    response = api.put(url, {"phone": "8 (916) 123-45-67", "telegram_chat_id": " 1001 "})
    assert response.status_code == 200, response.json()
    assert (response.json()["phone"], response.json()["telegram_chat_id"]) == (
        "+79161234567",
        "1001",
    )
    response = api.put(url, {"sms_opt_out": True})  # the other fields keep their values
    assert response.json()["phone"] == "+79161234567"
    contact = UserContact.objects.get(user=user)
    assert (contact.phone, contact.sms_opt_out) == ("+79161234567", True)

    refused = api.put(url, {"phone": "+7 495 123-45-67", "telegram_chat_id": "not an id"})
    assert refused.status_code == 400  # the chat id breaks the schema's pattern
    assert refused.json()["fields"] == {
        "telegram_chat_id": [
            "Enter a numeric Telegram chat id (e.g. 123456789, or -100… for a group) or a "
            "channel username such as @my_channel."
        ],
    }
    refused = api.put(url, {"phone": "+7 495 123-45-67"})
    assert refused.status_code == 422  # a phone number, but not a mobile one
    assert refused.json()["fields"] == {
        "phone": ["'+7 495 123-45-67' is not a mobile number, so it cannot receive SMS."],
    }
    assert UserContact.objects.get(user=user).phone == "+79161234567"
    assert api.get(f"/api/v1/users/{user.pk + 1000}/contact").status_code == 404
    assert api.put(url, {"fax": "5"}).status_code == 400
