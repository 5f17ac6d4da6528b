"""The monitoring path for multiclass and regression models, on scikit-learn's real wine and diabetes data:
batch predict writes each task's prediction log (``mlkeel.prediction_log``), performance measures the task's own
metric against the registered holdout one in its direction, and drift reports the predictions' drift."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_diabetes, load_wine

from mlkeel.components.batch_predict import logic as batch_logic
from mlkeel.components.batch_predict.logic import batch_predict
from mlkeel.components.drift.logic import drift, drift_metadata, drift_metrics
from mlkeel.components.drift.predictions import prediction_drift
from mlkeel.components.evaluate.logic import evaluate
from mlkeel.components.performance.logic import performance
from mlkeel.components.split.logic import split
from mlkeel.components.train.logic import train
from mlkeel.errors import DataError, ParameterError, SchemaMismatchError
from mlkeel.modeling import load_sklearn_model, model_feature_columns
from mlkeel.prediction_log import (
    TaskOutputs,
    build_prediction_log,
    log_task,
    read_prediction_logs,
    score_outputs,
)

CULTIVARS = {0: "barolo", 1: "grignolino", 2: "barbera"}


@dataclass(frozen=True)
class TaskModel:
    """A model trained (and evaluated: holdout metrics on its run) by the stages on 70% of a real dataset."""

    model_dir: Path
    model_uri: str
    train_path: Path
    test_path: Path
    holdout: dict[str, float]


def _train(frame: pd.DataFrame, folder: Path, uri: str, estimator: str) -> TaskModel:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "all.parquet")
    train_path, test_path = folder / "train.parquet", folder / "test.parquet"
    split(str(folder / "all.parquet"), str(train_path), str(test_path), "target", "", 0.3, seed=7)
    result = train(str(train_path), str(folder / "model"), "target", "", estimator=estimator, tracking_uri=uri, seed=2)
    evaluation = evaluate(result.mlflow_model_uri, str(test_path), "target", "", uri, result.mlflow_run_id)
    return TaskModel(folder / "model", result.mlflow_model_uri, train_path, test_path, evaluation.metrics)


_TRAINED: dict[tuple[str, str], TaskModel] = {}


@pytest.fixture
def wine_model(mlflow_shared_uri: str, tmp_path_factory: pytest.TempPathFactory) -> TaskModel:
    """A multiclass model of the three wine cultivars (labels as text)."""
    if (mlflow_shared_uri, "wine") not in _TRAINED:
        frame = load_wine(as_frame=True).frame
        frame["target"] = frame["target"].map(CULTIVARS)
        _TRAINED[mlflow_shared_uri, "wine"] = _train(
            frame, tmp_path_factory.mktemp("wine"), mlflow_shared_uri, "logistic_regression"
        )
    return _TRAINED[mlflow_shared_uri, "wine"]


@pytest.fixture
def diabetes_model(mlflow_shared_uri: str, tmp_path_factory: pytest.TempPathFactory) -> TaskModel:
    """A regression model of diabetes progression."""
    if (mlflow_shared_uri, "diabetes") not in _TRAINED:
        frame = load_diabetes(as_frame=True).frame
        folder = tmp_path_factory.mktemp("diabetes")
        _TRAINED[mlflow_shared_uri, "diabetes"] = _train(frame, folder, mlflow_shared_uri, "ridge")
    return _TRAINED[mlflow_shared_uri, "diabetes"]


def test_a_multiclass_log_holds_every_class_probability_and_the_predicted_class(
    wine_model: TaskModel, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batch_logic, "CHUNK_ROWS", 20)  # three chunks: chunking must not change a row
    result = batch_predict(str(wine_model.model_dir), str(wine_model.test_path), str(tmp_path / "log.parquet"))

    model = load_sklearn_model(str(wine_model.model_dir))
    rows = pq.read_table(wine_model.test_path).to_pandas()
    expected = model.predict_proba(rows[model_feature_columns(model)])
    log = read_prediction_logs(tmp_path / "log.parquet")
    assert log.num_rows == result.rows_scored == len(rows) == 54
    assert log_task(log) == "multiclass" and set(log.column("task").to_pylist()) == {"multiclass"}
    # Every class of the model, in a map per row, equal to the model's own probabilities.
    probabilities = [dict(entry) for entry in log.column("class_probabilities").to_pylist()]
    assert all(list(entry) == ["barbera", "barolo", "grignolino"] for entry in probabilities)
    assert np.allclose([[entry[name] for name in model.classes_] for entry in probabilities], expected, atol=1e-12)
    # The predicted class is the model's own prediction, as text; its probability the highest one.
    assert log.column("prediction_label").to_pylist() == [str(value) for value in model.predict(rows)]
    assert np.allclose(log.column("probability").to_numpy(), expected.max(axis=1))
    assert log.column("prediction").null_count == log.column("threshold").null_count == 54
    # The model tells the cultivars apart: what a user checks first.
    assert np.mean(np.array(log.column("prediction_label").to_pylist()) == rows["target"].to_numpy()) > 0.9
    assert result.task == "multiclass" and result.positive_rate is None and result.threshold is None
    assert sum(result.class_shares.values()) == pytest.approx(1.0)
    labels = pd.Series(log.column("prediction_label").to_pylist())
    assert result.class_shares["barolo"] == pytest.approx(float((labels == "barolo").mean()))
    assert result.to_dict()["class_shares"] == result.class_shares == result.metadata["class_shares"]
    assert "positive_rate" not in result.metadata and result.metadata["task"] == "multiclass"


def test_a_regression_log_holds_the_predicted_value(diabetes_model: TaskModel, tmp_path: Path) -> None:
    result = batch_predict(str(diabetes_model.model_dir), str(diabetes_model.test_path), str(tmp_path / "log.parquet"))

    model = load_sklearn_model(str(diabetes_model.model_dir))
    rows = pq.read_table(diabetes_model.test_path).to_pandas()
    log = read_prediction_logs(tmp_path / "log.parquet")
    assert log_task(log) == "regression" and log.num_rows == len(rows) == 133
    values = log.column("predicted_value").to_numpy()
    assert np.allclose(values, model.predict(rows[model_feature_columns(model)]), rtol=0, atol=1e-9)
    for column in ("prediction", "prediction_label", "probability", "threshold"):
        assert log.column(column).null_count == 133, column
    assert "class_probabilities" not in log.column_names
    # The values are disease progressions (25-346 in the data), not probabilities.
    assert 40 < values.min() < values.max() < 350 and values.max() - values.min() > 100
    assert result.mean_predicted_value == pytest.approx(float(values.mean()))
    assert result.to_dict()["task"] == "regression" and result.positive_rate is None


def test_a_registered_multiclass_version_is_named_and_scored_by_its_task(
    wine_model: TaskModel, mlflow_shared_uri: str, model_name: str, tmp_path: Path
) -> None:
    import mlflow
    from mlflow.tracking import MlflowClient

    version = mlflow.register_model(wine_model.model_uri, model_name).version
    MlflowClient(mlflow_shared_uri).set_registered_model_alias(model_name, "champion", version)
    resolved = batch_logic.resolve_model(f"models:/{model_name}@champion", mlflow_shared_uri)
    assert (resolved.task, resolved.uri) == ("multiclass", f"models:/{model_name}/{version}")

    result = batch_predict(
        f"models:/{model_name}@champion", str(wine_model.test_path), str(tmp_path / "log.parquet"), mlflow_shared_uri
    )
    log = read_prediction_logs(tmp_path / "log.parquet")
    assert result.model_version == str(version) and set(log.column("model_version").to_pylist()) == {str(version)}
    assert log_task(log) == "multiclass"


def test_a_threshold_for_a_model_that_has_none_is_refused(wine_model: TaskModel, tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match=r"threshold=0.3: .* is a multiclass model; a decision threshold is"):
        batch_predict(str(wine_model.model_dir), str(wine_model.test_path), str(tmp_path / "x.parquet"), threshold=0.3)
    assert not (tmp_path / "x.parquet").exists()


def test_one_scoring_function_for_every_task(wine_model: TaskModel, diabetes_model: TaskModel) -> None:
    wine = load_sklearn_model(str(wine_model.model_dir))
    rows = pq.read_table(wine_model.test_path).to_pandas()[model_feature_columns(wine)]
    outputs = score_outputs(wine, rows)
    assert (outputs.task, outputs.classes, outputs.values.shape) == (
        "multiclass",
        ("barbera", "barolo", "grignolino"),
        (54, 3),
    )
    assert list(outputs.predicted_classes()) == list(wine.predict(rows))
    assert len(outputs.slice(50, 10)) == 4
    diabetes = load_sklearn_model(str(diabetes_model.model_dir))
    frame = pq.read_table(diabetes_model.test_path).to_pandas()[model_feature_columns(diabetes)]
    assert score_outputs(diabetes, frame).values.shape == (133,)
    with pytest.raises(ParameterError, match="task 'ranking' is not one of binary, multiclass, regression"):
        score_outputs(diabetes, frame, "ranking")


def _rows(outputs: TaskOutputs, rows: int = 2) -> pa.Table:
    frame = pd.DataFrame({"x": np.arange(rows, dtype=float)})
    return build_prediction_log(frame, [f"r{i}" for i in range(rows)], "m", "1", "models:/m/1", outputs)


def test_bad_outputs_are_named_with_their_row(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"class probability 1.5 in row 1 is not a probability"):
        _rows(TaskOutputs("multiclass", np.array([[0.5, 0.5], [1.5, 0.0]]), ("a", "b")))
    with pytest.raises(DataError, match=r"3 class probabilities per row but 2 classes \['a', 'b'\]"):
        _rows(TaskOutputs("multiclass", np.full((2, 3), 1 / 3), ("a", "b")))
    with pytest.raises(DataError, match=r"predicted value nan in row 0 is not a finite number"):
        _rows(TaskOutputs("regression", np.array([np.nan, 1.0])))
    # Logs of models of different tasks are not one log: monitoring would compare apples and pears.
    pq.write_table(_rows(TaskOutputs("regression", np.array([3.0, 4.0]))), tmp_path / "a.parquet")
    pq.write_table(
        _rows(TaskOutputs("multiclass", np.array([[0.2, 0.8], [0.6, 0.4]]), ("a", "b"))), tmp_path / "b.parquet"
    )
    both = read_prediction_logs(tmp_path)
    with pytest.raises(SchemaMismatchError, match=r"rows of models of different tasks \(multiclass, regression\)"):
        log_task(both)
    assert both.column("prediction_label").to_pylist() == [None, None, "b", "a"]


# --- performance -------------------------------------------------------------------------------------------


def _registered(model: TaskModel, uri: str, name: str, rows: Path, folder: Path) -> tuple[Path, pd.DataFrame]:
    """Register ``model``, score ``rows`` with the registered version; the log and the rows' true targets by id."""
    import mlflow

    version = mlflow.register_model(model.model_uri, name).version
    log_path = folder / "log.parquet"
    batch_predict(f"models:/{name}/{version}", str(rows), str(log_path), uri, batch_id="b")
    truth = pq.read_table(rows).to_pandas()[["target"]]
    truth.insert(0, "request_id", [f"b-{row}" for row in range(len(truth))])
    return log_path, truth


