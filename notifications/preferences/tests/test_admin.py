"""Categories and a user's preferences in the admin: a bad category is a form error beside
its field and saves nothing; the contact's page edits the user's preferences, writing only
the boxes the operator changed, for staff with the permissions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from notifications.models import UserContact
from notifications.preferences.admin_forms import encode
from notifications.preferences.models import Category, Preference
from notifications.preferences.services import preference_set, states_of

pytestmark = pytest.mark.django_db

ADD = reverse("admin:preferences_category_add")
GOOD = {
    "key": "promotions",
    "name_en": "Promotions",
    "name_ru": "Акции",
    "description_en": "",
    "description_ru": "",
    "cap_count": "",
    "cap_window": "",
    "over_cap": "defer",
    "digest_window": "",
}


def errors_of(response) -> dict[str, list[str]]:
    assert response.status_code == 200, response.status_code  # the form again, not a redirect
    form = response.context["adminform"].form
    return {name: list(messages) for name, messages in form.errors.items()}


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"cap_count": "0", "cap_window": "1 00:00:00"}, "cap_count", "A cap is at least 1"),
        (
            {"cap_count": "-1", "cap_window": "1 00:00:00"},
            "cap_count",
            "Ensure this value is greater than or equal to 0.",
        ),
        ({"cap_count": "3"}, "cap_window", "Give both the cap and its window, or neither."),
        (
            {"cap_count": "3", "cap_window": "-01:00:00"},
            "cap_window",
            "A cap window is longer than nothing",
        ),
        (
            {"cap_count": "3", "cap_window": "32 00:00:00"},
            "cap_window",
            "A cap window is longer than nothing",
        ),
        ({"digest_window": "1 00:00:01"}, "digest_window", "at most a day"),
        ({"digest_window": "00:00:00"}, "digest_window", "at most a day"),
        ({"digest_window": "forever"}, "digest_window", "Enter a valid duration."),
        ({"required": "on", "opt_in": "on"}, "opt_in", "A required category can't be opt-in"),
        ({"default_channels": ["email", "pigeon"]}, "default_channels", "pigeon"),
        ({"is_default": "on"}, "is_default", "General is the default category"),
        ({"key": "two words"}, "key", "Enter a valid “slug”"),
        ({"key": "general"}, "key", "Category with this Key already exists."),
    ],
)
def test_a_category_with_a_bad_value_gets_a_form_error_and_nothing_is_saved(
    admin_client, changes, field, message
):
    before = list(Category.objects.values())

    response = admin_client.post(ADD, {**GOOD, **changes})

    errors = errors_of(response)
    assert message in errors[field][0], errors
    assert list(Category.objects.values()) == before


def test_changing_a_category_to_bad_values_shows_the_errors_and_keeps_it(admin_client):
    category = Category.objects.create(
        key="news", name_en="News", cap_count=5, cap_window=timedelta(hours=1)
    )
    url = reverse("admin:preferences_category_change", args=[category.pk])

    response = admin_client.post(
        url,
        {**GOOD, "key": "news", "name_en": "Renamed", "cap_count": "0", "cap_window": "01:00:00"},
    )

    assert list(errors_of(response)) == ["cap_count"]
    category.refresh_from_db()
    assert (category.name_en, category.cap_count) == ("News", 5)


def test_a_category_is_saved_with_the_default_channels_ticked(admin_client):
    page = admin_client.get(ADD).content.decode()
    assert 'type="checkbox" name="default_channels" value="telegram"' in page
    assert "<textarea" not in page.split('name="default_channels"')[0].rsplit("<div", 1)[-1]

    response = admin_client.post(
        ADD,
        {
            **GOOD,
            "default_channels": ["sms", "telegram"],
            "opt_in": "on",
            "cap_count": "3",
            "cap_window": "1 00:00:00",
            "over_cap": "skip",
            "digest_window": "02:00:00",
        },
    )

    assert response.status_code == 302, errors_of(response)
    category = Category.objects.get(key="promotions")
    assert category.default_channels == ["telegram", "sms"]
    assert (category.opt_in, category.cap_count, category.cap_window) == (
        True,
        3,
        timedelta(days=1),
    )
    assert category.digest_window == timedelta(hours=2)
    change = admin_client.get(reverse("admin:preferences_category_change", args=[category.pk]))
    assert 'value="sms" id="id_default_channels_2" checked' in change.content.decode()


def test_the_category_list_shows_the_cap_and_digest_window_in_words(admin_client):
    Category.objects.create(
        key="promotions",
        name_en="Promotions",
        cap_count=3,
        cap_window=timedelta(days=1),
        digest_window=timedelta(hours=2),
    )
    page = admin_client.get(reverse("admin:preferences_category_changelist")).content.decode()
    assert "3 per 1 day" in page
    assert "2 hours" in page


# --- a user's preferences on their contact's page -------------------------------------------


@pytest.fixture
def promotions() -> Category:
    return Category.objects.create(key="promotions", name_en="Promotions", opt_in=True)


def contact_url(user) -> str:
    return reverse("admin:notifications_usercontact_change", args=[user.contact.pk])


def form_data(response) -> dict[str, object]:
    """What the browser would send back for the page as shown (ticked boxes included)."""
    form = response.context["adminform"].form
    data: dict[str, object] = {}
    for name in form.fields:
        value = form[name].value()
        if name == "preferences":
            data["preferences.shown"] = encode(value.shown)
            for key, channels in value.ticked.items():
                for channel in channels:
                    data[f"preferences.{key}.{channel}"] = "on"
        elif value is True:
            data[name] = "on"
        elif value not in (False, None):
            data[name] = value
    return data


def states(user) -> dict[str, dict[str, bool]]:
    return {s.category.key: s.channels for s in states_of(user)}


def test_ticking_boxes_on_the_contact_page_changes_the_users_preferences(
    admin_client, make_user, promotions
):
    user = make_user()
    page = admin_client.get(contact_url(user))
    assert 'aria-label="Promotions: Email"' in page.content.decode()
    data = form_data(page)
    data["preferences.promotions.email"] = "on"
    del data["preferences.general.sms"]

    response = admin_client.post(contact_url(user), data)

    assert response.status_code == 302, errors_of(response)
    assert states(user)["promotions"] == {"telegram": False, "email": True, "sms": False}
    assert states(user)["general"] == {"telegram": True, "email": True, "sms": False}
    assert Preference.objects.count() == 2  # only the boxes changed


def test_saving_the_contact_leaves_the_boxes_not_changed_to_the_user(
    admin_client, make_user, promotions
):
    """A box saved as shown writes nothing: it keeps following the default, and a choice the
    user made while the page was open stands."""
    user = make_user()
    data = form_data(admin_client.get(contact_url(user)))
    assert data["preferences.shown"] == "general:telegram,email,sms;promotions:"
    preference_set(user=user, category=promotions, channel="sms", enabled=True)  # meanwhile
    data["email"] = "ann@example.com"

    response = admin_client.post(contact_url(user), data)

    assert response.status_code == 302, errors_of(response)
    assert UserContact.objects.get(user=user).email == "ann@example.com"
    assert list(Preference.objects.values_list("channel", "enabled")) == [("sms", True)]


def test_a_box_changed_on_a_page_shown_again_with_an_error_is_saved_once_it_is_fixed(
    admin_client, make_user, promotions
):
    user = make_user()
    data = form_data(admin_client.get(contact_url(user)))
    data["preferences.promotions.sms"] = "on"
    data["phone"] = "call me"

    again = admin_client.post(contact_url(user), data)

    assert "phone" in errors_of(again)
    assert not Preference.objects.exists()
    data = form_data(again)
    assert "preferences.promotions.sms" in data  # the tick is still there
    data["phone"] = ""
    response = admin_client.post(contact_url(user), data)
    assert response.status_code == 302, errors_of(response)
    assert states(user)["promotions"] == {"telegram": False, "email": False, "sms": True}


def staff_with(django_user_model, *codenames: str):
    staff = django_user_model.objects.create_user("operator", password="pw", is_staff=True)
    staff.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    return staff


def test_staff_who_may_only_view_preferences_see_them_as_text_and_change_none(
    client, django_user_model, make_user, promotions
):
    user = make_user()
    client.force_login(
        staff_with(django_user_model, "view_usercontact", "change_usercontact", "view_preference")
    )
    page = client.get(contact_url(user))
    text = page.content.decode()
    assert "Promotions: nothing" in text
    assert 'name="preferences.promotions.email"' not in text

    data = form_data(page)
    data["preferences.promotions.email"] = "on"
    assert client.post(contact_url(user), data).status_code == 302
    assert not Preference.objects.exists()


def test_staff_without_the_view_permission_see_no_preferences(
    client, django_user_model, make_user, promotions
):
    user = make_user()
    staff = staff_with(django_user_model, "view_usercontact", "change_usercontact")
    client.force_login(staff)
    text = client.get(contact_url(user)).content.decode()
    assert "Channels per category" not in text
    assert "Promotions" not in text

    staff.user_permissions.add(Permission.objects.get(codename="view_preference"))
    client.force_login(django_user_model.objects.get(pk=staff.pk))
    assert "Promotions" in client.get(contact_url(user)).content.decode()


def test_the_template_form_carries_a_category_a_digest_key_and_digest_texts(admin_client):
    """Issue 16: a template's category, digest key and digest texts are set in the admin; a
    digest text that doesn't render is a form error and saves nothing."""
    from notifications.models import Template

    comments = Category.objects.create(
        key="comments", name_en="Comments", digest_window=timedelta(minutes=15)
    )
    data = {
        "name": "Comment",
        "key": "comment",
        "example_context": "{}",
        "category": comments.pk,
        "digest_key": "post",
        "telegram_text_en": "A comment",
        "email_subject_en": "A comment",
        "email_text_en": "A comment",
        "email_html_en": "",
        "sms_text_en": "A comment",
        "digest_text_en": "{{ count }} new comments {% if %}",
        "digest_text_ru": "",
    }
    for part in Template.PARTS:
        data[f"{part}_ru"] = ""
    url = reverse("admin:notifications_template_add")
    response = admin_client.post(url, data)
    assert response.status_code == 200 and not Template.objects.exists()
    assert 'name="digest_text_en"' in response.text and "errorlist" in response.text
    data["digest_text_en"] = "{{ count }} new comments"
    response = admin_client.post(url, data)
    assert response.status_code == 302
    saved = Template.objects.get()
    assert (saved.category, saved.digest_key, saved.digest_text_en) == (
        comments,
        "post",
        "{{ count }} new comments",
    )
