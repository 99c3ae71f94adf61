"""The template sandbox's limits, and its errors as the operator meets them: a width, a
precision, a list, a loop or an output past its limit is refused before the large value is
made; whatever a template raises is a form error on save, on preview and at creation, never a
500."""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable, Iterator

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.template import Context
from django.urls import reverse

from notifications.composing import notification_build
from notifications.models import Campaign, Template, UserContact
from notifications.rendering import (
    MAX_LOOP_ITERATIONS,
    TemplateRenderer,
    check_template,
    compile_part,
    run_part,
)

User = get_user_model()
FEW_MB = 4_000_000
LITERAL_40 = '"' + "x" * 40 + '"'


def template(**parts: str) -> Template:
    values = {
        "key": "t",
        "name": "T",
        "telegram_text_en": "Hello {{ first_name }}",
        "email_subject_en": "Hello",
        "email_text_en": "Hello {{ first_name }}",
        "email_html_en": "<p>Hello {{ first_name }}</p>",
        "sms_text_en": "Hello {{ first_name }}",
    }
    values.update(parts)
    return Template(**values)


def render_email_html(source: str, **context: object) -> str:
    """The email's HTML part, the one part with no length check of its own after rendering."""
    user = User(username="ann", first_name="Ann")
    renderer = TemplateRenderer(template(email_html_en=source), context)
    return renderer.render(user, UserContact(user=user)).email_html


def peak_memory(action: Callable[[], object]) -> int:
    """The most memory ``action`` held at once, in bytes (the refusal is expected)."""
    tracemalloc.start()
    try:
        with pytest.raises(ValidationError):
            action()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_width_of_50_million_is_refused_without_allocating_it():
    caught: list[ValidationError] = []

    def render() -> None:
        try:
            render_email_html('{{ first_name|ljust:"50000000" }}')
        except ValidationError as err:
            caught.append(err)
            raise

    assert peak_memory(render) < FEW_MB
    assert caught[0].messages == [
        "email HTML (en): the filter “ljust” was given 50,000,000; at most 1,000,000 is allowed."
    ]


def test_the_save_check_refuses_it_too_under_its_field():
    def save() -> None:
        check_template(template(sms_text_en='{{ username|ljust:"50000000" }}'))

    assert peak_memory(save) < FEW_MB
    with pytest.raises(ValidationError) as caught:
        save()
    assert "at most 1,000,000" in caught.value.message_dict["sms_text_en"][0]


@pytest.mark.parametrize(
    ("source", "context", "problem"),
    [
        ('{{ first_name|rjust:"50000000" }}', {}, "“rjust” was given 50,000,000"),
        ('{{ first_name|center:"50000000" }}', {}, "“center” was given 50,000,000"),
        ('{{ first_name|truncatechars:"50000000" }}', {}, "“truncatechars” was given"),
        ('{{ first_name|stringformat:"50000000s" }}', {}, "“stringformat” was given"),
        ('{{ 1.5|stringformat:".50000000f" }}', {}, "“stringformat” was given"),
        ('{{ 1.5|floatformat:"999999" }}', {}, "“floatformat” was given 999,999; at most 100"),
        ('{{ 12|get_digit:"99999999999999999999" }}', {}, "“get_digit” was given"),
        ("{{ big|make_list }}", {"big": "я" * 20_000}, "“make_list” was given 20,000"),
        ("{{ many|join:sep }}", {"many": ["x"] * 5_000, "sep": "-" * 1_000}, "1,000,000 char"),
        ("{{ big }}{{ big }}{{ big }}{{ big }}", {"big": "x" * 300_000}, "1,000,000 char"),
        ('{% filter ljust:"50000000" %}x{% endfilter %}', {}, "“ljust” was given"),
        # each addslashes doubles the backslashes: 2**30 of them, were it not stopped
        ("{{ s" + "|addslashes" * 30 + " }}", {"s": "\\"}, "1,000,000 characters"),
        # an {% if %} swallows its condition's errors; the render still ends refused
        ('{% if first_name|ljust:"50000000" == "x" %}y{% endif %}', {}, "“ljust” was given"),
    ],
)
def test_each_limit_is_refused_before_the_large_value_is_made(source, context, problem):
    caught: list[ValidationError] = []

    def render() -> None:
        try:
            render_email_html(source, **context)
        except ValidationError as err:
            caught.append(err)
            raise

    assert peak_memory(render) < FEW_MB
    assert problem in caught[0].messages[0]
    assert caught[0].messages[0].startswith("email HTML (en): ")


def test_three_nested_loops_over_literals_are_refused():
    loops = (
        f"{{% for a in {LITERAL_40} %}}{{% for b in {LITERAL_40} %}}{{% for c in {LITERAL_40} %}}"
        "{{ c }}{% endfor %}{% endfor %}{% endfor %}"
    )
    with pytest.raises(ValidationError) as caught:
        render_email_html(loops)
    assert caught.value.messages == [
        "email HTML (en): its loops run more than 10,000 times in all; loop over less."
    ]