def _perform(log_path: Path, truth: pd.DataFrame, folder: Path, uri: str, **options):
    labels = folder / f"labels-{len(list(folder.iterdir()))}.parquet"
    pq.write_table(pa.Table.from_pandas(truth, preserve_index=False), labels)
    return performance(
        str(log_path), str(labels), str(folder / "result.json"), label_column="target", tracking_uri=uri, **options
    )


def test_multiclass_performance_is_macro_f1_from_the_logged_probabilities_and_flags_swapped_labels(
    wine_model: TaskModel, mlflow_shared_uri: str, model_name: str, tmp_path: Path
) -> None:
    from sklearn.metrics import log_loss

    log_path, truth = _registered(wine_model, mlflow_shared_uri, model_name, wine_model.test_path, tmp_path)

    held = _perform(log_path, truth, tmp_path, mlflow_shared_uri)
    # The same rows as the evaluate stage's holdout: the same metrics, to the last digit, through the log.
    (entry,) = held.data["versions"]
    assert held.meta["metric"] == "macro_f1" and held.meta["task"] == "multiclass" and not held.degraded
    assert entry["live"]["macro_f1"] == pytest.approx(wine_model.holdout["macro_f1"], abs=1e-12)
    assert entry["assessment"]["drop"] == pytest.approx(0.0, abs=1e-12)
    model = load_sklearn_model(str(wine_model.model_dir))
    rows = pq.read_table(wine_model.test_path).to_pandas()
    expected = log_loss(rows["target"], model.predict_proba(rows[model_feature_columns(model)]), labels=model.classes_)
    assert held.data["live"]["log_loss"] == pytest.approx(expected, rel=1e-9)
    assert set(held.data["live"]) == {"accuracy", "macro_f1", "weighted_f1", "log_loss", "roc_auc_ovr"}

    # Two cultivars' labels swapped in the ground truth: the model now looks wrong on them.
    swapped = truth.assign(target=truth["target"].replace({"barolo": "barbera", "barbera": "barolo"}))
    worse = _perform(log_path, swapped, tmp_path, mlflow_shared_uri, max_drop=0.1)
    assert worse.degraded and worse.data["live"]["macro_f1"] < 0.5
    assert "live macro_f1" in worse.data["reason"] and "(higher is better)" in worse.data["reason"]
    # A cultivar the model never saw arrives (five rows): it cannot predict it, so those rows count as errors.
    novel = truth.copy()
    novel.loc[:4, "target"] = "nebbiolo"
    newcomer = _perform(log_path, novel, tmp_path, mlflow_shared_uri)
    assert newcomer.data["live"]["macro_f1"] < held.data["live"]["macro_f1"] - 0.2  # a fourth class with F1 0
    assert newcomer.data["live"]["accuracy"] <= held.data["live"]["accuracy"] - 5 / 54 + 1e-12
    with pytest.raises(ParameterError, match=r"metric 'rmse' is not a multiclass metric: expected one of accuracy"):
        _perform(log_path, truth, tmp_path, mlflow_shared_uri, metric="rmse")


