"""Binary-classification metrics, computed one way for every stage (evaluate, gate, monitoring)."""

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
}
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
