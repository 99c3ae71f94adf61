"""The settings of bounces and suppression, read from the environment: the webhook's secret
(user:password, or a clear refusal to start) and the soft-bounce limit and window."""

from __future__ import annotations

from notifications.tests.test_settings import manage


def test_the_webhook_secret_must_be_user_and_password(tmp_path):
    for bad in ("no-colon-here", ":only-a-password", "someone42:", "someone42 :pass word"):
        result = manage("check", tmp_path=tmp_path, ANYMAIL_WEBHOOK_SECRET=bad)
        assert result.returncode != 0
        assert "ANYMAIL_WEBHOOK_SECRET must be user:password" in result.stderr
        assert bad not in result.stderr  # a secret, even a wrong one, is not echoed
    good = manage(
        "shell",
        "-c",
        "from django.conf import settings; print(settings.ANYMAIL['WEBHOOK_SECRET'],"
        " settings.NOTIFY_SOFT_BOUNCE_LIMIT, settings.NOTIFY_SOFT_BOUNCE_DAYS)",
        tmp_path=tmp_path,
        ANYMAIL_WEBHOOK_SECRET="hook:Xy_12-ab",
        NOTIFY_SOFT_BOUNCE_LIMIT="5",
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.strip().splitlines()[-1].split() == ["hook:Xy_12-ab", "5", "7"]


def test_a_soft_bounce_limit_below_one_is_refused(tmp_path):
    result = manage("check", tmp_path=tmp_path, NOTIFY_SOFT_BOUNCE_LIMIT="0")
    assert result.returncode != 0
    assert "NOTIFY_SOFT_BOUNCE_LIMIT" in result.stderr