def test_regression_performance_is_rmse_and_a_rise_is_a_worsening(
    diabetes_model: TaskModel, mlflow_shared_uri: str, model_name: str, tmp_path: Path
) -> None:
    log_path, truth = _registered(diabetes_model, mlflow_shared_uri, model_name, diabetes_model.test_path, tmp_path)

    held = _perform(log_path, truth, tmp_path, mlflow_shared_uri)
    assert held.meta["metric"] == "rmse" and not held.degraded
    assert held.data["live"]["rmse"] == pytest.approx(diabetes_model.holdout["rmse"], rel=1e-9)
    assert set(held.data["live"]) == {"rmse", "mae", "r2", "mape"}

    # Disease progressed 60 points further than the model says in every patient: RMSE rises, R2 falls.
    later = truth.assign(target=truth["target"] + 60.0)
    worse = _perform(log_path, later, tmp_path, mlflow_shared_uri, max_drop=0.2)
    assessment = worse.data["versions"][0]["assessment"]
    # RMSE is in the target's units: the tolerance is a share of the holdout's (0.2 = 20% worse).
    assert worse.degraded and assessment["relative"] and assessment["live"] > 1.2 * assessment["registered"]
    assert assessment["drop"] == pytest.approx(assessment["live"] / assessment["registered"] - 1)
    assert "of the holdout's, more than the tolerated 20.0% (lower is better)" in worse.data["reason"]
    assert worse.metrics["holdout_rmse"] == assessment["registered"]
    # Better than the holdout by R2 cannot hide it: the rule is RMSE's own direction.
    r2 = _perform(log_path, later, tmp_path, mlflow_shared_uri, metric="r2", max_drop=0.5)
    assert r2.data["versions"][0]["assessment"]["drop"] > 0.3

    broken = truth.assign(target=truth["target"].astype(str))  # labels as text, as a CSV of them reads
    broken.loc[3, "target"] = "n/a"
    with pytest.raises(DataError, match=r"labels: column 'target' holds 'n/a' for id 'b-3': a regression model"):
        _perform(log_path, broken, tmp_path, mlflow_shared_uri)


