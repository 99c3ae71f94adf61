"""Fixtures for the HTTP API's tests: API keys, and a client that sends them and checks every
answer it gets against the OpenAPI schema the service serves (status code documented for the
operation, JSON, headers and body as the schema says), so each API test is a conformance test
too."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import cache

import pytest
import requests
import schemathesis
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from rest_framework.test import APIClient
from schemathesis.core.transport import Response as CheckedResponse
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema

from notifications.api_keys import api_key_create
from notifications.models import ApiKey

__all__ = ["KeyClient", "api", "assert_conforms", "make_api_client"]

API_PREFIX = "/api/v1/"
CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@cache
def served_schema() -> OpenApiSchema:
    """The schema ``/api/v1/schema/`` serves, made as its view makes it (without a request,
    so that reading it costs no throttle booking)."""
    document = SchemaGenerator(api_version="v1").get_schema(request=None, public=True)
    return schemathesis.openapi.from_dict(json.loads(OpenApiJsonRenderer().render(document)))


def assert_conforms(method: str, path: str, response) -> None:
    """Raises (schemathesis's ``FailureGroup``) when ``response`` to ``method path`` is not
    one the schema documents. Paths and methods the schema doesn't name are not checked (the
    JSON 404 under /api/, 405)."""
    if not path.startswith(API_PREFIX) or method == "HEAD":
        return
    operation = served_schema().find_operation_by_path(method, path)
    if operation is None:
        return
    checked = CheckedResponse(
        status_code=response.status_code,
        headers={name.lower(): [value] for name, value in response.items()},
        content=response.content,
        request=requests.Request(method, f"http://testserver{path}").prepare(),
        elapsed=0.0,
        verify=True,
    )
    # The path's own values don't matter to the checks (they send nothing).
    names = re.findall(r"\{(\w+)\}", operation.path)
    case = operation.Case(method=method, path_parameters=dict.fromkeys(names, "1"))
    case.validate_response(checked, checks=CONFORMANCE)


class KeyClient(APIClient):
    """DRF's test client with a key in ``Authorization`` and JSON bodies by default; every
    response is checked against the served schema (``assert_conforms``)."""

    def __init__(self, raw_key: str | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.raw_key = raw_key
        if raw_key:
            self.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")

    def request(self, **kwargs):
        response = super().request(**kwargs)
        assert_conforms(kwargs["REQUEST_METHOD"], kwargs["PATH_INFO"], response)
        return response

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
