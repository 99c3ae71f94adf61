"""API keys as operators make and revoke them: ``manage.py create_api_key`` and the admin."""

from __future__ import annotations

import io
import re

import pytest
from django.core.management import CommandError, call_command

from notifications.models import ApiKey
from notifications.tests.api_client import KeyClient

pytestmark = pytest.mark.django_db

URL = "/api/v1/notifications"


def test_the_command_prints_a_working_key_once():
    out, err = io.StringIO(), io.StringIO()
    call_command("create_api_key", "shop", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    assert re.fullmatch(r"nsk_[0-9a-f]{12}[A-Za-z0-9_-]{43}", raw)
    assert "shown only this once" in err.getvalue()
    key = ApiKey.objects.get()
    assert (key.name, key.scope) == ("shop", "write")
    assert raw not in str(ApiKey.objects.values_list().get())
    assert KeyClient(raw).get(URL).status_code == 200


def test_the_command_makes_read_only_keys_and_refuses_a_blank_name():
    out = io.StringIO()
    call_command("create_api_key", "reports", "--read-only", stdout=out, stderr=io.StringIO())
    assert ApiKey.objects.get().scope == "read"
    assert KeyClient(out.getvalue().strip()).post(URL, {}).status_code == 403
    with pytest.raises(CommandError, match="This field cannot be blank"):
        call_command("create_api_key", "  ", stdout=io.StringIO(), stderr=io.StringIO())


def test_the_admin_shows_a_new_key_once_and_revokes_keys(admin_client):
    page = admin_client.post(
        "/admin/notifications/apikey/add/", {"name": "billing", "scope": "read"}
    )
    assert page.status_code == 200
    assert "no-store" in page["Cache-Control"]
    raw = re.search(r'value="(nsk_[^"]+)"', page.content.decode()).group(1)
    key = ApiKey.objects.get()
    assert (key.name, key.scope, raw.startswith(f"nsk_{key.prefix}")) == ("billing", "read", True)
    assert KeyClient(raw).get(URL).status_code == 200

    detail = admin_client.get(f"/admin/notifications/apikey/{key.pk}/change/").content.decode()
    assert raw not in detail and f"nsk_{key.prefix}…" in detail

    listing = admin_client.post(
        "/admin/notifications/apikey/",
        {"action": "revoke_selected", "_selected_action": [key.pk]},
        follow=True,
    )
    assert "1 revoked; clients using it now get 401." in listing.content.decode()
    assert KeyClient(raw).get(URL).status_code == 401
    assert admin_client.get("/admin/notifications/apikey/?status=revoked").status_code == 200