# --- prediction drift --------------------------------------------------------------------------------------


def _score(model: TaskModel, rows: pd.DataFrame, folder: Path, name: str) -> Path:
    path = folder / f"{name}.parquet"
    pq.write_table(pa.Table.from_pandas(rows, preserve_index=False), path)
    batch_predict(str(model.model_dir), str(path), str(folder / f"{name}-log.parquet"))
    return folder / f"{name}-log.parquet"


def test_multiclass_prediction_drift_is_the_predicted_class_shares(wine_model: TaskModel, tmp_path: Path) -> None:
    reference = pq.read_table(wine_model.train_path).to_pandas()
    test = pq.read_table(wine_model.test_path).to_pandas()
    reference_log = read_prediction_logs(_score(wine_model, reference, tmp_path, "reference"))
    same = prediction_drift(reference_log, read_prediction_logs(_score(wine_model, test, tmp_path, "test")))
    assert (same["task"], same["column"], same["test"], same["is_drift"]) == (
        "multiclass",
        "predicted_class",
        "chi2",
        False,
    )
    assert set(same["shares"]) == {"barbera", "barolo", "grignolino"}
    assert abs(same["shares"]["barolo"]["reference"] - same["shares"]["barolo"]["current"]) < 0.1

    # A batch of barolo wines only (a vineyard's delivery): the model says barolo for almost every row.
    barolo = test[test["target"] == "barolo"]
    moved = prediction_drift(reference_log, read_prediction_logs(_score(wine_model, barolo, tmp_path, "barolo")))
    assert moved["is_drift"] and moved["p_value"] < 1e-4 and moved["psi_drift"]
    assert moved["shares"]["barolo"]["current"] > 0.9 > 0.5 > moved["shares"]["barolo"]["reference"]


