"""``make bench``: throughput, pacing, fairness between channels, bulk-action cost, CPU and memory.

A benchmark, not a test: it prints what it measures and asserts nothing. ``python bench/run.py``
starts the fake Telegram Bot API and the fake SMTP server in processes of their own, then, for
each tier (``sqlite``: SQLite + SqliteHuey, the embedded default; ``pg``: PostgreSQL + Redis),
runs the scenarios of that tier in a child process (``python bench/run.py measure --tier …``)
that drives the real consumer (``manage.py run_huey``) as a subprocess. It writes
``bench/results/results.md``, ``results.json`` and ``bench.png`` (copied to
``assets/bench.png`` after a complete run).

- ``bench/harness.py``: settings from the environment, fakes in processes, tiers, CPU/memory;
- ``bench/workbench.py``: the Django side (users, notifications, the bulk action, consumers);
- ``bench/scenarios.py``: one function per scenario (``@scenario(tiers)``), returning a dict;
- ``bench/scenarios_preferences.py``: those of recipients in control (preferences, caps);
- ``bench/scenarios_webhooks.py``: status webhooks (an endpoint subscribed to everything, a
  slow one, a silent one; ``bench/webhook_receiver.py`` plays the client service);
- ``bench/report.py``: the markdown tables, the chart and the files.

Environment: ``BENCH_ONLY=mixed,burst`` runs those scenarios only; ``BENCH_QUICK=1`` runs every
scenario at reduced size (a couple of minutes); ``BENCH_FULL=1`` sends as many with 1 thread
and in the request as with 8; ``BENCH_TIERS=sqlite`` one tier; ``BENCH_PROFILE=32`` only the
throughput with that many threads (plain and with preferences), printed; ``BENCH_SMTP_TLS=1``
email over STARTTLS;
``BENCH_DATABASE_URL`` (default ``postgres://postgres@127.0.0.1:5432/notify_bench``, dropped
and created afresh) and ``BENCH_QUEUE_URL`` (default ``redis://127.0.0.1:6379/14``, flushed);
``BENCH_RETENTION_ROWS`` the old notifications the ``retention`` scenario prunes (5,000,000);
``BENCH_BEFORE`` a file with another checkout's 32-thread throughput, shown beside
``throughput_preferences`` (``bench/scenarios_preferences.py``); ``BENCH_WEBHOOK_MODES=fast``
only that endpoint (of fast, slow, silent) against none in ``webhooks``, and
``BENCH_WEBHOOK_REPEATS`` its interleaved runs (2).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))

import bench.scenarios_preferences  # noqa: E402 (registers its scenarios too)
import bench.scenarios_webhooks  # noqa: E402, F401 (and the webhooks scenario)
from bench import report  # noqa: E402 (the project's root is on the path only from here)
from bench.harness import (  # noqa: E402
    FULL,
    ONLY,
    PROFILE_THREADS,
    QUICK,
    RESULTS,
    SMTP_TLS,
    TIER_LABEL,
    TIERS,
    WORK,
    SmtpFake,
    TelegramFake,
    Tier,
    cpu_reference_ms,
    pg_and_redis_ready,
)
from bench.scenarios import SCENARIOS  # noqa: E402

# Benches of their own, run as scripts after the tiers: the HTTP API's create throughput, the
# operator's campaign creation, and the operator's views (dashboard, admin list, API list) at a
# million notifications (each prints a markdown table).
SCRIPTS = {
    "api": ("bench/api_create.py", []),
    "operator": ("bench/operator_bench.py", ["--recipients", "5000"] if QUICK else []),
    "million": ("bench/operator_million.py", ["--rows", "100000"] if QUICK else []),
}


def run_scripts() -> tuple[list[str], bool]:
    """The tables of the scripts BENCH_ONLY asks for (all of them without BENCH_ONLY), and
    whether one failed."""
    tables, failed = [], False
    for name, (script, args) in SCRIPTS.items():
        if PROFILE_THREADS or (ONLY and name not in ONLY):
            continue
        print(f"{name}: {script} {' '.join(args)}", flush=True)
        done = subprocess.run(
            [sys.executable, script, *args], cwd=BASE_DIR, capture_output=True, text=True
        )
        if done.returncode:
            tables.append(f"**{name}**: {script} failed ({done.returncode}): {done.stderr[-500:]}")
            failed = True
        else:
            tables.append(done.stdout.strip())
        (RESULTS / f"{name}.md").write_text(tables[-1] + "\n")
    return tables, failed


# What BENCH_PROFILE runs (those of them BENCH_ONLY names, if it names some).
PROFILED = ("throughput", "two_consumers", "throughput_preferences")


def selected() -> list[str]:
    """The scenarios to run, in the order they are defined."""
    if PROFILE_THREADS:
        wanted = [name for name in PROFILED if not ONLY or name in ONLY]
    else:
        wanted = ONLY or list(SCENARIOS)
    wanted = [name for name in wanted if name not in SCRIPTS]
    unknown = sorted(set(wanted) - set(SCENARIOS))
    if unknown:
        sys.exit(f"BENCH_ONLY: no scenario {', '.join(unknown)}; there are {', '.join(SCENARIOS)}")
    return [name for name in SCENARIOS if name in wanted]


def measure(tier: str, telegram: TelegramFake, smtp: SmtpFake, names: list[str], out: Path) -> None:
    """Run ``names`` on ``tier`` in this process; results go to ``out`` after each scenario."""
    from bench.workbench import Bench

    bench = Bench(Tier(tier), telegram, smtp)
    results: dict[str, dict] = {}
    for name in names:
        try:
            results[name] = SCENARIOS[name].run(bench)
        except Exception as err:  # noqa: BLE001 (one scenario failing must not lose the others)
            traceback.print_exc()
            first_line = (str(err).splitlines() or [""])[0]
            results[name] = {"error": f"{type(err).__name__}: {first_line}"}
        out.write_text(json.dumps(results))


def orchestrate() -> int:
    names = selected()
    unknown_tiers = [tier for tier in TIERS if tier not in TIER_LABEL]
    if unknown_tiers:
        sys.exit(f"BENCH_TIERS: no tier {', '.join(unknown_tiers)}; there are sqlite, pg")
    began = time.monotonic()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    reference = [cpu_reference_ms()]
    telegram, smtp = TelegramFake(), SmtpFake()
    results: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    try:
        telegram.start()
        smtp.start()
        for tier in TIERS:
            wanted = [name for name in names if tier in SCENARIOS[name].tiers]
            if not wanted:
                continue
            if tier == "pg" and (why := pg_and_redis_ready()):
                skipped[tier] = why
                print(f"{TIER_LABEL[tier]}: skipped ({why})", flush=True)
                continue
            print(f"{TIER_LABEL[tier]}: {', '.join(wanted)}", flush=True)
            out = WORK / f"{tier}.json"
            command = [sys.executable, __file__, "measure", "--tier", tier]
            command += ["--telegram", telegram.url, "--smtp-port", str(smtp.port)]
            command += ["--smtp-control", smtp.control_url, "--scenarios", ",".join(wanted)]
            command += ["--out", str(out)]
            finished = subprocess.run(command, cwd=BASE_DIR, check=False)
            if out.exists():
                results[tier] = json.loads(out.read_text())
            if finished.returncode:
                skipped[tier] = f"its measuring process exited with {finished.returncode}"
    finally:
        telegram.stop()
        smtp.stop()
    extra_tables, scripts_failed = run_scripts()
    reference.append(cpu_reference_ms())
    if PROFILE_THREADS:
        for tier, res in results.items():
            print(tier, json.dumps(res))
        return 0
    settings = [
        f"{name}={value}"
        for name, value in (
            ("BENCH_QUICK", "1" if QUICK else ""),
            ("BENCH_FULL", "1" if FULL else ""),
            ("BENCH_ONLY", ",".join(ONLY)),
            ("BENCH_SMTP_TLS", "1" if SMTP_TLS else ""),
        )
        if value
    ]
    failed = bool(skipped) or any("error" in r for res in results.values() for r in res.values())
    complete = not (QUICK or ONLY or failed) and set(results) == {"sqlite", "pg"}
    minutes = (time.monotonic() - began) / 60
    text = report.write(results, skipped, minutes, settings, complete, reference=reference)
    if extra_tables:
        text += "\n\n" + "\n\n".join(extra_tables) + "\n"
        (RESULTS / "results.md").write_text(text)
    print("\n" + text)
    return 1 if failed or scripts_failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    sub = parser.add_subparsers(dest="command")
    one = sub.add_parser("measure", help="run scenarios on one tier (run by the orchestrator)")
    one.add_argument("--tier", choices=sorted(TIER_LABEL), required=True)
    one.add_argument("--telegram", required=True, help="URL of the fake Telegram")
    one.add_argument("--smtp-port", type=int, required=True, help="port of the fake SMTP")
    one.add_argument("--smtp-control", required=True, help="URL of the fake SMTP's stats")
    one.add_argument("--scenarios", required=True, help="comma-separated scenario names")
    one.add_argument("--out", type=Path, required=True)
    sub.add_parser("report", help="render bench/results/results.json again")
    args = parser.parse_args()
    if args.command == "report":
        print(report.rewrite())
    elif args.command == "measure":
        telegram = TelegramFake(args.telegram)
        smtp = SmtpFake(args.smtp_port, args.smtp_control)
        measure(args.tier, telegram, smtp, args.scenarios.split(","), args.out)
    else:
        sys.exit(orchestrate())


if __name__ == "__main__":
    main()
