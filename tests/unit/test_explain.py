"""Explain: permutation importance ranks what the model uses above noise; a real PNG, table and HTML page."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from mlkeel.components.explain.cli import main as explain_cli
from mlkeel.components.explain.logic import DEFAULT_MAX_ROWS, DEFAULT_N_REPEATS, explain, top_features
from mlkeel.constants import RUN_GOVERNANCE_ARTIFACT_DIR, ImportanceRunMetric

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NOISE = "noise"


def _with_noise(frame: pd.DataFrame, seed: int = 3) -> pd.DataFrame:
    """A column of pure noise: whatever the model makes of it, shuffling it cannot matter on new rows."""
    return frame.assign(**{NOISE: np.random.default_rng(seed).normal(size=len(frame))})


@pytest.fixture
def noisy_holdout(telco_split: tuple[Path, Path], tmp_path: Path) -> Path:
    path = tmp_path / "test.parquet"
    _with_noise(pq.read_table(telco_split[1]).to_pandas(), seed=4).to_parquet(path)
    return path


def test_an_informative_column_ranks_above_noise_and_the_plot_is_a_png(
    mlflow_shared_uri: str, train_telco, noisy_holdout: Path, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    model = train_telco(mlflow_shared_uri, "with-noise", rewrite=_with_noise)
    out = {name: tmp_path / name for name in ("importance.json", "plot.png", "report.html")}

    document = explain(
        str(model.model_dir),
        str(noisy_holdout),
        "Churn",
        "Yes",
        str(out["importance.json"]),
        str(out["plot.png"]),
        str(out["report.html"]),
        tracking_uri=mlflow_shared_uri,
        mlflow_run_id=model.run_id,
    )

    assert json.loads(out["importance.json"].read_text()) == document
    assert document["method"] == "permutation" and document["metric"] == "roc_auc"
    assert document["n_repeats"] == DEFAULT_N_REPEATS and document["rows"] == 1409
    ranking = [row["feature"] for row in document["features"]]
    assert sorted(ranking) == sorted([*model.result.feature_columns])  # the raw input columns, each once
    means = [row["importance_mean"] for row in document["features"]]
    assert means == sorted(means, reverse=True)
    importance = {row["feature"]: row["importance_mean"] for row in document["features"]}
    # tenure and Contract drive churn: shuffling either costs the model several points of ROC AUC.
    assert importance["tenure"] > 0.02 and importance["Contract"] > 0.01
    assert ranking.index("tenure") < ranking.index(NOISE) and ranking.index("Contract") < ranking.index(NOISE)
    assert abs(importance[NOISE]) < 0.005
    assert "tenure" in top_features(document)

    png = out["plot.png"].read_bytes()
    assert png.startswith(PNG_SIGNATURE) and png[12:16] == b"IHDR"
    width, height = struct.unpack(">II", png[16:24])
    assert width >= 600 and height >= 300
    page = out["report.html"].read_text()
    assert "data:image/png;base64," in page and page.count("<tr><td>") == len(ranking)

    client = MlflowClient(mlflow_shared_uri)
    logged = {item.path for item in client.list_artifacts(model.run_id, RUN_GOVERNANCE_ARTIFACT_DIR)}
    assert {
        f"{RUN_GOVERNANCE_ARTIFACT_DIR}/feature_importance.json",
        f"{RUN_GOVERNANCE_ARTIFACT_DIR}/feature_importance.png",
    } <= logged
    metrics = client.get_run(model.run_id).data.metrics
    assert metrics[f"{ImportanceRunMetric.PREFIX}tenure"] == pytest.approx(importance["tenure"])


def test_rows_are_capped_by_a_seeded_sample_and_the_result_repeats(
    mlflow_shared_uri: str, train_telco, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    model = train_telco(mlflow_shared_uri, "strong")
    runs = [
        explain(
            str(model.model_dir),
            str(telco_split[1]),
            "Churn",
            "Yes",
            str(tmp_path / f"{index}.json"),
            str(tmp_path / f"{index}.png"),
            max_rows=400,
            n_repeats=2,
            metric="log_loss",
        )
        for index in range(2)
    ]
    assert runs[0]["rows"] == 400 and runs[0]["n_repeats"] == 2 and runs[0]["metric"] == "log_loss"
    assert runs[0] == runs[1]  # same seed, same sample, same shuffles
    assert runs[0]["features"][0]["importance_mean"] > 0  # shuffling the top column worsens the log loss


def test_cli_reports_a_bad_metric_in_one_line(
    mlflow_shared_uri: str, train_telco, telco_split: tuple[Path, Path], tmp_path: Path
) -> None:
    model = train_telco(mlflow_shared_uri, "strong")
    result = CliRunner().invoke(
        explain_cli,
        [
            "--model", str(model.model_dir), "--test-data", str(telco_split[1]), "--target-column", "Churn",
            "--positive-label", "Yes", "--output", str(tmp_path / "i.json"), "--plot", str(tmp_path / "p.png"),
            "--metric", "auc",
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: unknown metric 'auc': expected one of roc_auc, accuracy, precision, recall, f1, log_loss, "
        "macro_f1, weighted_f1, roc_auc_ovr, rmse, mae, r2, mape"
    )
    assert not (tmp_path / "i.json").exists()


def test_component_defaults_match_the_logic() -> None:
    from mlkeel.components.explain.component import explain as component

    inputs = component.component_spec.inputs
    assert inputs["n_repeats"].default == DEFAULT_N_REPEATS
    assert inputs["max_rows"].default == DEFAULT_MAX_ROWS


def test_switched_off_it_writes_not_computed_outputs_without_reading_the_model(tmp_path: Path) -> None:
    out = {name: tmp_path / name for name in ("importance.json", "plot.png", "report.html")}
    missing = str(tmp_path / "no-such-model")  # never opened: explanation is off

    document = explain(missing, missing, "Churn", "Yes", *(str(path) for path in out.values()), enabled=False)

    assert json.loads(out["importance.json"].read_text()) == document
    assert document["method"] == "none" and document["features"] == [] and top_features(document) == []
    assert "switched off" in document["reason"] and "switched off" in out["report.html"].read_text()
    assert out["plot.png"].read_bytes().startswith(PNG_SIGNATURE)
