"""The real consumer (``manage.py run_huey``) as a subprocess: shared by the tests and the bench.

Importable without Django being set up (the bench's orchestrator imports it too).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[2]


class Consumer:
    """The real consumer (``manage.py run_huey``) as a subprocess with the service's settings.

    ``args`` are extra ``run_huey`` options after ``-w N -k thread`` (the tests' default,
    ``-C``, turns huey's worker health check off; the bench passes none, as ``make run``).
    ``prefix`` runs it through another command (``ip netns exec <host>``: make scaleout).
    """

    def __init__(
        self,
        env: dict[str, str],
        log: Path,
        workers: int = 4,
        args: Sequence[str] = ("-C",),
        prefix: Sequence[str] = (),
    ) -> None:
        self.env = env
        self.workers = workers
        self.args = tuple(args)
        self.prefix = tuple(prefix)
        self.process: subprocess.Popen | None = None
        self.log = log

    def start(self) -> Consumer:
        self._log_file = self.log.open("w")
        self.process = subprocess.Popen(
            [
                *self.prefix,
                sys.executable,
                "manage.py",
                "run_huey",
                "-w",
                str(self.workers),
                "-k",
                "thread",
                *self.args,
            ],
            cwd=BASE_DIR,
            env=self.env,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_started(self, timeout: float = 60) -> Consumer:
        """Block until huey logs "consumer started"; ``RuntimeError`` if it exits or hangs."""
        deadline = time.monotonic() + timeout
        while "consumer started" not in self.output():
            assert self.process is not None
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"consumer did not start:\n{self.output()[-2000:]}")
            time.sleep(0.1)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        """Stop with ``sig`` (SIGINT lets running tasks finish), killing it after ``timeout``."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log_file.close()

    def output(self) -> str:
        return self.log.read_text()


def start_runservice(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    """``manage.py runservice`` with ``env``, its output to ``log``, in a session of its own
    (a terminal's foreground process group: Ctrl-C is ``os.killpg(pid, SIGINT)``)."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "manage.py", "runservice", *args],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_runservice(process: subprocess.Popen) -> None:
    """Stop a ``manage.py runservice`` started in a session of its own (a test's ``finally``):
    Ctrl-C, then a second Ctrl-C (which kills what it started), then SIGKILL. Killing only
    runservice would leave its web and consumers, each in a session of its own, running."""
    import os

    for sig, wait in ((signal.SIGINT, 30), (signal.SIGINT, 10), (signal.SIGKILL, 10)):
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue


# The caller's own channel and service settings: a developer's shell or ``.env`` must not leak
# into a service process started for a test or a bench.
OWN_SETTINGS = ("TELEGRAM_", "EMAIL_", "NOTIFY_", "SMS", "SMPP_", "DJANGO_")


def service_environ(
    database_url: str, queue_url: str, var_dir: Path | None = None, **extra: str
) -> dict[str, str]:
    """The environment of a process of the service on these stores (``var_dir``: its
    NOTIFY_VAR_DIR), without the caller's own channel and service settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(OWN_SETTINGS)}
    env.update(
        DJANGO_SETTINGS_MODULE="notification_service.settings",
        NOTIFY_SKIP_DOTENV="1",
        DATABASE_URL=database_url,
        QUEUE_URL=queue_url,
    )
    if var_dir is not None:
        env["NOTIFY_VAR_DIR"] = str(var_dir)
    env.update(extra)
    return env
