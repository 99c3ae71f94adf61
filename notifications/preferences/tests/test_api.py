"""A user's preferences and the categories through the HTTP API: read (required categories
read-only, the rest with the user's choices and the defaults), change only what is named, all
or nothing, with 400 for what the schema states and 422 for the rest. Every answer is checked
against the served schema by the ``api`` client."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notifications.models import ApiKey, UserContact
from notifications.preferences.models import Category, Preference
from notifications.preferences.services import preference_set, states_of
from notifications.tests.api_client import KeyClient

pytestmark = pytest.mark.django_db

CATEGORIES = "/api/v1/categories"


def url(user) -> str:
    return f"/api/v1/users/{user.pk}/preferences"


@pytest.fixture
def categories() -> dict[str, Category]:
    """A required category, an opt-in one with a cap, and one sent by email by default (and
    the migration's "general")."""
    made = [
        Category(
            key="security",
            name_en="Security",
            name_ru="Безопасность",
            description_en="Login codes.",
            required=True,
        ),
        Category(
            key="promotions",
            name_en="Promotions",
            name_ru="Акции",
            description_en="Sales and offers.",
            description_ru="Скидки и предложения.",
            opt_in=True,
            cap_count=3,
            cap_window=timedelta(days=1),
            over_cap=Category.OverCap.SKIP,
            digest_window=timedelta(hours=2),
        ),
        Category(key="news", name_en="News", default_channels=["email"]),
    ]
    return {c.key: c for c in Category.objects.bulk_create(made)} | {
        "general": Category.objects.get(key="general")
    }


def entry(body: dict, key: str) -> dict:
    return next(c for c in body["categories"] if c["key"] == key)


def test_a_read_lists_required_categories_read_only_then_each_choice_with_its_default(
    api, make_user, categories
):
    user = make_user()
    preference_set(user=user, category=categories["news"], channel="sms", enabled=True)

    response = api.get(url(user))

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["user"] == user.pk
    assert [c["key"] for c in body["categories"]] == ["security", "general", "news", "promotions"]
    assert body["categories"][0] == {
        "key": "security",
        "name": "Security",
        "description": "Login codes.",
        "required": True,
        "opt_in": False,
        "channels": {"telegram": True, "email": True, "sms": True},
        "chosen": [],
    }
    assert entry(body, "promotions")["channels"] == {
        "telegram": False,
        "email": False,
        "sms": False,
    }
    assert entry(body, "promotions")["opt_in"] is True
    news = entry(body, "news")
    assert news["channels"] == {"telegram": False, "email": True, "sms": True}
    assert news["chosen"] == ["sms"]


def test_names_and_descriptions_are_in_the_users_language(api, make_user, categories):
    user = make_user(language="ru")
    body = api.get(url(user)).json()
    assert (entry(body, "promotions")["name"], entry(body, "promotions")["description"]) == (
        "Акции",
        "Скидки и предложения.",
    )
    assert entry(body, "news")["name"] == "News"  # no Russian name: the English one


def test_a_user_without_a_contact_row_reads_the_defaults(api, make_user, categories):
    user = make_user()
    UserContact.objects.filter(user=user).delete()
    response = api.get(url(user))
    assert response.status_code == 200
    assert entry(response.json(), "general")["channels"] == dict.fromkeys(
        ("telegram", "email", "sms"), True
    )


def test_a_change_sets_only_the_channels_named_and_answers_the_new_state(
    api, make_user, categories
):
    user = make_user()
    changes = {"categories": {"promotions": {"email": True}, "general": {"sms": False}}}

    response = api.put(url(user), changes)

    assert response.status_code == 200, response.json()
    assert response.json() == api.get(url(user)).json()
    promotions = entry(response.json(), "promotions")
    assert promotions["channels"] == {"telegram": False, "email": True, "sms": False}
    assert promotions["chosen"] == ["email"]
    assert entry(response.json(), "general")["channels"]["sms"] is False
    assert Preference.objects.count() == 2  # the other channels keep following the default
    by_key = {s.category.key: s for s in states_of(user)}
    assert by_key["promotions"].channels["email"] is True
    assert by_key["general"].channels == {"telegram": True, "email": True, "sms": False}

    again = api.put(url(user), changes)
    assert again.json() == response.json()
    assert Preference.objects.count() == 2


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (
            {"categories": {"promotions": {"pigeon": True}}},
            {
                "categories.promotions.pigeon": [
                    "Unknown channel; the channels are telegram, email and sms."
                ]
            },
        ),
        (
            {"categories": {"promotions": {"email": "no"}}},
            {"categories.promotions.email": ["Give true or false."]},
        ),
        (
            {"categories": {"promotions": True}},
            {"categories.promotions": ['Give an object of channels, e.g. {"email": false}.']},
        ),
        (
            {"categories": [["promotions", "email"]]},
            {
                "categories": [
                    "Give an object of categories, each an object of channels, e.g. "
                    '{"promotions": {"email": false}}.'
                ]
            },
        ),
        ({}, {"categories": ["This field is required."]}),
        (
            {"categories": {}, "user": 1},
            {"user": ["Unknown field; the fields are categories."]},
        ),
    ],
)
def test_a_body_that_breaks_the_schema_gets_400_naming_the_field_and_changes_nothing(
    api, make_user, categories, body, fields
):
    user = make_user()
    body = {**body}
    if isinstance(body.get("categories"), dict) and body["categories"]:
        body["categories"] = {"general": {"email": False}, **body["categories"]}

    response = api.put(url(user), body)

    assert response.status_code == 400, response.json()
    assert response.json()["fields"] == fields
    assert not Preference.objects.exists()


