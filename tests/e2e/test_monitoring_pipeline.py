"""The monitoring pipeline end to end under kfp.local on real flights data: it retrains only when it should.

Both runs push their figures to a real Pushgateway that a real Prometheus scrapes with mlkeel's alert rules
(tests/fixtures_prometheus.py): the drift alert fires for the drifted batch and stays silent for the stable one.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from mlkeel.constants import CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS, LineageTag
from mlkeel.data.flights import write_months
from tests.e2e.registry import registry
from tests.fixtures_prometheus import MonitoringStack

pytestmark = pytest.mark.pipeline


def monitor(workdir: Path, reference: Path, current: Path, pushgateway: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mlkeel.cli",
            "run",
            "monitoring",
            "--local",
            "--workdir",
            str(workdir),
            "--model-name",
            "flights",
            "--target",
            "late",
            "--key-column",
            "flight_id",
            "--reference",
            str(reference),
            "--current",
            str(current),
            "--pushgateway",
            pushgateway,
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def versions(workdir: Path) -> list[str]:
    client = registry(workdir)
    return sorted(str(version.version) for version in client.search_model_versions("name='flights'"))


def pushed(stack: MonitoringStack, name: str) -> dict[str, float]:
    """``name``'s values for the flights model in Prometheus (scraped from the Pushgateway), by feature/metric."""
    series = stack.wait_for(f"{name} of flights", lambda: stack.query(f'{name}{{model_name="flights"}}'))
    return {
        entry["metric"].get("feature") or entry["metric"].get("metric") or "": float(entry["value"][1])
        for entry in series
    }


def test_real_drift_retrains_and_the_new_model_takes_over(tmp_path: Path, monitoring_stack: MonitoringStack) -> None:
    write_months([1], tmp_path / "january.parquet")
    write_months([7], tmp_path / "july.parquet")
    completed = monitor(
        tmp_path / "work", tmp_path / "january.parquet", tmp_path / "july.parquet", monitoring_stack.pushgateway
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    out = completed.stdout
    # One line per task with what it found, the retraining branch's tasks included.
    finished = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ") and " done " in line}
    assert finished["champion"].endswith("s  models:/flights/1")
    assert "s  DRIFT in " in finished["drift"] and "dest" in finished["drift"]
    assert "s  Degraded: live roc_auc " in finished["performance"]
    assert finished["register"].endswith("s  version 2, alias champion")  # the last register line: the retraining's
    assert "registry         : version 1 of 'flights', alias 'champion'" in out  # the first champion, on January
    assert "champion         : models:/flights/1" in out
    assert "drift            : DRIFT (drifted features: " in out and "dest" in out.split("drift            :")[1]
    assert "retraining       : ran; the retrained model is the new champion, version 2" in out
    assert "metrics push     : pushed to the Pushgateway" in out
    client = registry(tmp_path / "work")
    assert str(client.get_model_version_by_alias("flights", CHAMPION_ALIAS).version) == "2"
    assert str(client.get_model_version_by_alias("flights", PREVIOUS_CHAMPION_ALIAS).version) == "1"
    # The new champion was trained on the July batch: its lineage says so.
    first, second = (client.get_model_version("flights", version) for version in ("1", "2"))
    assert first.tags[LineageTag.DATA_FINGERPRINT] != second.tags[LineageTag.DATA_FINGERPRINT]
    # The run's figures reached Prometheus through the Pushgateway, labelled with the champion it monitored,
    # and the alert rules page someone: drift, and the live ROC AUC drop beyond the tolerated 0.05.
    assert pushed(monitoring_stack, "mlkeel_monitoring_feature_drifted")["dest"] == 1.0
    assert pushed(monitoring_stack, "mlkeel_monitoring_retraining_triggered") == {"": 1.0}
    assert pushed(monitoring_stack, "mlkeel_monitoring_metric_drop")["roc_auc"] > 0.05
    drift_alert = monitoring_stack.wait_for(
        "MlkeelDriftDetected for flights", lambda: monitoring_stack.firing("MlkeelDriftDetected", model_name="flights")
    )
    assert drift_alert[0]["labels"]["model_version"] == "1"
    assert "mlkeel run monitoring" in drift_alert[0]["annotations"]["runbook"]
    monitoring_stack.wait_for(
        "MlkeelLiveMetricDropped for flights",
        lambda: monitoring_stack.firing("MlkeelLiveMetricDropped", model_name="flights", metric="roc_auc"),
    )


def test_same_distribution_does_not_retrain(tmp_path: Path, monitoring_stack: MonitoringStack) -> None:
    write_months([3], tmp_path / "march.parquet")
    march = pq.read_table(tmp_path / "march.parquet")
    order = np.random.default_rng(11).permutation(march.num_rows)
    half = march.num_rows // 2
    pq.write_table(march.take(np.sort(order[:half])), tmp_path / "first.parquet")
    pq.write_table(march.take(np.sort(order[half:])), tmp_path / "second.parquet")
    completed = monitor(
        tmp_path / "work", tmp_path / "first.parquet", tmp_path / "second.parquet", monitoring_stack.pushgateway
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    assert "drift            : no drift (drifted features: none)" in completed.stdout
    assert "Not degraded" in completed.stdout or "not degraded" in completed.stdout
    assert "retraining       : not needed" in completed.stdout
    assert "metrics push     : pushed to the Pushgateway" in completed.stdout
    assert versions(tmp_path / "work") == ["1"]
    # Pushed, scraped and evaluated (rules every second, for: 0s in the test's copy): no alert about the model.
    assert pushed(monitoring_stack, "mlkeel_monitoring_drift_detected") == {"": 0.0}
    assert pushed(monitoring_stack, "mlkeel_monitoring_retraining_triggered") == {"": 0.0}
    time.sleep(3)  # three rule evaluations after the figures were scraped
    firing = [alert["labels"] for alert in monitoring_stack.api("alerts")["alerts"]]
    assert firing == [], firing
