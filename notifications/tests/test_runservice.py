"""`make run`'s last step: web server and consumers start together and stop together."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from notifications.tests.conftest import BASE_DIR, wait_for
from notifications.tests.fakes.smtp import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


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
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    text = log.read_text()
    assert "worker1 |" in text and "worker2 |" in text and "web |" in text
    assert "stopped with errors" not in text
    time.sleep(0.5)
    assert login_page() is None  # nothing listens any more
