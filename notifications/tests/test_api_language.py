"""The HTTP API answers developers in English, whatever language the request or the service
asks for; the admin beside it still follows the operator's."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications"


def test_errors_stay_english_for_a_russian_client_on_a_russian_service(api, make_user, settings):
    settings.LANGUAGE_CODE = "ru"
    user = make_user()
    response = api.post(
        URL,
        {"user": user.pk, "message": "привет", "expires_at": "2000-01-01T00:00:00Z"},
        HTTP_ACCEPT_LANGUAGE="ru",
    )
    assert response.status_code == 422, response.json()
    assert response.json()["fields"] == {  # a services' message
        "expires_at": ["The expiry must be after the time the notification is sent."]
    }
    assert response["Content-Language"] == "en"
    fax = api.post(
        URL, {"user": user.pk, "message": "m", "channels": ["fax"]}, HTTP_ACCEPT_LANGUAGE="ru"
    )
    assert fax.json()["fields"] == {"channels.0": ['"fax" is not a valid choice.']}  # DRF's
    missing = api.post(URL, {"message": "привет"}, HTTP_ACCEPT_LANGUAGE="ru")
    assert missing.json()["fields"]["user"] == ["This field is required."]


def test_the_admin_beside_it_still_speaks_russian(admin_client):
    page = admin_client.get(
        reverse("admin:notifications_notification_changelist"), HTTP_ACCEPT_LANGUAGE="ru"
    )
    assert "Порядок доставки:" in page.content.decode()
