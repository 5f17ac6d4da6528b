"""Metrics of every task, computed one way for every stage (evaluate, gate, monitoring).

Binary classification (``classification_metrics``), multiclass classification (``multiclass_metrics``) and
regression (``regression_metrics``); each metric's direction is in ``HIGHER_IS_BETTER`` (lower RMSE is better),
which thresholds and the champion/challenger comparison read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from mlkeel.errors import DataError, ParameterError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

# Metric name -> True when higher is better. The gate reads the direction from here.
HIGHER_IS_BETTER: dict[str, bool] = {
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "roc_auc": True,
    "log_loss": False,
    # multiclass
    "macro_f1": True,
    "weighted_f1": True,
    "roc_auc_ovr": True,
    # regression
    "rmse": False,
    "mae": False,
    "r2": True,
    "mape": False,
}
# The metrics each task's evaluation reports (scalars; multiclass adds per-class precision and recall apart), and
# the one the gate compares champion and challenger on unless told otherwise. MAPE is left out when a target
# value is 0 (it divides by the true value).
TASK_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"),
    "multiclass": ("accuracy", "macro_f1", "weighted_f1", "log_loss", "roc_auc_ovr"),
    "regression": ("rmse", "mae", "r2", "mape"),
}
DEFAULT_TASK_METRIC: dict[str, str] = {"binary": "roc_auc", "multiclass": "macro_f1", "regression": "rmse"}
# The threshold of a model that carries none (saved before thresholds travelled with models); a model's own
# threshold comes from ``mlkeel.modeling.decision_threshold``.
DECISION_THRESHOLD = 0.5
# Train ROC AUC above the validation (or holdout) ROC AUC by more than this is reported as overfitting. Why 0.05:
# on Telco's validation part (1,127 rows, 299 positives) the bootstrap standard error of ROC AUC is about 0.014,
# so a gap of 0.05 is more than three standard errors, not noise; and it is five times the gate's default margin
# over the champion, so a model that far above its own unseen-rows score is not telling the truth about itself.
OVERFIT_ROC_AUC_GAP = 0.05


def require_metric(name: str) -> str:
    """Return ``name`` if it is a known metric.

    Args:
        name: Metric name.

    Returns:
        The same name.

    Raises:
        ParameterError: unknown metric; the message lists the known ones.
    """
    if name not in HIGHER_IS_BETTER:
        raise ParameterError(f"unknown metric {name!r}: expected one of {', '.join(HIGHER_IS_BETTER)}")
    return name


def require_task_metric(name: str, task: str) -> str:
    """Return ``name`` if it is one of ``task``'s metrics (``TASK_METRICS``).

    Args:
        name: Metric name.
        task: ``binary``, ``multiclass`` or ``regression``.

    Returns:
        The same name.

    Raises:
        ParameterError: unknown metric, or one another task reports (``rmse`` for a classifier); the message
            lists the task's metrics.
    """
    require_metric(name)
    known = TASK_METRICS.get(task)
    if known is None:
        raise ParameterError(f"unknown task {task!r}: expected one of {', '.join(TASK_METRICS)}")
    if name not in known:
        raise ParameterError(f"metric {name!r} is not a {task} metric: expected one of {', '.join(known)}")
    return name


def classification_metrics(
    y_true: np.ndarray, positive_scores: np.ndarray, threshold: float | np.ndarray = DECISION_THRESHOLD
) -> dict[str, float]:
    """Holdout metrics of a binary classifier.

    Args:
        y_true: 0/1 labels.
        positive_scores: Predicted probability of the positive class, same length.
        threshold: Decision threshold for the thresholded metrics (the model's own: ``decision_threshold``), or
            one per row (a prediction log's ``threshold`` column).

    Returns:
        accuracy, precision, recall, f1 (predicting positive at ``score >= threshold``), roc_auc and log_loss
        (threshold-free), as floats.

    Raises:
        DataError: fewer than two classes in ``y_true`` (ROC AUC is undefined) or lengths differ.
    """
    import numpy as np
    from sklearn import metrics

    y_true = np.asarray(y_true).astype(int)
    scores = np.asarray(positive_scores, dtype=float)
    if len(y_true) != len(scores):
        raise DataError(f"{len(y_true)} labels but {len(scores)} predictions")
    if len(np.unique(y_true)) < 2:
        raise DataError(f"the evaluation rows hold one class only ({len(y_true)} rows): metrics need both")
    predicted = (scores >= threshold).astype(int)
    return {
        "accuracy": float(metrics.accuracy_score(y_true, predicted)),
        "precision": float(metrics.precision_score(y_true, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(y_true, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(y_true, predicted, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(y_true, scores)),
        "log_loss": float(metrics.log_loss(y_true, np.clip(scores, 1e-15, 1 - 1e-15), labels=[0, 1])),
    }


def multiclass_metrics(
    y_true: np.ndarray, probabilities: np.ndarray, classes: Sequence[str]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Holdout metrics of a multiclass classifier; a row's predicted class is its most probable one.

    Args:
        y_true: Class labels as text, one per row.
        probabilities: Rows x classes, the model's ``predict_proba``.
        classes: The class of each probability column (the model's ``classes_`` as text), in order.

    Returns:
        ``(metrics, per_class)``: accuracy, macro_f1, weighted_f1, log_loss and roc_auc_ovr (one-vs-rest,
        macro-averaged over the classes present in ``y_true``); and class -> {precision, recall, support}.

    Raises:
        DataError: lengths differ, a label is not one of ``classes``, or fewer than two classes in ``y_true``.
    """
    import numpy as np
    from sklearn import metrics

    labels = np.asarray(y_true).astype(str)
    proba = np.asarray(probabilities, dtype=float)
    names = [str(name) for name in classes]
    if proba.ndim != 2 or len(labels) != proba.shape[0] or proba.shape[1] != len(names):
        raise DataError(f"{len(labels)} labels but predictions of shape {proba.shape} for {len(names)} classes")
    unknown = sorted(set(labels) - set(names))
    if unknown:
        raise DataError(f"the evaluation rows hold class(es) {unknown[:5]} the model never saw (it knows {names})")
    present = sorted(set(labels))
    if len(present) < 2:
        raise DataError(f"the evaluation rows hold one class only ({len(labels)} rows): metrics need two or more")
    predicted = np.asarray(names)[proba.argmax(axis=1)]
    proba = np.clip(proba, 1e-15, 1.0)
    proba = proba / proba.sum(axis=1, keepdims=True)
    precision, recall, _, support = metrics.precision_recall_fscore_support(
        labels, predicted, labels=names, zero_division=0
    )
    # One-vs-rest ROC AUC of each class present (a class absent from the rows has no positives to rank).
    aucs = [
        metrics.roc_auc_score(labels == name, proba[:, index]) for index, name in enumerate(names) if name in present
    ]
    scores = {
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "macro_f1": float(metrics.f1_score(labels, predicted, labels=present, average="macro", zero_division=0)),
        "weighted_f1": float(metrics.f1_score(labels, predicted, average="weighted", zero_division=0)),
        "log_loss": float(metrics.log_loss(labels, proba, labels=names)),
        "roc_auc_ovr": float(np.mean(aucs)),
    }
    per_class = {
        name: {"precision": float(p), "recall": float(r), "support": int(n)}
        for name, p, r, n in zip(names, precision, recall, support, strict=True)
    }
    return scores, per_class


def regression_metrics(y_true: np.ndarray, predictions: np.ndarray) -> dict[str, float]:
    """Holdout metrics of a regressor.

    Args:
        y_true: True values.
        predictions: Predicted values, same length.

    Returns:
        rmse, mae, r2, and mape (a fraction: 0.12 = 12 %) unless a true value is 0.

    Raises:
        DataError: lengths differ, fewer than two rows, or a value is not finite.
    """
    import numpy as np
    from sklearn import metrics

    truth = np.asarray(y_true, dtype=float)
    predicted = np.asarray(predictions, dtype=float)
    if len(truth) != len(predicted):
        raise DataError(f"{len(truth)} target values but {len(predicted)} predictions")
    if len(truth) < 2:
        raise DataError(f"{len(truth)} evaluation row(s): regression metrics need at least 2")
    if not (np.all(np.isfinite(truth)) and np.all(np.isfinite(predicted))):
        raise DataError("a target value or a prediction is not a finite number (NaN or infinite)")
    scores = {
        "rmse": float(np.sqrt(metrics.mean_squared_error(truth, predicted))),
        "mae": float(metrics.mean_absolute_error(truth, predicted)),
        "r2": float(metrics.r2_score(truth, predicted)),
    }
    if np.all(truth != 0):
        scores["mape"] = float(metrics.mean_absolute_percentage_error(truth, predicted))
    return scores


def task_metrics(
    task: str,
    y_true: np.ndarray,
    outputs: np.ndarray,
    classes: Sequence[str] = (),
    threshold: float = DECISION_THRESHOLD,
) -> dict[str, float]:
    """The scalar metrics of ``task`` (``TASK_METRICS``) from targets and a model's outputs.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        y_true: 0/1 labels (binary), class labels as text (multiclass) or values (regression).
        outputs: ``mlkeel.modeling.model_outputs``: positive scores, class probabilities or predicted values.
        classes: The model's classes as text, in probability-column order (multiclass only).
        threshold: The decision threshold (binary only).

    Returns:
        Metric name -> value.
    """
    if task == "binary":
        return classification_metrics(y_true, outputs, threshold)
    if task == "multiclass":
        return multiclass_metrics(y_true, outputs, classes)[0]
    return regression_metrics(y_true, outputs)


def overfit_warning(train_roc_auc: float, other_roc_auc: float, other: str = "validation") -> str:
    """A warning line when the train ROC AUC is far above ``other``'s (``OVERFIT_ROC_AUC_GAP``), else "".

    Args:
        train_roc_auc: ROC AUC on the rows the model was fitted on.
        other_roc_auc: ROC AUC on rows it never saw.
        other: Which rows those are ("validation", "holdout"), for the message.

    Returns:
        The warning, or "".
    """
    gap = train_roc_auc - other_roc_auc
    if gap <= OVERFIT_ROC_AUC_GAP:
        return ""
    return (
        f"overfitting: train roc_auc {train_roc_auc:.4f} is {gap:.4f} above {other} roc_auc {other_roc_auc:.4f} "
        f"(more than {OVERFIT_ROC_AUC_GAP}); the model learned the train rows more than the pattern"
    )


def is_improvement(metric: str, challenger: float, champion: float, margin: float) -> bool:
    """Whether ``challenger`` beats ``champion`` on ``metric`` by at least ``margin``, in the metric's direction.

    Args:
        metric: A name from ``HIGHER_IS_BETTER``.
        challenger: The challenger's score.
        champion: The champion's score on the same rows.
        margin: Required improvement (>= 0).

    Returns:
        True when the challenger is better by ``margin`` or more.
    """
    if HIGHER_IS_BETTER[require_metric(metric)]:
        return challenger >= champion + margin
    return challenger <= champion - margin


def passes_threshold(metric: str, value: float, threshold: float) -> bool:
    """Whether ``value`` is on the good side of ``threshold`` (>= for higher-is-better, <= otherwise).

    Args:
        metric: A name from ``HIGHER_IS_BETTER``.
        value: The score.
        threshold: The bound.

    Returns:
        True when the bound is met.
    """
    if HIGHER_IS_BETTER[require_metric(metric)]:
        return value >= threshold
    return value <= threshold


def shortfall(metric: str, challenger: float, champion: float) -> float:
    """How much worse ``challenger`` is than ``champion`` on ``metric``, in the metric's direction.

    Args:
        metric: A name from ``HIGHER_IS_BETTER``.
        challenger: The challenger's score.
        champion: The champion's score on the same rows.

    Returns:
        Positive when the challenger is worse, negative when it is better.
    """
    if HIGHER_IS_BETTER[require_metric(metric)]:
        return champion - challenger
    return challenger - champion


def group_values(values: pd.Series) -> pd.Series:
    """The group of each row as text, for per-group metrics (fairness groups, gate slices).

    Args:
        values: One column (any type).

    Returns:
        A string Series with the same index; a missing value is the group ``MISSING_GROUP``. Whole numbers
        read as floats (an integer column with nulls) are named as integers: ``1``, not ``1.0``.
    """
    import numpy as np
    import pandas as pd

    from mlkeel.constants import MISSING_GROUP

    present = values.dropna()
    if pd.api.types.is_float_dtype(values) and np.array_equal(present, np.round(present)):
        values = values.astype("Int64")
    return values.astype(object).where(values.notna(), MISSING_GROUP).astype(str)


def column_names(parameter: str, columns: Sequence[str] | None) -> list[str]:
    """Check a list-of-columns parameter (sensitive columns, slice columns).

    Args:
        parameter: The parameter's name, for messages.
        columns: The names, or None (= none).

    Returns:
        The names, as a list.

    Raises:
        ParameterError: an entry is not a non-empty string, or one is listed twice.
    """
    checked: list[str] = []
    for column in columns or []:
        if not isinstance(column, str) or not column.strip():
            raise ParameterError(f"{parameter}: {column!r} is not a column name")
        if column in checked:
            raise ParameterError(f"{parameter}: {column!r} is listed twice")
        checked.append(column)
    return checked
