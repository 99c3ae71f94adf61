"""django-anymail's webhook views, mounted at ``/anymail/`` (``/anymail/postmark/tracking/``
and the other providers' as anymail names them), each behind one guard:

- 404 while ``ANYMAIL_WEBHOOK_SECRET`` is not set: without it anymail's views would believe
  anyone;
- 401 (with ``WWW-Authenticate``) for missing or wrong basic-auth credentials — anymail's own
  check in constant time, which by itself answers 400;
- 400 for a body the provider's view can't read (not JSON, not an event): anymail's views
  would answer 500, and the provider would send it again and again;
- else anymail's own answer: 200 once its ``tracking`` signal's receivers have run
  (``notifications.suppression.receivers``).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable

from anymail import urls as anymail_urls
from anymail.exceptions import AnymailWebhookValidationFailure
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import URLPattern

logger = logging.getLogger(__name__)

app_name = anymail_urls.app_name


def guarded(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """``view`` (one of anymail's) answering as the module says."""

    @functools.wraps(view)  # keeps csrf_exempt
    def guarded_view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not (getattr(settings, "ANYMAIL", None) or {}).get("WEBHOOK_SECRET"):
            return HttpResponse(status=404)
        try:
            return view(request, *args, **kwargs)
        except AnymailWebhookValidationFailure as err:
            logger.warning("email provider webhook %s refused: %s", request.path, err)
            response = HttpResponse(status=401)
            response["WWW-Authenticate"] = 'Basic realm="anymail"'
            return response
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            # Raised while the provider's view read the body (the receiver raises nothing
            # but database errors): malformed, and sending it again won't mend it.
            logger.warning(
                "email provider webhook %s: body not understood (%s: %s)",
                request.path,
                type(err).__name__,
                err,
            )
            return HttpResponse(status=400)

    return guarded_view


urlpatterns = [
    URLPattern(route.pattern, guarded(route.callback), route.default_args, route.name)
    for route in anymail_urls.urlpatterns
]
