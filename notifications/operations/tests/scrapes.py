"""Reading a Prometheus scrape in tests, and checking it with ``promtool``."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families


def value(text: str, name: str, **labels: str) -> float | None:
    """The sample ``name`` with exactly ``labels`` in a scrape's text; None if absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def fetch(url: str, token: str | None = None) -> tuple[int, str]:
    """GET ``url`` (with the bearer token): the status and body; (0, "") if nothing answers."""
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError:
        return 0, ""


def promtool() -> str:
    """promtool's path; skips the test without it (fails under CI: apt-get install prometheus)."""
    path = shutil.which("promtool")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is missing: apt-get install prometheus")
        pytest.skip("promtool is missing: apt-get install prometheus")
    return path


def promtool_problems(*args: str, stdin: str | None = None) -> str:
    """What ``promtool <args>`` complains of; empty when it passes."""
    result = subprocess.run(
        [promtool(), *args], input=stdin, capture_output=True, text=True, timeout=60
    )
    return "" if result.returncode == 0 else (result.stdout + result.stderr).strip()
