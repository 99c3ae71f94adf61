"""docs/operations.md: its example alert rules are valid Prometheus rules, and every metric
they name is one the service exports."""

from __future__ import annotations

import re

import pytest

from notifications.operations.tests.scrapes import promtool_problems
from notifications.tests.fixtures import BASE_DIR

DOC = BASE_DIR / "docs" / "operations.md"


def alert_rules() -> str:
    """The doc's YAML block that holds rule groups."""
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.DOTALL)
    [rules] = [block for block in blocks if block.startswith("groups:")]
    return rules


def test_prometheus_accepts_the_alert_rules_in_the_docs(tmp_path):
    path = tmp_path / "alerts.yml"
    path.write_text(alert_rules())
    assert promtool_problems("check", "rules", str(path)) == ""


@pytest.mark.django_db
def test_every_metric_the_alert_rules_name_is_exported(client, settings):
    settings.NOTIFY_METRICS_TOKEN = "doc-token-0123456789"
    scrape = client.get("/metrics", HTTP_AUTHORIZATION="Bearer doc-token-0123456789")
    exported = set(re.findall(r"^# TYPE (\S+)", scrape.content.decode(), flags=re.MULTILINE))
    named = {
        re.sub(r"_(bucket|sum|count)$", "", name)
        for name in re.findall(r"\bnotify_\w+", alert_rules())
    }
    counters = {f"{name}_total" for name in exported}
    assert named - exported - counters == set()
    assert named  # the rules do name the service's metrics
