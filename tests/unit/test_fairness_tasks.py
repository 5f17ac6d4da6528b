"""Fairness and the model card for multiclass and regression models: hand-computed figures, then real models on
scikit-learn's wine (multiclass) and diabetes (regression, sensitive column ``sex``) data."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import load_diabetes, load_wine

from mlkeel.components.evaluate.logic import evaluate
from mlkeel.components.fairness.logic import DEFAULT_THRESHOLDS_BY_TASK, fairness, fairness_report
from mlkeel.components.model_card.logic import card_context, render_card, slice_metrics
from mlkeel.components.split.logic import split
from mlkeel.components.train.logic import train
from mlkeel.constants import FairnessRunMetric
from mlkeel.errors import ParameterError
from mlkeel.lineage import lineage_from_tags
from tests.fixtures_mlflow import _forget_uris as forget_uris
from tests.fixtures_mlflow import _sqlite_store as sqlite_store

# What ``mlkeel.lineage.version_lineage`` gives the card: the version, and lineage facts none of which were recorded.
VERSION = {
    "model_name": "",
    "version": "1",
    "aliases": [],
    "created": "",
    "run_id": "",
    **lineage_from_tags({}),
    "target_column": "target",
}
# Multiclass by hand: 8 rows, classes a/b/c, groups X (rows 0-3) and Y (rows 4-7).
CLASS_TRUE = ["a", "b", "c", "a", "a", "b", "c", "c"]
CLASS_PRED = ["a", "b", "c", "b", "a", "a", "a", "c"]
CLASS_GROUPS = {"region": pd.Series(["X"] * 4 + ["Y"] * 4)}
# Regression by hand: groups M (rows 0-2) and F (rows 3-5).
VALUE_TRUE = [10.0, 20.0, 30.0, 10.0, 20.0, 30.0]
VALUE_PRED = [12.0, 22.0, 32.0, 10.0, 16.0, 30.0]
VALUE_GROUPS = {"sex": pd.Series(["M", "M", "M", "F", "F", "F"])}


def test_multiclass_figures_match_a_hand_computation() -> None:
    document = fairness_report(
        CLASS_TRUE, CLASS_PRED, CLASS_GROUPS, min_group_rows=2, task="multiclass", classes=["a", "b", "c"]
    )
    region = document["by_column"]["region"]
    # X: predicted a b c b -> a 1/4, b 2/4, c 1/4; 3 of 4 right; F1 a 2/3 (1 of 2 a found, no false a), b 2/3, c 1.
    assert region["groups"]["X"]["selection_rate"] == {"a": 0.25, "b": 0.5, "c": 0.25}
    assert region["groups"]["X"]["accuracy"] == 0.75
    assert region["groups"]["X"]["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    # Y: predicted a a a c -> a 3/4, c 1/4; right: rows 4 and 7 -> 2 of 4.
    assert region["groups"]["Y"]["selection_rate"] == {"a": 0.75, "b": 0.0, "c": 0.25}
    assert region["groups"]["Y"]["accuracy"] == 0.5
    # The widest gap in one class's selection rate is class a: 0.75 - 0.25.
    assert region["selection_rate_difference"] == pytest.approx(0.5)
    assert region["selection_rate_difference_class"] == "a"
    assert region["accuracy_difference"] == pytest.approx(0.25)
    assert document["task"] == "multiclass" and document["thresholds"] == DEFAULT_THRESHOLDS_BY_TASK["multiclass"]
    assert not document["passed"]  # 0.5 > 0.2; accuracy 0.25 > 0.2 too
    assert document["reason"] == (
        "Fairness failed: region selection_rate_difference 0.5000 exceeds the threshold 0.2000 (selection rate of "
        "class a by group: X 0.2500, Y 0.7500); region accuracy_difference 0.2500 exceeds the threshold 0.2000 "
        "(accuracy by group: X 0.7500, Y 0.5000)."
    )


def test_regression_figures_match_a_hand_computation_and_the_bounds_are_relative_to_the_mae() -> None:
    document = fairness_report(VALUE_TRUE, VALUE_PRED, VALUE_GROUPS, min_group_rows=3, task="regression")
    sex = document["by_column"]["sex"]
    # M over-predicts every row by 2: mean error +2, MAE 2, RMSE 2.
    assert sex["groups"]["M"] == {"rows": 3, "mean_error": 2.0, "mae": 2.0, "rmse": 2.0}
    # F: errors 0, -4, 0 -> mean error -4/3, MAE 4/3, RMSE sqrt(16/3).
    assert sex["groups"]["F"]["mean_error"] == pytest.approx(-4 / 3)
    assert sex["groups"]["F"]["mae"] == pytest.approx(4 / 3)
    assert sex["groups"]["F"]["rmse"] == pytest.approx(np.sqrt(16 / 3))
    overall_mae = (2 * 3 + 4) / 6
    assert sex["mae"] == pytest.approx(overall_mae)
    assert sex["mean_error_difference"] == pytest.approx(2 + 4 / 3)
    assert sex["relative_mean_error_difference"] == pytest.approx((2 + 4 / 3) / overall_mae)  # 2.0
    assert sex["relative_mae_difference"] == pytest.approx((2 - 4 / 3) / overall_mae)  # 0.4
    assert sex["rmse_difference"] == pytest.approx(np.sqrt(16 / 3) - 2)  # F's RMSE is the larger one
    assert not document["passed"]
    assert [failure["difference"] for failure in document["failures"]] == ["relative_mean_error_difference"]
    assert "mean error (predicted - true) by group: F -1.3333, M 2.0000; MAE over all rows 1.6667" in document["reason"]

    # A bound above 1 is meaningful for a share of the MAE; binary names are ignored and listed, not an error.
    relaxed = fairness_report(
        VALUE_TRUE,
        VALUE_PRED,
        VALUE_GROUPS,
        {"relative_mean_error_difference": 2.5, "demographic_parity_difference": 0.3},
        min_group_rows=3,
        task="regression",
    )
    assert relaxed["passed"] and relaxed["ignored_thresholds"] == ["demographic_parity_difference"]
    assert relaxed["thresholds"] == {"relative_mean_error_difference": 2.5, "relative_mae_difference": 0.5}
    assert relaxed["reason"].startswith(
        "Fairness passed: sex relative_mean_error_difference 2.0000 <= 2.5000, relative_mae_difference 0.4000 <= "
        "0.5000 (mean error (predicted - true) by group: F -1.3333, M 2.0000; MAE by group: F 1.3333, M 2.0000"
    )


@pytest.mark.parametrize(
    ("thresholds", "task", "message"),
    [
        ({"mean_error": 0.1}, "regression", "unknown difference 'mean_error': expected binary: "),
        ({"relative_mae_difference": -0.1}, "regression", "must be a number >= 0 (a share of the model's MAE)"),
        ({"selection_rate_difference": 1.5}, "multiclass", "must be a number from 0 to 1"),
        ({}, "ranking", "fairness task 'ranking': expected one of binary, multiclass, regression"),
    ],
)
def test_bad_thresholds_of_each_task_are_refused_by_name(thresholds: dict, task: str, message: str) -> None:
    with pytest.raises(ParameterError, match=re.escape(message)):
        fairness_report(VALUE_TRUE, VALUE_PRED, VALUE_GROUPS, thresholds, task=task)


# Real models on real data ---------------------------------------------------------------------------------


def _holdout(frame: pd.DataFrame, folder: Path, name: str, test_fraction: float) -> tuple[Path, Path]:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), folder / f"{name}.parquet")
    train_path, test_path = folder / f"{name}-train.parquet", folder / f"{name}-test.parquet"
    split(str(folder / f"{name}.parquet"), str(train_path), str(test_path), "target", "", test_fraction, seed=7)
    return train_path, test_path


def test_wine_fairness_is_the_models_own_per_group_figures_and_lands_on_its_run(
    tmp_path: Path, mlflow_local_uri: str
) -> None:
    from mlflow import MlflowClient

    from mlkeel.modeling import feature_frame, load_sklearn_model, model_feature_columns

    # Wine has no sensitive column: the group is derived from a real one, the colour intensity (above or below
    # its median), which the cultivars differ in: the model's class shares differ between the groups.
    wine = load_wine(as_frame=True).frame
    wine["target"] = wine["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    wine["colour"] = np.where(wine["color_intensity"] > wine["color_intensity"].median(), "deep", "pale")
    train_path, test_path = _holdout(wine, tmp_path, "wine", 0.4)
    model = train(
        str(train_path), str(tmp_path / "model"), "target", "", tracking_uri=mlflow_local_uri, seed=2,
        estimator="logistic_regression",
    )  # fmt: skip
    document = fairness(
        str(tmp_path / "model"),
        str(test_path),
        "target",
        "",
        str(tmp_path / "fairness.json"),
        sensitive_columns=["colour"],
        min_group_rows=10,
        tracking_uri=mlflow_local_uri,
        mlflow_run_id=model.mlflow_run_id,
    )
    assert json.loads((tmp_path / "fairness.json").read_text()) == document
    assert document["task"] == "multiclass"

    # Recomputed with pandas from the model's most probable class.
    frame = pq.read_table(test_path).to_pandas()
    estimator = load_sklearn_model(str(tmp_path / "model"))
    features = feature_frame(frame, model_feature_columns(estimator))
    frame["predicted"] = estimator.predict(features).astype(str)
    colour = document["by_column"]["colour"]
    for value, rows in frame.groupby("colour"):
        group = colour["groups"][value]
        assert group["rows"] == len(rows)
        assert group["accuracy"] == pytest.approx((rows["predicted"] == rows["target"]).mean())
        for name in ("barbera", "barolo", "grignolino"):
            assert group["selection_rate"][name] == pytest.approx((rows["predicted"] == name).mean())
    shares = frame.groupby("colour")["predicted"].value_counts(normalize=True).unstack(fill_value=0.0)
    gaps = shares.max() - shares.min()
    assert colour["selection_rate_difference"] == pytest.approx(gaps.max())
    assert colour["selection_rate_difference_class"] == gaps.idxmax()
    # Grignolino wines are pale (published colour intensity 1.3-6): most pale wines are predicted grignolino, few
    # deep ones are, so demographic parity per class fails here while accuracy is alike in both groups.
    assert gaps.idxmax() == "grignolino" and colour["selection_rate_difference"] > 0.5
    assert colour["accuracy_difference"] < 0.2
    assert not document["passed"] and document["reason"].startswith(
        "Fairness failed: colour selection_rate_difference "
    )
    assert "selection rate of class grignolino by group: deep 0.0" in document["reason"]

    run = MlflowClient(mlflow_local_uri).get_run(model.mlflow_run_id)
    assert run.data.metrics[FairnessRunMetric.PASSED] == 0.0
    assert run.data.metrics["fairness_colour_selection_rate_difference"] == pytest.approx(gaps.max())
    assert "fairness_colour_macro_f1_difference" in run.data.metrics


@pytest.fixture(scope="module")
def diabetes_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A ridge regression on diabetes with ``sex`` as recorded (1, 2: scaled=False)."""
    folder = tmp_path_factory.mktemp("diabetes")
    _, test_path = _holdout(load_diabetes(as_frame=True, scaled=False).frame, folder, "diabetes", 0.25)
    with pytest.MonkeyPatch.context() as patch:  # a store of its own, artifacts inside it (not ./mlruns)
        uri = sqlite_store(folder / "mlflow", patch)
        train(str(folder / "diabetes-train.parquet"), str(folder / "model"), "target", "", tracking_uri=uri, seed=3,
              estimator="ridge")  # fmt: skip
    forget_uris()
    return folder / "model", test_path


