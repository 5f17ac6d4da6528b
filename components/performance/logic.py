"""Performance: join a prediction log with ground truth that arrived later; flag a model that got worse.

1. ``join_ground_truth``: inner join of the log's predictions with the labels by id, with every row counted
   (predictions, labels, matched, unmatched on either side, label rows set aside): nothing is lost silently.
2. ``live_metrics``: the same metrics the evaluate stage logged at training time, on the joined rows.
3. ``registered_metrics``: the ``holdout_<metric>`` metrics of the registered version's training run.
4. ``assess``: degraded when the live metric is worse than the holdout one by more than ``max_drop``, in the
   metric's direction (``mlkeel.metrics.HIGHER_IS_BETTER``).

A log may hold several model versions (a serving log across a deployment): each version is assessed on its own
rows against its own holdout metrics, and the result is degraded when any version is.

Every task (the log's ``task`` column, ``mlkeel.prediction_log.log_task``): the live metrics are the task's own,
computed by the same functions the evaluate stage used (``mlkeel.metrics.task_metrics``): binary accuracy,
precision, recall, F1, ROC AUC and log loss at each row's threshold; multiclass accuracy, macro and weighted F1,
log loss and one-vs-rest ROC AUC from the logged ``class_probabilities``; regression RMSE, MAE, R² (and MAPE
when no label is 0) from ``predicted_value``. The metric compared defaults to the task's
(``mlkeel.metrics.DEFAULT_TASK_METRIC``: roc_auc, macro_f1, rmse) and is compared in its direction (a rise of
RMSE is a worsening).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlkeel.errors import DataError, ParameterError
from mlkeel.metrics import HIGHER_IS_BETTER, require_metric

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

logger = logging.getLogger(__name__)

# Column of the joined frame holding the ground truth: 0/1 (binary), the class as text (multiclass), the value
# (regression).
LABEL = "label"
# The metric parameter's value that means "the task's own" (``mlkeel.metrics.DEFAULT_TASK_METRIC``).
TASK_DEFAULT_METRIC = ""
# Prefix of the evaluate stage's metrics on the training run.
HOLDOUT_PREFIX = "holdout_"
RESULT_NAME = "mlkeel.performance"
# Metrics in the target's own units (minutes, dollars): their tolerated worsening is a share of the holdout value
# (max_drop 0.05 = 5% worse), since one number cannot suit every scale. The others are scale-free (scores in
# [0, 1], log loss, MAPE, R²): their worsening is a difference, as for binary metrics.
RELATIVE_DROP_METRICS = frozenset({"rmse", "mae"})
# A drop equal to max_drop is tolerated even when float subtraction overshoots it (0.8 - 0.7 > 0.1).
DROP_TOLERANCE = 1e-12


@dataclass(frozen=True)
class JoinedPredictions:
    """Predictions that found their ground truth, and how every row on both sides was accounted for.

    Attributes:
        frame: One row per matched prediction: request_id, model_name, model_version, the task's outputs and
            ``label``. Binary: probability, threshold, prediction and label (1 = the positive label); multiclass:
            prediction_label, class_probabilities (class -> probability, a dict per row) and label (the class as
            text); regression: predicted_value and label (a float).
        counts: predictions, labels, matched, unmatched_predictions, unmatched_labels, null_labels (label rows
            without an id or a label, set aside) and duplicate_labels (repeated identical label rows, dropped).
        task: The task of the model(s) that wrote the log.
    """

    frame: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)
    task: str = "binary"


def join_ground_truth(
    prediction_log: pa.Table,
    labels_table: pa.Table,
    *,
    label_column: str,
    positive_label: str = "",
    id_column: str = "request_id",
    label_id_column: str = "",
) -> JoinedPredictions:
    """Inner-join predictions with labels by id (compared as text) and count what matched and what did not.

    Args:
        prediction_log: A prediction log (see ``mlkeel.prediction_log``), of one task.
        labels_table: Ground truth: an id column and ``label_column``.
        label_column: The label column of ``labels_table``.
        positive_label: The label value meaning positive (compared as text, like training); binary logs only
            (ignored for a multiclass or regression log).
        id_column: The log's id column (``request_id``, or e.g. ``feature.customerID``).
        label_id_column: The labels' id column ("" = ``id_column``).

    Returns:
        The ``JoinedPredictions``.

    Raises:
        SchemaMismatchError: an id or label column is missing.
        DataError: an id has two different labels, a binary log's labels have more than two classes,
            ``positive_label`` is not the class the model's log calls positive, or a regression label is not a
            number (the message names the id).
    """
    import numpy as np
    import pandas as pd

    from mlkeel.prediction_log import (
        MODEL_NAME,
        MODEL_VERSION,
        PREDICTION,
        PROBABILITY,
        REQUEST_ID,
        THRESHOLD,
        log_task,
        validate_prediction_log,
    )
    from mlkeel.task import Task

    prediction_log = validate_prediction_log(prediction_log)
    task = log_task(prediction_log)
    binary = task == Task.BINARY
    label_id_column = label_id_column or id_column
    _require_columns(prediction_log, [id_column], "prediction log")
    _require_columns(labels_table, [label_id_column, label_column], "labels")
    if binary:
        if not positive_label:
            raise ParameterError("positive_label is empty: a binary model's labels need the value meaning positive")
        _check_positive_label(prediction_log, positive_label)

    outputs = [PROBABILITY, PREDICTION, THRESHOLD] if binary else _task_columns(task)
    kept = list(dict.fromkeys([MODEL_NAME, MODEL_VERSION, *outputs, REQUEST_ID]))
    predictions = prediction_log.select(kept).to_pandas()
    predictions["_id"] = _text_ids(prediction_log.column(id_column))
    labels = pd.DataFrame(
        {
            "_id": _text_ids(labels_table.column(label_id_column)),
            "_label": labels_table.column(label_column).to_pandas(),
        }
    )

    usable = labels["_id"].notna() & labels["_label"].notna()
    null_labels = int((~usable).sum())
    labels = labels[usable]
    labels = labels.assign(_label=labels["_label"].astype(str))
    distinct = labels.drop_duplicates()
    duplicate_labels = len(labels) - len(distinct)
    conflicting = distinct["_id"].duplicated(keep=False)
    if conflicting.any():
        example = distinct.loc[conflicting, "_id"].iloc[0]
        values = sorted(distinct.loc[distinct["_id"] == example, "_label"])
        raise DataError(
            f"labels: id {example!r} has {len(values)} different labels {values} "
            f"({int(distinct.loc[conflicting, '_id'].nunique())} id(s) in all): which one is true?"
        )
    classes = sorted(distinct["_label"].unique())
    if binary and len(classes) > 2:
        raise DataError(f"labels: column {label_column!r} has {len(classes)} classes {classes[:5]}; expected 2")
    if binary and len(classes) == 2 and positive_label not in classes:
        raise DataError(
            f"labels: positive_label {positive_label!r} does not occur in column {label_column!r} (classes: {classes})"
        )

    matched = predictions.merge(distinct, on="_id", how="inner", validate="many_to_one")
    matched_ids = set(matched["_id"])
    counts = {
        "predictions": len(predictions),
        "labels": labels_table.num_rows,
        "matched": len(matched),
        "unmatched_predictions": len(predictions) - len(matched),
        "unmatched_labels": int((~distinct["_id"].isin(matched_ids)).sum()),
        "null_labels": null_labels,
        "duplicate_labels": duplicate_labels,
    }
    # Every row is accounted for on both sides (None of them lost silently).
    if counts["matched"] + counts["unmatched_predictions"] != counts["predictions"] or (
        len(matched_ids) + counts["unmatched_labels"] + null_labels + duplicate_labels != counts["labels"]
    ):
        raise RuntimeError(f"join counts do not add up: {counts}")
    identity = {
        REQUEST_ID: matched[REQUEST_ID].to_numpy(),
        MODEL_NAME: matched[MODEL_NAME].to_numpy(),
        MODEL_VERSION: matched[MODEL_VERSION].to_numpy(),
    }
    if binary:
        frame = pd.DataFrame(
            {
                **identity,
                PROBABILITY: matched[PROBABILITY].to_numpy(dtype=np.float64),
                PREDICTION: matched[PREDICTION].to_numpy(),
                THRESHOLD: matched[THRESHOLD].to_numpy(dtype=np.float64),
                LABEL: (matched["_label"] == positive_label).to_numpy().astype(np.int8),
            }
        )
    else:
        frame = pd.DataFrame(
            {
                **identity,
                **{column: matched[column].to_numpy() for column in outputs},
                LABEL: _task_labels(matched, task, label_column),
            }
        )
    logger.info("performance: %s", ", ".join(f"{name} {value}" for name, value in counts.items()))
    return JoinedPredictions(frame, counts, str(task))


def _task_columns(task: str) -> list[str]:
    """The prediction-log columns holding a multiclass or regression model's outputs."""
    from mlkeel.prediction_log import CLASS_PROBABILITIES, PREDICTED_VALUE, PREDICTION_LABEL
    from mlkeel.task import Task

    return [PREDICTION_LABEL, CLASS_PROBABILITIES] if task == Task.MULTICLASS else [PREDICTED_VALUE]


