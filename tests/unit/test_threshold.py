"""Issue 15: a rare-positive table, where a 0.5 threshold predicts no positive at all.

The table is the bundled Telco churn data with its churners subsampled (seeded) to 1.7 % of the rows
(``telco_rare_split``). A model that ranks well there still gives no row a churn probability of 0.5; the
threshold chosen on a validation part of the train split makes it predict churners, and every consumer of the
saved model (evaluate, gate, batch predict, serving) uses that threshold.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlkeel.components.train.logic import fit_model, train
from mlkeel.components.train.validation import VALIDATION_FRACTION
from mlkeel.constants import LineageTag, TrainParam
from mlkeel.errors import ParameterError
from mlkeel.metrics import classification_metrics
from mlkeel.modeling import binary_labels, decision_threshold, load_sklearn_model, positive_scores
from mlkeel.threshold import ThresholdPolicy, choose_threshold, parse_policy


@pytest.fixture(scope="module")
def rare(telco_rare_split: tuple[Path, Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    train_path, test_path = telco_rare_split
    return pq.read_table(train_path).to_pandas(), pq.read_table(test_path).to_pandas()


@pytest.fixture
def rare_trained(telco_rare_split: tuple[Path, Path], mlflow_shared_uri: str, tmp_path_factory) -> tuple[Path, object]:
    """The default estimator (histogram gradient boosting), policy f1, trained on the rare train split, logged."""
    folder = tmp_path_factory.mktemp("rare_model")
    result = train(
        str(telco_rare_split[0]),
        str(folder / "model"),
        "Churn",
        "Yes",
        ["customerID"],
        tracking_uri=mlflow_shared_uri,
        experiment_name="mlkeel-rare",
        threshold_policy="f1",
    )
    return folder / "model", result


def test_the_rare_table_is_what_the_issue_describes(rare: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train_frame, test_frame = rare
    both = pd.concat([train_frame, test_frame])
    assert len(both) == 5263 and (both["Churn"] == "Yes").sum() == 89  # 1.69 %
    assert (test_frame["Churn"] == "Yes").sum() == 18 and len(test_frame) == 1053


def test_the_chosen_threshold_finds_churners_where_0_5_finds_none(rare: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    train_frame, test_frame = rare
    fitted = fit_model(train_frame, "Churn", "Yes", ["customerID"], threshold_policy="f1")  # boosting, best F1
    labels = binary_labels(test_frame["Churn"], "Yes")
    scores = positive_scores(fitted.model, test_frame)
    threshold = decision_threshold(fitted.model)

    at_half = classification_metrics(labels, scores, 0.5)
    at_chosen = classification_metrics(labels, scores, threshold)
    # What the user saw: a model that ranks churners well above chance predicts none of them at 0.5.
    assert at_half["roc_auc"] > 0.65 and int((scores >= 0.5).sum()) == 0
    assert at_half["precision"] == at_half["recall"] == at_half["f1"] == 0.0
    # The threshold chosen on the validation part of the train split predicts churners on the holdout.
    assert 0 < threshold < 0.5
    assert at_chosen["recall"] > 0 and at_chosen["f1"] > 0 and at_chosen["precision"] > 0
    assert at_chosen["roc_auc"] == at_half["roc_auc"]  # the ranking metric does not depend on the threshold
    # The saved model's own predict() applies the threshold, so a plain scikit-learn or MLflow user gets it too.
    np.testing.assert_array_equal(fitted.model.predict(test_frame[fitted.feature_columns]), scores >= threshold)
    # Chosen on the train split only: fit and validation parts cover it, the holdout is never read.
    validation = fitted.validation
    assert validation is not None
    assert validation.fit_rows + validation.validation_rows == len(train_frame)
    assert validation.validation_rows == pytest.approx(VALIDATION_FRACTION * len(train_frame), abs=1)


def test_early_stopping_and_train_vs_validation_scores_show_overfitting(
    rare: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    fitted = fit_model(rare[0], "Churn", "Yes", ["customerID"])
    validation = fitted.validation
    assert validation is not None
    assert validation.iterations is not None and validation.iterations < 200  # stopped early, seeded
    assert validation.iterations == fit_model(rare[0], "Churn", "Yes", ["customerID"]).validation.iterations
    assert validation.train_metrics["roc_auc"] - validation.validation_metrics["roc_auc"] > 0.05
    assert validation.overfit_warning.startswith("overfitting: train roc_auc")


def test_policies_meet_their_targets_on_the_validation_rows(telco_split: tuple[Path, Path]) -> None:
    train_frame = pq.read_table(telco_split[0]).to_pandas()
    by_policy = {
        policy: fit_model(train_frame, "Churn", "Yes", ["customerID"], "logistic_regression", threshold_policy=policy)
        for policy in ("f1", "precision:0.7", "recall:0.95", "fixed:0.5")
    }
    thresholds = {policy: fitted.validation.threshold for policy, fitted in by_policy.items()}
    assert by_policy["precision:0.7"].validation.validation_metrics["precision"] >= 0.7
    assert by_policy["recall:0.95"].validation.validation_metrics["recall"] >= 0.95
    assert thresholds["fixed:0.5"] == 0.5
    assert thresholds["recall:0.95"] < thresholds["f1"] < thresholds["precision:0.7"]
    # Same estimator and seed: the same fitted model whatever the policy, so ROC AUC is unchanged.
    aucs = {round(fitted.validation.validation_metrics["roc_auc"], 12) for fitted in by_policy.values()}
    assert len(aucs) == 1


def test_choose_threshold_by_hand_and_bad_policies_are_named() -> None:
    labels = [0, 0, 1, 0, 1, 1]
    scores = [0.1, 0.2, 0.3, 0.4, 0.8, 0.9]
    # >= 0.3 gives 3 TP of 4 predicted (F1 0.857); >= 0.8 gives 2 of 2 (F1 0.8).
    assert choose_threshold(labels, scores, "f1").threshold == 0.3
    assert choose_threshold(labels, scores, "precision:1").threshold == 0.8
    assert choose_threshold(labels, scores, "recall:1").threshold == 0.3
    unmet = choose_threshold([0, 1, 0], [0.9, 0.5, 0.1], "precision:1")
    assert "no threshold reaches precision 1" in unmet.note
    assert "one class only" in choose_threshold([0, 0], [0.1, 0.2], "f1").note
    assert parse_policy("Precision:0.8") == ThresholdPolicy("precision", 0.8) and str(parse_policy("")) == "fixed:0.5"
    for bad, message in [
        ("f2", "expected f1, precision:P"),
        ("precision", "needs a number"),
        ("recall:1.5", r"must be in \(0, 1\]"),
        ("f1:0.3", "takes no number"),
    ]:
        with pytest.raises(ParameterError, match=message):
            parse_policy(bad)


def test_class_weight_balanced_reweights_and_bad_values_are_refused(rare: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    balanced = fit_model(rare[0], "Churn", "Yes", ["customerID"], "logistic_regression", class_weight="balanced")
    plain = fit_model(rare[0], "Churn", "Yes", ["customerID"], "logistic_regression")
    test_frame = rare[1]
    # Reweighted, churners get far higher probabilities (on average over the holdout).
    assert positive_scores(balanced.model, test_frame).mean() > 5 * positive_scores(plain.model, test_frame).mean()
    assert balanced.params[TrainParam.CLASS_WEIGHT] == "balanced"
    with pytest.raises(ParameterError, match="class_weight 'heavy'"):
        fit_model(rare[0], "Churn", "Yes", ["customerID"], class_weight="heavy")


def test_the_threshold_travels_with_the_saved_model_to_every_consumer(
    rare_trained, telco_rare_split: tuple[Path, Path], mlflow_shared_uri: str, model_name: str, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    from mlkeel.components.batch_predict.logic import batch_predict
    from mlkeel.components.evaluate.logic import evaluate
    from mlkeel.components.serve.logic import load_serving_model

    model_dir, result = rare_trained
    test_path = telco_rare_split[1]
    threshold = result.decision_threshold
    assert 0 < threshold < 0.5 and result.threshold_policy == "f1"
    assert decision_threshold(load_sklearn_model(str(model_dir))) == threshold
    assert decision_threshold(load_sklearn_model(result.mlflow_model_uri)) == threshold
    run = MlflowClient(mlflow_shared_uri).get_run(result.mlflow_run_id)
    assert float(run.data.params[TrainParam.DECISION_THRESHOLD]) == threshold
    assert float(run.data.tags[LineageTag.DECISION_THRESHOLD]) == threshold
    assert run.data.metrics["validation_roc_auc"] < run.data.metrics["train_roc_auc"]

    evaluation = evaluate(str(model_dir), str(test_path), "Churn", "Yes")
    assert evaluation.decision_threshold == threshold
    assert evaluation.metrics["recall"] > 0 and evaluation.metrics["f1"] > 0
    assert sum(evaluation.confusion_matrix[1]) == 18 and evaluation.confusion_matrix[1][1] > 0

    log_path = tmp_path / "predictions.parquet"
    scored = batch_predict(str(model_dir), str(test_path), str(log_path), key_column="customerID")
    log = pq.read_table(log_path).to_pandas()
    assert scored.threshold == threshold and set(log["threshold"]) == {threshold}
    np.testing.assert_array_equal(log["prediction"].to_numpy() == 1, log["probability"].to_numpy() >= threshold)
    assert log["prediction"].sum() > 0  # at 0.5 it would be 0

    assert load_serving_model(str(model_dir)).threshold == threshold  # serve's --threshold defaults to it
    assert load_serving_model(str(model_dir), threshold=0.5).threshold == 0.5  # and can still be overridden


def test_the_gate_refuses_a_challenger_that_predicts_one_class_and_says_why(
    telco_rare_split: tuple[Path, Path], mlflow_shared_uri: str, model_name: str, tmp_path: Path
) -> None:
    from mlkeel.components.evaluate.logic import evaluate
    from mlkeel.components.gate.logic import gate

    train_path, test_path = telco_rare_split
    model_dir = tmp_path / "fixed-half"
    # Today's behaviour, kept as a policy: a threshold of 0.5 on a 1.7 % table.
    train(str(train_path), str(model_dir), "Churn", "Yes", ["customerID"], tracking_uri=mlflow_shared_uri,
          experiment_name="mlkeel-rare", threshold_policy="fixed:0.5")  # fmt: skip
    metrics = evaluate(str(model_dir), str(test_path), "Churn", "Yes").metrics
    assert metrics["roc_auc"] > 0.65 and metrics["recall"] == 0.0

    blessing = gate(
        str(model_dir), str(test_path), metrics, model_name, "Churn", "Yes", str(tmp_path / "blessing.json"),
        mlflow_shared_uri, thresholds={"roc_auc": 0.6},
    )  # fmt: skip

    assert not blessing.blessed  # ROC AUC alone (0.6 bound, no champion) would have blessed it
    assert blessing.reason == (
        "Not blessed: the challenger predicts one class only: no positive among the 1053 holdout rows at its "
        "decision threshold 0.5000, while 18 are positive (its precision, recall and F1 are 0)."
    )
    assert blessing.predictions == {"rows": 1053, "actual_positive": 18, "predicted_positive": 0, "threshold": 0.5}
