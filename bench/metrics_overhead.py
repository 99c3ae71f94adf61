"""What counting costs the delivery path: CPU per notification of ``operations.metrics``.

Times what the pipeline calls for one notification (``notifications_created`` at creation,
``attempts_recorded`` once its round is written) for a typical round (one Telegram success)
and a long one (Telegram permanent, email transient, SMS success with segments and cost), in
a process of its own per mode: one process (a consumer serving its own port) and
prometheus_client's multiprocess mode (runservice: every count also written to a mmap file).
Prints a table; no database, no network.

    .venv/bin/python bench/metrics_overhead.py [--rounds 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

BASE_DIR = Path(__file__).resolve().parents[1]


def attempt(channel: str, transport: str, outcome: str, **extra) -> SimpleNamespace:
    fields = {"duration_ms": 120, "segments": None, "cost": None, **extra}
    return SimpleNamespace(channel=channel, transport=transport, outcome=outcome, **fields)


ROUNDS = {
    "typical: 1 attempt (Telegram sent)": [attempt("telegram", "telegram", "success")],
    "long: 3 attempts (Telegram, email failed; SMS sent)": [
        attempt("telegram", "telegram", "permanent"),
        attempt("email", "email", "transient"),
        attempt("sms", "sms_api", "success", segments=2, cost=Decimal("10.98")),
    ],
}


def measure(rounds: int) -> dict[str, float]:
    """Microseconds of CPU per notification, per kind of round (run in a child process)."""
    import django

    django.setup()
    from notifications.operations import metrics

    results = {}
    notification = object()
    for name, attempts in ROUNDS.items():
        for _ in range(1000):  # warm: the label children exist, as in a running consumer
            metrics.notifications_created("api", [notification])
            metrics.attempts_recorded(attempts)
        start = time.process_time()
        for _ in range(rounds):
            metrics.notifications_created("api", [notification])
            metrics.attempts_recorded(attempts)
        results[name] = (time.process_time() - start) / rounds * 1e6
    return results


def run_mode(multiprocess: bool, rounds: int) -> dict[str, float]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "notification_service.settings",
        "NOTIFY_SKIP_DOTENV": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with tempfile.TemporaryDirectory() as directory:
        if multiprocess:
            env["PROMETHEUS_MULTIPROC_DIR"] = directory
        output = subprocess.run(
            [sys.executable, __file__, "--child", "--rounds", str(rounds)],
            cwd=BASE_DIR,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return json.loads(output.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200_000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(BASE_DIR))
        print(json.dumps(measure(args.rounds)))
        return
    single, multi = run_mode(False, args.rounds), run_mode(True, args.rounds)
    width = max(map(len, ROUNDS))
    print(f"CPU per notification, µs ({args.rounds:,} rounds each)")
    print(f"{'round':<{width}}  {'one process':>11}  {'multiprocess':>12}")
    for name in ROUNDS:
        print(f"{name:<{width}}  {single[name]:>11.2f}  {multi[name]:>12.2f}")


if __name__ == "__main__":
    main()
