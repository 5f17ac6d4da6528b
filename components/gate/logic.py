"""Gate: decide whether a trained model (the challenger) is good enough to register, TFX Evaluator-style.

The rules, in order:
    0. the challenger predicts both classes on a holdout that holds both, at its own decision threshold (a model
       that predicts no positive at all can still rank well, so ROC AUC alone would bless it);
    1. every absolute threshold passes (``{"roc_auc": 0.75, "log_loss": 0.5}``; the direction of each metric
       comes from ``mlkeel.metrics.HIGHER_IS_BETTER``), and the fairness stage's check passed (when its
       document is given);
    2. when the registry holds a champion (the ``champion`` alias of the registered model), the challenger
       beats it by ``margin`` on ``metric``, both scored on the same holdout rows;
    3. with ``slice_columns``: on every slice (a value of such a column) with at least ``slice_min_rows``
       holdout rows, the challenger is not worse than the champion by more than ``slice_margin`` on
       ``metric``. A slice where the metric is undefined (one class only, for ROC AUC) is reported as skipped.

Every task (``mlkeel.task``): the task is the challenger's own (``mlkeel.modeling.model_task``); rule 0 is for
binary models; the metric must be one of the task's (``rmse`` for regression: lower is better, the margin counts
downwards). A champion of another task (a binary champion, a regression challenger) is not compared.

Without a champion, or when the champion cannot score the holdout rows (its feature columns are missing: the
schema changed), the thresholds alone decide and the reason says so. An unreachable registry is an error,
never a blessing. The decision is a ``Blessing``: data first (a JSON artifact), with a one-sentence reason.

``decide`` is a pure function on numbers; ``gate`` does the I/O (holdout file, registry, models) around it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from mlkeel.constants import CHAMPION_ALIAS, GateRunMetric, LineageTag
from mlkeel.errors import DataError, ParameterError, RegistryError, SchemaMismatchError
from mlkeel.metrics import HIGHER_IS_BETTER, column_names, is_improvement, passes_threshold, require_metric
from mlkeel.storage import display_uri, read_json, write_json_atomic

if TYPE_CHECKING:
    import pandas as pd
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

T = TypeVar("T")

# MLflow's error code for "no such registered model / version / alias / run".
MLFLOW_NOT_FOUND = "RESOURCE_DOES_NOT_EXIST"
# Registry errors quoted in messages are cut to this many characters (MLflow's retry errors run to pages).
MAX_QUOTED_ERROR = 400
# A slice regresses when the shortfall exceeds the margin by more than float noise.
SLICE_TOLERANCE = 1e-12
DEFAULT_SLICE_MARGIN = 0.02
DEFAULT_SLICE_MIN_ROWS = 100


@dataclass(frozen=True)
class Blessing:
    """The gate's decision about one challenger.

    Attributes:
        blessed: True when the challenger may be registered (and become the champion).
        reason: One sentence, with the numbers, saying why.
        metric: The metric compared with the champion.
        margin: Required improvement over the champion, in the metric's direction.
        challenger_score: The challenger's ``metric`` (on the same rows as the champion when there is one).
        champion_score: The champion's ``metric`` on those rows; None without a champion or when it could not
            score them.
        champion_version: The champion's registered version; None when there is no champion.
        thresholds: The absolute bounds checked, metric -> bound.
        threshold_results: Metric -> ``{"value", "threshold", "passed"}``.
        decided_at: When the decision was made (UTC, ISO 8601).
        fairness: The fairness stage's document (see ``mlkeel.components.fairness.logic``), or None when the
            gate was given none.
        slices: ``{"columns", "margin", "min_rows", "metric", "results": [{"column", "value", "rows",
            "challenger", "champion", "delta", "regressed"}], "skipped": [{"column", "value", "rows", "why"}]}``,
            or None without slice columns. ``champion`` and ``delta`` (challenger - champion) are None when
            no champion scored the rows.
        predictions: What the challenger predicts on the holdout at its decision threshold: ``{"rows",
            "actual_positive", "predicted_positive", "threshold"}``, or None when not computed.
    """

    blessed: bool
    reason: str
    metric: str
    margin: float
    challenger_score: float
    champion_score: float | None = None
    champion_version: str | None = None
    thresholds: dict[str, float] = field(default_factory=dict)
    threshold_results: dict[str, dict[str, Any]] = field(default_factory=dict)
    decided_at: str = ""
    fairness: dict[str, Any] | None = None
    slices: dict[str, Any] | None = None
    predictions: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the blessing as a JSON-serialisable dict (also the KFP artifact metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], source: str = "blessing") -> Blessing:
        """Rebuild a blessing from ``to_dict`` output.

        Args:
            document: The dict.
            source: Printable name of where it comes from, for messages.

        Returns:
            The ``Blessing``.

        Raises:
            DataError: not a dict, a field is missing, or ``blessed`` is not a boolean.
        """
        if not isinstance(document, Mapping):
            raise DataError(f"{source}: expected a JSON object, got {type(document).__name__}")
        required = ("blessed", "reason", "metric", "margin", "challenger_score")
        missing = [name for name in required if name not in document]
        if missing:
            raise DataError(f"{source}: not a gate blessing, missing field(s): {', '.join(missing)}")
        if not isinstance(document["blessed"], bool):
            raise DataError(f"{source}: 'blessed' must be true or false, got {document['blessed']!r}")
        champion_version = document.get("champion_version")
        champion_score = document.get("champion_score")
        return cls(
            blessed=document["blessed"],
            reason=str(document["reason"]),
            metric=str(document["metric"]),
            margin=float(document["margin"]),
            challenger_score=float(document["challenger_score"]),
            champion_score=None if champion_score is None else float(champion_score),
            champion_version=None if champion_version is None else str(champion_version),
            thresholds={name: float(value) for name, value in (document.get("thresholds") or {}).items()},
            threshold_results=dict(document.get("threshold_results") or {}),
            decided_at=str(document.get("decided_at", "")),
            fairness=None if document.get("fairness") is None else dict(document["fairness"]),
            slices=None if document.get("slices") is None else dict(document["slices"]),
            predictions=None if document.get("predictions") is None else dict(document["predictions"]),
        )

    def save(self, path: str) -> None:
        """Write the blessing as JSON to ``path`` (atomically).

        Args:
            path: Destination file (a KFP artifact's ``.path``).
        """
        write_json_atomic(self.to_dict(), path)

    @classmethod
    def load(cls, path: str) -> Blessing:
        """Read a blessing written by ``save``.

        Args:
            path: The JSON file.

        Returns:
            The ``Blessing``.

        Raises:
            DataError: the file is missing, not JSON, or not a blessing.
        """
        return cls.from_dict(read_json(path), source=str(path))


def check_parameters(metric: str, margin: float, thresholds: Mapping[str, Any] | None) -> dict[str, float]:
    """Validate the gate's parameters.

    Args:
        metric: Metric compared with the champion.
        margin: Required improvement, >= 0.
        thresholds: Absolute bounds, metric -> number, or None.

    Returns:
        The thresholds as ``{metric: float}`` (empty when None).

    Raises:
        ParameterError: unknown metric, negative or non-finite margin, unknown threshold metric or a bound
            that is not a number.
    """
    require_metric(metric)
    if not isinstance(margin, int | float) or isinstance(margin, bool) or not math.isfinite(margin) or margin < 0:
        raise ParameterError(f"margin={margin!r}: must be a number >= 0 (the required improvement over the champion)")
    checked: dict[str, float] = {}
    for name, bound in (thresholds or {}).items():
        if name not in HIGHER_IS_BETTER:
            raise ParameterError(
                f"thresholds names unknown metric {name!r}: expected one of {', '.join(HIGHER_IS_BETTER)}"
            )
        if not isinstance(bound, int | float) or isinstance(bound, bool) or not math.isfinite(bound):
            raise ParameterError(f"thresholds[{name!r}]={bound!r}: must be a finite number")
        checked[name] = float(bound)
    return checked


def _metric_value(metrics: Mapping[str, Any], name: str) -> float:
    if name not in metrics:
        raise DataError(
            f"the challenger's metrics hold no {name!r} "
            f"(they hold: {', '.join(sorted(metrics)) or 'nothing'}); did the evaluate stage compute them?"
        )
    try:
        return float(metrics[name])
    except (TypeError, ValueError) as error:
        raise DataError(f"the challenger's {name!r} is not a number: {metrics[name]!r}") from error


def _direction(metric: str) -> str:
    return "higher" if HIGHER_IS_BETTER[metric] else "lower"


def _threshold_summary(results: Mapping[str, Mapping[str, Any]]) -> str:
    if not results:
        return "no absolute thresholds were set"
    checks = ", ".join(
        f"{name} {result['value']:.4f} {'>=' if HIGHER_IS_BETTER[name] else '<='} {result['threshold']:.4f}"
        for name, result in results.items()
    )
    return f"all {len(results)} threshold(s) pass ({checks})"


def decide(
    challenger_metrics: Mapping[str, Any],
    challenger_score: float | None = None,
    champion_score: float | None = None,
    champion_version: str | None = None,
    metric: str = "roc_auc",
    margin: float = 0.01,
    thresholds: Mapping[str, Any] | None = None,
    no_comparison_reason: str = "there is no champion yet",
    decided_at: str = "",
    fairness: Mapping[str, Any] | None = None,
    slices: Mapping[str, Any] | None = None,
    predictions: Mapping[str, Any] | None = None,
) -> Blessing:
    """Decide whether to bless the challenger, from numbers only (no I/O).

    Args:
        challenger_metrics: The challenger's holdout metrics (the evaluate stage's Metrics), checked against
            ``thresholds``.
        challenger_score: The challenger's ``metric`` on the rows the champion was scored on; None means
            ``challenger_metrics[metric]``.
        champion_score: The champion's ``metric`` on the same rows; None when there is no champion or it could
            not score them (then the thresholds alone decide).
        champion_version: The champion's registered version, for the record and the reason.
        metric: The metric compared with the champion.
        margin: Required improvement over the champion (>= 0), in the metric's direction.
        thresholds: Absolute bounds every challenger must meet, metric -> bound (``>=`` for higher-is-better
            metrics, ``<=`` for ``log_loss``).
        no_comparison_reason: Why there is no champion score, a clause for the reason (e.g. "no model named
            'churn' is registered yet").
        decided_at: Timestamp to record; "" means now (UTC).
        fairness: The fairness stage's document; a failed check refuses the challenger with its reason.
        slices: Per-slice comparison (see ``Blessing.slices``, from ``compare_slices``); a regressed slice
            refuses a challenger that beats the champion overall.
        predictions: The challenger's predictions on the holdout (see ``Blessing.predictions``, from
            ``prediction_counts``); one class only, on rows holding both, refuses the challenger.

    Returns:
        The ``Blessing``.

    Raises:
        ParameterError: see ``check_parameters``.
        DataError: ``challenger_metrics`` lacks ``metric`` or a threshold's metric; ``fairness`` is not a
            fairness document.
    """
    bounds = check_parameters(metric, margin, thresholds)
    results = {}
    for name, bound in bounds.items():
        value = _metric_value(challenger_metrics, name)
        results[name] = {"value": value, "threshold": bound, "passed": passes_threshold(name, value, bound)}
    score = _metric_value(challenger_metrics, metric) if challenger_score is None else float(challenger_score)

    failures = [
        f"{name} {result['value']:.4f} is {'below' if HIGHER_IS_BETTER[name] else 'above'} the threshold "
        f"{result['threshold']:.4f} ({_direction(name)} is better)"
        for name, result in results.items()
        if not result["passed"]
    ]
    one_class = _one_class_failure(predictions)
    if one_class:
        failures.insert(0, one_class)
    fairness_passed = _fairness_passed(fairness)
    if fairness_passed is False:
        failures.append(str(fairness["reason"]).rstrip("."))  # type: ignore[index]
    checks = _threshold_summary(results) + (", and the fairness check passed" if fairness_passed else "")
    regressions = _regressions(slices)
    if failures:
        blessed, reason = False, f"Not blessed: {'; '.join(failures)}."
    elif champion_score is None:
        blessed = True
        reason = f"Blessed on thresholds only: {no_comparison_reason}, and {checks}."
    else:
        blessed = is_improvement(metric, score, champion_score, margin)
        gain = score - champion_score if HIGHER_IS_BETTER[metric] else champion_score - score
        versus = f"challenger {metric} {score:.4f} vs champion version {champion_version} {champion_score:.4f}"
        if blessed and regressions:
            blessed = False
            reason = (
                f"Not blessed: {versus}, an improvement of {gain:.4f} that meets the margin {margin:.4f}, but "
                f"{_regression_summary(slices, regressions)}; the champion stays."  # type: ignore[arg-type]
            )
        elif blessed:
            reason = (
                f"Blessed: {versus}, an improvement of {gain:.4f} that meets the margin {margin:.4f} "
                f"({_direction(metric)} is better), and {checks}."
            )
        else:
            reason = (
                f"Not blessed: {versus}, an improvement of {gain:+.4f} that misses the margin {margin:.4f} "
                f"({_direction(metric)} is better); the champion stays."
            )
            if regressions:
                reason = reason[:-1] + f"; also {_regression_summary(slices, regressions)}."  # type: ignore[arg-type]
    return Blessing(
        blessed=blessed,
        reason=reason,
        metric=metric,
        margin=float(margin),
        challenger_score=score,
        champion_score=None if champion_score is None else float(champion_score),
        champion_version=champion_version,
        thresholds=bounds,
        threshold_results=results,
        decided_at=decided_at or datetime.now(UTC).isoformat(timespec="seconds"),
        fairness=None if fairness is None else dict(fairness),
        slices=None if slices is None else dict(slices),
        predictions=None if predictions is None else dict(predictions),
    )


def prediction_counts(labels: Any, scores: Any, threshold: float) -> dict[str, Any]:
    """What a model predicts on labelled rows at its decision threshold (no I/O).

    Args:
        labels: 0/1 labels.
        scores: The model's positive-class scores on the same rows.
        threshold: Its decision threshold.

    Returns:
        ``{"rows", "actual_positive", "predicted_positive", "threshold"}`` (see ``Blessing.predictions``).
    """
    import numpy as np

    return {
        "rows": len(labels),
        "actual_positive": int(np.asarray(labels).astype(int).sum()),
        "predicted_positive": int(np.count_nonzero(np.asarray(scores, dtype=float) >= threshold)),
        "threshold": float(threshold),
    }


def _one_class_failure(predictions: Mapping[str, Any] | None) -> str:
    """The refusal clause when the challenger predicts one class only on rows holding both, else ""."""
    if predictions is None:
        return ""
    rows, actual, predicted = (int(predictions[name]) for name in ("rows", "actual_positive", "predicted_positive"))
    if not 0 < actual < rows or 0 < predicted < rows:
        return ""
    threshold = float(predictions["threshold"])
    if predicted == 0:
        return (
            f"the challenger predicts one class only: no positive among the {rows} holdout rows at its decision "
            f"threshold {threshold:.4f}, while {actual} are positive (its precision, recall and F1 are 0)"
        )
    return (
        f"the challenger predicts one class only: all {rows} holdout rows positive at its decision threshold "
        f"{threshold:.4f}, while {rows - actual} are negative"
    )


def _fairness_passed(fairness: Mapping[str, Any] | None) -> bool | None:
    """None without a document or when nothing was configured, else whether the check passed."""
    if fairness is None:
        return None
    if not isinstance(fairness, Mapping) or not isinstance(fairness.get("passed"), bool) or "reason" not in fairness:
        raise DataError(
            "the fairness document needs 'passed' (true or false) and 'reason': is it the fairness stage's?"
        )
    if not fairness.get("configured", True):
        return None
    return bool(fairness["passed"])


def _regressions(slices: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return [result for result in (slices or {}).get("results", []) if result.get("regressed")]


def _regression_summary(slices: Mapping[str, Any], regressions: list[Mapping[str, Any]]) -> str:
    shown = "; ".join(
        f"{result['column']}={result['value']} challenger {result['challenger']:.4f} vs champion "
        f"{result['champion']:.4f} ({result['delta']:+.4f}, {result['rows']} rows)"
        for result in regressions
    )
    return (
        f"{len(regressions)} slice(s) regress by more than the slice margin {float(slices['margin']):.4f} "
        f"on {slices.get('metric', 'the metric')}: {shown}"
    )


def check_slice_parameters(slice_columns: Sequence[str] | None, slice_margin: float, slice_min_rows: int) -> list[str]:
    """Validate the slice gate's parameters.

    Args:
        slice_columns: Columns whose values are slices, or None.
        slice_margin: Largest allowed shortfall of the challenger on a slice, >= 0.
        slice_min_rows: Smallest slice compared, >= 1.

    Returns:
        The columns, without duplicates.

    Raises:
        ParameterError: an empty or repeated column, a negative or non-finite margin, ``slice_min_rows`` < 1.
    """
    columns = column_names("slice_columns", slice_columns)
    if (
        isinstance(slice_margin, bool)
        or not isinstance(slice_margin, int | float)
        or not math.isfinite(slice_margin)
        or slice_margin < 0
    ):
        raise ParameterError(f"slice_margin={slice_margin!r}: must be a number >= 0 (the largest allowed shortfall)")
    if isinstance(slice_min_rows, bool) or not isinstance(slice_min_rows, int) or slice_min_rows < 1:
        raise ParameterError(f"slice_min_rows={slice_min_rows!r}: must be an integer >= 1")
    return columns


def compare_slices(
    frame: pd.DataFrame,
    labels: Any,
    challenger_scores: Any,
    champion_scores: Any | None,
    columns: Sequence[str],
    metric: str = "roc_auc",
    margin: float = 0.0,
    min_rows: int = 100,
    challenger_threshold: float = 0.5,
    champion_threshold: float = 0.5,
    task: str = "binary",
    classes: Sequence[str] = (),
) -> dict[str, Any]:
    """Score both models on every slice with enough rows (no I/O).

    Args:
        frame: The holdout rows (with the slice columns).
        labels: 0/1 labels of those rows (binary), class labels as text (multiclass) or values (regression).
        challenger_scores: The challenger's outputs (``mlkeel.modeling.model_outputs``), one per row.
        champion_scores: The champion's, or None (then nothing can regress).
        columns: Slice columns; each value (missing values together) is a slice.
        metric: The gate metric.
        margin: A slice regresses when the challenger is worse than the champion by more than this.
        min_rows: Slices with fewer rows are not compared (nor listed).
        challenger_threshold: The challenger's decision threshold (for thresholded metrics such as f1).
        champion_threshold: The champion's.
        task: The models' task.
        classes: The models' classes as text, in probability-column order (multiclass).

    Returns:
        The ``Blessing.slices`` document.

    Raises:
        SchemaMismatchError: a slice column is not in ``frame``.
    """
    import numpy as np

    from mlkeel.metrics import group_values, shortfall, task_metrics

    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise SchemaMismatchError(
            f"slice column(s) not found in the holdout: {', '.join(missing)}; columns: {', '.join(frame.columns)}"
        )
    labels = np.asarray(labels)
    results, skipped = [], []
    for column in columns:
        groups = group_values(frame[column]).to_numpy()
        for value in sorted(set(groups)):
            mask = groups == value
            rows = int(mask.sum())
            if rows < min_rows:
                continue
            try:
                challenger = task_metrics(
                    task, labels[mask], np.asarray(challenger_scores)[mask], classes, challenger_threshold
                )[metric]
            except DataError as error:
                skipped.append({"column": column, "value": value, "rows": rows, "why": str(error)})
                continue
            champion = delta = None
            regressed = False
            if champion_scores is not None:
                champion = task_metrics(
                    task, labels[mask], np.asarray(champion_scores)[mask], classes, champion_threshold
                )[metric]
                delta = challenger - champion
                regressed = shortfall(metric, challenger, champion) > margin + SLICE_TOLERANCE
            results.append(
                {
                    "column": column,
                    "value": value,
                    "rows": rows,
                    "challenger": challenger,
                    "champion": champion,
                    "delta": delta,
                    "regressed": regressed,
                }
            )
    return {
        "columns": list(columns),
        "margin": float(margin),
        "min_rows": int(min_rows),
        "metric": metric,
        "results": results,
        "skipped": skipped,
    }


def registry_call(tracking_uri: str, action: str, call: Callable[[], T]) -> T:
    """Run one registry call; turn any failure into a ``RegistryError`` naming the (credential-free) URI.

    Args:
        tracking_uri: The resolved tracking URI, shown without user-info or query.
        action: What was attempted, e.g. "read registered model 'churn'".
        call: The call.

    Returns:
        What ``call`` returns.

    Raises:
        RegistryError: ``call`` raised.
    """
    try:
        return call()
    except Exception as error:  # MlflowException, requests/SQLAlchemy errors: all mean "registry failed"
        shown = display_uri(tracking_uri)
        detail = str(error).replace(tracking_uri, shown)
        if len(detail) > MAX_QUOTED_ERROR:
            detail = detail[:MAX_QUOTED_ERROR] + "..."
        raise RegistryError(
            f"MLflow registry at {shown}: could not {action}: {type(error).__name__}: {detail}"
        ) from error


def is_not_found(error: BaseException) -> bool:
    """Whether ``error`` (or the error it wraps) is MLflow's RESOURCE_DOES_NOT_EXIST.

    Args:
        error: An exception, possibly a ``RegistryError`` raised from an ``MlflowException``.

    Returns:
        True for "no such registered model / version / alias / run".
    """
    cause = error.__cause__ if isinstance(error, RegistryError) else error
    return getattr(cause, "error_code", None) == MLFLOW_NOT_FOUND


def champion_version(client: MlflowClient, model_name: str, tracking_uri: str) -> tuple[str | None, str]:
    """Find the version under the ``champion`` alias of ``model_name``.

    Args:
        client: A client bound to the registry.
        model_name: Registered model name.
        tracking_uri: The resolved URI, for messages.

    Returns:
        ``(version, "")``, or ``(None, why)`` with ``why`` a clause such as "no model named 'x' is registered
        yet".

    Raises:
        RegistryError: the registry cannot be reached or answers with an error other than "not found".
    """
    try:
        registered = registry_call(
            tracking_uri,
            f"read registered model {model_name!r}",
            lambda: client.get_registered_model(model_name),
        )
    except RegistryError as error:
        if is_not_found(error):
            return None, f"no model named {model_name!r} is registered yet"
        raise
    version = (registered.aliases or {}).get(CHAMPION_ALIAS)
    if not version:
        return None, f"registered model {model_name!r} has no {CHAMPION_ALIAS!r} alias yet"
    return str(version), ""


def score_on(model: Any, frame: pd.DataFrame, labels: Any, metric: str, source: str) -> float:
    """``metric`` of ``model`` on the rows of ``frame``, using the model's own ``feature_names_in_`` columns.

    Args:
        model: A fitted scikit-learn model (fitted on a DataFrame).
        frame: The holdout rows (all columns).
        labels: Targets of those rows as the model's task reads them (0/1, class text or values).
        metric: Metric name (one of the model's task's).
        source: Printable name of the model and rows, for messages.

    Returns:
        The metric value.

    Raises:
        SchemaMismatchError: the rows lack a column the model needs.
        DataError: the model does not record its input columns.
    """
    from mlkeel.metrics import task_metrics
    from mlkeel.modeling import decision_threshold, model_task

    task = model_task(model)
    classes = [str(name) for name in getattr(model, "classes_", [])]
    outputs = task_outputs(model, frame, task, source)
    return task_metrics(task, labels, outputs, classes, decision_threshold(model))[metric]


def task_outputs(model: Any, frame: pd.DataFrame, task: str, source: str) -> Any:
    """The model's outputs of ``task`` on the rows of ``frame`` (its own input columns, one native thread).

    Args:
        model: A fitted scikit-learn model (fitted on a DataFrame).
        frame: The rows (all columns).
        task: The model's task.
        source: Printable name of the model and rows, for messages.

    Returns:
        Positive scores (binary), class probabilities (multiclass) or values (regression).

    Raises:
        SchemaMismatchError: the rows lack a column the model needs.
    """
    from mlkeel.modeling import feature_frame, model_feature_columns, model_outputs, one_native_thread, score_frame

    if task == "binary":
        return score_frame(model, frame, source)
    features = feature_frame(frame, model_feature_columns(model), source)
    with one_native_thread():
        return model_outputs(model, features, task)


def gate(
    model_path: str,
    test_path: str,
    metrics: Mapping[str, Any],
    model_name: str,
    target_column: str,
    positive_label: str,
    blessing_path: str,
    tracking_uri: str = "",
    metric: str = "roc_auc",
    margin: float = 0.01,
    thresholds: Mapping[str, Any] | None = None,
    mlflow_run_id: str = "",
    fairness_path: str = "",
    slice_columns: Sequence[str] | None = None,
    slice_margin: float = DEFAULT_SLICE_MARGIN,
    slice_min_rows: int = DEFAULT_SLICE_MIN_ROWS,
) -> Blessing:
    """Compare the challenger at ``model_path`` with the registry's champion on the same rows, and decide.

    The champion is the version under the ``champion`` alias of ``model_name``, resolved to a version first
    so that the version recorded is the one scored. Both models score every row of ``test_path``, each with
    its own feature columns.

    Args:
        model_path: The challenger, an MLflow sklearn model directory (the KFP Model artifact).
        test_path: Holdout rows (Parquet), the same the evaluate stage scored.
        metrics: The challenger's holdout metrics (the evaluate stage's Metrics metadata).
        model_name: Registered model name whose champion the challenger must beat.
        target_column: The label column of ``test_path`` (a class or a number: the task is the challenger's).
        positive_label: The label value meaning positive (binary models only).
        blessing_path: Where to write the blessing JSON.
        tracking_uri: MLflow tracking/registry URI ("" = ``$MLFLOW_TRACKING_URI``).
        metric: Metric compared with the champion; one of the challenger's task's (``TASK_METRICS``).
        margin: Required improvement over the champion (>= 0), in the metric's direction.
        thresholds: Absolute bounds every challenger must meet, metric -> bound.
        mlflow_run_id: The challenger's MLflow run; when set, the decision is logged on it (best effort).
        fairness_path: The fairness stage's JSON document ("" = no fairness check).
        slice_columns: Columns whose values are slices compared with the champion (None or [] = none).
        slice_margin: Largest allowed shortfall of the challenger on a slice (>= 0).
        slice_min_rows: Slices with fewer holdout rows are not compared.

    Returns:
        The ``Blessing`` (also written to ``blessing_path``).

    Raises:
        ParameterError: bad metric, margin, thresholds, slice parameters or an empty model name; no tracking
            URI.
        DataError: missing metrics, unreadable holdout or fairness document, labels that are not binary.
        SchemaMismatchError: the holdout lacks the target, a slice column or a column the challenger needs.
        RegistryError: the registry cannot be reached or the champion cannot be loaded.
    """
    from mlkeel.metrics import require_task_metric, task_metrics
    from mlkeel.modeling import decision_threshold, import_model_libraries, load_sklearn_model, model_task
    from mlkeel.tracking import connect, resolve_tracking_uri

    import_model_libraries()  # before connect imports mlflow: see its docstring
    bounds = check_parameters(metric, margin, thresholds)
    columns = check_slice_parameters(slice_columns, slice_margin, slice_min_rows)
    if not model_name.strip():
        raise ParameterError("model_name is empty: name the registered model the challenger competes with")
    for name in {metric, *bounds}:
        _metric_value(metrics, name)
    fairness = read_json(fairness_path) if fairness_path else None
    _fairness_passed(fairness)  # a wrong document fails before the registry is asked anything
    # Read the holdout even when there turns out to be no champion: a wrong path fails on the first run too.
    frame = _holdout(test_path, target_column)
    challenger = load_sklearn_model(model_path)
    task = model_task(challenger)
    for name in {metric, *bounds}:
        require_task_metric(name, task)
    labels = _targets(frame[target_column], task, positive_label, test_path)
    classes = [str(name) for name in getattr(challenger, "classes_", [])]
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise SchemaMismatchError(f"{test_path}: slice column(s) not found: {', '.join(missing)}")
    resolved_uri = resolve_tracking_uri(tracking_uri)
    client = connect(resolved_uri)

    version, no_comparison_reason = champion_version(client, model_name, resolved_uri)
    # Each model is judged at its own decision threshold (the one it carries; 0.5 for a model without one).
    challenger_threshold = decision_threshold(challenger)
    challenger_scores = task_outputs(challenger, frame, task, "challenger")
    predictions = prediction_counts(labels, challenger_scores, challenger_threshold) if task == "binary" else None
    challenger_score = champion_score = None
    champion_scores = None
    champion_threshold = challenger_threshold
    if version is not None:
        champion = _load_champion(model_name, version, resolved_uri)
        champion_threshold = decision_threshold(champion)
        champion_task = model_task(champion)
        champion_classes = [str(name) for name in getattr(champion, "classes_", [])]
        try:
            if champion_task != task or champion_classes != classes:
                raise SchemaMismatchError(
                    f"it is a {champion_task} model"
                    + (f" of classes {champion_classes}" if champion_task == "multiclass" else "")
                    + f", the challenger a {task} one"
                    + (f" of classes {classes}" if task == "multiclass" else "")
                )
            champion_scores = task_outputs(champion, frame, task, f"champion version {version}")
        except SchemaMismatchError as error:
            no_comparison_reason = f"the champion cannot score these rows ({error}; the schema changed)"
            logger.warning("gate: %s", no_comparison_reason)
        else:
            champion_score = task_metrics(task, labels, champion_scores, classes, champion_threshold)[metric]
            challenger_score = task_metrics(task, labels, challenger_scores, classes, challenger_threshold)[metric]
            _warn_if_other_rows(metrics, metric, challenger_score)
    slices = None
    if columns:
        slices = compare_slices(
            frame,
            labels,
            challenger_scores,
            champion_scores,
            columns,
            metric,
            slice_margin,
            slice_min_rows,
            challenger_threshold,
            champion_threshold,
            task,
            classes,
        )

    blessing = decide(
        metrics,
        challenger_score=challenger_score,
        champion_score=champion_score,
        champion_version=version,
        metric=metric,
        margin=margin,
        thresholds=bounds,
        no_comparison_reason=no_comparison_reason,
        fairness=fairness,
        slices=slices,
        predictions=predictions,
    )
    blessing.save(blessing_path)
    logger.info("gate: %s", blessing.reason)
    if mlflow_run_id:
        log_decision_on_run(client, mlflow_run_id, blessing, resolved_uri)
    return blessing


def _holdout(test_path: str, target_column: str) -> pd.DataFrame:
    import pyarrow.parquet as pq

    from mlkeel.storage import require_readable_file

    require_readable_file(test_path)
    frame = pq.read_table(test_path).to_pandas()
    if target_column not in frame.columns:
        raise SchemaMismatchError(
            f"{test_path}: target column {target_column!r} not found; columns: {', '.join(frame.columns)}"
        )
    return frame


def _targets(values: pd.Series, task: str, positive_label: str, source: str) -> Any:
    """The holdout's targets as ``task``'s metrics read them: 0/1, class labels as text, or values."""
    from mlkeel.modeling import binary_labels, task_targets

    if task == "binary":
        return binary_labels(values, positive_label, source)
    return task_targets(values, task, source)


def _load_champion(model_name: str, version: str, tracking_uri: str) -> Any:
    from mlkeel.modeling import load_sklearn_model

    uri = f"models:/{model_name}/{version}"
    return registry_call(tracking_uri, f"load the champion {uri}", lambda: load_sklearn_model(uri))


def _warn_if_other_rows(metrics: Mapping[str, Any], metric: str, recomputed: float) -> None:
    reported = float(metrics[metric])
    if not math.isclose(reported, recomputed, rel_tol=1e-6, abs_tol=1e-9):
        logger.warning(
            "gate: the challenger's %s on these rows is %.6f but its metrics say %.6f: "
            "were the metrics computed on other rows?",
            metric,
            recomputed,
            reported,
        )


def log_decision_on_run(client: MlflowClient, run_id: str, blessing: Blessing, tracking_uri: str) -> None:
    """Log the decision on the challenger's MLflow run: ``gate_blessed``, both scores, the reason tag.

    Best effort: the blessing artifact is the record that counts, so a failure here is logged, not raised.

    Args:
        client: A client bound to the tracking server.
        run_id: The challenger's run.
        blessing: The decision.
        tracking_uri: The resolved URI, for messages.
    """
    import time

    from mlflow.entities import Metric, RunTag

    now = int(time.time() * 1000)
    values = {
        GateRunMetric.BLESSED: 1.0 if blessing.blessed else 0.0,
        f"{GateRunMetric.CHALLENGER_PREFIX}{blessing.metric}": blessing.challenger_score,
    }
    if blessing.champion_score is not None:
        values[f"{GateRunMetric.CHAMPION_PREFIX}{blessing.metric}"] = blessing.champion_score
    try:
        registry_call(
            tracking_uri,
            f"log the gate decision on run {run_id}",
            lambda: client.log_batch(
                run_id,
                metrics=[Metric(name, value, now, 0) for name, value in values.items()],
                tags=[RunTag(LineageTag.BLESSING_REASON, blessing.reason)],
            ),
        )
    except RegistryError as error:
        logger.warning("gate: decision not logged on the challenger's run: %s", error)
