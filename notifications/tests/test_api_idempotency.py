"""``Idempotency-Key``: a retried request never makes a second notification."""

from __future__ import annotations

import threading
import uuid

import pytest
import requests
from django.db import connection

from notifications.models import ApiIdempotencyKey, Notification

URL = "/api/v1/notifications"


def key() -> dict[str, str]:
    return {"HTTP_IDEMPOTENCY_KEY": str(uuid.uuid4())}


@pytest.mark.django_db
def test_the_same_key_and_body_get_the_same_answer_and_one_notification(api, make_user):
    user = make_user()
    headers = key()
    first = api.post(URL, {"user": user.pk, "message": "Paid"}, **headers)
    # The same body with its keys in another order is the same request.
    again = api.post(URL, {"message": "Paid", "user": user.pk}, **headers)

    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again["Location"] == first["Location"]
    assert again["Idempotent-Replayed"] == "true"
    assert Notification.objects.count() == 1


@pytest.mark.django_db
def test_the_same_key_with_another_body_gets_409(api, make_user):
    user = make_user()
    headers = key()
    assert api.post(URL, {"user": user.pk, "message": "one"}, **headers).status_code == 202
    response = api.post(URL, {"user": user.pk, "message": "two"}, **headers)
    assert response.status_code == 409
    assert response.json()["code"] == "idempotency_key_reused"
    # …and on another endpoint.
    assert api.post(f"{URL}/batch", {"notifications": []}, **headers).status_code == 409
    assert list(Notification.objects.values_list("message", flat=True)) == ["one"]


@pytest.mark.django_db
def test_a_refused_request_leaves_the_key_free_for_the_corrected_one(api, make_user):
    user = make_user()
    headers = key()
    assert api.post(URL, {"user": user.pk, "message": ""}, **headers).status_code == 400
    assert not ApiIdempotencyKey.objects.exists()
    assert api.post(URL, {"user": user.pk, "message": "fixed"}, **headers).status_code == 202


@pytest.mark.django_db
def test_keys_belong_to_one_client(make_api_client, make_user):
    user = make_user()
    headers = key()
    body = {"user": user.pk, "message": "hi"}
    shop, billing = make_api_client(name="shop"), make_api_client(name="billing")
    assert shop.post(URL, body, **headers).json() != billing.post(URL, body, **headers).json()
    assert Notification.objects.count() == 2


@pytest.mark.django_db
def test_batches_and_cancels_are_idempotent_too(api, make_user):
    user = make_user()
    headers = key()
    body = {"notifications": [{"user": user.pk, "message": "a"}, {"user": user.pk, "message": "b"}]}
    first = api.post(f"{URL}/batch", body, **headers)
    assert api.post(f"{URL}/batch", body, **headers).json() == first.json()
    assert Notification.objects.count() == 2

    pk = first.json()["notifications"][0]["id"]
    cancel = key()
    done = api.post(f"{URL}/{pk}/cancel", **cancel)
    assert done.status_code == 200
    replay = api.post(f"{URL}/{pk}/cancel", **cancel)
    assert (replay.status_code, replay.json()) == (200, done.json())
    assert api.post(f"{URL}/{pk}/cancel").status_code == 409  # without the key: left alone


@pytest.mark.django_db
@pytest.mark.parametrize("value", ["", "x" * 256, "ключ"])
def test_a_malformed_key_gets_400(api, make_user, value):
    response = api.post(URL, {"user": make_user().pk, "message": "m"}, HTTP_IDEMPOTENCY_KEY=value)
    assert response.status_code == 400
    assert list(response.json()["fields"]) == ["Idempotency-Key"]
    assert not Notification.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_twenty_identical_requests_at_once_make_one_notification(
    live_server, make_api_client, make_user
):
    """The same request 20 times at once, from 20 threads, to the live server: one
    notification, and 20 identical answers. Proven on PostgreSQL (the concurrent inserts wait
    on the key's unique index); on SQLite the writers are serialised."""
    api = make_api_client()
    user = make_user()
    headers = {"Authorization": f"Bearer {api.raw_key}", "Idempotency-Key": str(uuid.uuid4())}
    body = {"user": user.pk, "message": "Your invoice is paid"}
    start = threading.Barrier(20)
    answers: list[tuple[int, dict]] = []
    replayed: list[bool] = []

    def send() -> None:
        start.wait()
        response = requests.post(f"{live_server.url}{URL}", json=body, headers=headers, timeout=60)
        answers.append((response.status_code, response.json()))
        replayed.append(response.headers.get("Idempotent-Replayed") == "true")

    threads = [threading.Thread(target=send) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)

    assert len(answers) == 20
    assert {status for status, _ in answers} == {202}
    assert all(answer == answers[0][1] for _, answer in answers)
    assert Notification.objects.count() == 1
    assert replayed.count(False) == 1  # one made it; 19 got its stored answer
    assert Notification.objects.get().pk == answers[0][1]["id"]
    print(f"20 concurrent identical requests on {connection.vendor}: 1 notification")
