"""The management commands: check_channels, ensure_admin, sweep, and runservice (what
`make run` starts)."""

from __future__ import annotations

import io
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from notifications.management.commands.runservice import Command as RunService
from notifications.models import Notification
from notifications.tests.conftest import BASE_DIR, wait_for
from notifications.tests.fakes.smtp import free_port


@pytest.mark.django_db
def test_ensure_admin_creates_one_admin_and_prints_its_password_once(django_user_model):
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    password = out.getvalue().split("password: ")[1].split()[0]
    admin = django_user_model.objects.get(username="admin")
    assert admin.is_superuser and admin.check_password(password)
    again = io.StringIO()
    call_command("ensure_admin", stdout=again)
    assert password not in again.getvalue()
    assert django_user_model.objects.count() == 1


@pytest.mark.django_db
def test_check_channels_reports_each_channel_without_sending(settings, telegram, smtp):
    settings.TELEGRAM_BOT_TOKEN = telegram.token
    settings.TELEGRAM_API_URL = telegram.url
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp.port
    out = io.StringIO()
    call_command("check_channels", stdout=out)
    text = out.getvalue()
    assert "telegram: configured, bot @fake_bot answers" in text
    assert "email: configured, SMTP server 127.0.0.1 answers" in text
    assert "sms" in text
    assert telegram.messages == [] and smtp.received == []


@pytest.mark.django_db
def test_check_channels_fails_when_a_configured_channel_does_not_answer(settings):
    settings.TELEGRAM_BOT_TOKEN = "123:abc"
    settings.TELEGRAM_API_URL = "http://127.0.0.1:9"
    settings.EMAIL_HOST = ""
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("check_channels", stdout=out, stderr=io.StringIO())
    assert "telegram: configured, NOT answering: Telegram (getMe) unreachable" in out.getvalue()
    assert "email: not configured" in out.getvalue()


@pytest.mark.django_db
def test_check_channels_reports_the_three_sms_transports_without_sending(
    settings, sms_env, smsaero, sms_smtp, smpp
):
    for key, value in sms_env.items():
        if key != "REQUESTS_CA_BUNDLE":
            setattr(settings, key, int(value) if key.endswith("_PORT") else value)
    settings.SMPP_TIMEOUT = 2.0
    out = io.StringIO()
    call_command("check_channels", stdout=out)
    lines = [line for line in out.getvalue().splitlines() if line.startswith("sms")]
    assert lines == [
        "sms/sms_api: configured, SMS Aero accepts the credentials, balance 337.03",
        "sms/sms_smtp: configured, email-to-SMS gateway 127.0.0.1 answers and accepts the login",
        f"sms/sms_smpp: configured, SMPP server 127.0.0.1:{smpp.port} accepts the bind "
        "as 'smppuser' (then unbound)",
    ]
    assert smsaero.sent == [] and sms_smtp.received == [] and smpp.parts == []


@pytest.mark.django_db
def test_sweep_command_requeues_an_expired_lease(django_user_model):
    user = django_user_model.objects.create_user("s")
    dead = Notification.objects.create(
        user=user,
        message="x",
        status=Notification.Status.SENDING,
        rounds=1,
        lease_expires_at=timezone.now() - timedelta(seconds=1),
    )
    out = io.StringIO()
    call_command("sweep", stdout=out)
    assert out.getvalue().startswith("1 expired lease(s) re-queued, 0 ended")
    dead.refresh_from_db()
    assert dead.status == Notification.Status.QUEUED


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_runservice_serves_the_admin_runs_consumers_and_stops_on_ctrl_c(consumer_env, tmp_path):
    port = free_port()
    log = tmp_path / "runservice.log"
    env = {**consumer_env, "PORT": str(port), "NOTIFY_CONSUMERS": "2", "NOTIFY_WORKERS": "2"}
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runservice"],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:

        def login_page() -> int | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/") as answer:
                    return answer.status
            except OSError:
                return None

        assert wait_for(login_page, 60, "the admin login page") == 200
        wait_for(
            lambda: log.read_text().count("consumer started") == 2, 60, "two consumers to start"
        )
        wait_for(
            lambda: "Polling Telegram for updates" in log.read_text(), 60, "the poller to start"
        )
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    assert "worker1 |" in text and "worker2 |" in text and "web |" in text
    assert "telegram | Polling Telegram for updates" in text  # TELEGRAM_UPDATES=poll (default)
    assert "stopped with errors" not in text
    time.sleep(0.5)
    assert login_page() is None  # nothing listens any more


def test_runservice_consumers_poll_an_idle_queue_at_most_a_second_apart(settings):
    """So a scheduled notification goes out within about 2 s of its send_at (huey's own
    default backs off to 10 s on the SQLite and PostgreSQL queues)."""
    settings.NOTIFY_CONSUMERS = 2
    workers = {n: c for n, c in RunService().commands("127.0.0.1").items() if n != "web"}
    assert len(workers) == 2
    for command in workers.values():
        assert command[command.index("--max-delay") + 1] == "1"
