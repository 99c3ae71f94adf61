"""The preference page: a user turns each topic (category) on or off per channel without
logging in, through the signed link in every email's footer and in the bot's ``/settings``.

``GET /preferences/<token>/`` shows the page; ``POST`` (the form, with Django's CSRF token,
which works without a login) saves the channels whose box changed and redirects to
``?saved=1``. ``?lang=ru`` or ``?lang=en`` (the switch on the page) picks the language, else the
contact's language, else the browser's (Accept-Language), else DJANGO_LANGUAGE_CODE. Required
categories are listed as "always sent", not as a choice, so nobody believes that unticking
everything stops their sign-in codes.

A link that was altered, has expired or names no user gets 404 with a plain page in the
browser's language: the page it named is not there for this visitor, and the answer is the
same whatever went wrong, so it tells a guesser nothing. Each request costs the client's
address one of ``NOTIFY_API_ANON_RATE``, as the API's anonymous requests do: past it, 429.
The answers are never cached nor indexed, and the page links nowhere else: the token is a
secret, and Django's ``Referrer-Policy: same-origin`` keeps it from other sites. (``no-referrer``
would make browsers post the form with ``Origin: null``, which Django's CSRF check refuses.)
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.utils.cache import patch_cache_control
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from notifications.api.throttling import anonymous_wait
from notifications.models import Channel, UserContact
from notifications.preferences import links
from notifications.preferences import unsubscribe as one_click
from notifications.preferences.models import Category
from notifications.preferences.reach import unreachable
from notifications.preferences.services import CategoryState, preference_set, states_of

LANGUAGES = {"en": "English", "ru": "Русский"}


def page_language(request: HttpRequest, contact: UserContact | None = None) -> str:
    """``?lang=``, else the contact's language, else the browser's, else the service's."""
    chosen = request.GET.get("lang", "")
    if chosen in LANGUAGES:
        return chosen
    if contact is not None and contact.language in LANGUAGES:
        return contact.language
    return translation.get_language_from_request(request)


def _private(response: HttpResponse) -> HttpResponse:
    patch_cache_control(response, private=True, no_store=True)
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _render(
    request: HttpRequest, name: str, lang: str, status: int = 200, **context: Any
) -> HttpResponse:
    with translation.override(lang):
        response = render(
            request,
            f"preferences/{name}.html",
            {"lang": lang, "languages": LANGUAGES, **context},
            status=status,
        )
    return _private(response)


def _throttled(request: HttpRequest) -> HttpResponse | None:
    wait = anonymous_wait(request)
    if wait is None:
        return None
    seconds = max(1, math.ceil(wait))
    response = _render(request, "throttled", page_language(request), 429, seconds=seconds)
    response["Retry-After"] = str(seconds)
    return response


def _rows(states: list[CategoryState], lang: str) -> list[dict[str, Any]]:
    labels = dict(Channel.choices)
    return [
        {
            "key": state.category.key,
            "name": state.category.name(lang),
            "description": state.category.description(lang),
            "channels": [
                {"value": f"{state.category.key}:{channel}", "label": labels[channel], "on": on}
                for channel, on in state.channels.items()
            ],
        }
        for state in states
    ]


def _save(user: Any, states: list[CategoryState], form: QueryDict) -> None:
    """Apply the form: each channel of each category the form showed (``shown``) is on when
    its box came ticked (``on``). Only what differs from the current state is written, so a
    default the user never touched stays a default."""
    shown = set(form.getlist("shown"))
    ticked = set(form.getlist("on"))
    with transaction.atomic():
        for state in states:
            key = state.category.key
            if key not in shown:  # added since the page was shown: not the user's choice
                continue
            for channel, on in state.channels.items():
                wanted = f"{key}:{channel}" in ticked
                if wanted != on:
                    preference_set(
                        user=user, category=state.category, channel=channel, enabled=wanted
                    )


@require_http_methods(["GET", "HEAD", "POST"])
def page(request: HttpRequest, token: str) -> HttpResponse:
    """The preference page of the user ``token`` names (see the module's docstring)."""
    refused = _throttled(request)
    if refused is not None:
        return refused
    try:
        user = get_user_model().objects.filter(pk=links.user_id_of(token)).first()
    except links.BadLink:
        user = None
    if user is None:
        return _render(request, "bad_link", page_language(request), 404)
    contact = UserContact.objects.filter(user=user).first() or UserContact(user=user)
    lang = page_language(request, contact)
    states = states_of(user)
    if request.method == "POST":
        _save(user, states, request.POST)
        query = urlencode({"lang": lang, "saved": 1})
        return _private(HttpResponseRedirect(f"{request.path}?{query}"))
    return _render(
        request,
        "page",
        lang,
        rows=_rows(states, lang),
        required=[
            (category.name(lang), category.description(lang))
            for category in Category.objects.filter(required=True).order_by("name_en", "pk")
        ],
        notes=list(unreachable(contact).values()),
        saved=request.GET.get("saved") == "1",
    )


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """One-click unsubscribe (RFC 8058) from the link in an email's ``List-Unsubscribe``.

    ``POST`` turns the token's channel of its category off for its user and says so: no
    login and no CSRF token (a mail provider posts it, with ``List-Unsubscribe=One-Click`` as
    its body, or without, as providers vary), safe to repeat, and not throttled, since
    providers post from a few addresses for many users and the signed token can't be guessed.
    ``GET`` shows the button (a mail client's link, or a link scanner, must not unsubscribe
    anyone), with a link to the user's whole preference page. An altered token, or one whose
    user or category is gone, gets the plain 404 page and changes nothing.
    """
    if request.method != "POST":
        refused = _throttled(request)
        if refused is not None:
            return refused
    try:
        target = one_click.target_of(token)
    except one_click.BadToken:
        return _render(request, "bad_link", page_language(request), 404)
    contact = UserContact.objects.filter(user=target.user).first()
    lang = page_language(request, contact)
    context = {
        "topic": target.category.name(lang),
        "channel": dict(Channel.choices)[target.channel],
        "page_url": reverse("preferences-page", args=[links.page_token(target.user.pk)]),
    }
    if target.category.required:  # made required since the email was sent
        return _render(request, "unsubscribe", lang, 409, required=True, **context)
    if request.method == "POST":
        preference_set(
            user=target.user, category=target.category, channel=target.channel, enabled=False
        )
        return _render(request, "unsubscribe", lang, done=True, **context)
    return _render(request, "unsubscribe", lang, **context)
