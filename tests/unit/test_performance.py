"""Performance: labels that arrive later are joined and counted, live metrics are the evaluate stage's, and a
model whose live metric fell is flagged while one that holds is not."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlkeel.components.batch_predict.logic import batch_predict
from mlkeel.components.evaluate.logic import evaluate
from mlkeel.components.gate.logic import decide
from mlkeel.components.performance.logic import (
    assess,
    join_ground_truth,
    live_metrics,
    performance,
    registered_metrics,
)
from mlkeel.components.register.logic import register
from mlkeel.errors import DataError, ParameterError, SchemaMismatchError
from mlkeel.prediction_log import build_prediction_log

METRICS = {"accuracy": 0.81, "precision": 0.66, "recall": 0.56, "f1": 0.60, "roc_auc": 0.84, "log_loss": 0.42}
BLESSED = decide(METRICS, thresholds={"roc_auc": 0.75}, no_comparison_reason="no model is registered yet")
MOMENT = datetime(2026, 3, 1, tzinfo=UTC)


def _log(ids: list[str], scores: list[float], model_name: str = "", model_version: str = "") -> pa.Table:
    return build_prediction_log(
        pd.DataFrame({"tenure": np.arange(len(ids), dtype=float)}),
        ids,
        model_name,
        model_version,
        "models:/m-0" if not model_name else f"models:/{model_name}/{model_version}",
        scores,
        0.5,
        "Yes",
        "No",
        MOMENT,
    )


def test_labels_arriving_later_are_joined_and_every_row_is_counted() -> None:
    log = _log([f"r{i}" for i in range(1, 9)], [0.1 * i for i in range(1, 9)])  # r1..r8
    labels = pa.table(
        {
            "order": ["r3", "r4", "r5", "r6", "r7", "r8", "r9", "r10", "r4", None, "r11"],
            "Churn": ["Yes", "No", "Yes", "No", "Yes", "No", "Yes", "No", "No", "Yes", None],
        }
    )

    joined = join_ground_truth(log, labels, label_column="Churn", positive_label="Yes", label_id_column="order")

    assert joined.counts == {
        "predictions": 8,
        "labels": 11,
        "matched": 6,  # r3..r8
        "unmatched_predictions": 2,  # r1, r2: their labels have not arrived yet
        "unmatched_labels": 2,  # r9, r10: predictions not in this log
        "null_labels": 2,  # no id; no label
        "duplicate_labels": 1,  # r4 twice, the same label
    }
    assert joined.frame["request_id"].tolist() == ["r3", "r4", "r5", "r6", "r7", "r8"]
    assert joined.frame["label"].tolist() == [1, 0, 1, 0, 1, 0]
    assert joined.frame["probability"].tolist() == pytest.approx([0.3, 0.4, 0.5, 0.6, 0.7, 0.8])


def test_ids_compare_as_text_and_contradicting_labels_are_refused() -> None:
    log = _log(["17", "18", "19"], [0.9, 0.2, 0.6])
    numeric_ids = pa.table({"request_id": pa.array([17, 18, None], pa.int64()), "Churn": ["Yes", "No", "Yes"]})
    joined = join_ground_truth(log, numeric_ids, label_column="Churn", positive_label="Yes")
    assert joined.frame["request_id"].tolist() == ["17", "18"]  # 17 (int) joins "17"; not "17.0"

    contradicting = pa.table({"request_id": ["17", "17", "18"], "Churn": ["Yes", "No", "No"]})
    with pytest.raises(DataError, match=r"id '17' has 2 different labels \['No', 'Yes'\]"):
        join_ground_truth(log, contradicting, label_column="Churn", positive_label="Yes")
    with pytest.raises(DataError, match=r"what the prediction log calls the positive class \('Yes'\): the metrics"):
        join_ground_truth(log, numeric_ids, label_column="Churn", positive_label="No")
    with pytest.raises(SchemaMismatchError, match=r"labels: missing column\(s\) customerID"):
        join_ground_truth(log, numeric_ids, label_column="Churn", positive_label="Yes", label_id_column="customerID")


def test_live_metrics_match_a_hand_computation() -> None:
    scores = [0.9, 0.8, 0.3, 0.6, 0.2, 0.1]
    log = _log(list("abcdef"), scores)
    labels = pa.table({"request_id": list("abcdef"), "Churn": ["Yes", "Yes", "Yes", "No", "No", "No"]})

    live = live_metrics(join_ground_truth(log, labels, label_column="Churn", positive_label="Yes"))

    # At 0.5: a, b caught, c missed (0.3), d a false alarm (0.6), e, f correct: TP 2, FN 1, FP 1, TN 2.
    assert live["accuracy"] == pytest.approx(4 / 6)
    assert live["precision"] == pytest.approx(2 / 3) and live["recall"] == pytest.approx(2 / 3)
    assert live["f1"] == pytest.approx(2 / 3)
    # Positive-negative pairs ranked right: 0.9 and 0.8 beat all three negatives, 0.3 beats 0.2 and 0.1.
    assert live["roc_auc"] == pytest.approx(8 / 9)
    expected_log_loss = -(math.log(0.9) + math.log(0.8) + math.log(0.3) + math.log(0.4) + math.log(0.8) + math.log(0.9))
    assert live["log_loss"] == pytest.approx(expected_log_loss / 6)


def test_assess_reads_the_metrics_direction() -> None:
    registered = {"roc_auc": 0.84, "log_loss": 0.42}
    fell = assess({"roc_auc": 0.78, "log_loss": 0.42}, registered, "roc_auc", 0.05)
    assert fell["degraded"] is True and fell["drop"] == pytest.approx(0.06)
    assert fell["reason"].startswith("Degraded: live roc_auc 0.7800 vs 0.8400 on the holdout, worse by 0.0600")
    improved = assess({"roc_auc": 0.90}, registered, "roc_auc", 0.05)
    assert improved["degraded"] is False and improved["drop"] == pytest.approx(-0.06)
    assert assess({"log_loss": 0.50}, registered, "log_loss", 0.05)["degraded"] is True  # a rise is worse
    assert assess({"log_loss": 0.30}, registered, "log_loss", 0.05)["degraded"] is False
    # A drop of exactly max_drop is tolerated, even when float subtraction says 0.1000000000000001.
    assert 0.8 - 0.7 > 0.1 and assess({"roc_auc": 0.7}, {"roc_auc": 0.8}, "roc_auc", 0.1)["degraded"] is False
    with pytest.raises(ParameterError, match=r"max_drop -0\.1 is negative"):
        assess({"roc_auc": 0.8}, registered, "roc_auc", -0.1)
    with pytest.raises(ParameterError, match="unknown metric 'auc'"):
        assess({"roc_auc": 0.8}, registered, "auc")
    with pytest.raises(DataError, match="registered metrics lack 'f1'"):
        assess({"f1": 0.6}, registered, "f1")


def _monitored_champion(telco_split, tracking_uri: str, train_telco, model_name: str, folder: Path) -> Path:
    """Train, evaluate (holdout_* on the run), register as champion, batch-predict the holdout by alias."""
    trained = train_telco(tracking_uri, "monitored")
    evaluate(str(trained.model_dir), str(telco_split[1]), "Churn", "Yes", tracking_uri, trained.run_id)
    register(trained.model_uri, BLESSED, model_name, tracking_uri)
    log_path = folder / "predictions.parquet"
    batch_predict(f"models:/{model_name}@champion", str(telco_split[1]), str(log_path), key_column="customerID")
    return log_path


def _labels(test_path: Path, path: Path, flip_share: float = 0.0) -> Path:
    labels = pq.read_table(test_path).select(["customerID", "Churn"]).to_pandas()
    if flip_share:
        rows = np.random.default_rng(7).choice(len(labels), int(flip_share * len(labels)), replace=False)
        labels.loc[rows, "Churn"] = labels.loc[rows, "Churn"].map({"Yes": "No", "No": "Yes"})
    pq.write_table(pa.Table.from_pandas(labels, preserve_index=False), path)
    return path


def test_the_true_holdout_labels_reproduce_the_registered_metrics_and_are_not_flagged(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, model_name: str, tmp_path: Path
) -> None:
    log_path = _monitored_champion(telco_split, mlflow_shared_uri, train_telco, model_name, tmp_path)

    result = performance(
        str(log_path),
        str(_labels(telco_split[1], tmp_path / "labels.parquet")),
        str(tmp_path / "result.json"),
        label_column="Churn",
        positive_label="Yes",
        label_id_column="customerID",
        tracking_uri=mlflow_shared_uri,
    )

    (version,) = result.data["versions"]
    registered = registered_metrics(model_name, "1", mlflow_shared_uri)
    assert version["registered"] == registered
    for name, value in registered.items():  # the same rows, the same model, the same metric function
        assert version["live"][name] == pytest.approx(value, abs=1e-9)
    assert result.degraded is False
    assert result.data["reason"].startswith(f"{model_name} version 1: Not degraded: live roc_auc")
    assert result.data["counts"]["matched"] == 1409 and result.data["counts"]["unmatched_predictions"] == 0
    written = json.loads((tmp_path / "result.json").read_text())
    assert written == result.to_dict() and set(written) == {"meta", "data"}
    assert written["meta"]["metric"] == "roc_auc" and written["data"]["degraded"] is False


def test_labels_flipped_for_a_third_of_the_rows_are_flagged_as_degraded(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, model_name: str, tmp_path: Path
) -> None:
    log_path = _monitored_champion(telco_split, mlflow_shared_uri, train_telco, model_name, tmp_path)

    result = performance(
        str(log_path),
        str(_labels(telco_split[1], tmp_path / "labels.parquet", flip_share=0.3)),
        str(tmp_path / "result.json"),
        label_column="Churn",
        positive_label="Yes",
        label_id_column="customerID",
        tracking_uri=mlflow_shared_uri,
    )

    (version,) = result.data["versions"]
    assessment = version["assessment"]
    assert result.degraded is True and assessment["degraded"] is True
    assert assessment["drop"] > 0.15  # far beyond the tolerated 0.05, not a borderline call
    assert result.data["reason"].startswith(f"{model_name} version 1: Degraded: live roc_auc")
    assert result.metrics["holdout_roc_auc"] == assessment["registered"]


def test_an_unregistered_model_is_measured_but_not_assessed(tmp_path: Path) -> None:
    log_path = tmp_path / "log.parquet"
    pq.write_table(_log(["0042", "0043", "0044", "0045"], [0.9, 0.2, 0.7, 0.4]), log_path)
    (tmp_path / "labels.csv").write_text("id,Churn\n0042,Yes\n0043,No\n0044,No\n0046,Yes\n")

    result = performance(
        str(log_path),
        str(tmp_path / "labels.csv"),
        str(tmp_path / "result.json"),
        label_column="Churn",
        positive_label="Yes",
        label_id_column="id",
    )

    assert result.degraded is False
    assert result.data["reason"] == (
        "Not assessed: an unregistered model: not a registered version: no holdout metrics to compare with."
    )
    assert result.data["counts"]["matched"] == 3  # "0042" stays "0042" in the CSV
    assert result.data["live"]["accuracy"] == pytest.approx(2 / 3)


def test_no_matched_row_is_an_error_that_names_the_id_columns(tmp_path: Path) -> None:
    pq.write_table(_log(["a", "b"], [0.9, 0.2]), tmp_path / "log.parquet")
    pq.write_table(pa.table({"request_id": ["x", "y"], "Churn": ["Yes", "No"]}), tmp_path / "labels.parquet")
    with pytest.raises(DataError, match="no prediction matched a label: 2 predictions by 'request_id', 2 labels"):
        performance(
            str(tmp_path / "log.parquet"),
            str(tmp_path / "labels.parquet"),
            str(tmp_path / "result.json"),
            label_column="Churn",
            positive_label="Yes",
        )
    assert not (tmp_path / "result.json").exists()


def test_the_command_line_prints_the_result_or_one_line_error(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, model_name: str, tmp_path: Path
) -> None:
    log_path = _monitored_champion(telco_split, mlflow_shared_uri, train_telco, model_name, tmp_path)
    labels = _labels(telco_split[1], tmp_path / "labels.parquet")
    command = [sys.executable, "-m", "mlkeel.components.performance", "--predictions", str(log_path)]
    command += ["--labels", str(labels), "--result-out", str(tmp_path / "r.json")]
    command += ["--label-column", "Churn", "--positive-label", "Yes", "--mlflow-uri", mlflow_shared_uri]
    environment = dict(os.environ)

    failed = subprocess.run(command, capture_output=True, text=True, env=environment, check=False)
    assert failed.returncode == 1
    assert failed.stderr.strip().splitlines()[-1].startswith("error: labels: missing column(s) request_id; columns:")
    assert "Traceback" not in failed.stderr

    done = subprocess.run(
        [*command, "--label-id-column", "customerID"], capture_output=True, text=True, env=environment, check=False
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["data"]["degraded"] is False


@pytest.mark.filterwarnings("ignore:You may be attemping to run a task:RuntimeWarning")
def test_batch_predict_then_performance_under_kfp_local(
    telco_split: tuple[Path, Path], mlflow_shared_uri: str, train_telco, model_name: str, tmp_path: Path
) -> None:
    # The two components chained as a monitoring pipeline would: only each function's source travels.
    from kfp import dsl, local

    from mlkeel.components.batch_predict.component import batch_predict as score
    from mlkeel.components.performance.component import performance as check

    _monitored_champion(telco_split, mlflow_shared_uri, train_telco, model_name, tmp_path)
    labels = _labels(telco_split[1], tmp_path / "labels.parquet", flip_share=0.3)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))

    @dsl.pipeline
    def monitor():  # no return annotation: this module's annotations are strings, which KFP rejects
        rows = dsl.importer(artifact_uri=str(telco_split[1]), artifact_class=dsl.Dataset)
        truth = dsl.importer(artifact_uri=str(labels), artifact_class=dsl.Dataset)
        scored = score(
            dataset=rows.output,
            model_uri=f"models:/{model_name}@champion",
            mlflow_tracking_uri=mlflow_shared_uri,
            key_column="customerID",
        )
        check(
            predictions=scored.outputs["predictions"],
            labels=truth.output,
            label_column="Churn",
            positive_label="Yes",
            label_id_column="customerID",
            mlflow_tracking_uri=mlflow_shared_uri,
        )

    monitor()
    (step,) = (tmp_path / "root").glob("monitor-*/performance")
    outputs = json.loads((step / "executor_output.json").read_text())
    assert outputs["parameterValues"]["Output"] is True
    result = json.loads((step / "result").read_text())
    assert result["data"]["degraded"] is True and result["data"]["counts"]["matched"] == 1409
    metadata = outputs["artifacts"]["metrics"]["artifacts"][0]["metadata"]
    assert metadata["matched"] == 1409 and metadata["holdout_roc_auc"] - metadata["roc_auc"] > 0.15
