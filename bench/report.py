"""The bench's report: markdown tables, the chart, and the files in ``bench/results/``.

``results`` is ``{tier: {scenario: result}}`` as the measuring processes wrote it (JSON, so
thread counts and sizes are string keys). Every table is made only from the scenarios that
ran, so a ``BENCH_ONLY`` run reports what it measured and nothing else.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.harness import BASE_DIR, LATENCY, RESULTS, TIER_LABEL, machine
from bench.scenarios import CLICK_GAP, DEFAULT_WORKERS, RETENTION_SEND_EVERY, SMTP_COSTS
from bench.scenarios_preferences import CAP, CHAIN, ZONES

Results = dict[str, dict[str, Any]]
SMTP_COST = (
    f"{SMTP_COSTS['session_delay'] * 1000:.0f} ms per session and "
    f"{SMTP_COSTS['message_delay'] * 1000:.0f} ms per message"
)


def _ran(results: Results, name: str) -> list[tuple[str, dict]]:
    """(tier, result) for each tier where scenario ``name`` ran without an error."""
    return [
        (tier, res[name])
        for tier, res in results.items()
        if isinstance(res.get(name), dict) and "error" not in res[name]
    ]


def _pct(value: float) -> str:
    return f"{value:.0%}"


# --- today's tables --------------------------------------------------------------------------
def throughput_table(results: Results) -> list[str]:
    if not (_ran(results, "throughput") or _ran(results, "two_consumers")):
        return []
    lines = [
        "| tier | threads | notifications/s | p50 queued→sent (s) | p95 (s) | floor/s "
        "| share of floor | × baseline | consumer CPU ms/notification |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tier, res in results.items():
        base = (res.get("baseline") or {}).get("rate")
        floors = res.get("floor") or {}

        def line(
            label: str, row: dict, floor_key: str, *, tier=tier, base=base, floors=floors
        ) -> str:
            floor_rate = (floors.get(floor_key) or {}).get("rate")
            share = _pct(row["rate"] / floor_rate) if floor_rate else ""
            times = f"{row['rate'] / base:.1f}×" if base else ""
            return (
                f"| {TIER_LABEL[tier]} | {label} | {row['rate']} | {row['p50']} | {row['p95']} "
                f"| {floor_rate or ''} | {share} | {times} | {row.get('cpu_ms', '')} |"
            )

        for threads, row in (res.get("throughput") or {}).items():
            if "rate" in row:
                lines.append(line(threads, row, threads))
        if "rate" in (res.get("two_consumers") or {}):
            lines.append(line("2 consumers × 16", res["two_consumers"], "32"))
        if base:
            b = res["baseline"]
            lines.append(
                f"| {TIER_LABEL[tier]} | in-request baseline | {b['rate']} | {b['p50']} "
                f"| {b['p95']} | | | 1.0× | |"
            )
    return lines


def paced_table(results: Results) -> list[str]:
    ran = _ran(results, "paced")
    if not ran:
        return []
    lines = [
        "| tier | paced rate/s | share of NOTIFY_TELEGRAM_RATE (25) | share of the fake's 30/s | 429s |",
        "|---|---:|---:|---:|---:|",
    ]
    for tier, p in ran:
        lines.append(
            f"| {TIER_LABEL[tier]} | {p['rate']} | {_pct(p['share_of_configured'])} "
            f"| {_pct(p['share_of_provider'])} | {p['too_many']} |"
        )
    return lines


def bulk_table(results: Results) -> list[str]:
    ran = _ran(results, "bulk")
    if not ran:
        return []
    sizes = list(ran[0][1])
    lines = [
        "| tier | bulk “Send selected”: " + " | ".join(f"{s} rows" for s in sizes) + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for tier, rows in ran:
        cells = " | ".join(f"{v['queries']} queries, {v['ms']} ms" for v in rows.values())
        lines.append(f"| {TIER_LABEL[tier]} | {cells} |")
    return lines


# --- recipients in control (bench/scenarios_preferences.py) ----------------------------------
def claim_table(results: Results) -> list[str]:
    ran = _ran(results, "claim_queries")
    if not ran:
        return []
    sizes = list(ran[0][1]["sizes"])
    lines = [
        "**claim_queries**: SQL queries and milliseconds (median of 3) of one claim "
        "(`delivery.claim`, as the consumer's `deliver` task calls it) of queued, due "
        "notifications a quarter in each of three categories (none required, two capped) and "
        f"a quarter in the default one; their users in {len(ZONES)} time zones, with quiet "
        "hours and 9 Preference rows each; the default category cached, as in a running "
        "consumer.",
        "",
        "| tier | claim with preferences: "
        + " | ".join(f"{s} notification{'s' if s != '1' else ''}" for s in sizes)
        + " |",
        "|---|" + "---:|" * len(sizes),
    ]
    for tier, c in ran:
        cells = " | ".join(f"{v['queries']} queries, {v['ms']} ms" for v in c["sizes"].values())
        lines.append(f"| {TIER_LABEL[tier]} | {cells} |")
    return lines


def preferences_throughput_table(results: Results) -> list[str]:
    ran = _ran(results, "throughput_preferences")
    if not ran:
        return []
    first = ran[0][1]
    lines = [
        f"**throughput_preferences**: {first['plain']['n']:,} notifications from one bulk "
        f"action, {first['threads']} threads, Telegram fake answering in 50 ms; "
        + (f"median of {first['repeats']} runs" if first["repeats"] > 1 else "one run")
        + " of each workload, interleaved. *Plain*: as `throughput`. "
        f"*{' → '.join(CHAIN)}*: the same through that chain (Email skipped: no address). "
        "*With preferences*: the same chain, every notification in a category that is not "
        f"required and capped at {CAP} a day per user (not binding), its users in "
        f"{len(ZONES)} time zones with quiet hours that are not now and 9 Preference rows "
        "each, Email turned off for the category by every other one (the policy skips it). "
        "*Preferences, no cap*: the same in a category with no cap (a cap is one database "
        "write per send, to hold across hosts)."
        + (
            f" *Before*: `throughput` at as many threads in another checkout ({before})."
            if (before := next((t["before"]["source"] for _, t in ran if "before" in t), ""))
            else ""
        ),
        "",
        "| tier | threads | workload | notifications/s | p50 queued→sent (s) | p95 (s) "
        "| consumer CPU ms/notification | against plain | against before |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for tier, t in ran:
        before = t.get("before")
        workloads = [("before", before)] if before else []
        workloads += [
            ("plain", t["plain"]),
            (" → ".join(CHAIN), t["chain"]),
            ("with preferences", t["preferences"]),
            *([("preferences, no cap", t["uncapped"])] if "uncapped" in t else []),
        ]
        for label, row in workloads:
            plain = _pct(row["rate"] / t["plain"]["rate"]) if label != "before" else ""
            then = _pct(row["rate"] / before["rate"]) if before else ""
            lines.append(
                f"| {TIER_LABEL[tier]} | {t['threads']} | {label} | {row['rate']} | {row['p50']} "
                f"| {row['p95']} | {row.get('cpu_ms', '')} | {plain} | {then} |"
            )
    return lines


def webhooks_table(results: Results) -> list[str]:
    ran = _ran(results, "webhooks")
    if not ran:
        return []
    first = ran[0][1]
    lines = [
        f"**webhooks**: {first['n']:,} notifications from one bulk action, {first['threads']} "
        "threads, Telegram fake answering in 50 ms; "
        + (f"median of {first['repeats']} runs" if first["repeats"] > 1 else "one run")
        + " of each, interleaved. *Subscribed*: an endpoint (bench/webhook_receiver.py, on "
        "127.0.0.1) wants every event, so each `sent` writes an event and a delivery in the "
        "same statement, and the consumer's webhook lane (4 threads) posts them, signed; lag "
        "is from the event to its endpoint's 200. *Slow*: the endpoint answers in 5 s. "
        "*Silent*: it never answers (the lane's 10 s timeout).",
        "",
        "| tier | endpoint | notifications/s | against none | p50 queued→sent (s) | p95 (s) "
        "| consumer CPU ms/notification | webhook lag p50 (s) | p95 (s) | webhooks posted |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    labels = {"plain": "none", "fast": "subscribed", "slow": "slow (5 s)", "silent": "silent"}
    for tier, w in ran:
        for key, label in labels.items():
            if key not in w:  # BENCH_WEBHOOK_MODES left it out
                continue
            row = w[key]
            share = _pct(row["rate"] / w["plain"]["rate"]) if key != "plain" else ""
            lag = (row.get("lag_p50", ""), row.get("lag_p95", "")) if key == "fast" else ("", "")
            lines.append(
                f"| {TIER_LABEL[tier]} | {label} | {row['rate']} | {share} | {row['p50']} "
                f"| {row['p95']} | {row.get('cpu_ms', '')} | {lag[0]} | {lag[1]} "
                f"| {row.get('posts', '')} |"
            )
    return lines


def memory_line(results: Results) -> list[str]:
    lines = []
    for tier, m in _ran(results, "memory"):
        lines.append(
            f"Memory, {TIER_LABEL[tier]}, 32 threads, {m['n']:,} notifications "
            f"({m['rate']}/s): consumer RSS {m['rss_mib_at_10pct']} MiB at 10%, "
            f"{m['rss_mib_at_50pct']} MiB at 50%, {m['rss_mib_at_end']} MiB at the end; "
            f"peak {m['peak_mib']} MiB."
        )
    return lines


# --- the scenarios -------------------------------------------------------------------
def mixed_table(results: Results) -> list[str]:
    ran = _ran(results, "mixed")
    if not ran:
        return []
    lines = [
        "**mixed**: Telegram and email-only recipients interleaved by id, queued by one bulk "
        f"action; `make run` settings ({DEFAULT_WORKERS} workers, pacing 25/s); the Telegram "
        f"fake answers 429 above 30/s, the SMTP fake costs {SMTP_COST}.",
        "",
        "| tier | recipients | Telegram half done (s) | email half done (s) | email / Telegram "
        "| Telegram pace bound (s) | Telegram / bound | 429s | SMTP sessions |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tier, m in ran:
        lines.append(
            f"| {TIER_LABEL[tier]} | {m['n_telegram']} + {m['n_email']} | {m['telegram_seconds']} "
            f"| {m['email_seconds']} | {_pct(m['email_share_of_telegram'])} "
            f"| {m['pace_bound_seconds']:g} | {m['telegram_vs_pace_bound']:.2f} | {m['too_many']} "
            f"| {m['smtp_sessions']} |"
        )
    return lines


def burst_table(results: Results) -> list[str]:
    ran = _ran(results, "burst")
    if not ran:
        return []
    lines = [
        "**burst**: notifications to one chat (paced at 1/s per chat) queued just ahead of "
        "email-only ones, one bulk action; the email-only batch alone for comparison.",
        "",
        "| tier | burst + emails | emails alone (s) | emails behind the burst (s) | overhead "
        "| burst sent when emails done | burst done (s) | 429s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tier, b in ran:
        done = b["burst_seconds"] if b["burst_seconds"] is not None else f"{b['burst_sent']} sent"
        lines.append(
            f"| {TIER_LABEL[tier]} | {b['n_burst']} + {b['n_email']} | {b['email_alone_seconds']} "
            f"| {b['email_with_burst_seconds']} | {b['overhead']:+.0%} "
            f"| {b['burst_sent_when_email_done']} | {done} | {b['too_many']} |"
        )
    return lines


def smtp_table(results: Results) -> list[str]:
    ran = _ran(results, "smtp_sessions")
    if not ran:
        return []
    lines = [
        f"**smtp_sessions**: email-only notifications queued a page every second for over a "
        f"minute (sustained load), {DEFAULT_WORKERS} workers, the SMTP fake costing {SMTP_COST}.",
        "",
        "| tier | emails | seconds | emails/s | SMTP sessions | sessions / worker / minute "
        "| messages / session | most open at once |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tier, s in ran:
        lines.append(
            f"| {TIER_LABEL[tier]} | {s['n']} | {s['seconds']} | {s['rate']} | {s['sessions']} "
            f"| {s['sessions_per_worker_minute']} | {s['messages_per_session']} "
            f"| {s['max_open_sessions']} |"
        )
    return lines


def clicks_table(results: Results) -> list[str]:
    ran = _ran(results, "clicks")
    if not ran:
        return []
    lines = [
        "**clicks**: the same notifications queued by one bulk action, then by one action per "
        f"page (a click every {CLICK_GAP} s); {DEFAULT_WORKERS} workers, Telegram fake "
        "answering in 50 ms.",
        "",
        "| tier | how queued | notifications/s | seconds | p50 (s) | p95 (s) "
        "| consumer CPU ms/notification | duplicates |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for tier, c in ran:
        for label, row in (
            (f"1 action of {c['n']:,}", c["one_click"]),
            (f"{c['pages']} actions of {c['n'] // c['pages']:,}", c["paged"]),
        ):
            lines.append(
                f"| {TIER_LABEL[tier]} | {label} | {row['rate']} | {row['seconds']} | {row['p50']} "
                f"| {row['p95']} | {row['cpu_ms']} | {row['duplicates']} |"
            )
    return lines


def cpu_table(results: Results) -> list[str]:
    ran = _ran(results, "cpu")
    if not ran:
        return []
    lines = [
        "**cpu**: CPU time of the consumer process (user + system, from /proc) from the click to "
        "the last `sent`, per notification; Telegram fake answering in 50 ms in its own process.",
        "",
        "| tier | threads | notifications | notifications/s | CPU ms/notification | user | system "
        "| cores busy |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tier, c in ran:
        lines.append(
            f"| {TIER_LABEL[tier]} | {c['threads']} | {c['n']} | {c['rate']} | {c['cpu_ms']} "
            f"| {c['cpu_user_ms']} | {c['cpu_system_ms']} | {c['cpu_share_of_a_core']} |"
        )
    return lines


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f}"


def retention_table(results: Results) -> list[str]:
    ran = _ran(results, "retention")
    if not ran:
        return []
    lines = []
    for tier, r in ran:
        pruned = r["pruned"]
        lines += [
            f"**retention**: {r['rows']:,} final notifications older than NOTIFY_RETENTION_DAYS "
            f"(made in {r['made_seconds']} s by SQL), with their attempts and SMS receipts, "
            f"pruned by `manage.py prune_old` ({pruned['notifications']:,} notifications, "
            f"{pruned['attempts']:,} attempts, {pruned['sms_parts']:,} SMS receipts in "
            f"{r['prune_seconds']} s: {r['prune_rate']:,} notifications/s); meanwhile a campaign "
            f"of {r['send_n']:,} sent by {r['threads']} threads every "
            f"{RETENTION_SEND_EVERY:g} s, and the same campaign before the prune and after it "
            f"(and VACUUM) for comparison ({TIER_LABEL[tier]}).",
            "",
            "| campaign sent | notifications/s | p50 queued→sent (s) | p95 (s) "
            "| consumer CPU ms/notification |",
            "|---|---:|---:|---:|---:|",
        ]
        sent = [("without a prune", row) for row in r["quiet"]]
        sent += [
            ("while pruning" if row["pruning_throughout"] else "as the prune ended (left out)", row)
            for row in r["pruning"]
        ]
        for label, row in sent:
            lines.append(
                f"| {label} | {row['rate']} | {row['p50']} | {row['p95']} | {row['cpu_ms']} |"
            )
        lines += [
            "",
            "| table (MiB, with indexes) | before | after the prune and VACUUM "
            "| after VACUUM FULL |",
            "|---|---:|---:|---:|",
        ]
        for table, size in r["bytes_before"].items():
            lines.append(
                f"| notifications_{table} | {_mib(size)} | {_mib(r['bytes_vacuumed'][table])} "
                f"| {_mib(r['bytes_compacted'][table])} |"
            )
    return lines


# --- against the targets ----------------------------------------------------------------
TARGETS: list[tuple[str, str, str, Callable[[dict], tuple[str, bool]]]] = [
    (
        "mixed",
        "email-only half done, as a share of the Telegram half's time",
        "≤ 25%",
        lambda m: (_pct(m["email_share_of_telegram"]), m["email_share_of_telegram"] <= 0.25),
    ),
    (
        "mixed",
        "Telegram half done, against its pace bound (recipients / 25 per s)",
        "within 10%",
        lambda m: (
            f"{m['telegram_seconds']} s ({m['telegram_vs_pace_bound']:.2f}×)",
            abs(m["telegram_vs_pace_bound"] - 1) <= 0.10,
        ),
    ),
    (
        "mixed",
        "429s answered by the fake",
        "0",
        lambda m: (str(m["too_many"]), m["too_many"] == 0),
    ),
    (
        "burst",
        "email-only batch done behind a burst to one chat, against the batch alone",
        "+20% at most",
        lambda b: (f"{b['overhead']:+.0%}", b["overhead"] <= 0.20),
    ),
    (
        "smtp_sessions",
        "SMTP sessions per worker per minute",
        "≤ 1",
        lambda s: (str(s["sessions_per_worker_minute"]), s["sessions_per_worker_minute"] <= 1),
    ),
    (
        "clicks",
        "throughput when queued page by page (one action per page), against one action",
        "as fast (≥ 90%)",
        lambda c: (_pct(c["paged_share_of_one"]), c["paged_share_of_one"] >= 0.90),
    ),
    (
        "retention",
        "a campaign's send rate while old notifications are pruned, against without",
        "within 10%",
        lambda r: (
            f"{_pct(r['share'])}" + ("" if r["pruning_throughout"] else " (prune ended first)"),
            r["share"] >= 0.90 and r["pruning_throughout"],
        ),
    ),
    (
        "claim_queries",
        "queries of one claim with preferences loaded, 1 to 1,000 notifications",
        "the same at every size",
        lambda c: (
            " / ".join(str(v["queries"]) for v in c["sizes"].values()),
            len({v["queries"] for v in c["sizes"].values()}) == 1,
        ),
    ),
    (
        "throughput_preferences",
        "throughput with preferences, against today's (BENCH_BEFORE's, else plain)",
        "within 5%",
        lambda t: (
            f"{_pct(t['share_of_today'])} of {'before' if t['today_is_before'] else 'plain'} "
            f"({t['preferences']['rate']}/s, {t['threads']} threads)",
            t["share_of_today"] >= 0.95,
        ),
    ),
    (
        "throughput_preferences",
        "throughput with preferences and no cap, against today's",
        "within 5%",
        lambda t: (
            f"{_pct(t.get('uncapped_share_of_today', 0))} of "
            f"{'before' if t['today_is_before'] else 'plain'} "
            f"({t.get('uncapped', {}).get('rate')}/s, {t['threads']} threads)",
            t.get("uncapped_share_of_today", 0) >= 0.95,
        ),
    ),
    (
        "webhooks",
        "throughput with an endpoint subscribed to every event, against none",
        "within 10%",
        lambda w: (f"{_pct(w['fast_share'])} ({w['fast']['rate']}/s)", w["fast_share"] >= 0.90),
    ),
    (
        "webhooks",
        "throughput with an endpoint answering in 5 s, against none",
        "unchanged (≥ 90%)",
        lambda w: (f"{_pct(w['slow_share'])} ({w['slow']['rate']}/s)", w["slow_share"] >= 0.90),
    ),
    (
        "webhooks",
        "throughput with an endpoint that never answers, against none",
        "unchanged (≥ 90%)",
        lambda w: (
            f"{_pct(w['silent_share'])} ({w['silent']['rate']}/s)",
            w["silent_share"] >= 0.90,
        ),
    ),
    (
        "cpu",
        "consumer CPU per notification, 32 threads, Telegram fake in its own process",
        "≤ 3 ms",
        lambda c: (f"{c['cpu_ms']} ms", c["cpu_ms"] <= 3),
    ),
]


def targets_table(results: Results) -> list[str]:
    lines = []
    for name, what, target, judge in TARGETS:
        for tier, result in _ran(results, name):
            try:
                value, met = judge(result)
            except KeyError:  # a part of the scenario left out (BENCH_WEBHOOK_MODES)
                continue
            lines.append(
                f"| {name} | {what} ({TIER_LABEL[tier]}) | {target} | {value} "
                f"| {'met' if met else '**missed**'} |"
            )
    if not lines:
        return []
    return ["| scenario | measure | target | result | |", "|---|---|---|---|---|", *lines]


def errors_table(results: Results) -> list[str]:
    rows = [
        f"| {TIER_LABEL[tier]} | {name} | {res['error']} |"
        for tier, scenarios in results.items()
        for name, res in scenarios.items()
        if isinstance(res, dict) and "error" in res
    ]
    return ["| tier | scenario | failed |", "|---|---|---|", *rows] if rows else []


def tables(results: Results, skipped: dict[str, str]) -> str:
    """Every table the results allow, in markdown."""
    blocks = [
        throughput_table(results),
        preferences_throughput_table(results),
        paced_table(results),
        bulk_table(results),
        claim_table(results),
        webhooks_table(results),
        memory_line(results),
        targets_table(results),
        mixed_table(results),
        burst_table(results),
        smtp_table(results),
        clicks_table(results),
        cpu_table(results),
        retention_table(results),
        errors_table(results),
        [f"{TIER_LABEL[tier]}: skipped ({why})." for tier, why in skipped.items()],
    ]
    return "\n\n".join("\n".join(block) for block in blocks if block)


# --- the chart --------------------------------------------------------------------------------
def chart(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(17, 4.8))
    width = 0.2
    tiers = [(tier, res) for tier, res in results.items() if "rate" in str(res.get("throughput"))]
    for i, (tier, res) in enumerate(tiers):
        threads = list(res["throughput"])
        xs = [x + (i * 2 - 1.5) * width for x in range(len(threads))]
        left.bar(xs, [res["throughput"][t]["rate"] for t in threads], width, label=TIER_LABEL[tier])
        floors = res.get("floor") or {}
        if all(t in floors for t in threads):
            left.bar(
                [x + width for x in xs],
                [floors[t]["rate"] for t in threads],
                width,
                label=f"floor ({TIER_LABEL[tier]})",
                alpha=0.45,
            )
        if "rate" in (res.get("baseline") or {}):
            left.axhline(res["baseline"]["rate"], linestyle=":", linewidth=1)
        left.set_xticks(range(len(threads)), [f"{t} threads" for t in threads])
    if tiers:
        left.set_ylabel("notifications / s")
        left.set_title("Throughput (Telegram fake, 50 ms); dotted: in-request", fontsize=10)
        left.legend(fontsize=8)
    else:
        left.set_axis_off()

    mixed = next((m for _, m in _ran(results, "mixed")), None)
    if mixed:
        for key, label in (("telegram_curve", "Telegram half"), ("email_curve", "email-only half")):
            times = mixed[key]
            middle.step(times, range(1, len(times) + 1), where="post", label=label)
        end = mixed["pace_bound_seconds"]
        middle.plot([0, end], [0, mixed["n_telegram"]], linestyle=":", label="25/s pace")
        middle.set_xlabel("seconds after the click")
        middle.set_ylabel("sent")
        title = f"mixed: {mixed['n_telegram']} Telegram + {mixed['n_email']} email-only, one click"
        middle.set_title(title, fontsize=10)
        middle.legend(fontsize=8)
    else:
        middle.set_axis_off()

    memory = next((m for _, m in _ran(results, "memory")), None)
    if memory:
        done, rss = zip(*memory["samples"], strict=True)
        right.plot(done, [r / 1024 for r in rss])
        right.set_xlabel("notifications sent")
        right.set_ylabel("consumer RSS (MiB)")
        right.set_ylim(bottom=0)
        right.set_title(f"Consumer memory over {memory['n']:,} notifications", fontsize=10)
    else:
        right.set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# --- the files ------------------------------------------------------------------------------
def write(
    results: Results,
    skipped: dict[str, str],
    minutes: float,
    settings: list[str],
    complete: bool,
    meta: dict[str, Any] | None = None,
    reference: list[float] | None = None,
) -> str:
    """Write ``bench/results/`` (and, for a complete run, ``assets/bench.png``); return the text.

    ``meta`` (``date``, ``machine``) is given when re-rendering a saved run.
    """
    meta = meta or {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "cpu_reference_ms": reference or [],
    }
    ref = meta.get("cpu_reference_ms") or []
    speed = (
        f" A fixed pure-Python loop took {' and '.join(f'{r:g}' for r in ref)} ms of CPU at the "
        f"start and the end (`harness.cpu_reference_ms`): compare CPU times across runs by it."
        if ref
        else ""
    )
    how = f" with {', '.join(settings)}" if settings else ""
    # The chart needs matplotlib (requirements-bench.txt, which `make bench` installs); a
    # bench run without it still writes its tables.
    drawn = bool(results) and importlib.util.find_spec("matplotlib") is not None
    if results and not drawn:
        print("bench.png not drawn: no matplotlib (pip install -r requirements-bench.txt)")
    text = (
        f"# Benchmark\n\nRun {meta['date']} on {meta['machine']}; `make bench`{how} took "
        f"{minutes:.1f} min. The Telegram fake answers in {LATENCY * 1000:.0f} ms and runs in a "
        f"process of its own, as does the SMTP fake. Throughput runs use "
        f"NOTIFY_TELEGRAM_RATE=1000 (pacing on, not binding).{speed}\n\n"
        f"{tables(results, skipped)}\n" + ("\n![benchmark](bench.png)\n" if drawn else "")
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "results.md").write_text(text)
    payload = {
        **meta,
        "minutes": round(minutes, 2),
        "settings": settings,
        "skipped": skipped,
        "tiers": results,
    }
    (RESULTS / "results.json").write_text(json.dumps(payload, indent=1))
    if drawn:
        chart(results, RESULTS / "bench.png")
        if complete:
            shutil.copy(RESULTS / "bench.png", BASE_DIR / "assets" / "bench.png")
    return text


def rewrite() -> str:
    """Render ``bench/results/results.json`` again (after changing a table or the chart)."""
    saved = json.loads((RESULTS / "results.json").read_text())
    meta = {k: saved.get(k) for k in ("date", "machine", "cpu_reference_ms")}
    return write(saved["tiers"], saved["skipped"], saved["minutes"], saved["settings"], False, meta)