def test_an_unknown_or_required_category_gets_422_naming_each_and_changes_nothing(
    api, make_user, categories
):
    user = make_user()
    body = {
        "categories": {
            "promotions": {"email": True},
            "weather": {"email": True},
            "security": {"sms": False},
        }
    }

    response = api.put(url(user), body)

    assert response.status_code == 422, response.json()
    assert response.json()["fields"] == {
        "categories.weather": ["There is no category with the key 'weather'."],
        "categories.security": ["security is required: it can't be turned off."],
    }
    assert not Preference.objects.exists()


@pytest.mark.parametrize("key", ["", "no such key", "nul\x00", "surrogate\ud800", "x" * 51])
def test_a_key_no_category_can_have_gets_422_without_asking_the_database(
    api, make_user, categories, key
):
    user = make_user()
    body = json.dumps({"categories": {key: {"email": True}}})  # \ud800 escaped, as JSON may
    response = api.put(url(user), body, format=None, content_type="application/json")
    assert response.status_code == 422, response.json()
    (field,) = response.json()["fields"]
    assert field.startswith("categories.")
    assert not Preference.objects.exists()


def test_no_such_user_gets_404(api, categories):
    for response in (
        api.get("/api/v1/users/999999/preferences"),
        api.put("/api/v1/users/999999/preferences", {"categories": {"general": {"sms": False}}}),
    ):
        assert response.status_code == 404
        assert response.json()["detail"] == "No user 999999."


def test_a_read_only_key_reads_preferences_and_categories_but_gets_403_for_a_change(
    make_api_client, make_user, categories
):
    reader = make_api_client(scope=ApiKey.Scope.READ)
    user = make_user()
    assert reader.get(url(user)).status_code == 200
    assert reader.get(CATEGORIES).status_code == 200
    response = reader.put(url(user), {"categories": {"general": {"sms": False}}})
    assert response.status_code == 403
    assert not Preference.objects.exists()


def test_staff_sessions_need_the_preference_permissions(django_user_model, make_user, categories):
    user = make_user()
    staff = django_user_model.objects.create_user("operator", is_staff=True)
    client = KeyClient()
    client.force_login(staff)
    change = {"categories": {"general": {"sms": False}}}
    assert client.get(url(user)).status_code == 403
    assert client.get(CATEGORIES).status_code == 403

    staff.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_preference", "view_category"])
    )
    staff = django_user_model.objects.get(pk=staff.pk)  # a fresh permission cache
    client.force_login(staff)
    assert client.get(url(user)).status_code == 200
    assert client.get(CATEGORIES).status_code == 200
    assert client.put(url(user), change).status_code == 403

    staff.user_permissions.add(Permission.objects.get(codename="change_preference"))
    client.force_login(django_user_model.objects.get(pk=staff.pk))
    assert client.put(url(user), change).status_code == 200
    assert Preference.objects.get().enabled is False


def test_a_change_retried_with_its_idempotency_key_gets_the_first_answer(
    api, make_user, categories
):
    user = make_user()
    change = {"categories": {"promotions": {"sms": True}}}
    first = api.put(url(user), change, HTTP_IDEMPOTENCY_KEY="prefs-1")
    assert first.status_code == 200
    preference_set(user=user, category=categories["promotions"], channel="sms", enabled=False)

    retried = api.put(url(user), change, HTTP_IDEMPOTENCY_KEY="prefs-1")

    assert retried.status_code == 200
    assert retried["Idempotent-Replayed"] == "true"
    assert retried.json() == first.json()
    assert entry(api.get(url(user)).json(), "promotions")["channels"]["sms"] is False
    other = api.put(url(user), {"categories": {}}, HTTP_IDEMPOTENCY_KEY="prefs-1")
    assert other.status_code == 409


def test_a_read_costs_the_same_queries_however_many_categories(api, make_user, categories):
    user = make_user()
    api.get(CATEGORIES)  # the key's first use is noted once
    with CaptureQueriesContext(connection) as few:
        api.get(url(user))
    Category.objects.bulk_create(
        Category(key=f"topic-{n}", name_en=f"Topic {n}", required=n % 2 == 0) for n in range(20)
    )
    for n, category in enumerate(Category.objects.filter(key__startswith="topic-", required=False)):
        preference_set(user=user, category=category, channel="email", enabled=n % 2 == 0)
    with CaptureQueriesContext(connection) as many:
        response = api.get(url(user))
    assert len(response.json()["categories"]) == 24
    assert len(many) == len(few)


def test_the_categories_list_every_category_with_its_rules(api, categories):
    response = api.get(CATEGORIES)

    assert response.status_code == 200, response.json()
    listed = response.json()["categories"]
    assert [c["key"] for c in listed] == ["security", "general", "news", "promotions"]
    assert listed[-1] == {
        "key": "promotions",
        "names": {"en": "Promotions", "ru": "Акции"},
        "descriptions": {"en": "Sales and offers.", "ru": "Скидки и предложения."},
        "required": False,
        "opt_in": True,
        "default_channels": [],
        "cap": {"count": 3, "window_seconds": 86_400, "over_cap": "skip"},
        "digest_window_seconds": 7_200,
        "default": False,
    }
    news = listed[2]
    assert (news["default_channels"], news["cap"], news["digest_window_seconds"]) == (
        ["email"],
        None,
        None,
    )
    assert listed[1]["default"] is True
