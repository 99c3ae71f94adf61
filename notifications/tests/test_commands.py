"""The management commands: check_channels, ensure_admin, sweep, and runservice (what
`make run` starts)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone

from notifications.management.commands.runservice import Command as RunService
from notifications.models import Notification
from notifications.tests.fakes.smtp import free_port
from notifications.tests.fixtures import BASE_DIR, wait_for
from notifications.tests.harness import start_runservice, stop_runservice


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


def test_check_channels_says_when_users_get_no_preference_link(settings):
    """Issues 16 and 17: without PUBLIC_BASE_URL emails carry no preference-page link and no
    one-click unsubscribe; say so."""
    settings.PUBLIC_BASE_URL = ""
    settings.NOTIFY_PUBLIC_URL = ""
    out = io.StringIO()
    call_command("check_channels", stdout=out)
    assert "PUBLIC_BASE_URL: not set" in out.getvalue()
    assert "no one-click unsubscribe (List-Unsubscribe" in out.getvalue()
    settings.PUBLIC_BASE_URL = "https://notify.example.com"
    out = io.StringIO()
    call_command("check_channels", stdout=out)
    assert "PUBLIC_BASE_URL" not in out.getvalue()


@pytest.mark.django_db
def test_check_channels_names_what_a_half_configured_transport_lacks(settings):
    settings.EMAIL_HOST = ""
    settings.SMS_SMTP_HOST = "smtp.example.net"
    settings.SMS_SMTP_ADDRESS = ""
    settings.SMSAERO_EMAIL = ""
    settings.SMSAERO_API_KEY = "key-without-its-account"
    out = io.StringIO()
    with pytest.raises(SystemExit):
        call_command("check_channels", stdout=out, stderr=io.StringIO())
    text = out.getvalue()
    assert "sms/sms_smtp: not configured: SMS_SMTP_HOST is set but SMS_SMTP_ADDRESS is not" in text
    assert "sms/sms_api: not configured: SMSAERO_API_KEY is set but SMSAERO_EMAIL is not" in text
    assert "email: not configured\n" in text  # nothing of it set: plainly not configured


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_the_consumer_logs_a_half_configured_transport_at_start_up(start_consumer):
    consumer = start_consumer(SMS_SMTP_HOST="smtp.example.net", SMS_SMTP_ADDRESS="")
    wait_for(
        lambda: (
            "sms/sms_smtp is not configured: SMS_SMTP_HOST is set but SMS_SMTP_ADDRESS "
            "is not" in consumer.output()
        ),
        30,
        "the start-up warning",
    )
    assert consumer.output().count("sms/sms_smtp is not configured") == 1  # once, not per thread


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
    process = start_runservice(env, log)
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
        # Ctrl-C: the terminal sends SIGINT to its whole foreground process group.
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        stop_runservice(process)
    text = log.read_text()
    assert "worker1 |" in text and "worker2 |" in text and "web |" in text
    assert "telegram | Polling Telegram for updates" in text  # TELEGRAM_UPDATES=poll (default)
    assert "stopped with errors" not in text
    assert "killed" not in text and "Traceback" not in text
    # The poller, stopped with the rest, is not said to have stopped alone.
    assert "the rest keeps running" not in text
    # Each process was asked once, the way it stops cleanly.
    assert text.count("Handling signal: term") == 1  # gunicorn's master
    assert text.count("Received SIGINT") == 2  # each huey consumer, a graceful stop
    assert login_page() is None  # nothing listens any more


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_a_poller_that_dies_alone_is_said_to_and_the_rest_keeps_serving(consumer_env, tmp_path):
    """The Telegram poller is the one process whose end does not stop the service: killed
    while serving, it is named, and the admin and the consumer go on until Ctrl-C."""
    port = free_port()
    log = tmp_path / "runservice.log"
    env = {**consumer_env, "PORT": str(port), "NOTIFY_CONSUMERS": "1", "NOTIFY_WORKERS": "2"}
    process = start_runservice(env, log)
    login = f"http://127.0.0.1:{port}/admin/login/"
    try:
        wait_for(lambda: "Polling Telegram for updates" in log.read_text(), 60, "the poller")
        wait_for(lambda: "consumer started" in log.read_text(), 60, "the consumer")
        found = subprocess.run(
            ["pgrep", "-P", str(process.pid), "-f", "telegram_poll"],
            capture_output=True,
            text=True,
            check=True,
        )
        os.kill(int(found.stdout.split()[0]), signal.SIGKILL)
        wait_for(lambda: "the rest keeps running" in log.read_text(), 30, "the poller's end")
        assert "telegram stopped (exit -9)" in log.read_text()
        with urllib.request.urlopen(login) as answer:
            assert answer.status == 200
        assert process.poll() is None
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        stop_runservice(process)
    assert "stopped with errors" not in log.read_text()


def stubborn_service(tmp_path, stop_timeout: float) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / "stubborn.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "notifications.tests.stubborn_service", str(stop_timeout)],
            cwd=BASE_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for(lambda: "grandchild" in log.read_text(), 30, "the stubborn process and its child")
    return process, log


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def stubborn_pids(log: Path) -> list[int]:
    """The stuck process and the child it started."""
    line = next(line for line in log.read_text().splitlines() if "stubborn" in line)
    return [int(pid) for pid in line.split()[-2:]]


@pytest.mark.e2e
def test_runservice_kills_what_does_not_stop_in_time_with_what_it_started(tmp_path):
    process, log = stubborn_service(tmp_path, stop_timeout=1)
    pids = stubborn_pids(log)
    try:
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert "web did not stop in 1 s; killed" in log.read_text()
    wait_for(lambda: not any(map(alive, pids)), 10, "the stuck process and its child gone")


@pytest.mark.e2e
def test_a_second_ctrl_c_kills_at_once(tmp_path):
    process, log = stubborn_service(tmp_path, stop_timeout=600)
    pids = stubborn_pids(log)
    try:
        os.killpg(process.pid, signal.SIGINT)
        wait_for(lambda: "Ctrl-C again to kill at once" in log.read_text(), 30, "stopping")
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=30)  # not the 600 s of its stop timeout
    finally:
        if process.poll() is None:
            process.kill()
    assert "killed at once (second Ctrl-C)" in log.read_text()
    wait_for(lambda: not any(map(alive, pids)), 10, "the stuck process and its child gone")


def test_runservice_consumers_poll_an_idle_queue_at_most_a_second_apart(settings):
    """So a scheduled notification goes out within about 2 s of its send_at (huey's own
    default backs off to 10 s on the SQLite and PostgreSQL queues)."""
    settings.NOTIFY_CONSUMERS = 2
    workers = {n: c for n, c in RunService().commands("127.0.0.1").items() if n != "web"}
    assert len(workers) == 2
    for command in workers.values():
        assert command[command.index("--max-delay") + 1] == "1"