def test_diabetes_fairness_by_sex_compares_the_models_errors(diabetes_model: tuple[Path, Path], tmp_path: Path) -> None:
    from mlkeel.modeling import feature_frame, load_sklearn_model, model_feature_columns

    model_dir, test_path = diabetes_model
    document = fairness(
        str(model_dir),
        str(test_path),
        "target",
        "",
        str(tmp_path / "fairness.json"),
        sensitive_columns=["sex"],
        thresholds={"demographic_parity_difference": 0.3, "equalized_odds_difference": 0.25},  # the pipeline's
    )
    frame = pq.read_table(test_path).to_pandas()
    estimator = load_sklearn_model(str(model_dir))
    frame["error"] = estimator.predict(feature_frame(frame, model_feature_columns(estimator))) - frame["target"]
    sex = document["by_column"]["sex"]
    assert sorted(sex["groups"]) == ["1", "2"] and sex["compared_groups"] == ["1", "2"]  # ~50 holdout rows each
    for value, rows in frame.groupby("sex"):
        group = sex["groups"][str(int(value))]
        assert group["rows"] == len(rows) >= 30
        assert group["mean_error"] == pytest.approx(rows["error"].mean())
        assert group["mae"] == pytest.approx(rows["error"].abs().mean())
        assert group["rmse"] == pytest.approx(np.sqrt((rows["error"] ** 2).mean()))
    by_sex = frame.groupby("sex")["error"]
    assert sex["mean_error_difference"] == pytest.approx(by_sex.mean().max() - by_sex.mean().min())
    assert sex["relative_mae_difference"] == pytest.approx(
        (by_sex.apply(lambda e: e.abs().mean()).max() - by_sex.apply(lambda e: e.abs().mean()).min())
        / frame["error"].abs().mean()
    )
    # The binary bounds the pipeline passes by default do not apply to a regressor: named, not used.
    assert document["ignored_thresholds"] == ["demographic_parity_difference", "equalized_odds_difference"]
    assert document["thresholds"] == {"relative_mean_error_difference": 0.5, "relative_mae_difference": 0.5}
    verdict = "passed" if document["passed"] else "failed"
    assert document["reason"].startswith(f"Fairness {verdict}: sex relative_mean_error_difference ")
    assert "MAE over all rows" in document["reason"]


