"""The OpenAPI schema, its documentation pages, and schemathesis fuzzing the API against it.

schemathesis reads the schema the service serves (``/api/v1/schema/``), generates requests
for every operation — valid ones and invalid ones — sends them to the WSGI application with a
real API key, and checks each answer: no 5xx, a status code the schema lists, a body the
schema describes. A stateful run follows the schema's links (create → read, cancel, resend,
the user's contact). Examples are limited and derandomised, so it takes seconds and finds the
same things on every run.
"""

from __future__ import annotations

import re
from collections import Counter

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from notifications.api_keys import api_key_create

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
FUZZ = hypothesis.settings(
    max_examples=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
STATEFUL = hypothesis.settings(FUZZ, max_examples=10, stateful_step_count=5)


# What the generated requests may use in this test: real users.
given: dict[str, object] = {}


def map_body(context, body):
    # Name a real user most of the time, so creation succeeds and links have targets.
    users = given.get("users")
    if users and isinstance(body, dict) and isinstance(body.get("user"), int) and body["user"] % 4:
        if body["user"] % 2:  # and a time that is not long past, now and then
            body.pop("send_at", None)
            body.pop("expires_at", None)
        body["user"] = users[body["user"] % len(users)]
    return body


def load_schema():
    """The schema as the service serves it (read through the WSGI application)."""
    loaded = schemathesis.openapi.from_wsgi("/api/v1/schema/", get_wsgi_application())
    loaded.hook(map_body)
    return loaded


schema = load_schema()


@pytest.fixture
def auth(db, django_user_model) -> dict[str, str]:
    """An API key and users the generated requests can name."""
    _, raw = api_key_create(name="schemathesis")
    names = ("0", "A", "ann")
    given["users"] = [django_user_model.objects.create_user(username=n).pk for n in names]
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
    case.call_and_validate(headers=auth, checks=CHECKS)


def test_linked_calls_answer_as_the_schema_says(auth):
    answered: Counter = Counter()

    # A schema of its own: schemathesis reuses values seen in earlier answers, and the
    # earlier tests' rows are gone.
    class Workflow(load_schema().as_state_machine()):
        def get_call_kwargs(self, case):
            return {"headers": auth}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            answered[(case.operation.label, response.status_code)] += 1
            case.validate_response(response, checks=CHECKS)

    Workflow.run(settings=STATEFUL)
    # The links were followed: a notification was created, then read, cancelled or resent.
    assert answered[("POST /api/v1/notifications", 202)], answered
    followed = [label for label, status in answered if status == 200 and "{id}" in label]
    assert followed, answered


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
