"""Fixtures for the HTTP API's tests: API keys and a client that sends them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from notifications.api_keys import api_key_create
from notifications.models import ApiKey


class KeyClient(APIClient):
    """DRF's test client with a key in ``Authorization`` and JSON bodies by default."""

    def __init__(self, raw_key: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.raw_key = raw_key
        if raw_key:
            self.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    def post(self, path, data=None, format="json", **kwargs):
        return super().post(path, data, format=format, **kwargs)

    def put(self, path, data=None, format="json", **kwargs):
        return super().put(path, data, format=format, **kwargs)


@pytest.fixture
def make_api_client(db) -> Callable[..., KeyClient]:
    """``make_api_client(scope="read")``: a client with a new key of that scope."""

    def make(scope: str = ApiKey.Scope.WRITE, name: str = "shop") -> KeyClient:
        _, raw = api_key_create(name=name, scope=scope)
        return KeyClient(raw)

    return make


@pytest.fixture
def api(make_api_client) -> KeyClient:
    """A client with a read-and-write key."""
    return make_api_client()
