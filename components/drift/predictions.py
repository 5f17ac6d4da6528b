"""Prediction drift: whether the champion's answers moved between its reference rows and the current batch.

Feature drift says the inputs moved; prediction drift says whether the model's *outputs* moved with them, in the
shape of the model's task (``mlkeel.prediction_log.log_task``):

* binary and multiclass: the shares of the predicted class (``prediction_label``; a binary row whose negative
  label is unknown counts as its ``prediction``, "0"), compared with a chi-squared test;
* regression: the distribution of the predicted value (``predicted_value``), compared with a two-sample
  Kolmogorov-Smirnov test.

Both are the feature tests of ``detect_drift`` on one column (so no multiple-testing correction: one test at
``p_val``), with the PSI beside them. The result is reported beside the feature drift, in the drift result's
``data.prediction_drift``; it does not change ``is_drift``, which stays the feature tests' decision (the model's
outputs are a function of its inputs: a moved output follows from moved inputs, and counting it again would
loosen the correction the features' decision is calibrated with).

The two prediction logs are the champion's on the reference rows (its training rows: in-sample, so a model
that fits its training rows closely answers them a little more sharply than new rows) and on the current batch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlkeel.errors import SchemaMismatchError

if TYPE_CHECKING:
    import pyarrow as pa

# The one column the prediction tests compare, per kind of output.
PREDICTED_CLASS = "predicted_class"
PREDICTED_VALUE = "predicted_value"
# Quantiles of the predicted value reported for each side (regression).
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def predicted_outputs(log: pa.Table, source: str = "prediction log") -> tuple[str, pa.Table]:
    """The task of a prediction log and the one column of its outputs the drift test compares.

    Args:
        log: A prediction log (``mlkeel.prediction_log``).
        source: Printable name of the log, for messages.

    Returns:
        ``(task, table)``: a one-column table, ``predicted_class`` (text) for a classifier or
        ``predicted_value`` (float) for a regressor.

    Raises:
        SchemaMismatchError: the log mixes tasks, or is not a prediction log.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    from mlkeel.prediction_log import PREDICTED_VALUE as LOG_PREDICTED_VALUE
    from mlkeel.prediction_log import PREDICTION, PREDICTION_LABEL, log_task, validate_prediction_log
    from mlkeel.task import Task

    log = validate_prediction_log(log, source)
    task = log_task(log, source)
    if task == Task.REGRESSION:
        return task, pa.table({PREDICTED_VALUE: log.column(LOG_PREDICTED_VALUE).cast(pa.float64())})
    labels = log.column(PREDICTION_LABEL)
    if task == Task.BINARY:
        labels = pc.if_else(pc.is_null(labels), pc.cast(log.column(PREDICTION), pa.string()), labels)
    return task, pa.table({PREDICTED_CLASS: labels})


def prediction_drift(
    reference_log: pa.Table,
    current_log: pa.Table,
    p_val: float = 0.05,
    psi_threshold: float = 0.2,
    reference_source: str = "reference predictions",
    current_source: str = "current predictions",
) -> dict[str, Any]:
    """Compare the champion's predictions on the reference rows with its predictions on the current batch.

    Args:
        reference_log: The prediction log of the reference rows.
        current_log: The prediction log of the current batch (the same model).
        p_val: Significance level of the test.
        psi_threshold: PSI above which the predictions are flagged (reported, not deciding).
        reference_source: Printable name of the reference log.
        current_source: Printable name of the current log.

    Returns:
        ``{"task", "column", "test" (chi2 or ks), "statistic", "p_value", "is_drift", "psi", "psi_drift",
        "reference_rows", "current_rows"}`` plus, for a classifier, ``shares``: class -> {"reference",
        "current"} (each side's share of rows predicted that class, every class either side predicted), or for
        a regressor ``summary``: {"reference", "current"} -> {mean, std, q10, q25, q50, q75, q90}.

    Raises:
        SchemaMismatchError: the two logs are of models of different tasks.
        DataError: a log has no rows.
    """
    import numpy as np

    from mlkeel.components.drift.logic import detect_drift

    reference_task, reference = predicted_outputs(reference_log, reference_source)
    current_task, current = predicted_outputs(current_log, current_source)
    if reference_task != current_task:
        raise SchemaMismatchError(
            f"{reference_source} is of a {reference_task} model but {current_source} of a {current_task} model: "
            "prediction drift compares one model's answers"
        )
    compared = detect_drift(
        reference,
        current,
        p_val=p_val,
        psi_threshold=psi_threshold,
        reference_source=reference_source,
        current_source=current_source,
    )
    column = reference.column_names[0]
    feature = compared["data"]["features"][column]
    found: dict[str, Any] = {
        "task": reference_task,
        "column": column,
        "test": feature["test"],
        "statistic": feature["statistic"],
        "p_value": feature["p_value"],
        "is_drift": bool(feature["drift"]),
        "psi": feature["psi"],
        "psi_drift": bool(feature["psi_drift"]),
        "reference_rows": reference.num_rows,
        "current_rows": current.num_rows,
    }
    if column == PREDICTED_CLASS:
        sides = [table.column(column).to_pandas().value_counts(normalize=True) for table in (reference, current)]
        classes = sorted(set(sides[0].index) | set(sides[1].index), key=str)
        found["shares"] = {
            str(name): {"reference": float(sides[0].get(name, 0.0)), "current": float(sides[1].get(name, 0.0))}
            for name in classes
        }
        return found
    summary = {}
    for side, table in (("reference", reference), ("current", current)):
        values = table.column(column).to_numpy()
        summary[side] = {
            "mean": float(np.mean(values)),
            "std": float(np.std(values)),
            **{f"q{round(100 * q)}": float(v) for q, v in zip(QUANTILES, np.quantile(values, QUANTILES), strict=True)},
        }
    found["summary"] = summary
    return found


def describe(found: dict[str, Any]) -> str:
    """One line for logs and the report: what moved, with the test's numbers.

    Args:
        found: ``prediction_drift``'s result.

    Returns:
        E.g. ``prediction drift (multiclass, predicted class shares): chi2 p=0.0001, PSI 0.41; AA 20% -> 35%``.
    """
    verdict = "prediction drift" if found["is_drift"] else "no prediction drift"
    what = "predicted value distribution" if found["column"] == PREDICTED_VALUE else "predicted class shares"
    head = f"{verdict} ({found['task']}, {what}): {found['test']} p={found['p_value']:.4g}, PSI {found['psi']:.3f}"
    if "shares" in found:
        moved = sorted(found["shares"].items(), key=lambda item: -abs(item[1]["current"] - item[1]["reference"]))[:3]
        changes = ", ".join(f"{name} {v['reference']:.0%} -> {v['current']:.0%}" for name, v in moved)
        return f"{head}; {changes}"
    reference, current = found["summary"]["reference"], found["summary"]["current"]
    means = f"mean {reference['mean']:.4g} -> {current['mean']:.4g}"
    return f"{head}; {means}, median {reference['q50']:.4g} -> {current['q50']:.4g}"