def _task_labels(matched: pd.DataFrame, task: str, label_column: str) -> Any:
    """The matched labels as the task's metrics read them: the class as text, or a float (regression)."""
    import numpy as np
    import pandas as pd

    from mlkeel.task import Task

    if task == Task.MULTICLASS:
        return matched["_label"].to_numpy(dtype=object)
    values = pd.to_numeric(matched["_label"], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"labels: column {label_column!r} holds {matched['_label'].iloc[first]!r} for id "
            f"{matched['_id'].iloc[first]!r}: a regression model's label must be a number"
        )
    return values


def _require_columns(table: pa.Table, columns: list[str], source: str) -> None:
    from mlkeel.errors import SchemaMismatchError

    missing = [column for column in columns if column not in table.column_names]
    if missing:
        raise SchemaMismatchError(
            f"{source}: missing column(s) {', '.join(missing)}; columns: {', '.join(table.column_names)}"
        )


def _text_ids(values: pa.ChunkedArray) -> pd.Series:
    """Ids as text, nulls kept, so 17 in one file joins "17" in another and a null id never joins a null id.

    Arrow casts, not pandas: an integer column with nulls gives "17", not "17.0".
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        as_text = pc.cast(values, pa.string())
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise DataError(f"ids of type {values.type} cannot be compared as text: {error}") from error
    return as_text.to_pandas().astype(object)


def _check_positive_label(prediction_log: pa.Table, positive_label: str) -> None:
    """Refuse a ``positive_label`` that the log's positive predictions name otherwise (metrics would invert)."""
    import pyarrow.compute as pc

    from mlkeel.prediction_log import PREDICTION, PREDICTION_LABEL

    positive_rows = prediction_log.filter(pc.equal(prediction_log.column(PREDICTION), 1))
    names = {value for value in pc.unique(positive_rows.column(PREDICTION_LABEL)).to_pylist() if value is not None}
    others = sorted(names - {positive_label})
    if others:
        raise DataError(
            f"positive_label {positive_label!r} differs from what the prediction log calls the positive class "
            f"({', '.join(map(repr, others))}): the metrics would be inverted"
        )


