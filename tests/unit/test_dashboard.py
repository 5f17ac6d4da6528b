"""The Grafana dashboard: generated from code (grafana-foundation-sdk), committed current, and every panel's
query is valid PromQL over metrics mlkeel exports (the live check: tests/integration/test_prometheus.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from mlkeel.components.push_metrics.logic import PUSHED_METRICS
from mlkeel.dashboard import DASHBOARD_FILE, queries, render
from tests.fixtures_prometheus import require_binary
from tests.unit.test_alert_rules import metric_names, serving_metric_names

REPO = Path(__file__).resolve().parent.parent.parent


def committed() -> dict:
    return json.loads((REPO / DASHBOARD_FILE).read_text(encoding="utf-8"))


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every panel of the committed dashboard (variables' queries left out)."""
    return [(title, expr) for title, expr in queries(committed()) if not title.startswith("variable ")]


def test_the_committed_dashboard_is_what_the_code_generates() -> None:
    assert (REPO / DASHBOARD_FILE).read_text(encoding="utf-8") == render(), "run: python -m mlkeel.dashboard"
    stale = subprocess.run(
        [sys.executable, "-m", "mlkeel.dashboard", "--check", str(REPO / DASHBOARD_FILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert stale.returncode == 0, stale.stderr


def test_every_query_reads_only_metrics_mlkeel_exports() -> None:
    exported = set(PUSHED_METRICS) | serving_metric_names()
    found = queries(committed())
    assert len(found) >= 14
    for title, expr in found:
        names = metric_names(expr)
        assert names, f"{title}: no mlkeel metric in {expr}"
        assert names <= exported, f"{title}: {sorted(names - exported)} not exported by mlkeel"


def test_the_panels_cover_model_health_and_serving() -> None:
    titles = {title for title, _ in dashboard_queries()}
    assert {"Drift p-value per feature", "PSI per feature", "Live metric vs holdout", "Quarantined rows"} <= titles
    assert {"Last monitoring run", "Requests by status", "Error share", "Latency", "Score distribution"} <= titles
    assert "Predicted classes" in titles
    document = committed()
    assert [panel["title"] for panel in document["panels"] if panel["type"] == "row"] == [
        "Model health (monitoring runs)",
        "Serving (mlkeel serve /metrics)",
    ]


def test_every_panel_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    rules = [
        {"record": f"dashboard:query_{index}", "expr": expr.replace("$model", ".*")}
        for index, (_, expr) in enumerate(dashboard_queries())
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}), encoding="utf-8")
    checked = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
