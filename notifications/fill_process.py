"""A large campaign created in a process of its own.

A consumer creates a campaign in one of its worker threads (``tasks.campaign_fill``), beside
the threads that send. Every round trip of a creation step to the database and to Redis ends
with the thread waiting for the GIL again, and with 32 threads sending that wait is most of
the step: a million recipients were created at ~7,300/s beside the sending, against ~18,800/s
alone. So a campaign of ``NOTIFY_CAMPAIGN_PROCESS_FROM`` recipients or more is created by a
child process (``manage.py fill_campaign --report``, started as the webhook lane is) while
the worker thread that started it waits for it, holding no GIL. The child takes the same
steps (``composing.CampaignFiller``: one transaction each, its cursor compared and set, so a
second filler backs off) and rings the same doorbells; after each committed step it writes a
JSON line on its stdout with the notifications it created, which this process counts in its
metrics (a child's own counts would be lost outside prometheus_client's multiprocess mode,
and counted twice inside it).

Nothing is lost with the child: whatever it did not create (it could not start, it failed,
it was killed) the worker thread then creates itself, from the cursor where it stopped. A
child whose consumer is gone stops after the step it is in; the next consumer's sweeper
resumes the campaign.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from django.conf import settings

from notifications.models import Campaign
from notifications.operations import metrics

logger = logging.getLogger(__name__)


def wanted(campaign_id: int) -> bool:
    """Whether the campaign is still being created and is large enough for a process."""
    least = settings.NOTIFY_CAMPAIGN_PROCESS_FROM
    return bool(least) and (
        Campaign.objects.filter(
            pk=campaign_id, state=Campaign.State.CREATING, audience_size__gte=least
        ).exists()
    )


def command(campaign_id: int) -> list[str]:
    """The child's command line: this interpreter, this project's ``manage.py``."""
    return [
        sys.executable,
        str(Path(settings.BASE_DIR) / "manage.py"),
        "fill_campaign",
        str(campaign_id),
        "--report",
        "--parent",
        str(os.getpid()),
    ]


def run(campaign_id: int) -> int:
    """Create the campaign in a child process and wait for it; returns how many
    notifications it created (0 when it could not start). The caller then creates whatever
    is left itself."""
    try:
        child = subprocess.Popen(
            command(campaign_id),
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            text=True,
            # As the webhook lane's: a Ctrl-C meant for the consumer does not interrupt the
            # child's step; it stops after it, seeing its consumer gone.
            start_new_session=True,
        )
    except OSError as err:
        logger.warning(
            "campaign %s: no process of its own (%s); creating it here", campaign_id, err
        )
        return 0
    logger.info("campaign %s: created by process %s", campaign_id, child.pid)
    created = 0
    try:
        for tally in reports(child.stdout):
            metrics.count_created(tally)
            created += sum(n for _, n in tally)
        code = child.wait()
    except BaseException:  # this thread is stopped: so is the child
        child.kill()
        child.wait()
        raise
    finally:
        child.stdout.close()
    if code:
        logger.warning(
            "campaign %s: its process ended with %s after %s notifications; the rest is "
            "created here",
            campaign_id,
            code,
            created,
        )
    return created


def reports(lines: Iterator[str]) -> Iterator[list[tuple[list[str], int]]]:
    """The tallies a child reports, one a line (any other line is not ours: skipped)."""
    for line in lines:
        try:
            report = json.loads(line)
            tally = [(list(labels), int(n)) for labels, n in report["created"]]
        except (ValueError, KeyError, TypeError):
            continue
        yield tally


def reporter(write: Callable[[str], object]) -> Callable[[str, list], None]:
    """The child's count of a committed step: a line for its parent."""

    def report(source: str, notifications: list) -> None:
        write(json.dumps({"created": metrics.created_tally(source, notifications)}))

    return report


def orphaned(parent: int | None) -> Callable[[], bool]:
    """Whether the process that started this one is gone (never, without a parent)."""
    return lambda: parent is not None and os.getppid() != parent
