"""Fairness: how the model's decisions (or errors) differ between the groups of each sensitive column, on the holdout.

For every configured sensitive column (e.g. ``gender``, ``SeniorCitizen``) and every value of it (a group), the
figures that fit the model's task (``mlkeel.modeling.model_task``), computed with fairlearn's ``MetricFrame``:

* binary: rows, selection rate (share predicted positive), true positive rate and false positive rate. Two
  differences summarise a column, fairlearn's definitions::

      demographic parity difference = max - min selection rate over the groups
      equalized odds difference     = max(max - min TPR, max - min FPR) over the groups

  Decisions are the model's predictions at its own decision threshold (``mlkeel.modeling.decision_threshold``),
  as in the evaluate stage. A rate is ``None`` where it is undefined: TPR for a group without a positive label,
  FPR for one without a negative (fairlearn reports those as 0.0, which would count as a real rate in a
  difference, so this module blanks them and leaves them out).
* multiclass: rows, accuracy, macro F1 and the selection rate of every class (decision: the most probable
  class). Checked: ``selection_rate_difference`` (the largest gap between groups in any one class's selection
  rate: demographic parity per class) and ``accuracy_difference``; ``macro_f1_difference`` is reported.
* regression: rows, mean error (predicted - true: > 0 over-predicts), MAE and RMSE. Checked, scale-free:
  ``relative_mean_error_difference`` (the gap in mean error between groups divided by the model's MAE on the
  holdout: one group's predictions biased against another's) and ``relative_mae_difference`` (the gap in MAE,
  likewise: one group served worse); the gaps in the target's units are reported beside them. A demographic
  parity bound means nothing for a number, and a bound in minutes or dollars would not fit another target: a
  gap of half the model's typical error is a large one whatever the unit.

Each task's differences have their own thresholds (``DEFAULT_THRESHOLDS_BY_TASK``): a ``thresholds`` mapping may
name the differences of any task (one mapping for a pipeline whose task is inferred); those of another task than
the model's are ignored and listed in the document (``ignored_thresholds``). Groups with fewer than
``min_group_rows`` holdout rows are reported but left out of the differences (a group of 5 rows makes any
difference noise).

The check fails when a column's difference exceeds its threshold; the report is data first (``to_dict``), with
a one-sentence reason that names the column, the difference and the groups. The gate reads the report and
refuses the model when it failed.

``fairness_report`` is a pure function on labels, decisions and group values; ``fairness`` does the I/O.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlkeel.components.fairness.per_group import (
    ACCURACY_DIFFERENCE,
    MACRO_F1_DIFFERENCE,
    MAE_DIFFERENCE,
    MEAN_ERROR_DIFFERENCE,
    RELATIVE_MAE_DIFFERENCE,
    RELATIVE_MEAN_ERROR_DIFFERENCE,
    RMSE_DIFFERENCE,
    SELECTION_RATE_DIFFERENCE,
    multiclass_column,
    regression_column,
    spread,
)
from mlkeel.constants import FAIRNESS_ARTIFACT_FILE, FairnessRunMetric
from mlkeel.errors import ParameterError, SchemaMismatchError
from mlkeel.metrics import column_names
from mlkeel.task import TASKS, Task

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

DEMOGRAPHIC_PARITY = "demographic_parity_difference"
EQUALIZED_ODDS = "equalized_odds_difference"
# Defaults for any dataset: a gap of 0.2 in selection rate (or in TPR/FPR) between two groups is a large one.
DEFAULT_THRESHOLDS: dict[str, float] = {DEMOGRAPHIC_PARITY: 0.2, EQUALIZED_ODDS: 0.2}
# The checked differences of each task and their default bounds. Multiclass: the binary bounds' reasoning, per
# class (a gap of 0.2 in the share of a group predicted as one class) and in accuracy. Regression: relative to
# the model's MAE, a gap of half the typical error. Measured on diabetes by sex (two groups of ~55 holdout rows,
# four models): relative mean error gaps 0.005-0.52, relative MAE gaps 0.03-0.21; with groups that small the
# standard error of a mean-error gap is about a quarter of the MAE, so 0.5 is two standard errors.
DEFAULT_THRESHOLDS_BY_TASK: dict[str, dict[str, float]] = {
    Task.BINARY.value: DEFAULT_THRESHOLDS,
    Task.MULTICLASS.value: {SELECTION_RATE_DIFFERENCE: 0.2, ACCURACY_DIFFERENCE: 0.2},
    Task.REGRESSION.value: {RELATIVE_MEAN_ERROR_DIFFERENCE: 0.5, RELATIVE_MAE_DIFFERENCE: 0.5},
}
# Differences reported (document, MLflow metrics, metadata) beside the checked ones, without a bound.
REPORTED_DIFFERENCES: dict[str, tuple[str, ...]] = {
    Task.BINARY.value: (),
    Task.MULTICLASS.value: (MACRO_F1_DIFFERENCE,),
    Task.REGRESSION.value: (MEAN_ERROR_DIFFERENCE, MAE_DIFFERENCE, RMSE_DIFFERENCE),
}
# Bounds that are a share of the MAE (any number >= 0); every other bound is a gap between two rates, 0 to 1.
RELATIVE_DIFFERENCES = frozenset({RELATIVE_MEAN_ERROR_DIFFERENCE, RELATIVE_MAE_DIFFERENCE})
DEFAULT_MIN_GROUP_ROWS = 30


def differences(task: str) -> tuple[str, ...]:
    """Every difference a column of ``task`` reports: the checked ones first, then the reported ones.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.

    Returns:
        The difference names.
    """
    return (*DEFAULT_THRESHOLDS_BY_TASK[task], *REPORTED_DIFFERENCES[task])


def check_parameters(
    sensitive_columns: Sequence[str] | None,
    thresholds: Mapping[str, Any] | None,
    min_group_rows: int,
    task: str = Task.BINARY.value,
) -> tuple[list[str], dict[str, float]]:
    """Validate the fairness parameters.

    Args:
        sensitive_columns: Column names, or None.
        thresholds: Bounds by difference name, of any task's (``DEFAULT_THRESHOLDS_BY_TASK``); missing names of
            ``task`` take its defaults, names of another task are checked and left out.
        min_group_rows: Smallest group that counts in a difference, >= 1.
        task: The model's task.

    Returns:
        ``(columns, thresholds)``: the columns without duplicates, ``task``'s bounds as floats.

    Raises:
        ParameterError: an empty or repeated column name, an unknown task or threshold name, a bound that is not
            a number in [0, 1] (>= 0 for the relative regression differences), or ``min_group_rows`` < 1.
    """
    columns = column_names("sensitive_columns", sensitive_columns)
    if task not in TASKS:
        raise ParameterError(f"fairness task {task!r}: expected one of {', '.join(TASKS)}")
    bounds = dict(DEFAULT_THRESHOLDS_BY_TASK[task])
    for name, bound in (thresholds or {}).items():
        if not any(name in names for names in DEFAULT_THRESHOLDS_BY_TASK.values()):
            expected = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in DEFAULT_THRESHOLDS_BY_TASK.items())
            raise ParameterError(f"fairness thresholds name unknown difference {name!r}: expected {expected}")
        number = not isinstance(bound, bool) and isinstance(bound, int | float) and math.isfinite(bound)
        if name in RELATIVE_DIFFERENCES:
            if not number or bound < 0:
                raise ParameterError(
                    f"fairness thresholds[{name!r}]={bound!r}: must be a number >= 0 (a share of the model's MAE)"
                )
        elif not number or not 0 <= bound <= 1:
            raise ParameterError(f"fairness thresholds[{name!r}]={bound!r}: must be a number from 0 to 1")
        if name in bounds:
            bounds[name] = float(bound)
    if isinstance(min_group_rows, bool) or not isinstance(min_group_rows, int) or min_group_rows < 1:
        raise ParameterError(f"min_group_rows={min_group_rows!r}: must be an integer >= 1")
    return columns, bounds


def _rate(value: float, defined: bool) -> float | None:
    return float(value) if defined else None


def column_report(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series, min_group_rows: int) -> dict[str, Any]:
    """Per-group rates and the two differences for one sensitive column.

    Args:
        y_true: 0/1 labels.
        y_pred: 0/1 decisions of the model.
        groups: The group of each row (text).
        min_group_rows: Groups with fewer rows are reported, not compared.

    Returns:
        ``{"demographic_parity_difference", "equalized_odds_difference", "groups": {value: {"rows",
        "selection_rate", "tpr", "fpr"}}, "compared_groups": [...]}``.
    """
    import numpy as np
    from fairlearn.metrics import MetricFrame, count, false_positive_rate, selection_rate, true_positive_rate

    frame = MetricFrame(
        metrics={
            "rows": count,
            "positives": lambda y_true, y_pred: int(np.sum(y_true)),
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
        },
        y_true=np.asarray(y_true).astype(int),
        y_pred=np.asarray(y_pred).astype(int),
        sensitive_features=groups.to_numpy(),
    )
    report: dict[str, dict[str, Any]] = {}
    for value, row in frame.by_group.iterrows():
        rows, positives = int(row["rows"]), int(row["positives"])
        report[str(value)] = {
            "rows": rows,
            "selection_rate": float(row["selection_rate"]),
            "tpr": _rate(row["tpr"], positives > 0),
            "fpr": _rate(row["fpr"], positives < rows),
        }
    compared = sorted(value for value, group in report.items() if group["rows"] >= min_group_rows)
    rates = {name: [report[value][name] for value in compared] for name in ("selection_rate", "tpr", "fpr")}
    return {
        DEMOGRAPHIC_PARITY: spread(rates["selection_rate"]),
        EQUALIZED_ODDS: max(spread(rates["tpr"]), spread(rates["fpr"])),
        "groups": dict(sorted(report.items())),
        "compared_groups": compared,
    }


def _group_rates(column: Mapping[str, Any], name: str) -> str:
    field = "selection_rate" if name == DEMOGRAPHIC_PARITY else None
    parts = []
    for value in column["compared_groups"]:
        group = column["groups"][value]
        if field:
            parts.append(f"{value} {group[field]:.4f}")
        else:
            tpr, fpr = (f"{group[key]:.4f}" if group[key] is not None else "n/a" for key in ("tpr", "fpr"))
            parts.append(f"{value} TPR {tpr} FPR {fpr}")
    label = "selection rate" if field else "rates"
    return f"{label} by group: {', '.join(parts)}"


def _by_group(column: Mapping[str, Any], label: str, read: Any) -> str:
    parts = ", ".join(f"{value} {read(column['groups'][value]):.4f}" for value in column["compared_groups"])
    return f"{label} by group: {parts}"


def _details(task: str, column: Mapping[str, Any], names: Sequence[str]) -> str:
    """The per-group figures behind some differences of one column, for the reason sentence."""
    if task == Task.BINARY:
        return _group_rates(column, names[0])
    parts: list[str] = []
    if task == Task.MULTICLASS:
        if SELECTION_RATE_DIFFERENCE in names:
            widest = column["selection_rate_difference_class"]
            parts.append(
                _by_group(column, f"selection rate of class {widest}", lambda group: group["selection_rate"][widest])
            )
        if ACCURACY_DIFFERENCE in names:
            parts.append(_by_group(column, "accuracy", lambda group: group["accuracy"]))
        return "; ".join(parts)
    if RELATIVE_MEAN_ERROR_DIFFERENCE in names:
        parts.append(_by_group(column, "mean error (predicted - true)", lambda group: group["mean_error"]))
    if RELATIVE_MAE_DIFFERENCE in names:
        parts.append(_by_group(column, "MAE", lambda group: group["mae"]))
    return "; ".join([*parts, f"MAE over all rows {column['mae']:.4f}"])


def column_figures(
    task: str, y_true: Any, y_pred: Any, groups: pd.Series, min_group_rows: int, classes: Sequence[str] = ()
) -> dict[str, Any]:
    """The per-group figures and differences of one sensitive column, for the model's task.

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        y_true: 0/1 labels, class labels as text, or true values.
        y_pred: 0/1 decisions, predicted classes as text, or predicted values.
        groups: The group of each row (text).
        min_group_rows: Groups with fewer rows are reported, not compared.
        classes: The model's classes as text (multiclass).

    Returns:
        ``column_report``, ``per_group.multiclass_column`` or ``per_group.regression_column``.
    """
    if task == Task.MULTICLASS:
        return multiclass_column(y_true, y_pred, groups, classes, min_group_rows)
    if task == Task.REGRESSION:
        return regression_column(y_true, y_pred, groups, min_group_rows)
    return column_report(y_true, y_pred, groups, min_group_rows)


def fairness_report(
    y_true: Any,
    y_pred: Any,
    groups: Mapping[str, pd.Series],
    thresholds: Mapping[str, Any] | None = None,
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS,
    task: str = Task.BINARY.value,
    classes: Sequence[str] = (),
) -> dict[str, Any]:
    """The fairness document for some sensitive columns, from labels and decisions (no I/O).

    Args:
        y_true: One per row: 0/1 labels (binary), class labels (multiclass) or true values (regression).
        y_pred: One per row: 0/1 decisions, predicted classes, or predicted values.
        groups: Sensitive column name -> its value on each row (any type; missing values are one group).
        thresholds: Bounds by difference name (any task's); missing names of ``task`` take its defaults
            (``DEFAULT_THRESHOLDS_BY_TASK``), names of another task are ignored.
        min_group_rows: Groups with fewer rows are reported, not compared.
        task: The model's task.
        classes: The model's classes as text (multiclass: each gets a selection rate per group).

    Returns:
        ``{"configured", "task", "sensitive_columns", "thresholds" (the task's, applied), "ignored_thresholds"
        (names given for another task), "min_group_rows", "by_column": {column: figures}, "passed", "reason",
        "failures": [{"column", "difference", "value", "threshold"}]}``.

    Raises:
        ParameterError: see ``check_parameters``.
    """
    from mlkeel.metrics import group_values

    columns, bounds = check_parameters(list(groups), thresholds, min_group_rows, task)
    by_column = {
        column: column_figures(task, y_true, y_pred, group_values(groups[column]), min_group_rows, classes)
        for column in columns
    }
    failures = [
        {"column": column, "difference": name, "value": report[name], "threshold": bounds[name]}
        for column, report in by_column.items()
        for name in bounds
        if report[name] > bounds[name]
    ]
    if not columns:
        reason = "No sensitive columns configured: fairness not checked."
    elif failures:
        reason = (
            "Fairness failed: "
            + "; ".join(
                f"{failure['column']} {failure['difference']} {failure['value']:.4f} exceeds the threshold "
                f"{failure['threshold']:.4f} ({_details(task, by_column[failure['column']], [failure['difference']])})"
                for failure in failures
            )
            + "."
        )
    else:
        reason = (
            "Fairness passed: "
            + "; ".join(
                f"{column} "
                + ", ".join(f"{name} {report[name]:.4f} <= {bound:.4f}" for name, bound in bounds.items())
                # A binary pass names the differences only (as it always has); the other tasks add their groups.
                + ("" if task == Task.BINARY else f" ({_details(task, report, list(bounds))})")
                for column, report in by_column.items()
            )
            + "."
        )
    return {
        "configured": bool(columns),
        "task": task,
        "sensitive_columns": columns,
        "thresholds": bounds,
        "ignored_thresholds": sorted(set(thresholds or {}) - set(bounds)),
        "min_group_rows": min_group_rows,
        "by_column": by_column,
        "passed": not failures,
        "reason": reason,
        "failures": failures,
    }


def _column_differences(document: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """``(column, difference, value)`` for every difference the document's task reports."""
    names = differences(str(document.get("task") or Task.BINARY.value))
    return [
        (column, name, float(report[name]))
        for column, report in document["by_column"].items()
        for name in names
        if name in report
    ]


def run_metrics(document: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a fairness document as MLflow metrics.

    Args:
        document: A ``fairness_report`` result.

    Returns:
        ``fairness_passed`` and ``fairness_<column>_<difference>`` for each difference of the task (column names
        reduced to characters MLflow accepts).
    """
    from mlkeel.tracking import metric_key

    metrics = {FairnessRunMetric.PASSED: 1.0 if document["passed"] else 0.0}
    for column, name, value in _column_differences(document):
        metrics[f"{FairnessRunMetric.PREFIX}{metric_key(column)}_{name}"] = value
    return metrics


def _predictions(model: Any, frame: pd.DataFrame, task: str, source: str) -> tuple[Any, list[str]]:
    """The model's decisions on the rows (most probable class, or predicted value) and its classes as text."""
    import numpy as np

    from mlkeel.components.gate.logic import task_outputs

    outputs = task_outputs(model, frame, task, source)
    if task == Task.REGRESSION:
        return outputs, []
    classes = [str(name) for name in model.classes_]
    return np.asarray(classes)[np.asarray(outputs).argmax(axis=1)], classes


def fairness(
    model_path: str,
    test_path: str,
    target_column: str,
    positive_label: str,
    output_path: str,
    sensitive_columns: Sequence[str] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS,
    tracking_uri: str = "",
    mlflow_run_id: str = "",
) -> dict[str, Any]:
    """Score the holdout with the model and write the fairness document for ``sensitive_columns``.

    The figures follow the model's task (``mlkeel.modeling.model_task``). Without sensitive columns nothing
    is read: the document says ``configured: false`` and passes.

    Args:
        model_path: Model directory (MLflow sklearn format) or MLflow model URI.
        test_path: Holdout rows (Parquet) with the target and the sensitive columns.
        target_column: The target column.
        positive_label: The label value meaning positive (binary models only).
        output_path: Where to write the document (JSON).
        sensitive_columns: Columns whose groups are compared; they need not be model features.
        thresholds: Bounds by difference name, of any task; the model's task's missing names take its defaults.
        min_group_rows: Groups with fewer holdout rows are reported, not compared.
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``); used only with ``mlflow_run_id``.
        mlflow_run_id: The model's training run: the metrics and the document are logged on it ("" = not).

    Returns:
        The document (see ``fairness_report``).

    Raises:
        ParameterError: see ``check_parameters``.
        SchemaMismatchError: the holdout lacks the target, a sensitive column or a model feature.
        DataError: unreadable holdout, labels that are not binary (binary model), a null or non-numeric target.
    """
    import pyarrow.parquet as pq

    from mlkeel.modeling import (
        binary_labels,
        decision_threshold,
        load_sklearn_model,
        model_task,
        score_frame,
        task_targets,
    )
    from mlkeel.storage import require_readable_file, write_json_atomic

    columns, _ = check_parameters(sensitive_columns, thresholds, min_group_rows)
    if not columns:
        document = fairness_report([], [], {}, thresholds, min_group_rows)
    else:
        require_readable_file(test_path)
        frame = pq.read_table(test_path).to_pandas()
        missing = [column for column in [target_column, *columns] if column not in frame.columns]
        if missing:
            raise SchemaMismatchError(
                f"{test_path}: sensitive or target column(s) not found: {', '.join(missing)}; "
                f"columns: {', '.join(frame.columns)}"
            )
        groups = {column: frame[column] for column in columns}
        model = load_sklearn_model(model_path)
        task = model_task(model)
        if task == Task.BINARY:
            labels = binary_labels(frame[target_column], positive_label, test_path)
            decisions = (score_frame(model, frame, test_path) >= decision_threshold(model)).astype(int)
            document = fairness_report(labels, decisions, groups, thresholds, min_group_rows)
        else:
            targets = task_targets(frame[target_column], task, test_path)
            predictions, classes = _predictions(model, frame, task, test_path)
            document = fairness_report(targets, predictions, groups, thresholds, min_group_rows, task, classes)
    write_json_atomic(document, output_path)
    logger.info("fairness: %s", document["reason"])
    if mlflow_run_id and document["configured"]:
        log_on_run(document, output_path, mlflow_run_id, tracking_uri)
    return document


def log_on_run(document: Mapping[str, Any], path: str, run_id: str, tracking_uri: str = "") -> None:
    """Log a fairness document's metrics and file on the model's training run.

    Args:
        document: The ``fairness_report`` result.
        path: Its JSON file, logged under ``governance/`` of the run.
        run_id: The model's MLflow run.
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``).
    """
    from mlkeel.tracking import log_on_run as log_run

    log_run(run_id, tracking_uri, metrics=run_metrics(document), files={FAIRNESS_ARTIFACT_FILE: path})


def artifact_metadata(document: Mapping[str, Any]) -> dict[str, Any]:
    """The headline of a fairness document as KFP artifact metadata.

    Args:
        document: The ``fairness_report`` result.

    Returns:
        configured, passed, reason, task and ``<column>_<difference>`` for each difference of the task.
    """
    metadata: dict[str, Any] = {key: document[key] for key in ("configured", "passed", "reason")}
    metadata["task"] = document.get("task", Task.BINARY.value)
    for column, name, value in _column_differences(document):
        metadata[f"{column}_{name}"] = value
    return metadata