class Counted:
    """A long sequence that counts the items a loop takes from it."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.taken = 0

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[int]:
        for item in range(self.length):
            self.taken += 1
            yield item


def test_a_loop_too_long_is_refused_before_its_first_turn():
    compiled = compile_part("{% for i in items %}{{ i }}{% endfor %}", "sms_text")
    items = Counted(MAX_LOOP_ITERATIONS + 1)
    with pytest.raises(ValidationError, match="loops run more than 10,000 times"):
        run_part(compiled, "sms_text", Context({"items": items}))
    assert items.taken == 0
    within = Counted(MAX_LOOP_ITERATIONS)
    assert len(run_part(compiled, "sms_text", Context({"items": within}))) > 0
    assert within.taken == MAX_LOOP_ITERATIONS


def test_what_a_real_template_does_stays_well_within_the_limits():
    rows = [{"name": f"item {i}", "price": i * 1.5} for i in range(60)]
    source = (
        "{% for row in rows %}<tr>{% for column in columns %}<td>{{ column|upper }}</td>"
        '{% endfor %}<td>{{ row.name }}: {{ row.price|floatformat:2|rjust:"12" }}</td></tr>'
        "{% endfor %}{{ body|linebreaks }}"
    )
    columns = ["name", "price", "total"]
    html = render_email_html(
        source, rows=rows, columns=columns, body="\n\n".join(["paragraph"] * 10_000)
    )
    assert html.count("<tr>") == 60 and html.count("<p>") == 10_000


# --- the operator's pages: a form error, never a 500 ------------------------------------------


def template_form(**parts: str) -> dict[str, str]:
    data = {"name": "T", "key": "t", "example_context": "{}"}
    data.update({f"{part}_{lang}": "" for lang in ("ru", "en") for part in Template.PARTS})
    data.update(
        telegram_text_en="Hello", email_subject_en="Hello", email_text_en="Hi", sms_text_en="Hi"
    )
    data.update(parts)
    return data


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "source", "problem"),
    [
        ("telegram_text_en", "{{ username|divisibleby:2 }}", "could not be rendered: ValueError"),
        ("sms_text_en", '{{ username|ljust:"50000000" }}', "at most 1,000,000 is allowed"),
        ("email_html_en", "{% widthratio 1 1 username %}", "could not be rendered"),
    ],
)
def test_saving_a_template_that_fails_shows_the_error_by_its_field(
    admin_client, field, source, problem
):
    response = admin_client.post(
        reverse("admin:notifications_template_add"), template_form(**{field: source})
    )
    assert response.status_code == 200
    assert problem in response.context_data["adminform"].form.errors[field][0]
    assert not Template.objects.exists()


def compose(client, user_ids: list[int], template: Template, context: str):
    return client.post(
        reverse("admin:auth_user_changelist"),
        {
            "action": "send_notification",
            "_selected_action": [str(pk) for pk in user_ids],
            "_compose": "1",
            "template": str(template.pk),
            "context": context,
            "message": "",
            "subject": "",
            "send_at_0": "",
            "send_at_1": "",
            "_preview": "1",
        },
    )


@pytest.mark.django_db
def test_the_preview_shows_an_error_the_recipients_values_cause(admin_client):
    # saved without the form's check (as by code, or before it existed)
    failing = Template.objects.create(**{**template_form(), "example_context": {}})
    Template.objects.filter(pk=failing.pk).update(sms_text_en="{% widthratio 1 1 what %}")
    response = compose(admin_client, [User.objects.get().pk], failing, '{"what": "x"}')
    assert response.status_code == 200
    assert "SMS text (en) could not be rendered: TemplateSyntaxError" in response.text
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_the_preview_refuses_a_link_given_twice(admin_client):
    """A browser follows the first href: the one the check once let through unread."""
    sneaky = Template.objects.create(
        **{
            **template_form(),
            "example_context": {},
            "telegram_text_en": '<a href="javascript:alert(1)" href="https://example.com">x</a>',
        }
    )
    response = compose(admin_client, [User.objects.get().pk], sneaky, "{}")
    assert response.status_code == 200
    assert "href more than once" in response.text
    assert 'href="javascript:' not in response.text


@pytest.mark.django_db
def test_creating_a_notification_reports_what_the_template_raised():
    user = User.objects.create_user("ann")
    failing = template(sms_text_en="{% widthratio 1 1 what %}")
    with pytest.raises(ValidationError) as caught:
        notification_build(user=user, template=failing, context={"what": "x"})
    [message] = caught.value.message_dict["template"]
    assert message.startswith("SMS text (en) could not be rendered: TemplateSyntaxError")
