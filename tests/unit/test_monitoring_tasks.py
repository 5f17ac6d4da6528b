"""The monitoring path for multiclass and regression models, on scikit-learn's real wine and diabetes data:
batch predict writes each task's prediction log (``mlkeel.prediction_log``)."""

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
    """A model trained by the train stage on one half of a real dataset, and the other half to score."""

    model_dir: Path
    model_uri: str
    test_path: Path
    target: str = "target"


def _train(frame: pd.DataFrame, folder: Path, uri: str, estimator: str = "") -> TaskModel:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / "all.parquet")
    train_path, test_path = folder / "train.parquet", folder / "test.parquet"
    split(str(folder / "all.parquet"), str(train_path), str(test_path), "target", "", 0.3, seed=7)
    extra = {"estimator": estimator} if estimator else {}
    result = train(str(train_path), str(folder / "model"), "target", "", tracking_uri=uri, seed=2, **extra)
    return TaskModel(folder / "model", result.mlflow_model_uri, test_path)


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