def live_metrics(joined: JoinedPredictions | pd.DataFrame, task: str = "") -> dict[str, float]:
    """The evaluate stage's metrics on matched rows: the same functions, on what the model logged.

    Binary: each row is judged at the decision threshold its prediction log row records (the model's own, which
    is also what the registered holdout metrics are at), so live and holdout precision, recall and F1 compare
    like for like. Multiclass: from the logged class probabilities (the predicted class is the most probable
    one, as in the log). Regression: from the logged predicted values.

    Args:
        joined: ``join_ground_truth``'s result (or its frame: ``label`` and the task's output columns).
        task: The task of the rows ("" = the joined result's; a bare frame without it is binary).

    Returns:
        The task's metrics (``mlkeel.metrics.TASK_METRICS``): binary accuracy, precision, recall, f1, roc_auc,
        log_loss; multiclass accuracy, macro_f1, weighted_f1, log_loss, roc_auc_ovr; regression rmse, mae, r2
        (and mape when no label is 0).

    Raises:
        DataError: no matched rows, one class only (classification), fewer than two rows (regression), or a
            label the multiclass model never saw.
    """
    from mlkeel.metrics import DECISION_THRESHOLD, task_metrics
    from mlkeel.prediction_log import CLASS_PROBABILITIES, PREDICTED_VALUE, PROBABILITY, THRESHOLD
    from mlkeel.task import Task

    frame = joined.frame if isinstance(joined, JoinedPredictions) else joined
    task = task or (joined.task if isinstance(joined, JoinedPredictions) else Task.BINARY.value)
    if frame.empty:
        raise DataError("no prediction has its label yet (0 matched rows): nothing to measure")
    if task == Task.MULTICLASS:
        labels = frame[LABEL].to_numpy()
        classes, probabilities = class_probability_matrix(frame[CLASS_PROBABILITIES], labels)
        return task_metrics(task, labels, probabilities, classes)
    if task == Task.REGRESSION:
        return task_metrics(task, frame[LABEL].to_numpy(dtype=float), frame[PREDICTED_VALUE].to_numpy(dtype=float))
    threshold = frame[THRESHOLD].to_numpy(dtype=float) if THRESHOLD in frame.columns else DECISION_THRESHOLD
    return task_metrics(task, frame[LABEL].to_numpy(), frame[PROBABILITY].to_numpy(), threshold=threshold)


