"""Signatures as the Standard Webhooks specification has them, checked with its reference
library (``standardwebhooks`` from PyPI); secrets in ``whsec_`` form, masked when shown."""

from __future__ import annotations

import logging
import time

import pytest
from django.core.exceptions import ValidationError
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from notifications.redaction import RedactingFilter
from notifications.webhooks import signing


def test_the_reference_library_verifies_what_we_sign():
    secret = signing.secret_make()
    body = '{"type":"notification.sent","data":{"id":1,"message":"Привет"}}'.encode()
    headers = signing.headers("msg_1", int(time.time()), body, [secret])
    assert set(headers) == {"webhook-id", "webhook-timestamp", "webhook-signature"}
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers)["data"]["message"] == "Привет"
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.secret_make()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_while_a_secret_rotates_both_sign_and_either_verifies():
    old, new = signing.secret_make(), signing.secret_make()
    body = b'{"type":"notification.failed"}'
    headers = signing.headers("msg_2", int(time.time()), body, [new, old])
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(body, headers)


def test_the_signature_is_hmac_sha256_of_id_timestamp_and_body():
    # The specification's own example (standard-webhooks/spec, "Signature scheme").
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    assert (
        signing.signature(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
        == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    )


@pytest.mark.parametrize(
    "secret",
    [
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # 24 bytes
        "whsec_" + "A" * 43 + "=",  # 32 bytes
        "whsec_" + "A" * 86 + "==",  # 64 bytes
    ],
)
def test_secrets_in_whsec_form_are_taken(secret):
    signing.validate_secret(secret)


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # no prefix
        "whsec_short",
        "whsec_" + "A" * 28,  # 21 bytes: too few
        "whsec_" + "A" * 33,  # not base64
        "whsec_" + "A" * 88,  # 66 bytes: too many
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2La-aSw",  # not the base64 alphabet
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n",
    ],
)
def test_other_secrets_are_refused_with_the_reason(secret):
    with pytest.raises(ValidationError) as refused:
        signing.validate_secret(secret)
    assert "whsec_" in refused.value.messages[0]


def test_a_new_secret_is_valid_and_masked_shows_only_its_end():
    secret = signing.secret_make()
    signing.validate_secret(secret)
    assert signing.secret_make() != secret
    shown = signing.masked(secret)
    assert shown == f"whsec_…{secret[-4:]}"
    assert secret[6:-4] not in shown


def test_a_secret_that_reaches_a_log_line_is_masked():
    secret = signing.secret_make()
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "got %s", (secret,), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "got whsec_***"
