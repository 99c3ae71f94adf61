"""The OpenAPI schema, its documentation pages, and schemathesis fuzzing the API against it.

schemathesis reads the schema the service serves (``/api/v1/schema/``), generates requests
for every operation — valid ones and invalid ones — sends them to the WSGI application with a
real API key, and runs every check it has: no 5xx; status codes, content types, headers and
bodies as documented; every schema-valid request accepted and every schema-invalid one
refused; no request without its key let through; unknown methods refused with ``Allow``; a
created notification readable at once. The schema states every constraint the server checks,
so a valid request is refused only for a rule a schema can't state (no such user, a time out
of range): 422, which the schema documents on the operations that have such rules. A
stateful run follows the schema's links (create → read, cancel, resend, the user's contact,
its invite and preferences). Examples are limited and derandomised, so it takes seconds and finds the
same things on every run.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.http import JsonResponse
from hypothesis import HealthCheck
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig
from schemathesis.errors import FailureGroup

from notifications.api_keys import api_key_create
from notifications.preferences.models import Category
from notifications.tests.api_client import assert_conforms, served_schema

load_all_checks()
ALL_CHECKS = CHECKS.get_all()
# A schema-valid request may get 422 where a rule beyond the schema applies: the operations
# that document 422.
WITH_RULES = (
    "notifications_batch",
    "notifications_create",
    "notifications_list",
    "users_contact_update",
    "users_preferences_update",
    "webhooks_create",
    "webhooks_update",
)
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
CONFIG = SchemathesisConfig.from_dict(
    {
        "operations": [
            {
                "include-operation-id-regex": f"^({'|'.join(WITH_RULES)})$",
                "checks": {"positive_data_acceptance": {"expected-statuses": ACCEPTED}},
            }
        ]
    }
)
FUZZ = hypothesis.settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
STATEFUL = hypothesis.settings(FUZZ, max_examples=16, stateful_step_count=5)


# What the generated requests may use in this test: real users.
given: dict[str, object] = {}


def real_user(item: object) -> None:
    """Three times in four, a real user, no times (most drawn ones are past or far off, and
    get 422) and no category or digest key (drawn keys name none, and get 400), so creation
    succeeds and links have targets; else the 4xx as drawn."""
    users = given.get("users")
    if users and isinstance(item, dict) and "user" in item:
        pick = sum(map(ord, repr(item["user"])))
        if pick % 4:
            item["user"] = users[pick % len(users)]
            for name in ("send_at", "send_at_local", "expires_at", "category", "digest_key"):
                item.pop(name, None)


def real_preferences(case) -> None:
    """Three times in four, a user's preferences of a real user and real categories (drawn
    keys name none, and get 422)."""
    users, keys = given.get("users"), given.get("categories")
    pick = sum(map(ord, repr(case.body)))
    if not (users and keys and pick % 4 and case.operation.path.endswith("/preferences")):
        return
    case.path_parameters["id"] = users[pick % len(users)]
    changes = case.body.get("categories") if isinstance(case.body, dict) else None
    if isinstance(changes, dict):
        drawn = list(changes.values())
        case.body["categories"] = dict(zip(keys, drawn, strict=False))


def map_case(context, case):
    """Valid cases only: changing an invalid one could make it valid."""
    if case.meta is not None and case.meta.generation.mode.is_positive:
        real_preferences(case)
        body = case.body
        if isinstance(body, dict):
            real_user(body)
            for item in body.get("notifications") or []:
                real_user(item)
    return case


def load_schema():
    """The schema as the service serves it (read through the WSGI application)."""
    loaded = schemathesis.openapi.from_wsgi(
        "/api/v1/schema/", get_wsgi_application(), config=CONFIG
    )
    loaded.hook(map_case)
    return loaded


schema = load_schema()


@pytest.fixture
def auth(db, django_user_model) -> dict[str, str]:
    """An API key and users the generated requests can name."""
    _, raw = api_key_create(name="schemathesis")
    names = ("0", "A", "ann")
    given["users"] = [django_user_model.objects.create_user(username=n).pk for n in names]
    given["categories"] = [
        Category.objects.create(key=key, name_en=key.title(), opt_in=opt_in).key
        for key, opt_in in (("promotions", True), ("news", False))
    ]
    # As Django's test client does: the WSGI handler must not close the test's connection
    # (and its open transaction) around each request.
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield {"Authorization": f"Bearer {raw}"}
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)
    given.clear()


@schema.parametrize()
@FUZZ
def test_every_operation_answers_as_its_schema_says(case, auth):
    case.call_and_validate(headers=auth, checks=ALL_CHECKS)


def test_linked_calls_answer_as_the_schema_says(auth):
    answered: Counter = Counter()

    # A schema of its own: schemathesis reuses values seen in earlier answers, and the
    # earlier tests' rows are gone.
    class Workflow(load_schema().as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": auth}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            answered[(case.operation.label, response.status_code)] += 1
            case.validate_response(response, checks=ALL_CHECKS, **kwargs)

    Workflow.run(settings=STATEFUL)
    # The links were followed: a notification was created, then read, cancelled or resent.
    assert answered[("POST /api/v1/notifications", 202)], answered
    followed = [label for label, status in answered if status == 200 and "{id}" in label]
    assert followed, answered


def served() -> dict:
    return served_schema().raw_schema


def test_the_list_documents_its_paging_parameters():
    parameters = {
        p["name"]: p for p in served()["paths"]["/api/v1/notifications"]["get"]["parameters"]
    }
    assert parameters["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 200}
    assert parameters["cursor"]["schema"] == {"type": "string"}
    assert (parameters["status"]["style"], parameters["status"]["explode"]) == ("form", False)


def test_every_operation_documents_the_errors_it_can_answer():
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in served()["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            always = ["401", "403", "406", "429", "500"]
            reads_body = "requestBody" in operation or any(
                p["name"] == "Idempotency-Key" for p in operation.get("parameters", [])
            )
            for code in always + (["413", "415"] if reads_body else []):
                assert responses[code]["content"] == error, (method, path, code)
            assert "Retry-After" in responses["429"]["headers"]
    with_422 = [
        operation["operationId"]
        for operations in served()["paths"].values()
        for operation in operations.values()
        if "422" in operation["responses"]
    ]
    assert sorted(with_422) == list(WITH_RULES)


def test_the_schema_suits_a_generated_client():
    """Every operation has a unique id, every parameter a type, and every component a name
    that says what it is (no BlankEnum, NullEnum or OutcomeEnum); every $ref resolves."""
    document = served()
    ids = [op["operationId"] for ops in document["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))
    for operations in document["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                assert "type" in schema or "$ref" in schema, parameter
    components = document["components"]["schemas"]
    assert not [name for name in components if name.endswith("Enum")]
    text = json.dumps(document)
    for ref in set(re.findall(r'"#/components/schemas/(\w+)"', text)):
        assert ref in components, ref
    ids_schema = document["paths"]["/api/v1/notifications/{id}"]["get"]["parameters"][0]
    assert ids_schema["schema"] == {
        "type": "integer",
        "format": "int64",
        "minimum": 1,
        "maximum": 2**63 - 1,
    }


@pytest.mark.django_db
def test_api_tests_check_every_answer_against_the_schema():
    """``KeyClient`` runs ``assert_conforms`` on every response: an answer the schema does
    not describe fails the test that got it."""
    good = JsonResponse({"next": None, "previous": None, "results": []})
    assert_conforms("GET", "/api/v1/notifications", good)
    for bad in (
        JsonResponse({"next": None, "previous": None, "results": 5}),
        JsonResponse({"status": 418, "code": "teapot", "detail": "x", "fields": {}}, status=418),
    ):
        with pytest.raises(FailureGroup):
            assert_conforms("GET", "/api/v1/notifications", bad)


@pytest.mark.django_db
def test_the_schema_and_its_pages_are_served_without_a_cdn(client):
    schema_text = client.get("/api/v1/schema/").content.decode()
    for path in (
        "/api/v1/notifications",
        "/api/v1/notifications/batch",
        "/api/v1/notifications/{id}",
        "/api/v1/notifications/{id}/cancel",
        "/api/v1/notifications/{id}/resend",
        "/api/v1/users/{id}/contact",
        "/api/v1/users/{id}/contact/invite",
        "/api/v1/users/{id}/preferences",
        "/api/v1/categories",
    ):
        assert f"{path}:" in schema_text
    for page in ("/api/v1/docs/", "/api/v1/redoc/"):
        html = client.get(page).content.decode()
        assert "drf_spectacular_sidecar" in html
        external = [u for u in re.findall(r'(?:src|href)="([^"]+)"', html) if "//" in u]
        assert external == []
    swagger_js = re.search(
        r'src="([^"]+swagger-ui-bundle\.js)"', client.get("/api/v1/docs/").content.decode()
    )
    assert swagger_js and client.get(swagger_js.group(1)).status_code == 200
