"""Evaluate: score the holdout with the trained model; metrics, confusion matrix and ROC curve.

Precision, recall, F1, accuracy and the confusion matrix are at the model's own decision threshold (the one train
chose and saved inside the model; 0.5 for a model that carries none); ROC AUC and log loss need no threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mlkeel.metrics import DECISION_THRESHOLD

# The KFP UI draws the ROC curve from these points; a few hundred are plenty.
MAX_ROC_POINTS = 200
CLASS_NAMES = ["negative", "positive"]


@dataclass(frozen=True)
class Evaluation:
    """Holdout evaluation of a binary classifier.

    Attributes:
        metrics: accuracy, precision, recall, f1, roc_auc, log_loss.
        confusion_matrix: 2x2, rows = actual [negative, positive], columns = predicted.
        roc_fpr: False positive rates of the ROC curve.
        roc_tpr: True positive rates.
        roc_thresholds: Score thresholds (finite, in [0, 1]).
        rows: Holdout rows scored.
        decision_threshold: The threshold the thresholded metrics and the confusion matrix are at.
    """

    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    roc_fpr: list[float]
    roc_tpr: list[float]
    roc_thresholds: list[float]
    rows: int
    decision_threshold: float = DECISION_THRESHOLD

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "metrics": self.metrics,
            "confusion_matrix": self.confusion_matrix,
            "roc_curve": {"fpr": self.roc_fpr, "tpr": self.roc_tpr, "thresholds": self.roc_thresholds},
            "rows": self.rows,
            "decision_threshold": self.decision_threshold,
        }


def evaluate_scores(y_true: Any, scores: Any, threshold: float = DECISION_THRESHOLD) -> Evaluation:
    """Metrics, confusion matrix and a thinned ROC curve from labels and positive-class scores.

    Args:
        y_true: 0/1 labels.
        scores: Positive-class probabilities.
        threshold: The decision threshold (a row is predicted positive when its score is >= it).

    Returns:
        An ``Evaluation``.
    """
    import numpy as np
    from sklearn.metrics import confusion_matrix, roc_curve

    from mlkeel.metrics import classification_metrics

    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(scores, dtype=float)
    metrics = classification_metrics(y_true, scores, threshold)
    matrix = confusion_matrix(y_true, (scores >= threshold).astype(int), labels=[0, 1])
    fpr, tpr, thresholds = roc_curve(y_true, scores, drop_intermediate=True)
    thresholds = np.clip(thresholds, 0.0, 1.0)  # the first threshold is +inf by convention
    if len(fpr) > MAX_ROC_POINTS:
        keep = np.unique(np.linspace(0, len(fpr) - 1, MAX_ROC_POINTS).round().astype(int))
        fpr, tpr, thresholds = fpr[keep], tpr[keep], thresholds[keep]
    return Evaluation(
        metrics=metrics,
        confusion_matrix=matrix.astype(int).tolist(),
        roc_fpr=[float(value) for value in fpr],
        roc_tpr=[float(value) for value in tpr],
        roc_thresholds=[float(value) for value in thresholds],
        rows=len(y_true),
        decision_threshold=float(threshold),
    )


def evaluate(
    model_uri: str,
    test_path: str,
    target_column: str,
    positive_label: str,
    tracking_uri: str = "",
    mlflow_run_id: str = "",
    source: str = "",
) -> Evaluation:
    """Score the holdout Parquet with the model and, given a run id, log ``holdout_*`` metrics to MLflow.

    Args:
        model_uri: Model directory (MLflow sklearn format) or MLflow model URI.
        test_path: Holdout rows (Parquet) with the target column.
        target_column: The label column.
        positive_label: Label value meaning positive.
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``); used only with ``mlflow_run_id``.
        mlflow_run_id: The training run to add the holdout metrics to ("" = do not log).
        source: Printable name of the holdout, for messages.

    Returns:
        The ``Evaluation``.
    """
    import pyarrow.parquet as pq

    from mlkeel.modeling import binary_labels, decision_threshold, load_sklearn_model, score_frame

    shown = source or test_path
    frame = pq.read_table(test_path).to_pandas()
    model = load_sklearn_model(model_uri)
    if target_column not in frame.columns:
        from mlkeel.errors import SchemaMismatchError

        raise SchemaMismatchError(f"{shown}: target column {target_column!r} not found")
    labels = binary_labels(frame[target_column], positive_label, shown)
    scores = score_frame(model, frame, shown)
    evaluation = evaluate_scores(labels, scores, decision_threshold(model))
    if mlflow_run_id:
        import time

        from mlflow.entities import Metric

        from mlkeel.tracking import connect

        now = int(time.time() * 1000)
        connect(tracking_uri).log_batch(
            mlflow_run_id,
            metrics=[Metric(f"holdout_{name}", value, now, 0) for name, value in evaluation.metrics.items()],
        )
    return evaluation
