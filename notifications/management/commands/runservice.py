"""``manage.py runservice``: the web server, the queue consumers and (TELEGRAM_UPDATES=poll)
the Telegram poller together; Ctrl-C stops them all."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

# Processes whose end does not stop the service (it says so): the Telegram poller.
OPTIONAL = {"telegram"}


class Command(BaseCommand):
    help = (
        "Run gunicorn on 127.0.0.1:PORT, NOTIFY_CONSUMERS huey consumers of NOTIFY_WORKERS "
        "threads each, and the Telegram poller when TELEGRAM_UPDATES=poll."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address the web server binds")

    def commands(self, host: str) -> dict[str, list[str]]:
        python = sys.executable
        manage = str(Path(settings.BASE_DIR) / "manage.py")
        commands = {
            "web": [
                python, "-m", "gunicorn", "notification_service.wsgi",
                "--bind", f"{host}:{settings.PORT}",
                "--workers", "2", "--threads", "4",
                "--access-logfile", "-",
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

    def handle(self, *args, host: str, **options) -> None:
        processes: dict[str, subprocess.Popen] = {}
        finished = threading.Event()
        for name, command in self.commands(host).items():
            process = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            )
            processes[name] = process

            def watch(name: str = name, process: subprocess.Popen = process) -> None:
                self._pump(name, process)
                process.wait()
                if name in OPTIONAL and not finished.is_set():
                    self.stderr.write(
                        f"{name} stopped (exit {process.returncode}), see above; "
                        "the rest keeps running"
                    )
                    return
                finished.set()

            threading.Thread(target=watch, daemon=True).start()

        self.stdout.write(f"Admin: http://{host}:{settings.PORT}/admin/  (Ctrl-C stops)")
        signal.signal(signal.SIGTERM, lambda *_: finished.set())
        try:
            finished.wait()
        except KeyboardInterrupt:
            pass
        for process in processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for name, process in processes.items():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in 15 s; killing it")
                process.kill()
        failed = {
            n: p.returncode
            for n, p in processes.items()
            if p.returncode not in (0, -2) and n not in OPTIONAL
        }
        if failed:
            self.stderr.write(f"stopped with errors: {failed}")