def test_the_card_of_a_regressor_shows_its_metrics_residual_plot_slices_and_fairness_by_sex(
    diabetes_model: tuple[Path, Path], tmp_path: Path
) -> None:
    model_dir, test_path = diabetes_model
    evaluation = evaluate(str(model_dir), str(test_path), "target", "")
    document = fairness(
        str(model_dir), str(test_path), "target", "", str(tmp_path / "f.json"), ["sex"],
        thresholds={"demographic_parity_difference": 0.3, "relative_mae_difference": 0.4},
    )  # fmt: skip
    frame = pq.read_table(test_path).to_pandas()
    from mlkeel.modeling import feature_frame, load_sklearn_model, model_feature_columns

    estimator = load_sklearn_model(str(model_dir))
    predicted = estimator.predict(feature_frame(frame, model_feature_columns(estimator)))
    slices = slice_metrics(frame, frame["target"].to_numpy(float), predicted, ["sex"], task="regression")
    context = card_context(
        {**VERSION, "model_name": "diabetes"},
        metrics=evaluation.metrics,
        fairness=document,
        slices=slices,
        slice_columns=["sex"],
        evaluation=evaluation,
    )
    html, markdown = render_card(context)
    for text in (html, markdown):
        for name in ("rmse", "mae", "r2", "mape"):
            assert f"{evaluation.metrics[name]:.4f}" in text, name
        assert "roc_auc" not in text and "Positive rate" not in text
        assert "target (regression)" in text
        group = document["by_column"]["sex"]["groups"]["2"]
        assert f"{group['mean_error']:.4f}" in text and f"{group['rmse']:.4f}" in text
        assert f"{document['by_column']['sex']['relative_mae_difference']:.4f}" in text
    # The slice table names the value as the column holds it (a float column here), fairness as a group.
    women = slices[0]["groups"][[g["value"] for g in slices[0]["groups"]].index("2.0")]
    assert f"| 2.0 | {women['rows']} | {women['metrics']['rmse']:.4f} | {women['metrics']['mae']:.4f} |" in markdown
    assert '<img alt="Residual plot: true - predicted against predicted" src="data:image/png;base64,' in html
    assert "| Group | Rows | Mean error (predicted - true) | MAE | RMSE |" in markdown
    assert "relative_mean_error_difference ≤ 0.5000, relative_mae_difference ≤ 0.4000" in markdown
    assert "Thresholds of another task, not applied to this regression model: demographic_parity_difference." in html
    # Without the plot the evaluate stage logs on the run, the card says so rather than leaving a gap.
    from dataclasses import replace

    html, markdown = render_card(
        {**context, "task": card_context(VERSION, evaluation=replace(evaluation, residual_plot=b""))["task"]}
    )
    assert "Residual plot: not computed (the evaluate stage logs it on the model's run)." in markdown
    assert "data:image/png" not in html