def class_probability_matrix(entries: Any, labels: Any = ()) -> tuple[list[str], Any]:
    """The logged ``class_probabilities`` of many rows as one rows x classes matrix.

    A class that arrives in the labels but that the model never saw (a new carrier, a new product line) gets a
    column of probability 0: the model cannot predict it, so its rows count as errors (F1 0 for that class, the
    clipped log loss), which is what a user of the model lives with. It is logged as a warning.

    Args:
        entries: One entry per row, as Arrow's map reads into pandas: a list of ``(class, probability)`` pairs
            (or a dict).
        labels: The true classes of the rows (text), to add the classes the model never saw.

    Returns:
        ``(classes, matrix)``: the classes in the order the first row lists them (classes only later rows list,
        e.g. of another model version, follow; then unseen label classes), and their probabilities (0 for a
        class a row does not list).
    """
    import numpy as np

    rows = [dict(entry) for entry in entries]
    classes = list(dict.fromkeys(name for row in rows for name in row))
    unseen = sorted({str(label) for label in labels} - set(classes))
    if unseen:
        count = sum(str(label) in unseen for label in labels)
        logger.warning(
            "performance: %d labelled row(s) of class(es) the model never saw: %s (scored as errors)",
            count,
            ", ".join(unseen[:10]),
        )
        classes += unseen
    matrix = np.zeros((len(rows), len(classes)), dtype=np.float64)
    column = {name: index for index, name in enumerate(classes)}
    for index, row in enumerate(rows):
        for name, value in row.items():
            matrix[index, column[name]] = value
    return classes, matrix


def registered_metrics(model_name: str, model_version: str, tracking_uri: str = "") -> dict[str, float]:
    """The holdout metrics recorded for a registered version: its training run's ``holdout_<metric>`` values.

    Args:
        model_name: Registered model name.
        model_version: Version number.
        tracking_uri: MLflow tracking/registry URI ("" = ``$MLFLOW_TRACKING_URI``).

    Returns:
        Metric name (without the prefix) -> value; empty when the run holds no holdout metric.

    Raises:
        ParameterError: no tracking URI.
        RegistryError: no such version, or the registry cannot be reached.
    """
    from mlkeel.components.gate.logic import is_not_found, registry_call
    from mlkeel.errors import RegistryError
    from mlkeel.tracking import connect, resolve_tracking_uri

    resolved = resolve_tracking_uri(tracking_uri)
    client = connect(resolved)
    try:
        version = registry_call(
            resolved,
            f"read version {model_version} of {model_name!r}",
            lambda: client.get_model_version(model_name, str(model_version)),
        )
    except RegistryError as error:
        if is_not_found(error):
            raise RegistryError(f"registered model {model_name!r} has no version {model_version}") from error
        raise
    if not version.run_id:
        return {}
    run = registry_call(resolved, f"read training run {version.run_id}", lambda: client.get_run(version.run_id))
    return {
        name[len(HOLDOUT_PREFIX) :]: float(value)
        for name, value in run.data.metrics.items()
        if name.startswith(HOLDOUT_PREFIX)
    }


