"""``manage.py runservice``: the web server, the queue consumers and (TELEGRAM_UPDATES=poll)
the Telegram poller together; Ctrl-C stops them all.

Their metrics go to one directory (prometheus_client's multiprocess mode): var/prometheus
(0700), or PROMETHEUS_MULTIPROC_DIR when set, emptied at start. The web's /metrics shows every
process's counts; with NOTIFY_METRICS_PORT, so does the first consumer's port (the others get
none: one port, one process)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from notifications.operations import exposition

# Processes whose end does not stop the service (it says so): the Telegram poller.
OPTIONAL = {"telegram"}


class Command(BaseCommand):
    help = (
        "Run gunicorn on 127.0.0.1:PORT, NOTIFY_CONSUMERS huey consumers of NOTIFY_WORKERS "
        "threads each, and the Telegram poller when TELEGRAM_UPDATES=poll."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address the web server binds")
        parser.add_argument(
            "--stop-timeout",
            type=float,
            default=20.0,
            help="seconds to wait for the processes to stop cleanly before killing them",
        )

    def commands(self, host: str) -> dict[str, list[str]]:
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        commands = {
            "web": [
                python, "-m", "gunicorn", "notification_service.wsgi",
                "--bind", f"{host}:{settings.PORT}",
                "--workers", "2", "--threads", "4",
                "--access-logfile", "-",
                # Under runservice's own stop timeout: requests get 10 s to finish.
                "--graceful-timeout", "10",
                "--logger-class", "notification_service.gunicorn_logging.RedactingLogger",
            ],
        }  # fmt: skip
        for n in range(1, settings.NOTIFY_CONSUMERS + 1):
            # One process is bound by Python's GIL; more use more cores. Only the first
            # runs the periodic sweeper.
            name = "worker" if settings.NOTIFY_CONSUMERS == 1 else f"worker{n}"
            commands[name] = [
                python, manage, "run_huey",
                "--workers", str(settings.NOTIFY_WORKERS),
                "--worker-type", "thread",
                # An idle consumer polls the queue at most 1 s apart (huey's default backs
                # off to 10 s), so a scheduled notification goes out within ~2 s of send_at.
                "--max-delay", "1",
                *(["--no-periodic"] if n > 1 else []),
            ]  # fmt: skip
        if settings.TELEGRAM_UPDATES == "poll" and settings.TELEGRAM_BOT_TOKEN:
            # Users' /start links and /stop (with TELEGRAM_UPDATES=webhook, Telegram POSTs them).
            commands["telegram"] = [python, manage, "telegram_poll"]
        return commands

    def _pump(self, name: str, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.stdout.write(f"{name:>6} | {line.rstrip()}")

    def _on_signal(self, signum: int, frame) -> None:
        """SIGINT (Ctrl-C) or SIGTERM: counted, nothing else. No logging, no locks: a lock
        the interrupted code holds would never be released (a gunicorn worker once hung
        so, holding the port). The main loop acts on the count."""
        self._signals += 1

    def environment(self, name: str, metrics_dir: Path) -> dict[str, str]:
        """The process's environment: this one's, with the shared metrics directory, and no
        metrics port for a consumer after the first."""
        env = {**os.environ, exposition.MULTIPROCESS_ENV: str(metrics_dir)}
        if name.startswith("worker") and name not in ("worker", "worker1"):
            env["NOTIFY_METRICS_PORT"] = "0"  # not left out: its .env would set it again
        return env

    def handle(self, *args, host: str, stop_timeout: float, **options) -> None:
        self._signals = 0
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        processes: dict[str, subprocess.Popen] = {}
        finished = threading.Event()
        metrics_dir = exposition.prepare_multiprocess_dir(
            Path(exposition.multiprocess_dir() or Path(settings.VAR_DIR) / "prometheus")
        )
        for name, command in self.commands(host).items():
            # A session of its own: Ctrl-C in the terminal reaches only this command, which
            # stops each process once, the way it stops cleanly (a second SIGINT from the
            # terminal cut gunicorn's and huey's shutdown short).
            process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=self.environment(name, metrics_dir),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
            processes[name] = process

            def watch(name: str = name, process: subprocess.Popen = process) -> None:
                self._pump(name, process)
                process.wait()
                exposition.process_gone(process.pid, metrics_dir)
                # Said of a poller that dies while serving, not of one stopped with the rest
                # (the service stops on a signal or when a process that is not optional ends).
                if name in OPTIONAL and not finished.is_set() and not self._signals:
                    self.stderr.write(
                        f"{name} stopped (exit {process.returncode}), see above; "
                        "the rest keeps running"
                    )
                    return
                finished.set()

            threading.Thread(target=watch, daemon=True).start()

        self.stdout.write(f"Admin: http://{host}:{settings.PORT}/admin/  (Ctrl-C stops)")
        while not self._signals and not finished.wait(0.2):
            pass
        self._stop(processes, stop_timeout)

    def _stop(self, processes: dict[str, subprocess.Popen], timeout: float) -> None:
        """Ask each process to stop (gunicorn: SIGTERM, its graceful stop; huey and the
        poller: SIGINT), wait up to ``timeout`` seconds, then kill what is left with its
        whole process group (gunicorn's workers too). A second Ctrl-C kills at once."""
        self.stdout.write(
            f"Stopping (up to {timeout:g} s; Ctrl-C again to kill at once)",
        )
        asked = self._signals
        for name, process in processes.items():
            if process.poll() is None:
                _signal_group(process, signal.SIGTERM if name == "web" else signal.SIGINT)
        deadline = time.monotonic() + timeout
        while any(p.poll() is None for p in processes.values()):
            if self._signals > max(asked, 1):
                self.stderr.write("killed at once (second Ctrl-C)")
                break
            if time.monotonic() >= deadline:
                left = [n for n, p in processes.items() if p.poll() is None]
                self.stderr.write(f"{', '.join(left)} did not stop in {timeout:g} s; killed")
                break
            time.sleep(0.1)
        for process in processes.values():
            _signal_group(process, signal.SIGKILL)  # also what they started, if left
            process.wait()
        failed = {
            n: p.returncode
            for n, p in processes.items()
            if p.returncode not in (0, -signal.SIGINT, -signal.SIGTERM) and n not in OPTIONAL
        }
        if failed:
            self.stderr.write(f"stopped with errors: {failed}")


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    """``signum`` to the process group ``process`` leads (it started a session of its own)."""
    try:
        os.killpg(process.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass  # gone already