def test_regression_prediction_drift_is_the_predicted_value_distribution_beside_the_features(
    diabetes_model: TaskModel, tmp_path: Path
) -> None:
    reference = pq.read_table(diabetes_model.train_path).to_pandas()
    test = pq.read_table(diabetes_model.test_path).to_pandas()
    reference_log = _score(diabetes_model, reference, tmp_path, "reference")
    same = prediction_drift(
        read_prediction_logs(reference_log), read_prediction_logs(_score(diabetes_model, test, tmp_path, "test"))
    )
    assert (same["task"], same["column"], same["test"], same["is_drift"]) == (
        "regression",
        "predicted_value",
        "ks",
        False,
    )

    # The heaviest third of the patients (body mass index): the model predicts faster progression for them.
    heavy = test[test["bmi"] >= test["bmi"].quantile(2 / 3)]
    heavy_log = _score(diabetes_model, heavy, tmp_path, "heavy")
    files = [str(tmp_path / "reference.parquet"), str(tmp_path / "heavy.parquet")]
    logs = {"reference_predictions_path": str(reference_log), "current_predictions_path": str(heavy_log)}
    result = drift(*files, tmp_path / "drift.json", tmp_path / "drift.html", exclude_columns=["target"], **logs)
    moved = result["data"]["prediction_drift"]
    assert moved["is_drift"] and moved["p_value"] < 1e-3
    assert moved["summary"]["current"]["mean"] > moved["summary"]["reference"]["mean"] + 30
    # Reported beside the features; the decision stays the features' (bmi moved, so it is drift anyway).
    without = drift(*files, tmp_path / "plain.json", tmp_path / "plain.html", exclude_columns=["target"])
    assert (
        result["data"]["is_drift"] == without["data"]["is_drift"] is True
        and "bmi" in result["data"]["drifted_features"]
    )
    assert "prediction_drift" not in without["data"] and "prediction_drift" not in drift_metrics(without)
    assert drift_metrics(result)["prediction_drift"] == 1 and drift_metadata(result)["prediction_task"] == "regression"
    page = (tmp_path / "drift.html").read_text()
    assert "<h2>Prediction drift</h2>" in page and "prediction drift (regression, predicted value distribution)" in page
    with pytest.raises(ParameterError, match="current_predictions_path given alone"):
        drift(*files, tmp_path / "x.json", tmp_path / "x.html", current_predictions_path=str(heavy_log))
