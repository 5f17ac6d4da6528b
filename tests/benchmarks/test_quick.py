"""Every benchmark script runs in its quick mode and writes the results it documents, so none can rot.

Quick mode: small data, one repeat. The peers' venvs are pointed at an empty folder, so pandera, Great
Expectations and evidently are skipped with the reason (CI never installs them); mlkeel, the pyarrow floor
and the naive scipy pass always run. The figures of a quick run mean nothing; the fields and the verdicts
that do not depend on speed (same rows quarantined, exactly the shifted columns flagged) are checked.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # the scripts import their siblings by name, as when run from the shell

import common  # noqa: E402
import peers  # noqa: E402


@pytest.fixture
def results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(common, "DATA", tmp_path / "data")
    monkeypatch.setattr(peers, "PEERS_DIR", tmp_path / "no-peers")
    return tmp_path / "results"


def _written(results: Path, name: str, report: dict[str, Any]) -> dict[str, Any]:
    written = json.loads((results / f"{name}.json").read_text())
    assert written == json.loads(json.dumps(report, sort_keys=True))
    machine = written["machine"]
    assert (
        machine["cpus"] >= 1 and machine["python"] and machine["date_utc"] and len(machine["load_average_1_5_15"]) == 3
    )
    for tool in written["tools"].values():
        assert tool["median_seconds"] > 0 and tool["median_peak_rss_mib"] > 0 and len(tool["seconds"]) == 1
    for target in written["targets"]:
        assert set(target) == {"target", "measured", "limit", "unit", "met"}
    markdown = (results / f"{name}.md").read_text()
    assert markdown.startswith("# ") and "Load average" in markdown and "## Targets (issue 6)" in markdown
    return written


def test_validation_quick(results: Path) -> None:
    import validation

    report = _written(results, "validation", validation.main(["--quick", "--results", str(results)]))
    tools = report["tools"]
    assert set(tools) == {"pyarrow_floor", "mlkeel", "mlkeel_stage", "mlkeel_streaming"}
    quarantined = {tools[name]["rows_failed"] for name in ("mlkeel", "mlkeel_stage", "mlkeel_streaming")}
    assert len(quarantined) == 1 and 0 < quarantined.pop() < report["rows"] * 0.05
    assert set(report["skipped"]) == {"pandera", "great_expectations"}
    assert all("benchmarks/peers.py install" in reason for reason in report["skipped"].values())
    assert report["ratios"]["mlkeel_over_floor"] == pytest.approx(
        tools["mlkeel"]["median_seconds"] / tools["pyarrow_floor"]["median_seconds"]
    )


def test_drift_quick(results: Path) -> None:
    import drift

    report = _written(results, "drift", drift.main(["--quick", "--results", str(results)]))
    assert report["tools"]["mlkeel"]["flagged"] == report["tools"]["mlkeel_streaming"]["flagged"] == drift.SHIFTED
    assert report["flags_exactly_the_shifted_columns"]["mlkeel"] is True
    assert "evidently" in report["skipped"]


def test_streaming_quick(results: Path) -> None:
    import streaming

    report = _written(results, "streaming", streaming.main(["--quick", "--results", str(results)]))
    assert report["tools"]["drift"]["flagged"] == ["num_0", "num_2"]
    assert report["tools"]["validate"]["rows_failed"] > 0
    assert report["targets"][0]["met"]  # 50,000 rows stay far below 1 GiB
    only_drift = streaming.main(["--quick", "--stages", "drift", "--results", str(results / "drift-only")])
    assert set(only_drift["tools"]) == {"drift"} and only_drift["tools"]["drift"]["flagged"] == ["num_0", "num_2"]
    assert only_drift["targets"][0]["target"] == "50,000 rows: peak RSS of drift"


def test_scoring_and_pipeline_quick(results: Path) -> None:
    import pipeline
    import scoring

    report = _written(results, "scoring", scoring.main(["--quick", "--results", str(results)]))
    assert set(report["rows_per_second"]) == {"raw", "raw_io", "mlkeel"}
    assert all(tool["cpu_seconds"] > 0 for tool in report["tools"].values())
    assert all(tool["rows"] == report["rows"] for tool in report["tools"].values())
    report = _written(results, "pipeline", pipeline.main(["--quick", "--results", str(results)]))
    assert set(report["tools"]) == {"single_process"} and "subprocess" in report["skipped"]


def test_pipeline_definition_quick(results: Path) -> None:
    import pipeline_definition

    from mlkeel.pipelines import task_settings

    shipped = task_settings._setters_name_themselves_cheaply
    report = pipeline_definition.main(["--quick", "--results", str(results)])
    report = _written(results, "pipeline_definition", report)
    assert set(report["tools"]) == {"shipped", "kfp_inspect_stack"} and report["ratio_kfp_inspect_stack_over_shipped"]
    assert task_settings._setters_name_themselves_cheaply is shipped  # the benchmark put it back
    assert "| shipped |" in (results / "pipeline_definition.md").read_text()


def test_training_quick(results: Path) -> None:
    import training

    report = _written(results, "training", training.main(["--quick", "--results", str(results)]))
    tools = report["tools"]
    assert set(tools) == {"sklearn", "mlkeel_fit", "mlkeel_stage"}
    # Same rows, same estimator settings: the holdout scores agree closely; the id is no feature anywhere (the
    # quick rows are all January: mlkeel also leaves the constant month out).
    assert abs(tools["sklearn"]["roc_auc"] - tools["mlkeel_stage"]["roc_auc"]) < 0.02
    assert tools["mlkeel_fit"]["encoded_width"] == tools["mlkeel_stage"]["encoded_width"] == 8
    text = {(row["way"], row["estimator"]): row["roc_auc"] for row in report["text"]}
    assert (
        text[("mlkeel TF-IDF (300 terms)", "logistic_regression")]
        > 0.7
        > 0.5
        == text[("left out (no feature: the prior)", "logistic_regression")]
    )
