"""Fairness: how the model's decisions differ between the groups of each sensitive column, on the holdout.

For every configured sensitive column (e.g. ``gender``, ``SeniorCitizen``) and every value of it (a group):
rows, selection rate (share predicted positive), true positive rate and false positive rate, computed with
fairlearn's ``MetricFrame``. Two differences summarise a column, fairlearn's definitions:

    demographic parity difference = max - min selection rate over the groups
    equalized odds difference     = max(max - min TPR, max - min FPR) over the groups

Groups with fewer than ``min_group_rows`` holdout rows are reported but left out of the differences (a group
of 5 rows makes any difference noise). A rate is ``None`` where it is undefined: TPR for a group without a
positive label, FPR for one without a negative. fairlearn reports those as 0.0, which would count as a real
rate in a difference, so this module blanks them and leaves them out. Decisions are the model's predictions at
its own decision threshold (``mlkeel.modeling.decision_threshold``), as in the evaluate stage.

The check fails when a column's difference exceeds its threshold; the report is data first (``to_dict``), with
a one-sentence reason that names the column, the difference and the groups. The gate reads the report and
refuses the model when it failed.

``fairness_report`` is a pure function on labels, decisions and group values; ``fairness`` does the I/O.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mlkeel.constants import FAIRNESS_ARTIFACT_FILE, FairnessRunMetric
from mlkeel.errors import ParameterError, SchemaMismatchError
from mlkeel.metrics import column_names

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

logger = logging.getLogger(__name__)

DEMOGRAPHIC_PARITY = "demographic_parity_difference"
EQUALIZED_ODDS = "equalized_odds_difference"
# Defaults for any dataset: a gap of 0.2 in selection rate (or in TPR/FPR) between two groups is a large one.
DEFAULT_THRESHOLDS: dict[str, float] = {DEMOGRAPHIC_PARITY: 0.2, EQUALIZED_ODDS: 0.2}
DEFAULT_MIN_GROUP_ROWS = 30


def check_parameters(
    sensitive_columns: Sequence[str] | None, thresholds: Mapping[str, Any] | None, min_group_rows: int
) -> tuple[list[str], dict[str, float]]:
    """Validate the fairness parameters.

    Args:
        sensitive_columns: Column names, or None.
        thresholds: Bounds by difference name; missing names take ``DEFAULT_THRESHOLDS``.
        min_group_rows: Smallest group that counts in a difference, >= 1.

    Returns:
        ``(columns, thresholds)``: the columns without duplicates, both thresholds as floats.

    Raises:
        ParameterError: an empty or repeated column name, an unknown threshold name, a bound that is not a
            number in [0, 1], or ``min_group_rows`` < 1.
    """
    columns = column_names("sensitive_columns", sensitive_columns)
    bounds = dict(DEFAULT_THRESHOLDS)
    for name, bound in (thresholds or {}).items():
        if name not in DEFAULT_THRESHOLDS:
            raise ParameterError(
                f"fairness thresholds name unknown difference {name!r}: expected {', '.join(DEFAULT_THRESHOLDS)}"
            )
        if isinstance(bound, bool) or not isinstance(bound, int | float) or not 0 <= bound <= 1:
            raise ParameterError(f"fairness thresholds[{name!r}]={bound!r}: must be a number from 0 to 1")
        bounds[name] = float(bound)
    if isinstance(min_group_rows, bool) or not isinstance(min_group_rows, int) or min_group_rows < 1:
        raise ParameterError(f"min_group_rows={min_group_rows!r}: must be an integer >= 1")
    return columns, bounds


def _rate(value: float, defined: bool) -> float | None:
    return float(value) if defined else None


def _spread(values: list[float | None]) -> float:
    defined = [value for value in values if value is not None]
    return float(max(defined) - min(defined)) if len(defined) >= 2 else 0.0


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
        DEMOGRAPHIC_PARITY: _spread(rates["selection_rate"]),
        EQUALIZED_ODDS: max(_spread(rates["tpr"]), _spread(rates["fpr"])),
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


def fairness_report(
    y_true: Any,
    y_pred: Any,
    groups: Mapping[str, pd.Series],
    thresholds: Mapping[str, Any] | None = None,
    min_group_rows: int = DEFAULT_MIN_GROUP_ROWS,
) -> dict[str, Any]:
    """The fairness document for some sensitive columns, from labels and decisions (no I/O).

    Args:
        y_true: 0/1 labels, one per row.
        y_pred: 0/1 decisions of the model, one per row.
        groups: Sensitive column name -> its value on each row (any type; missing values are one group).
        thresholds: Bounds by difference name; missing names take ``DEFAULT_THRESHOLDS``.
        min_group_rows: Groups with fewer rows are reported, not compared.

    Returns:
        ``{"configured", "sensitive_columns", "thresholds", "min_group_rows", "by_column": {column:
        column_report}, "passed", "reason", "failures": [{"column", "difference", "value", "threshold"}]}``.

    Raises:
        ParameterError: see ``check_parameters``.
    """
    from mlkeel.metrics import group_values

    columns, bounds = check_parameters(list(groups), thresholds, min_group_rows)
    by_column = {
        column: column_report(y_true, y_pred, group_values(groups[column]), min_group_rows) for column in columns
    }
    failures = [
        {"column": column, "difference": name, "value": report[name], "threshold": bounds[name]}
        for column, report in by_column.items()
        for name in (DEMOGRAPHIC_PARITY, EQUALIZED_ODDS)
        if report[name] > bounds[name]
    ]
    if not columns:
        reason = "No sensitive columns configured: fairness not checked."
    elif failures:
        reason = (
            "Fairness failed: "
            + "; ".join(
                f"{failure['column']} {failure['difference']} {failure['value']:.4f} exceeds the threshold "
                f"{failure['threshold']:.4f} ({_group_rates(by_column[failure['column']], failure['difference'])})"
                for failure in failures
            )
            + "."
        )
    else:
        reason = (
            "Fairness passed: "
            + "; ".join(
                f"{column} {DEMOGRAPHIC_PARITY} {report[DEMOGRAPHIC_PARITY]:.4f} <= {bounds[DEMOGRAPHIC_PARITY]:.4f}, "
                f"{EQUALIZED_ODDS} {report[EQUALIZED_ODDS]:.4f} <= {bounds[EQUALIZED_ODDS]:.4f}"
                for column, report in by_column.items()
            )
            + "."
        )
    return {
        "configured": bool(columns),
        "sensitive_columns": columns,
        "thresholds": bounds,
        "min_group_rows": min_group_rows,
        "by_column": by_column,
        "passed": not failures,
        "reason": reason,
        "failures": failures,
    }


def run_metrics(document: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a fairness document as MLflow metrics.

    Args:
        document: A ``fairness_report`` result.

    Returns:
        ``fairness_passed`` and ``fairness_<column>_<difference>`` (column names reduced to characters MLflow
        accepts).
    """
    from mlkeel.tracking import metric_key

    metrics = {FairnessRunMetric.PASSED: 1.0 if document["passed"] else 0.0}
    for column, report in document["by_column"].items():
        safe = metric_key(column)
        for name in (DEMOGRAPHIC_PARITY, EQUALIZED_ODDS):
            metrics[f"{FairnessRunMetric.PREFIX}{safe}_{name}"] = float(report[name])
    return metrics


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

    Without sensitive columns nothing is read: the document says ``configured: false`` and passes.

    Args:
        model_path: Model directory (MLflow sklearn format) or MLflow model URI.
        test_path: Holdout rows (Parquet) with the target and the sensitive columns.
        target_column: The label column.
        positive_label: The label value meaning positive.
        output_path: Where to write the document (JSON).
        sensitive_columns: Columns whose groups are compared; they need not be model features.
        thresholds: Bounds by difference name; missing names take ``DEFAULT_THRESHOLDS``.
        min_group_rows: Groups with fewer holdout rows are reported, not compared.
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``); used only with ``mlflow_run_id``.
        mlflow_run_id: The model's training run: the metrics and the document are logged on it ("" = not).

    Returns:
        The document (see ``fairness_report``).

    Raises:
        ParameterError: see ``check_parameters``.
        SchemaMismatchError: the holdout lacks the target, a sensitive column or a model feature.
        DataError: unreadable holdout or labels that are not binary.
    """
    import pyarrow.parquet as pq

    from mlkeel.modeling import binary_labels, decision_threshold, load_sklearn_model, score_frame
    from mlkeel.storage import require_readable_file, write_json_atomic

    columns, bounds = check_parameters(sensitive_columns, thresholds, min_group_rows)
    if not columns:
        document = fairness_report([], [], {}, bounds, min_group_rows)
    else:
        require_readable_file(test_path)
        frame = pq.read_table(test_path).to_pandas()
        missing = [column for column in [target_column, *columns] if column not in frame.columns]
        if missing:
            raise SchemaMismatchError(
                f"{test_path}: sensitive or target column(s) not found: {', '.join(missing)}; "
                f"columns: {', '.join(frame.columns)}"
            )
        labels = binary_labels(frame[target_column], positive_label, test_path)
        model = load_sklearn_model(model_path)
        scores = score_frame(model, frame, test_path)
        decisions = (scores >= decision_threshold(model)).astype(int)
        document = fairness_report(
            labels, decisions, {column: frame[column] for column in columns}, bounds, min_group_rows
        )
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
        configured, passed, reason and ``<column>_<difference>`` for each column.
    """
    metadata: dict[str, Any] = {key: document[key] for key in ("configured", "passed", "reason")}
    for column, report in document["by_column"].items():
        for name in (DEMOGRAPHIC_PARITY, EQUALIZED_ODDS):
            metadata[f"{column}_{name}"] = report[name]
    return metadata