def test_the_card_of_a_multiclass_model_shows_the_confusion_matrix_over_every_class(
    tmp_path: Path, mlflow_local_uri: str
) -> None:
    wine = load_wine(as_frame=True).frame
    wine["target"] = wine["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    train_path, test_path = _holdout(wine, tmp_path, "wine", 0.3)
    train(
        str(train_path), str(tmp_path / "model"), "target", "", tracking_uri=mlflow_local_uri, seed=2,
        estimator="logistic_regression",
    )  # fmt: skip
    evaluation = evaluate(str(tmp_path / "model"), str(test_path), "target", "")
    metrics = dict(evaluation.metrics)
    metrics.update({f"recall.{name}": scores["recall"] for name, scores in evaluation.per_class.items()})
    version = {**VERSION, "model_name": "wine", "target_column": "cultivar"}
    html, markdown = render_card(card_context(version, metrics=metrics, evaluation=evaluation))
    classes = ["barbera", "barolo", "grignolino"]
    assert evaluation.classes == classes
    matrix = evaluation.confusion_matrix
    assert "| true \\ predicted | barbera | barolo | grignolino |" in markdown
    for index, name in enumerate(classes):
        assert f"| {name} | " + " | ".join(str(count) for count in matrix[index]) + " |" in markdown
        row = "".join(f'<td class="num">{count}</td>' for count in matrix[index])
        assert f"<tr><th>{name}</th>{row}</tr>" in html
        scores = evaluation.per_class[name]
        assert f"| {name} | {scores['precision']:.4f} | {scores['recall']:.4f} | {scores['support']} |" in markdown
    assert sum(map(sum, matrix)) == evaluation.rows == 54
    assert f"| macro_f1 | {metrics['macro_f1']:.4f} |" in markdown
    assert "| recall.barolo |" not in markdown  # in the per-class table, not again among the metrics
    assert "| Target | cultivar (multiclass: 3 classes) |" in markdown  # the task, not a positive label


def test_the_card_shows_a_multiclass_fairness_document_as_a_group_table_and_a_class_table() -> None:
    document = fairness_report(
        CLASS_TRUE, CLASS_PRED, CLASS_GROUPS, min_group_rows=2, task="multiclass", classes=["a", "b", "c"]
    )
    html, markdown = render_card(card_context(VERSION, fairness=document))
    assert "**Failed**: Fairness failed: region selection_rate_difference 0.5000" in markdown
    assert "selection_rate_difference **0.5000** (class a), accuracy_difference **0.2500**, macro_f1_difference" in (
        markdown
    )
    assert "| X | 4 | 0.7500 | 0.7778 |" in markdown and "| Y | 4 | 0.5000 |" in markdown
    assert "| Class | X | Y |" in markdown
    assert "| a | 0.2500 | 0.7500 |" in markdown and "| b | 0.5000 | 0.0000 |" in markdown
    assert '<tr><td>c</td><td class="num">0.2500</td><td class="num">0.2500</td></tr>' in html
    assert "TPR" not in markdown  # the binary table's columns have no meaning here