def check_max_drop(max_drop: float) -> float:
    """Return ``max_drop`` as a float when it is >= 0.

    Args:
        max_drop: Largest tolerated worsening of the metric.

    Returns:
        The value.

    Raises:
        ParameterError: negative or not a number.
    """
    try:
        value = float(max_drop)
    except (TypeError, ValueError) as error:
        raise ParameterError(f"max_drop {max_drop!r} is not a number >= 0") from error
    if not value >= 0.0:  # also refuses NaN
        raise ParameterError(f"max_drop {value} is negative: it is the largest worsening tolerated (>= 0)")
    return value


def assess(
    live: dict[str, float], registered: dict[str, float], metric: str = "roc_auc", max_drop: float = 0.05
) -> dict[str, Any]:
    """Compare a live metric with the registered holdout one, in the metric's direction.

    Args:
        live: Live metrics (``live_metrics``).
        registered: Holdout metrics of the same model version (``registered_metrics``).
        metric: The metric compared.
        max_drop: Largest tolerated worsening (>= 0): a fall for scores, a rise for ``log_loss`` and ``mape``,
            in the metric's units; for ``rmse`` and ``mae`` (``RELATIVE_DROP_METRICS``, in the target's units) a
            share of the holdout value: 0.05 tolerates 5% worse.

    Returns:
        ``{"degraded", "metric", "live", "registered", "drop", "max_drop", "reason"}``; ``drop`` is the
        worsening (negative when live is better), a share of the holdout value for ``rmse`` and ``mae`` (then
        ``"relative": True`` too).

    Raises:
        ParameterError: unknown metric or negative ``max_drop``.
        DataError: ``metric`` is missing from ``live`` or ``registered``.
    """
    require_metric(metric)
    max_drop = check_max_drop(max_drop)
    for side, values in (("live", live), ("registered", registered)):
        if metric not in values:
            raise DataError(f"{side} metrics lack {metric!r}: have {', '.join(sorted(values)) or 'none'}")
    live_value, registered_value = float(live[metric]), float(registered[metric])
    higher = HIGHER_IS_BETTER[metric]
    drop = registered_value - live_value if higher else live_value - registered_value
    relative = metric in RELATIVE_DROP_METRICS and registered_value > 0
    if relative:
        drop /= registered_value
    degraded = drop > max_drop + DROP_TOLERANCE
    direction = "higher" if higher else "lower"
    compared = f"live {metric} {live_value:.4f} vs {registered_value:.4f} on the holdout"
    worse, limit = (
        (f"{drop:.1%} of the holdout's", f"{max_drop:.1%}") if relative else (f"{drop:.4f}", f"{max_drop:.4f}")
    )
    if degraded:
        reason = f"Degraded: {compared}, worse by {worse}, more than the tolerated {limit} ({direction} is better)."
    elif relative:
        reason = (
            f"Not degraded: {compared}, worse by {drop:+.1%} of the holdout's, within {limit} ({direction} is better)."
        )
    else:
        reason = f"Not degraded: {compared}, worse by {drop:+.4f}, within {limit} ({direction} is better)."
    return {
        "degraded": degraded,
        "metric": metric,
        "live": live_value,
        "registered": registered_value,
        "drop": drop,
        "max_drop": max_drop,
        "reason": reason,
        **({"relative": True} if relative else {}),
    }


