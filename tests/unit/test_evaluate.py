"""Evaluate: metrics, confusion matrix and ROC curve a user reads in the KFP UI, and holdout metrics in MLflow."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from mlkeel.components.evaluate.logic import MAX_ROC_POINTS, evaluate, evaluate_scores
from mlkeel.components.train.logic import train
from mlkeel.errors import DataError, SchemaMismatchError


def test_confusion_matrix_and_metrics_match_a_hand_count() -> None:
    labels = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    scores = np.array([0.9, 0.8, 0.3, 0.6, 0.2, 0.1, 0.4, 0.7])
    evaluation = evaluate_scores(labels, scores)
    # positives: 0.9, 0.8, 0.7 caught, 0.3 missed; negatives: 0.6 false alarm, three correct.
    assert evaluation.confusion_matrix == [[3, 1], [1, 3]]
    assert evaluation.metrics["accuracy"] == 0.75
    assert evaluation.metrics["precision"] == 0.75 and evaluation.metrics["recall"] == 0.75
    assert evaluation.metrics["roc_auc"] == pytest.approx(roc_auc_score(labels, scores))
    assert all(0.0 <= threshold <= 1.0 for threshold in evaluation.roc_thresholds)


def test_roc_curve_is_thinned_and_finite() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 20_000)
    scores = np.clip(labels * 0.2 + rng.random(20_000) * 0.8, 0, 1)
    evaluation = evaluate_scores(labels, scores)
    assert len(evaluation.roc_fpr) <= MAX_ROC_POINTS
    assert evaluation.roc_fpr[0] == 0.0 and evaluation.roc_tpr[-1] == 1.0
    assert all(math.isfinite(value) for value in evaluation.roc_thresholds)


def test_one_class_holdout_is_refused() -> None:
    with pytest.raises(DataError, match="one class only"):
        evaluate_scores(np.zeros(5), np.linspace(0, 1, 5))


def test_evaluate_logs_holdout_metrics_to_the_training_run(
    telco_split: tuple[Path, Path], tmp_path: Path, mlflow_local_uri: str
) -> None:
    from mlflow.tracking import MlflowClient

    train_path, test_path = telco_split
    trained = train(
        str(train_path),
        str(tmp_path / "model"),
        "Churn",
        "Yes",
        ["customerID"],
        "logistic_regression",
        tracking_uri=mlflow_local_uri,
        experiment_name="unit",
    )
    evaluation = evaluate(
        str(tmp_path / "model"), str(test_path), "Churn", "Yes", mlflow_local_uri, trained.mlflow_run_id
    )
    logged = MlflowClient(mlflow_local_uri, registry_uri=mlflow_local_uri).get_run(trained.mlflow_run_id).data.metrics
    assert evaluation.rows == 1409
    assert logged["holdout_roc_auc"] == pytest.approx(evaluation.metrics["roc_auc"])
    assert sum(map(sum, evaluation.confusion_matrix)) == 1409
    with pytest.raises(SchemaMismatchError, match="target column 'label' not found"):
        evaluate(str(tmp_path / "model"), str(test_path), "label", "Yes")
