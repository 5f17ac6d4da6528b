"""Multiclass and regression through train and evaluate, on scikit-learn's real wine and diabetes data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_diabetes, load_wine

from mlkeel.components.evaluate.logic import RESIDUAL_PLOT_ARTIFACT, evaluate
from mlkeel.components.split.logic import split
from mlkeel.components.train.logic import ESTIMATORS, REGRESSION_ESTIMATORS, fit_model, train
from mlkeel.constants import ArtifactMetadata, LineageTag
from mlkeel.errors import DataError, ParameterError
from mlkeel.metrics import multiclass_metrics, regression_metrics
from mlkeel.modeling import load_sklearn_model, model_outputs, model_task


def _split(frame: pd.DataFrame, folder: Path, name: str, test_fraction: float) -> tuple[Path, Path]:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.parquet")
    train_path, test_path = folder / f"{name}-train.parquet", folder / f"{name}-test.parquet"
    split(str(folder / f"{name}.parquet"), str(train_path), str(test_path), "target", "", test_fraction, seed=7)
    return train_path, test_path


@pytest.fixture(scope="module")
def wine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})  # the three cultivars
    return _split(frame, tmp_path_factory.mktemp("wine"), "wine", 0.3)


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return _split(load_diabetes(as_frame=True).frame, tmp_path_factory.mktemp("diabetes"), "diabetes", 0.25)


def _frames(paths: tuple[Path, Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pq.read_table(paths[0]).to_pandas(), pq.read_table(paths[1]).to_pandas()


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_each_classifier_tells_the_three_wines_apart(estimator: str, wine: tuple[Path, Path]) -> None:
    train_frame, test_frame = _frames(wine)
    fitted = fit_model(train_frame, "target", "", estimator=estimator, seed=1)
    assert fitted.task is not None and fitted.task.task == "multiclass" and fitted.task.inferred
    classes = [str(name) for name in fitted.model.classes_]
    assert classes == ["barbera", "barolo", "grignolino"]
    proba = model_outputs(fitted.model, test_frame, "multiclass")
    scores, per_class = multiclass_metrics(test_frame["target"].to_numpy(), proba, classes)
    # Published results on wine: 0.95-1.0 accuracy; guessing the majority class scores 0.40.
    assert scores["accuracy"] > 0.9 and scores["macro_f1"] > 0.9 and scores["roc_auc_ovr"] > 0.97, scores
    assert sum(entry["support"] for entry in per_class.values()) == len(test_frame) == 54
    assert set(fitted.validation.validation_metrics) == {
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "log_loss",
        "roc_auc_ovr",
    }
    assert "decision_threshold" not in fitted.params and fitted.params["task"] == "multiclass"


@pytest.mark.parametrize("estimator", sorted(REGRESSION_ESTIMATORS))
def test_each_regressor_predicts_disease_progression(estimator: str, diabetes: tuple[Path, Path]) -> None:
    train_frame, test_frame = _frames(diabetes)
    fitted = fit_model(train_frame, "target", "", estimator=estimator, seed=1)
    assert fitted.task is not None and fitted.task.task == "regression"
    assert model_task(fitted.model) == "regression"
    scores = regression_metrics(test_frame["target"], model_outputs(fitted.model, test_frame, "regression"))
    # Predicting the train mean everywhere: RMSE about the target's standard deviation (77), R2 about 0.
    assert scores["r2"] > 0.3 and scores["rmse"] < 0.85 * test_frame["target"].std(), scores
    assert 0 < scores["mape"] < 1 and scores["mae"] < scores["rmse"]


def test_wrong_estimators_and_targets_are_named(diabetes: tuple[Path, Path], wine: tuple[Path, Path]) -> None:
    train_frame, _ = _frames(diabetes)
    with pytest.raises(ParameterError, match=r"'logistic_regression' for task regression: .*ridge is the linear"):
        fit_model(train_frame, "target", "", estimator="logistic_regression")
    with pytest.raises(ParameterError, match=r"class_weight: HistGradientBoostingRegressor takes no class weight"):
        fit_model(train_frame, "target", "", class_weight="balanced")
    with pytest.raises(DataError, match=r"task=binary but target column 'target' has 190 distinct"):
        fit_model(train_frame, "target", "", task="binary")
    wine_frame, _ = _frames(wine)
    with pytest.raises(DataError, match=r"task=regression but target column 'target' holds 3 distinct text"):
        fit_model(wine_frame, "target", "", task="regression")
    broken = wine_frame.copy()
    broken.loc[5, "target"] = None
    with pytest.raises(DataError, match=r"wine: target column 'target' is null in row 5"):
        fit_model(broken, "target", "", source="wine")


def test_mape_is_left_out_when_a_true_value_is_zero() -> None:
    assert "mape" not in regression_metrics(np.array([0.0, 10.0, 20.0]), np.array([1.0, 9.0, 22.0]))
    assert regression_metrics(np.array([5.0, 10.0]), np.array([4.0, 12.0]))["mape"] == pytest.approx(0.2)


def test_a_multiclass_model_trains_logs_and_evaluates_with_its_own_metrics(
    wine: tuple[Path, Path], tmp_path: Path, mlflow_local_uri: str
) -> None:
    from mlflow.tracking import MlflowClient

    train_path, test_path = wine
    result = train(str(train_path), str(tmp_path / "model"), "target", "", tracking_uri=mlflow_local_uri, seed=2)
    metadata = result.metadata
    assert metadata["task"] == "multiclass" and metadata["classes"] == ["barbera", "barolo", "grignolino"]
    assert metadata["task_reason"] == "task: multiclass (inferred: 3 distinct text values (<= 20))"
    assert ArtifactMetadata.DECISION_THRESHOLD not in metadata and "validation_macro_f1" in metadata
    evaluation = evaluate(result.mlflow_model_uri, str(test_path), "target", "", mlflow_local_uri, result.mlflow_run_id)
    matrix = np.array(evaluation.confusion_matrix)
    assert matrix.shape == (3, 3) and matrix.sum() == evaluation.rows == 54
    assert np.trace(matrix) / matrix.sum() == pytest.approx(evaluation.metrics["accuracy"])
    assert evaluation.metrics["macro_f1"] > 0.9 and evaluation.class_names == metadata["classes"]
    run = MlflowClient(mlflow_local_uri).get_run(result.mlflow_run_id)
    assert run.data.tags[LineageTag.TASK] == "multiclass" and LineageTag.DECISION_THRESHOLD not in run.data.tags
    assert run.data.metrics["holdout_macro_f1"] == pytest.approx(evaluation.metrics["macro_f1"])
    assert run.data.metrics["holdout_recall.barolo"] == pytest.approx(evaluation.per_class["barolo"]["recall"])
    assert model_task(load_sklearn_model(str(tmp_path / "model"))) == "multiclass"


def test_a_regression_model_trains_logs_and_evaluates_with_a_residual_plot(
    diabetes: tuple[Path, Path], tmp_path: Path, mlflow_local_uri: str
) -> None:
    from mlflow.tracking import MlflowClient

    train_path, test_path = diabetes
    result = train(
        str(train_path), str(tmp_path / "model"), "target", "", estimator="ridge", tracking_uri=mlflow_local_uri
    )
    assert result.metadata["task"] == "regression" and "classes" not in result.metadata
    assert result.metadata["validation_r2"] > 0.3
    evaluation = evaluate(result.mlflow_model_uri, str(test_path), "target", "", mlflow_local_uri, result.mlflow_run_id)
    assert evaluation.to_dict() == {"task": "regression", "metrics": evaluation.metrics, "rows": 111}
    assert evaluation.metrics["r2"] > 0.3 and evaluation.residual_plot.startswith(b"\x89PNG")
    client = MlflowClient(mlflow_local_uri)
    assert client.get_run(result.mlflow_run_id).data.metrics["holdout_rmse"] == pytest.approx(
        evaluation.metrics["rmse"]
    )
    folder = RESIDUAL_PLOT_ARTIFACT.rsplit("/", 1)[0]
    assert [entry.path for entry in client.list_artifacts(result.mlflow_run_id, folder)] == [RESIDUAL_PLOT_ARTIFACT]


def _crown(tracking_uri: str, model_uri: str, name: str) -> str:
    import mlflow
    from mlflow import MlflowClient

    from mlkeel.constants import CHAMPION_ALIAS
    from mlkeel.tracking import connect

    connect(tracking_uri)
    version = str(mlflow.register_model(model_uri, name).version)
    MlflowClient(tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(name, CHAMPION_ALIAS, version)
    return version


def test_the_gate_knows_lower_rmse_is_better_and_compares_regressors_on_the_same_rows(
    diabetes: tuple[Path, Path], tmp_path: Path, mlflow_local_uri: str
) -> None:
    from mlkeel.components.gate.logic import gate

    train_path, test_path = diabetes
    # The champion sees two of the ten features (age, sex): a real but weak model; the challenger sees all ten.
    weak = train(
        str(train_path),
        str(tmp_path / "weak"),
        "target",
        "",
        estimator="ridge",
        tracking_uri=mlflow_local_uri,
        feature_types={name: "ignore" for name in ("bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6")},
    )
    train(str(train_path), str(tmp_path / "strong"), "target", "", estimator="ridge", tracking_uri=mlflow_local_uri)
    version = _crown(mlflow_local_uri, weak.mlflow_model_uri, "diabetes")
    strong_metrics = evaluate(str(tmp_path / "strong"), str(test_path), "target", "").metrics

    def run_gate(model: str, metrics: dict[str, float], **options: object):
        return gate(
            model,
            str(test_path),
            metrics,
            "diabetes",
            "target",
            "",
            str(tmp_path / "b.json"),
            mlflow_local_uri,
            **options,
        )

    blessing = run_gate(str(tmp_path / "strong"), strong_metrics, metric="rmse", margin=1.0, thresholds={"r2": 0.2})
    assert blessing.blessed, blessing.reason
    assert blessing.challenger_score < blessing.champion_score - 1.0  # lower is better: the margin counts down
    assert f"challenger rmse {strong_metrics['rmse']:.4f} vs champion version {version}" in blessing.reason
    assert "r2 " in blessing.reason and ">= 0.2000" in blessing.reason
    # The weak model as challenger against itself as champion: no improvement, not blessed.
    weak_metrics = evaluate(str(tmp_path / "weak"), str(test_path), "target", "").metrics
    again = run_gate(str(tmp_path / "weak"), weak_metrics, metric="mae", margin=0.5)
    assert not again.blessed and again.challenger_score == pytest.approx(again.champion_score)
    with pytest.raises(ParameterError, match=r"metric 'roc_auc' is not a regression metric: expected one of rmse"):
        run_gate(str(tmp_path / "strong"), {**strong_metrics, "roc_auc": 0.9}, metric="roc_auc")
    refused = run_gate(str(tmp_path / "strong"), strong_metrics, metric="rmse", thresholds={"rmse": 10.0})
    assert not refused.blessed and "above the threshold 10.0000 (lower is better)" in refused.reason


def test_the_gate_compares_multiclass_models_on_macro_f1_and_per_slice(
    wine: tuple[Path, Path], tmp_path: Path, mlflow_local_uri: str
) -> None:
    from mlkeel.components.gate.logic import gate

    train_path, test_path = wine
    champion = train(str(train_path), str(tmp_path / "m"), "target", "", tracking_uri=mlflow_local_uri)
    version = _crown(mlflow_local_uri, champion.mlflow_model_uri, "wine")
    metrics = evaluate(str(tmp_path / "m"), str(test_path), "target", "").metrics
    holdout = pq.read_table(test_path).to_pandas()
    holdout["strength"] = np.where(holdout["alcohol"] >= 13.0, "strong", "light")  # a slice column, not a feature
    pq.write_table(pa.Table.from_pandas(holdout, preserve_index=False), tmp_path / "holdout.parquet")
    blessing = gate(
        str(tmp_path / "m"),
        str(tmp_path / "holdout.parquet"),
        metrics,
        "wine",
        "target",
        "",
        str(tmp_path / "b.json"),
        mlflow_local_uri,
        metric="macro_f1",
        margin=0.01,
        slice_columns=["strength"],
        slice_min_rows=10,
    )
    assert not blessing.blessed and blessing.champion_version == version  # the same model: no improvement
    assert blessing.challenger_score == pytest.approx(metrics["macro_f1"]) == blessing.champion_score
    assert "an improvement of +0.0000 that misses the margin 0.0100 (higher is better)" in blessing.reason
    assert blessing.slices is not None and blessing.slices["metric"] == "macro_f1"
    assert sorted(result["value"] for result in blessing.slices["results"]) == ["light", "strong"]
    assert all(result["delta"] == 0 and not result["regressed"] for result in blessing.slices["results"])


def test_a_class_of_one_row_stays_in_train_and_is_left_out_of_the_fit_with_a_note(tmp_path: Path) -> None:
    import pyarrow.compute as pc

    from data.flights import FLIGHTS_PARQUET
    from mlkeel.components.split.logic import split_table

    # January's real flights: carrier OO flew once (as the bundled data holds it); a stratified split refuses that.
    flights = pq.read_table(FLIGHTS_PARQUET)
    january = flights.filter(pc.equal(flights["month"], 1))
    assert january["carrier"].to_pylist().count("OO") == 1
    train_part, test_part, mode = split_table(january, "carrier", 0.2, seed=3)
    assert mode == "stratified" and "OO" in train_part["carrier"].to_pylist()
    assert "OO" not in test_part["carrier"].to_pylist() and train_part.num_rows + test_part.num_rows == 26398
    wine = load_wine(as_frame=True).frame.astype({"target": str})
    wine.loc[0, "target"] = "lone"
    fitted = fit_model(wine, "target", "", estimator="logistic_regression")
    assert fitted.validation is not None
    assert (
        fitted.validation.note == "class(es) ['lone'] have a single train row: left out (a class needs at least 2 rows)"
    )
    assert [str(name) for name in fitted.model.classes_] == ["0", "1", "2"]


def test_validate_accepts_a_multiclass_or_regression_target_and_records_its_task() -> None:
    from mlkeel.components.validate.logic import validate_table
    from mlkeel.schema import infer_schema

    wine = pa.Table.from_pandas(load_wine(as_frame=True).frame, preserve_index=False)
    diabetes = pa.Table.from_pandas(load_diabetes(as_frame=True).frame, preserve_index=False)
    for table, task in ((wine, "multiclass"), (diabetes, "regression")):
        outcome = validate_table(table, infer_schema(table, (), "target"), "data", "target")
        assert outcome.result["data"]["is_valid"] and outcome.result["data"]["target"]["task"] == task
        assert outcome.valid.num_rows == table.num_rows
    refused = validate_table(
        wine, infer_schema(wine, (), "target"), "wine", "target", raise_on_failure=False, task="binary"
    )
    assert refused.result["data"]["errors"] == [
        "wine: target column 'target' has 3 class(es) ['0', '1', '2'] in the 178 valid rows; "
        "a binary classifier needs exactly 2"
    ]
    wrong = validate_table(
        wine, infer_schema(wine, (), "target"), "wine", "target", raise_on_failure=False, task="regression"
    )
    assert wrong.result["data"]["is_valid"]  # whole numbers may be a regression target when asked
    text = wine.set_column(
        wine.schema.get_field_index("target"), "target", pa.array([str(v) + "x" for v in wine["target"].to_pylist()])
    )
    bad = validate_table(
        text, infer_schema(text, (), "target"), "wine", "target", raise_on_failure=False, task="regression"
    )
    assert bad.result["data"]["errors"] == [
        "wine: task=regression but target column 'target' holds 3 distinct text values: regression needs numbers "
        "that vary"
    ]