@dataclass(frozen=True)
class PerformanceResult:
    """The performance check, alibi-detect style: ``{"meta": ..., "data": ...}``.

    Attributes:
        meta: What was checked and how (name, version, metric, max_drop, columns, checked_at).
        data: degraded, reason, counts, live (metrics on all matched rows) and versions (per model version:
            rows, live, registered, assessment).
    """

    meta: dict[str, Any]
    data: dict[str, Any]

    @property
    def degraded(self) -> bool:
        """Whether any model version is degraded."""
        return bool(self.data["degraded"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (the result file's content)."""
        return {"meta": self.meta, "data": self.data}

    @property
    def metrics(self) -> dict[str, float]:
        """Numbers for the KFP Metrics artifact.

        Live metrics on all matched rows, the join counts and, when one version was assessed,
        ``holdout_<metric>`` and ``drop``.
        """
        values = {name: float(value) for name, value in self.data["live"].items()}
        values.update({name: float(value) for name, value in self.data["counts"].items()})
        assessed = [entry["assessment"] for entry in self.data["versions"] if entry["assessment"] is not None]
        if len(assessed) == 1:
            values[f"{HOLDOUT_PREFIX}{assessed[0]['metric']}"] = assessed[0]["registered"]
            values["drop"] = assessed[0]["drop"]
        return values

    @property
    def metadata(self) -> dict[str, Any]:
        """KFP metadata of the result artifact: the decision, its reason and the join counts."""
        return {
            "degraded": self.degraded,
            "reason": self.data["reason"],
            "metric": self.meta["metric"],
            "max_drop": self.meta["max_drop"],
            **self.data["counts"],
        }


def performance(
    prediction_log_path: str | list[str],
    labels_path: str,
    result_path: str,
    *,
    label_column: str,
    positive_label: str = "",
    id_column: str = "request_id",
    label_id_column: str = "",
    tracking_uri: str = "",
    metric: str = TASK_DEFAULT_METRIC,
    max_drop: float = 0.05,
) -> PerformanceResult:
    """Join a prediction log with its labels, measure live metrics per model version and flag degradation.

    Args:
        prediction_log_path: A prediction log file, a folder of them, or a list (see ``read_prediction_logs``).
        labels_path: Ground truth (Parquet, or CSV when the name ends in ``.csv``).
        result_path: Where to write the result JSON (atomically).
        label_column: The label column of the ground truth.
        positive_label: The label value meaning positive (a binary model's log only).
        id_column: The log's id column.
        label_id_column: The ground truth's id column ("" = ``id_column``).
        tracking_uri: MLflow tracking/registry URI ("" = ``$MLFLOW_TRACKING_URI``); needed when the log names
            registered versions.
        metric: The metric compared with the holdout; "" = the task's (roc_auc, macro_f1, rmse). It must be one
            of the task's metrics (``mlkeel.metrics.TASK_METRICS``).
        max_drop: Largest tolerated worsening of ``metric`` (>= 0), in its units and direction.

    Returns:
        The ``PerformanceResult`` (also written to ``result_path``).

    Raises:
        ParameterError: unknown metric or one of another task, negative ``max_drop``, no tracking URI for
            registered versions, no ``positive_label`` for a binary log.
        DataError: unreadable files, conflicting labels, no matched rows, one class only.
        SchemaMismatchError: a column is missing, or a file is not a prediction log.
        RegistryError: a logged version is not in the registry, or the registry cannot be reached.
    """
    from datetime import UTC, datetime

    from mlkeel import __version__
    from mlkeel.metrics import DEFAULT_TASK_METRIC, require_task_metric
    from mlkeel.prediction_log import MODEL_NAME, MODEL_VERSION, log_task, read_prediction_logs
    from mlkeel.storage import write_json_atomic
    from mlkeel.task import Task

    if metric:
        require_metric(metric)
    max_drop = check_max_drop(max_drop)
    log = read_prediction_logs(prediction_log_path)
    task = log_task(log)
    metric = require_task_metric(metric or DEFAULT_TASK_METRIC[task], task)
    joined = join_ground_truth(
        log,
        read_labels(labels_path),
        label_column=label_column,
        positive_label=positive_label,
        id_column=id_column,
        label_id_column=label_id_column,
    )
    counts = joined.counts
    if not counts["matched"]:
        raise DataError(
            f"no prediction matched a label: {counts['predictions']} predictions by {id_column!r}, "
            f"{counts['labels']} labels by {label_id_column or id_column!r}: check the id columns, or wait for labels"
        )
    overall = live_metrics(joined)
    if task != Task.BINARY:
        logger.info("performance: %s model; live %s", task, ", ".join(f"{k} {v:.4f}" for k, v in overall.items()))
    versions = []
    for (name, version), rows in joined.frame.groupby([MODEL_NAME, MODEL_VERSION], sort=True):
        versions.append(_assess_version(str(name), str(version), rows, tracking_uri, metric, max_drop, task))
    assessed = [entry for entry in versions if entry["assessment"] is not None]
    worse = [entry for entry in assessed if entry["assessment"]["degraded"]]
    if worse:
        reason = " ".join(f"{_model_text(entry)}: {entry['assessment']['reason']}" for entry in worse)
    elif assessed:
        reason = " ".join(f"{_model_text(entry)}: {entry['assessment']['reason']}" for entry in assessed)
    else:
        reason = "Not assessed: " + "; ".join(f"{_model_text(entry)}: {entry['skipped']}" for entry in versions) + "."
    result = PerformanceResult(
        meta={
            "name": RESULT_NAME,
            "version": __version__,
            **({} if task == Task.BINARY else {"task": task}),
            "metric": metric,
            "max_drop": max_drop,
            "id_column": id_column,
            "label_id_column": label_id_column or id_column,
            "label_column": label_column,
            "positive_label": positive_label,
            "checked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        },
        data={
            "degraded": bool(worse),
            "reason": reason,
            "counts": joined.counts,
            "live": overall,
            "versions": versions,
        },
    )
    write_json_atomic(result.to_dict(), result_path)
    (logger.warning if worse else logger.info)("performance: %s", reason)
    return result


def _model_text(entry: dict[str, Any]) -> str:
    if entry["model_name"]:
        return f"{entry['model_name']} version {entry['model_version']}"
    return "an unregistered model"


def _assess_version(
    name: str, version: str, rows: pd.DataFrame, tracking_uri: str, metric: str, max_drop: float, task: str
) -> dict[str, Any]:
    """Live metrics of one model version's rows and their comparison with its holdout metrics."""
    entry: dict[str, Any] = {
        "model_name": name,
        "model_version": version,
        "rows": len(rows),
        "live": None,
        "registered": None,
        "assessment": None,
        "skipped": "",
    }
    try:
        entry["live"] = live_metrics(rows, task)
    except DataError as error:
        entry["skipped"] = f"no live metrics ({error})"
        return entry
    if not (name and version):
        entry["skipped"] = "not a registered version: no holdout metrics to compare with"
        return entry
    entry["registered"] = registered_metrics(name, version, tracking_uri)
    if metric not in entry["registered"]:
        entry["skipped"] = f"its training run has no {HOLDOUT_PREFIX}{metric} metric (was it evaluated?)"
        return entry
    entry["assessment"] = assess(entry["live"], entry["registered"], metric, max_drop)
    return entry


def read_labels(path: str) -> pa.Table:
    """Read ground truth: Parquet, or CSV when the name ends in ``.csv`` (ids and labels kept as text).

    Args:
        path: Local path or URI.

    Returns:
        The table.

    Raises:
        DataError: missing, empty or unreadable.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from mlkeel.storage import display_uri, require_readable_file

    filesystem, resolved, _ = require_readable_file(path)
    try:
        if resolved.lower().endswith(".csv"):
            with filesystem.open_input_stream(resolved) as stream:
                names = pacsv.open_csv(stream).schema.names  # reads the first block only
            # Everything as text: ids like "0042" keep their zeros, labels compare as text anyway; "" is null.
            options = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True)
            with filesystem.open_input_stream(resolved) as stream:
                return pacsv.read_csv(stream, convert_options=options)
        return pq.read_table(resolved, filesystem=filesystem)
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{display_uri(path)}: cannot read the labels: {error}") from error
