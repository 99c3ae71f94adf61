"""The HTTP API answers in English, whatever the client's ``Accept-Language``, the language
cookie of a staff session, or ``DJANGO_LANGUAGE_CODE``: its messages are for developers,
and the same request gets the same words from every deployment. The admin beside it speaks
the operator's language."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation

API_PREFIX = "/api/"


class ApiInEnglishMiddleware:
    """After ``LocaleMiddleware``: English for every request under ``/api/``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info.startswith(API_PREFIX):
            translation.activate("en")
            request.LANGUAGE_CODE = "en"
        return self.get_response(request)
