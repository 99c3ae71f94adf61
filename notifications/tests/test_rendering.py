"""Templates: rendered per channel and language in a sandbox, escaped per format, a missing
variable refused, Telegram's HTML subset enforced, SMS segments and cost estimated."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from notifications.models import Template, UserContact
from notifications.rendering import (
    TemplateRenderer,
    check_template,
    sms_estimate,
    validate_telegram_html,
)


def template(**parts) -> Template:
    values = {
        "key": "t",
        "name": "T",
        "telegram_text_en": "Hello <b>{{ first_name }}</b>, {{ what }}",
        "email_subject_en": "About {{ what }}",
        "email_text_en": "Hello {{ first_name }}, {{ what }}",
        "email_html_en": "<p>Hello {{ first_name }}, {{ what }}</p>",
        "sms_text_en": "Hello {{ first_name }}: {{ what }}",
    }
    values.update(parts)
    return Template(**values)


def russian(**parts) -> dict:
    return {
        "telegram_text_ru": "Привет, <b>{{ first_name }}</b>: {{ what }}",
        "email_subject_ru": "О {{ what }}",
        "email_text_ru": "Привет, {{ first_name }}: {{ what }}",
        "sms_text_ru": "Привет, {{ first_name }}: {{ what }}",
        **parts,
    }


def person(first_name: str = "Ann", language: str = ""):
    user = get_user_model()(username="ann", first_name=first_name, email="ann@example.com")
    return user, UserContact(user=user, language=language)


def test_each_channel_gets_its_own_form_with_values_escaped_for_it():
    user, contact = person(first_name="<Ann & Co>")
    rendered = TemplateRenderer(template(), {"what": "5 < 6"}).render(user, contact)
    assert rendered.telegram_text == "Hello <b>&lt;Ann &amp; Co&gt;</b>, 5 &lt; 6"
    assert rendered.email_html == "<p>Hello &lt;Ann &amp; Co&gt;, 5 &lt; 6</p>"
    assert rendered.email_text == "Hello <Ann & Co>, 5 < 6"  # plain text: nothing escaped
    assert rendered.sms_text == "Hello <Ann & Co>: 5 < 6"
    assert rendered.email_subject == "About 5 < 6"


def test_a_variable_missing_from_the_context_is_an_error_naming_it():
    user, contact = person()
    renderer = TemplateRenderer(template(), {})
    with pytest.raises(ValidationError) as caught:
        renderer.render(user, contact)
    assert "what" in caught.value.messages[0]
    assert "missing" in caught.value.messages[0]


def test_a_missing_nested_key_and_a_missing_name_inside_if_are_errors_too():
    user, contact = person()
    nested = template(sms_text_en="Order {{ order.total }}")
    with pytest.raises(ValidationError, match=r"order\.total"):
        TemplateRenderer(nested, {"what": "x", "order": {"id": 1}}).render(user, contact)
    optional = template(sms_text_en="{% if discount %}-{{ discount }}%{% endif %} ok")
    with pytest.raises(ValidationError, match="discount"):
        TemplateRenderer(optional, {"what": "x"}).render(user, contact)
    # An empty value is how an optional variable is given.
    rendered = TemplateRenderer(optional, {"what": "x", "discount": ""}).render(user, contact)
    assert rendered.sms_text == "ok"


def test_the_recipients_language_decides_with_a_fallback(settings):
    both = template(**russian())
    ru_user, ru_contact = person(language="ru")
    en_user, en_contact = person(language="en")
    assert TemplateRenderer(both, {"what": "x"}).render(ru_user, ru_contact).language == "ru"
    assert TemplateRenderer(both, {"what": "x"}).render(en_user, en_contact).language == "en"
    settings.LANGUAGE_CODE = "ru"
    blank_user, blank_contact = person(language="")
    assert TemplateRenderer(both, {"what": "x"}).render(blank_user, blank_contact).language == "ru"
    english_only = template()
    assert (
        TemplateRenderer(english_only, {"what": "x"}).render(ru_user, ru_contact).language == "en"
    )


def test_the_sandbox_has_no_debug_include_load_or_safe():
    user, contact = person()
    for source in ("{% debug %}", '{% include "x.html" %}', "{% load static %}", "{{ what|safe }}"):
        with pytest.raises(ValidationError):
            TemplateRenderer(template(sms_text_en=source), {"what": "x"}).render(user, contact)


@pytest.mark.parametrize(
    "html",
    [
        '<b>bold</b> <i>it</i> <a href="https://example.com/?a=1&amp;b=2">link</a>',
        '<span class="tg-spoiler">secret</span> <tg-spoiler>s</tg-spoiler>',
        '<pre><code class="language-python">x = 1</code></pre> <blockquote>q</blockquote>',
        "5 &lt; 6 &amp;&#33; &#x27;",
        '<a href="HTTPS://example.com">x</a> <a href="tg://user?id=1">u</a>',
        "<a href='mailto:ann@example.com'>mail</a> <blockquote expandable>q</blockquote>",
    ],
)
def test_telegram_html_accepts_its_subset(html):
    validate_telegram_html(html)


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ("<p>para</p>", "<p> is not allowed"),
        ("<b>open", "<b> is never closed"),
        ("<b><i>x</b></i>", "</b> closes a tag that is not open"),
        ("a < b", "bare “<”"),
        ("Tom & Jerry", "bare “&”"),
        ("&nbsp;", "&nbsp; is not supported"),
        ('<a href="javascript:alert(1)">x</a>', "href"),
        # a browser keeps the first of a repeated attribute; the check once read the last
        ('<a href="javascript:alert(1)" href="https://example.com">x</a>', "href more than once"),
        ('<a href="https://example.com" HREF="javascript:alert(1)">x</a>', "href more than once"),
        ('<span class="tg-spoiler" class="x">x</span>', "class more than once"),
        # the scheme as a browser reads it: entities decoded, spaces and controls dropped
        ('<a href="jav&#x09;ascript:alert(1)">x</a>', "href starting with"),
        ('<a href=" JavaScript:alert(1)">x</a>', "href starting with"),
        ('<a href="&#106;avascript:alert(1)">x</a>', "href starting with"),
        ('<a href="java\nscript:alert(1)">x</a>', "href starting with"),
        ("<a href=data:text/html,x>x</a>", "href starting with"),
        ('<a href="//evil.example">x</a>', "href starting with"),
        ('<span style="color:red">x</span>', "attribute style"),
        ("<br/>", "is not allowed"),
    ],
)
def test_telegram_html_refuses_what_telegram_would(html, problem):
    with pytest.raises(ValidationError) as caught:
        validate_telegram_html(html)
    assert problem in caught.value.messages[0]


def test_rendered_telegram_text_must_fit_one_message_so_no_tag_is_ever_split():
    user, contact = person()
    long = template(telegram_text_en="<b>{{ what }}</b>", email_subject_en="Long")
    with pytest.raises(ValidationError, match="at most 4096"):
        TemplateRenderer(long, {"what": "x" * 4100}).render(user, contact)
    assert TemplateRenderer(long, {"what": "x" * 4000}).render(user, contact)


def test_renders_are_reused_for_recipients_with_the_same_values():
    renderer = TemplateRenderer(template(sms_text_en="No names: {{ what }}"), {"what": "x"})
    first = renderer.render(*person(first_name="A"))
    # first_name is used by the other parts, so a different name renders again
    assert renderer.render(*person(first_name="B")) is not first
    assert renderer.render(*person(first_name="A")) is first


def test_checks_on_save_name_the_field_of_each_problem():
    broken = template(
        telegram_text_en="<p>{{ what }}</p>",
        sms_text_en="{% if %}",
        email_text_ru="Только почта",
    )
    with pytest.raises(ValidationError) as caught:
        check_template(broken)
    errors = caught.value.message_dict
    assert "<p> is not allowed" in errors["telegram_text_en"][0]
    assert "sms_text_en" in errors
    # a language half written is refused, field by field
    assert "Fill in every channel" in errors["telegram_text_ru"][0]


def test_checks_on_save_accept_variables_not_in_the_example_context():
    check_template(template(example_context={}))


def test_sms_estimate_counts_segments_and_prices_them(settings):
    settings.NOTIFY_SMS_PRICE = Decimal("4.50")
    assert sms_estimate("a" * 160).segments == 1
    estimate = sms_estimate("я" * 71)  # UCS2: 70 a part, 67 when split
    assert (estimate.segments, estimate.cost) == (2, Decimal("9.00"))
    settings.NOTIFY_SMS_PRICE = None
    assert sms_estimate("hi").cost is None


# --- whatever a filter or tag raises is a ValidationError naming the part ---------------------


def test_a_filter_failing_on_the_sample_is_refused_on_save_under_its_field():
    # a string given to divisibleby: ValueError, once a 500 on saving the template
    failing = template(telegram_text_en="{{ username|divisibleby:2 }}")
    with pytest.raises(ValidationError) as caught:
        check_template(failing)
    [message] = caught.value.message_dict["telegram_text_en"]
    assert message.startswith("Telegram text (en) could not be rendered: ValueError")


@pytest.mark.parametrize(
    "source",
    [
        "{% widthratio 1 1 what %}",  # TemplateSyntaxError, raised while rendering
        "{{ what|divisibleby:2 }}",  # ValueError
        "{% for x in 5 %}{% endfor %}",  # TypeError
        "{% if 1 %}" * 3000 + "{% endif %}" * 3000,  # RecursionError, while compiling
    ],
)
def test_whatever_a_template_raises_is_a_validation_error_naming_the_part(source):
    user, contact = person()
    with pytest.raises(ValidationError) as caught:
        TemplateRenderer(template(sms_text_en=source), {"what": "x"}).render(user, contact)
    assert caught.value.messages[0].startswith("SMS text (en)")
