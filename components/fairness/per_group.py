"""Per-group figures of a multiclass classifier or a regressor, with fairlearn's ``MetricFrame``.

``logic.column_report`` does the binary case (selection rate, TPR, FPR); this module does the other two tasks,
one sensitive column at a time, on the model's decisions (the most probable class) or predicted values:

* multiclass: per group the rows, accuracy, macro F1 (over the classes present in the group's labels, as the
  evaluate stage computes it) and the selection rate of every class (the share of the group's rows predicted as
  that class). A column's ``selection_rate_difference`` is the largest between-group gap in any one class's
  selection rate (the class is named: ``selection_rate_difference_class``), ``accuracy_difference`` and
  ``macro_f1_difference`` the gaps in accuracy and macro F1.
* regression: per group the rows, mean error (mean of predicted - true: > 0 over-predicts the group), MAE and
  RMSE. A column's ``mean_error_difference``, ``mae_difference`` and ``rmse_difference`` are the between-group
  gaps in the target's units; ``relative_mean_error_difference`` and ``relative_mae_difference`` are the first
  two divided by the model's MAE over all the rows, so one bound fits any target scale.

Only groups with at least ``min_group_rows`` rows count in a difference; every group is reported.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SELECTION_RATE_DIFFERENCE = "selection_rate_difference"
ACCURACY_DIFFERENCE = "accuracy_difference"
MACRO_F1_DIFFERENCE = "macro_f1_difference"
RELATIVE_MEAN_ERROR_DIFFERENCE = "relative_mean_error_difference"
RELATIVE_MAE_DIFFERENCE = "relative_mae_difference"
MEAN_ERROR_DIFFERENCE = "mean_error_difference"
MAE_DIFFERENCE = "mae_difference"
RMSE_DIFFERENCE = "rmse_difference"


def spread(values: Sequence[float | None]) -> float:
    """Largest minus smallest of the defined values; 0.0 with fewer than two.

    Args:
        values: Numbers, None where undefined.

    Returns:
        The gap.
    """
    defined = [value for value in values if value is not None]
    return float(max(defined) - min(defined)) if len(defined) >= 2 else 0.0


def _compared(groups: dict[str, dict[str, Any]], min_group_rows: int) -> list[str]:
    return sorted(value for value, group in groups.items() if group["rows"] >= min_group_rows)


def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro F1 over the classes present in ``y_true`` (as ``mlkeel.metrics.multiclass_metrics``)."""
    from sklearn.metrics import f1_score

    return float(f1_score(y_true, y_pred, labels=sorted(set(y_true)), average="macro", zero_division=0))


def multiclass_column(
    y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series, classes: Sequence[str], min_group_rows: int
) -> dict[str, Any]:
    """Per-group accuracy, macro F1 and selection rate of each class for one sensitive column.

    Args:
        y_true: Class labels as text.
        y_pred: Predicted classes as text.
        groups: The group of each row (text).
        classes: The model's classes as text (every one gets a selection rate, predicted or not).
        min_group_rows: Groups with fewer rows are reported, not compared.

    Returns:
        ``{"selection_rate_difference", "selection_rate_difference_class", "accuracy_difference",
        "macro_f1_difference", "groups": {value: {"rows", "accuracy", "macro_f1", "selection_rate": {class:
        rate}}}, "compared_groups": [...]}``.
    """
    from functools import partial

    import numpy as np
    from fairlearn.metrics import MetricFrame, count, selection_rate
    from sklearn.metrics import accuracy_score

    names = [str(name) for name in classes]
    rates = {f"selection_rate.{index}": partial(selection_rate, pos_label=name) for index, name in enumerate(names)}
    frame = MetricFrame(
        metrics={"rows": count, "accuracy": accuracy_score, "macro_f1": _macro_f1, **rates},
        y_true=np.asarray(y_true).astype(str),
        y_pred=np.asarray(y_pred).astype(str),
        sensitive_features=groups.to_numpy(),
    )
    report: dict[str, dict[str, Any]] = {}
    for value, row in frame.by_group.iterrows():
        report[str(value)] = {
            "rows": int(row["rows"]),
            "accuracy": float(row["accuracy"]),
            "macro_f1": float(row["macro_f1"]),
            "selection_rate": {name: float(row[f"selection_rate.{index}"]) for index, name in enumerate(names)},
        }
    compared = _compared(report, min_group_rows)
    gaps = {name: spread([report[value]["selection_rate"][name] for value in compared]) for name in names}
    widest = max(names, key=lambda name: gaps[name]) if names else ""
    return {
        SELECTION_RATE_DIFFERENCE: gaps.get(widest, 0.0),
        "selection_rate_difference_class": widest,
        ACCURACY_DIFFERENCE: spread([report[value]["accuracy"] for value in compared]),
        MACRO_F1_DIFFERENCE: spread([report[value]["macro_f1"] for value in compared]),
        "groups": dict(sorted(report.items())),
        "compared_groups": compared,
    }


def _mean_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    import numpy as np

    return float(np.mean(np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)))


def _rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    import numpy as np

    return float(np.sqrt(np.mean((np.asarray(y_pred, dtype=float) - np.asarray(y_true, dtype=float)) ** 2)))


def regression_column(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series, min_group_rows: int) -> dict[str, Any]:
    """Per-group mean error, MAE and RMSE for one sensitive column, and their between-group gaps.

    Args:
        y_true: True values.
        y_pred: Predicted values.
        groups: The group of each row (text).
        min_group_rows: Groups with fewer rows are reported, not compared.

    Returns:
        ``{"relative_mean_error_difference", "relative_mae_difference", "mean_error_difference",
        "mae_difference", "rmse_difference", "mae": the MAE over all rows, "groups": {value: {"rows",
        "mean_error", "mae", "rmse"}}, "compared_groups": [...]}``.
    """
    import numpy as np
    from fairlearn.metrics import MetricFrame, count
    from sklearn.metrics import mean_absolute_error

    frame = MetricFrame(
        metrics={"rows": count, "mean_error": _mean_error, "mae": mean_absolute_error, "rmse": _rmse},
        y_true=np.asarray(y_true, dtype=float),
        y_pred=np.asarray(y_pred, dtype=float),
        sensitive_features=groups.to_numpy(),
    )
    report = {
        str(value): {
            "rows": int(row["rows"]),
            "mean_error": float(row["mean_error"]),
            "mae": float(row["mae"]),
            "rmse": float(row["rmse"]),
        }
        for value, row in frame.by_group.iterrows()
    }
    compared = _compared(report, min_group_rows)
    gaps = {name: spread([report[value][name] for value in compared]) for name in ("mean_error", "mae", "rmse")}
    overall_mae = float(frame.overall["mae"])

    def relative(gap: float) -> float:
        # A perfect model (MAE 0) has no gaps either: 0.0, not a division by zero.
        return gap / overall_mae if overall_mae > 0 else 0.0

    return {
        RELATIVE_MEAN_ERROR_DIFFERENCE: relative(gaps["mean_error"]),
        RELATIVE_MAE_DIFFERENCE: relative(gaps["mae"]),
        MEAN_ERROR_DIFFERENCE: gaps["mean_error"],
        MAE_DIFFERENCE: gaps["mae"],
        RMSE_DIFFERENCE: gaps["rmse"],
        "mae": overall_mae,
        "groups": dict(sorted(report.items())),
        "compared_groups": compared,
    }
