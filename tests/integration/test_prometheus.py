"""A real Prometheus scrapes a real serving process and a real Pushgateway, with mlkeel's alert rules loaded.

(The drift alert firing on a drifted monitoring run and staying silent on a stable one is in
tests/e2e/test_monitoring_pipeline.py, on the pipeline's own runs with ``--pushgateway``.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mlkeel.components.serve.logic import http_call, json_records, load_serving_model
from tests.fixtures_prometheus import MonitoringStack
from tests.fixtures_serve import holdout_rows, serve_process
from tests.unit.test_alert_rules import alerts, metric_names
from tests.unit.test_dashboard import dashboard_queries

pytestmark = pytest.mark.integration

DATA = Path(__file__).resolve().parent.parent / "data" / "monitoring"


def counter(stack: MonitoringStack, status: str) -> float:
    """``mlkeel_serve_requests_total`` of /predict with ``status``, as Prometheus read it (0 when absent)."""
    result = stack.query(
        f'sum(mlkeel_serve_requests_total{{job="mlkeel-serve",endpoint="/predict",status="{status}"}})'
    )
    return float(result[0]["value"][1]) if result else 0.0


def test_prometheus_reads_the_servers_4xx_counters_and_the_pushed_figures(
    champion: str,
    mlflow_shared_uri: str,
    telco_split: tuple[Path, Path],
    tmp_path: Path,
    monitoring_stack: MonitoringStack,
) -> None:
    with serve_process(champion, mlflow_shared_uri, tmp_path) as server:
        monitoring_stack.add_serve_target(server.base)
        monitoring_stack.wait_for("the serving target up", lambda: monitoring_stack.scraped("mlkeel-serve"))
        features = load_serving_model(champion, mlflow_shared_uri).feature_names
        good = json_records(holdout_rows(telco_split[1], 2).select(features))
        answers = [
            http_call(f"{server.base}/predict", body)[0]
            for body in (
                json.dumps({"records": good}).encode(),
                b"{not json",
                json.dumps({"records": [{**good[0], "tenure": "twelve"}]}).encode(),
                json.dumps({"records": []}).encode(),
            )
        ]
        assert answers == [200, 400, 422, 422]
        monitoring_stack.wait_for("the 4xx counters in Prometheus", lambda: counter(monitoring_stack, "422") == 2)
        assert counter(monitoring_stack, "400") == 1.0
        assert counter(monitoring_stack, "200") == 1.0
        scored = monitoring_stack.query('sum(mlkeel_serve_predictions_total{job="mlkeel-serve"})')
        assert float(scored[0]["value"][1]) == 2.0
        # The 5xx-share alert reads the same series and stays silent: no request failed on the server's side.
        assert monitoring_stack.firing("MlkeelServingErrors") == []

        # A monitoring run's figures, pushed by the stage's command line, are in Prometheus with their labels.
        command = [sys.executable, "-m", "mlkeel.components.push_metrics",
                   "--drift-result", str(DATA / "flights_drifted_drift.json"),
                   "--performance-result", str(DATA / "flights_drifted_performance.json"),
                   "--champion-model-uri", "models:/flights/1", "--model-name", "flights",
                   "--rows-valid", "28262", "--rows-quarantined", "0", "--retraining",
                   "--pushgateway", monitoring_stack.pushgateway]  # fmt: skip
        pushed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert pushed.returncode == 0 and '"pushed": true' in pushed.stdout, pushed.stdout + pushed.stderr
        # 6 of the 8 features drifted in that result: the share Prometheus reads is 0.75. Waiting for that value
        # (not for any series): one CI run read a 0 first, from a series this test cannot have pushed.
        share_query = 'mlkeel_monitoring_drifted_feature_share{model_name="flights"}'
        share = monitoring_stack.wait_for(
            "the pushed drifted-feature share 0.75",
            lambda: [item for item in monitoring_stack.query(share_query) if float(item["value"][1]) == 0.75],
        )
        assert share[0]["metric"]["model_version"] == "1" and share[0]["metric"]["job"] == "mlkeel-monitoring"

        # The dashboard and the rules read only metrics these live processes export, and every panel's query
        # answers with data (the model variable set to all models).
        exported = monitoring_stack.metric_names()
        for title, expr in dashboard_queries():
            assert metric_names(expr) <= exported, f"{title}: {sorted(metric_names(expr) - exported)} not exported"
            query = expr.replace("$model", ".*")
            monitoring_stack.wait_for(f"{title}: data for {query}", lambda query=query: monitoring_stack.query(query))
        for rule in alerts():
            assert metric_names(rule["expr"]) <= exported, rule["alert"]
