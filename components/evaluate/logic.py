"""Evaluate: score the holdout with the trained model; the metrics and plots of the model's task.

Binary: precision, recall, F1, accuracy and the confusion matrix are at the model's own decision threshold (the
one train chose and saved inside the model; 0.5 for a model that carries none); ROC AUC and log loss need no
threshold. Multiclass: accuracy, macro and weighted F1, log loss, one-vs-rest ROC AUC, per-class precision and
recall, and the confusion matrix over every class (the most probable class is the prediction). Regression: RMSE,
MAE, R², MAPE (when no target value is 0) and a residual plot (``residual_plot``). The task is the model's own
(``mlkeel.modeling.model_task``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlkeel.metrics import DECISION_THRESHOLD

# The KFP UI draws the ROC curve from these points; a few hundred are plenty.
MAX_ROC_POINTS = 200
CLASS_NAMES = ["negative", "positive"]
# The residual plot's file, in the model's MLflow run (beside the holdout_* metrics).
RESIDUAL_PLOT_ARTIFACT = "evaluation/residuals.png"
# The residual plot draws at most this many points (a seeded sample): enough to see the shape, a small PNG.
MAX_RESIDUAL_POINTS = 5_000


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
        decision_threshold: The threshold the thresholded metrics and the confusion matrix are at (binary).
        task: ``binary``, ``multiclass`` or ``regression``.
        classes: The confusion matrix's class names in order (multiclass; binary uses ``CLASS_NAMES``).
        per_class: Class -> precision, recall and support (multiclass).
        residual_plot: The residual plot, PNG bytes (regression; not in ``to_dict``).
    """

    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    roc_fpr: list[float]
    roc_tpr: list[float]
    roc_thresholds: list[float]
    rows: int
    decision_threshold: float = DECISION_THRESHOLD
    task: str = "binary"
    classes: list[str] = field(default_factory=list)
    per_class: dict[str, dict[str, float]] = field(default_factory=dict)
    residual_plot: bytes = b""

    @property
    def class_names(self) -> list[str]:
        """The confusion matrix's row/column names."""
        return self.classes if self.task == "multiclass" else CLASS_NAMES

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (a binary evaluation's keys are today's plus ``task``)."""
        if self.task == "regression":
            return {"task": self.task, "metrics": self.metrics, "rows": self.rows}
        if self.task == "multiclass":
            return {
                "task": self.task,
                "metrics": self.metrics,
                "per_class": self.per_class,
                "classes": self.classes,
                "confusion_matrix": self.confusion_matrix,
                "rows": self.rows,
            }
        return {
            "metrics": self.metrics,
            "confusion_matrix": self.confusion_matrix,
            "roc_curve": {"fpr": self.roc_fpr, "tpr": self.roc_tpr, "thresholds": self.roc_thresholds},
            "rows": self.rows,
            "decision_threshold": self.decision_threshold,
            "task": self.task,
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


def evaluate_multiclass(y_true: Any, probabilities: Any, classes: list[str]) -> Evaluation:
    """Metrics, per-class precision/recall and the confusion matrix of a multiclass classifier.

    Args:
        y_true: Class labels as text.
        probabilities: Rows x classes (``predict_proba``).
        classes: The model's classes as text, in probability-column order.

    Returns:
        An ``Evaluation`` (task multiclass; no ROC curve: ``roc_auc_ovr`` is the one-vs-rest summary).
    """
    import numpy as np
    from sklearn.metrics import confusion_matrix

    from mlkeel.metrics import multiclass_metrics

    labels = np.asarray(y_true).astype(str)
    scores, per_class = multiclass_metrics(labels, probabilities, classes)
    predicted = np.asarray(classes)[np.asarray(probabilities).argmax(axis=1)]
    matrix = confusion_matrix(labels, predicted, labels=classes)
    return Evaluation(
        metrics=scores,
        confusion_matrix=matrix.astype(int).tolist(),
        roc_fpr=[],
        roc_tpr=[],
        roc_thresholds=[],
        rows=len(labels),
        task="multiclass",
        classes=list(classes),
        per_class=per_class,
    )


def evaluate_regression(y_true: Any, predictions: Any, seed: int = 0) -> Evaluation:
    """RMSE, MAE, R², MAPE (when no true value is 0) and the residual plot of a regressor.

    Args:
        y_true: True values.
        predictions: Predicted values.
        seed: Seed of the residual plot's sample (above ``MAX_RESIDUAL_POINTS`` rows).

    Returns:
        An ``Evaluation`` (task regression, ``residual_plot`` set).
    """
    from mlkeel.metrics import regression_metrics

    scores = regression_metrics(y_true, predictions)
    return Evaluation(
        metrics=scores,
        confusion_matrix=[],
        roc_fpr=[],
        roc_tpr=[],
        roc_thresholds=[],
        rows=len(y_true),
        task="regression",
        residual_plot=residual_plot(y_true, predictions, seed),
    )


def residual_plot(y_true: Any, predictions: Any, seed: int = 0) -> bytes:
    """Residuals (true - predicted) against predicted values, a PNG: a pattern in it is what the model misses.

    Args:
        y_true: True values.
        predictions: Predicted values.
        seed: Seed of the sample drawn above ``MAX_RESIDUAL_POINTS`` rows.

    Returns:
        The PNG bytes (matplotlib's Agg canvas; no display needed).
    """
    import io

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    truth = np.asarray(y_true, dtype=float)
    predicted = np.asarray(predictions, dtype=float)
    rows = np.arange(len(truth))
    if len(rows) > MAX_RESIDUAL_POINTS:
        rows = np.sort(np.random.default_rng(seed).choice(len(rows), MAX_RESIDUAL_POINTS, replace=False))
    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.scatter(predicted[rows], truth[rows] - predicted[rows], s=6, alpha=0.4)
    axes.axhline(0.0, color="black", linewidth=1)
    axes.set_xlabel("predicted")
    axes.set_ylabel("residual (true - predicted)")
    axes.set_title(
        f"Residuals on {len(truth):,} holdout rows" + (f" ({len(rows):,} drawn)" if len(rows) < len(truth) else "")
    )
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


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
        positive_label: Label value meaning positive (binary models only).
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``); used only with ``mlflow_run_id``.
        mlflow_run_id: The training run to add the holdout metrics to ("" = do not log): ``holdout_<metric>``,
            for multiclass also ``holdout_precision.<class>`` and ``holdout_recall.<class>``, for regression the
            residual plot (``RESIDUAL_PLOT_ARTIFACT``).
        source: Printable name of the holdout, for messages.

    Returns:
        The ``Evaluation`` of the model's task (``mlkeel.modeling.model_task``).
    """
    import pyarrow.parquet as pq

    from mlkeel.modeling import (
        binary_labels,
        decision_threshold,
        feature_frame,
        load_sklearn_model,
        model_feature_columns,
        model_outputs,
        model_task,
        one_native_thread,
        score_frame,
        task_targets,
    )

    shown = source or test_path
    frame = pq.read_table(test_path).to_pandas()
    model = load_sklearn_model(model_uri)
    if target_column not in frame.columns:
        from mlkeel.errors import SchemaMismatchError

        raise SchemaMismatchError(f"{shown}: target column {target_column!r} not found")
    task = model_task(model)
    if task == "binary":
        labels = binary_labels(frame[target_column], positive_label, shown)
        evaluation = evaluate_scores(labels, score_frame(model, frame, shown), decision_threshold(model))
    else:
        targets = task_targets(frame[target_column], task, shown)
        features = feature_frame(frame, model_feature_columns(model), shown)
        with one_native_thread():
            outputs = model_outputs(model, features, task)
        if task == "multiclass":
            evaluation = evaluate_multiclass(targets, outputs, [str(name) for name in model.classes_])
        else:
            evaluation = evaluate_regression(targets, outputs)
    if mlflow_run_id:
        log_evaluation(evaluation, mlflow_run_id, tracking_uri)
    return evaluation


def metric_key(class_name: str) -> str:
    """A class name as part of a metric name: characters MLflow refuses in metric keys become ``_``.

    Args:
        class_name: The class as text.

    Returns:
        Letters, digits, ``_ - . /`` and spaces kept, the rest ``_``.
    """
    import re

    return re.sub(r"[^\w\-. /]", "_", class_name)


def log_evaluation(evaluation: Evaluation, mlflow_run_id: str, tracking_uri: str = "") -> None:
    """Add the holdout metrics (and a regression's residual plot) to the model's MLflow run.

    Args:
        evaluation: From ``evaluate``.
        mlflow_run_id: The training run.
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``).
    """
    import time

    from mlflow.entities import Metric

    from mlkeel.tracking import connect

    now = int(time.time() * 1000)
    values = {f"holdout_{name}": value for name, value in evaluation.metrics.items()}
    for name, scores in evaluation.per_class.items():
        values[f"holdout_precision.{metric_key(name)}"] = scores["precision"]
        values[f"holdout_recall.{metric_key(name)}"] = scores["recall"]
    client = connect(tracking_uri)
    client.log_batch(mlflow_run_id, metrics=[Metric(key, value, now, 0) for key, value in values.items()])
    if evaluation.residual_plot:
        import tempfile
        from pathlib import Path

        folder, name = RESIDUAL_PLOT_ARTIFACT.rsplit("/", 1)
        with tempfile.TemporaryDirectory(prefix="mlkeel-evaluate-") as directory:
            (Path(directory) / name).write_bytes(evaluation.residual_plot)
            client.log_artifact(mlflow_run_id, str(Path(directory) / name), artifact_path=folder)
