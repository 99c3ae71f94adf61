"""The fake SMTP server's session counts, STARTTLS and process mode, which the bench reads."""

from __future__ import annotations

import json
import smtplib
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from notifications.tests.fakes.smtp import FakeSmtp, free_port

BASE_DIR = Path(__file__).resolve().parents[2]


def send(port: int, count: int, ca_bundle: str | None = None) -> None:
    """``count`` messages over one connection (upgraded with STARTTLS when given a CA)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=5) as client:
        if ca_bundle:
            client.starttls(context=ssl.create_default_context(cafile=ca_bundle))
        for i in range(count):
            client.sendmail("a@example.com", ["b@example.com"], f"Subject: s\r\n\r\nbody {i}\r\n")


def test_counts_sessions_and_the_messages_each_carried() -> None:
    fake = FakeSmtp(session_delay=0.01, message_delay=0.01).start()
    try:
        assert fake.sessions == 0  # start() connects once to check the server: not counted
        send(fake.port, 3)
        send(fake.port, 1)
        assert fake.sessions == 2
        assert fake.session_messages == [3, 1]
        assert fake.stats()["messages"] == 4
        fake.reset()
        assert (fake.sessions, fake.session_messages, fake.received) == (0, [], [])
    finally:
        fake.stop()


def test_starttls_with_the_test_certificate_is_still_one_session() -> None:
    fake = FakeSmtp(tls=True).start()
    try:
        assert fake.ca_bundle is not None
        send(fake.port, 2, ca_bundle=str(fake.ca_bundle))
        assert fake.session_messages == [2]
        assert [r.body.strip() for r in fake.received] == ["body 0", "body 1"]
    finally:
        fake.stop()


def test_process_mode_serves_stats_config_and_reset_over_http() -> None:
    port, control = free_port(), free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "notifications.tests.fakes.smtp"),
            *("--port", str(port), "--control-port", str(control), "--session-delay", "0.01"),
        ],
        cwd=BASE_DIR,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{control}/_fake"

    def stats() -> dict:
        with urllib.request.urlopen(url + "/stats", timeout=5) as answer:
            return json.load(answer)

    def post(path: str, payload: dict) -> None:
        data = json.dumps(payload).encode()
        urllib.request.urlopen(urllib.request.Request(url + path, data=data), timeout=5).read()

    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                stats()
                break
            except OSError:
                assert time.monotonic() < deadline, "the fake SMTP process did not start"
                time.sleep(0.1)
        send(port, 2)
        first = stats()
        assert (first["sessions"], first["messages"], first["session_messages"]) == (1, 2, [2])
        post("/config", {"message_delay": 0.01})
        assert stats()["message_delay"] == 0.01
        post("/reset", {})
        after = stats()
        assert (after["sessions"], after["messages"], after["message_delay"]) == (0, 0, 0.0)
        assert after["session_delay"] == 0.01  # back to what it was started with
    finally:
        process.terminate()
        process.wait(timeout=10)
