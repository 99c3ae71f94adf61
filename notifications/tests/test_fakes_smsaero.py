"""The fake SMS Aero gate behaves as a real client sees the real one.

Each test talks to the fake over its socket with an ordinary client, ``requests``. Waits are
bounded by client timeouts; nothing asserts how long anything took.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
import requests

from notifications.tests.fake_clients import NUMBER
from notifications.tests.fakes.smsaero import FakeSmsAero


def aero(
    session: requests.Session,
    fake: FakeSmsAero,
    endpoint: str,
    client_timeout: float = 10,
    **fields,
) -> tuple[int, dict[str, Any]]:
    response = session.post(
        fake.url + endpoint,
        json=fields,
        auth=(fake.email, fake.api_key),
        timeout=client_timeout,
        verify=str(fake.ca_bundle) if fake.tls else True,
    )
    return response.status_code, response.json()


def test_sms_status_follows_set_status_and_advance(http, smsaero_http):
    fake = smsaero_http
    fake.final_status = {"79160000002": 2}
    _, sent = aero(http, fake, "sms/send", number=NUMBER, text="one", sign="NotifySvc")
    _, other = aero(http, fake, "sms/send", number="79160000002", text="two", sign="NotifySvc")
    first = sent["data"]["id"]

    code, answer = aero(http, fake, "sms/status", id=first)
    assert code == 200
    assert {k: answer["data"][k] for k in ("id", "number", "text", "status", "extendStatus")} == {
        "id": first,
        "number": NUMBER,
        "text": "one",
        "status": 0,
        "extendStatus": "queue",
    }
    fake.set_status(first, 3)
    assert aero(http, fake, "sms/status", id=first)[1]["data"]["status"] == 3
    assert fake.advance() == [first, other["data"]["id"]]
    answer = http.get(
        f"{fake.url}sms/status?id={other['data']['id']}",
        auth=(fake.email, fake.api_key),
        timeout=10,
    ).json()
    assert (answer["data"]["status"], answer["data"]["extendStatus"]) == (2, "delivery failure")
    assert "dateAnswer" in answer["data"]
    assert aero(http, fake, "sms/status", id=first)[1]["data"]["status"] == 1
    assert fake.advance() == []  # final statuses stay
    assert aero(http, fake, "sms/status", id=999)[0] == 404


def test_sms_list_filters_and_pages(http, smsaero_http):
    fake = smsaero_http
    fake.page_size = 2
    for i in range(3):
        aero(http, fake, "sms/send", number=NUMBER, text=f"code {i}", sign="NotifySvc")
    aero(http, fake, "sms/send", number="79160000002", text="other", sign="NotifySvc")

    data = aero(http, fake, "sms/list", number=NUMBER)[1]["data"]
    assert data["totalCount"] == "3"
    assert [data[k]["text"] for k in ("0", "1")] == ["code 2", "code 1"]  # newest first
    assert data["links"]["next"].endswith("page=2")
    response = http.post(
        fake.url + "sms/list?page=2",
        json={"number": NUMBER},
        auth=(fake.email, fake.api_key),
        timeout=10,
    )
    data = response.json()["data"]
    assert data["0"]["text"] == "code 0" and "1" not in data and "next" not in data["links"]
    data = aero(http, fake, "sms/list", text="oth")[1]["data"]
    assert (data["totalCount"], data["0"]["number"]) == ("1", "79160000002")


@pytest.mark.parametrize("kind", ["json", "form"])
def test_callbacks_post_the_current_status(http, smsaero_http, receiver, kind):
    fake = smsaero_http
    _, sent = aero(
        http, fake, "sms/send", number=NUMBER, text="hi", sign="NotifySvc", callbackUrl=receiver.url
    )
    aero(http, fake, "sms/send", number="79160000002", text="no callback", sign="NotifySvc")
    fake.advance()
    assert fake.fire_callbacks(kind) == [200]
    [(headers, body)] = receiver.received
    if kind == "json":
        assert headers["Content-Type"] == "application/json"
        fields = json.loads(body)
    else:
        assert headers["Content-Type"] == "application/x-www-form-urlencoded"
        fields = dict(parse_qsl(body.decode()))
    assert str(fields["id"]) == str(sent["data"]["id"])
    assert (str(fields["status"]), fields["extendStatus"], fields["number"]) == (
        "1",
        "delivery",
        NUMBER,
    )
    assert "dateSend" in fields


def test_smsaero_accept_then_hang_and_drop_over_tls(http, smsaero):
    smsaero.hang = 3
    smsaero.queue.extend(["accept_then_hang", "accept_then_drop"])
    with pytest.raises(requests.ReadTimeout):
        aero(http, smsaero, "sms/send", client_timeout=0.5, number=NUMBER, text="one", sign="S")
    with pytest.raises(requests.ConnectionError):
        aero(http, smsaero, "sms/send", number=NUMBER, text="two", sign="S")
    assert [m["text"] for m in smsaero.sent] == ["one", "two"]  # both accepted
    assert aero(http, smsaero, "sms/send", number=NUMBER, text="three", sign="S")[0] == 200
