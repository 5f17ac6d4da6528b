"""Push metrics: a monitoring run's figures, as Prometheus gauges, to a Pushgateway.

The monitoring pipeline's verdicts (drift, live performance, validation of the new batch) otherwise live only in
KFP artifacts and MLflow, where no alert rule can see them. This stage reads the drift and performance results
and validate's row counts, turns them into gauges labelled with the model's name and champion version, and
pushes them with prometheus-client's ``push_to_gateway`` under the grouping key ``{job, model_name}``: each run
replaces the previous run's figures of that model (a feature that no longer drifts does not linger).

A push that fails (gateway down, wrong URL, refused) is logged as a warning and reported in the outcome; it
never fails the run: monitoring must not stop because the monitoring of monitoring is down. The staleness alert
(``MlkeelMonitoringStale`` in manifests/monitoring/) is what notices pushes that stop arriving.

Every gauge is listed in ``PUSHED_METRICS``; the alert rules and the Grafana dashboard use these names only.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from mlkeel.errors import DataError, ParameterError
from mlkeel.storage import read_json

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

logger = logging.getLogger(__name__)

DEFAULT_JOB: Final = "mlkeel-monitoring"
# How often a model is expected to be monitored; the staleness alert fires after 1.5 times this without a run.
DEFAULT_SCHEDULE_SECONDS: Final = 86_400.0
DEFAULT_TIMEOUT_SECONDS: Final = 10.0
MODEL_LABELS: Final = ("model_name", "model_version")

# Gauge name -> (help, extra label or "").
PUSHED_METRICS: Final[dict[str, tuple[str, str]]] = {
    "mlkeel_monitoring_feature_p_value": ("Drift test p-value of each feature (KS or chi-squared)", "feature"),
    "mlkeel_monitoring_feature_psi": ("Population Stability Index of each feature", "feature"),
    "mlkeel_monitoring_feature_drifted": ("1 when the drift test calls the feature drifted, else 0", "feature"),
    "mlkeel_monitoring_psi_threshold": ("PSI above which the run flags a feature as shifted", ""),
    "mlkeel_monitoring_drift_detected": ("1 when the batch drifted from the champion's reference rows", ""),
    "mlkeel_monitoring_drifted_feature_share": ("Share of the compared features called drifted", ""),
    "mlkeel_monitoring_live_metric": ("Metric of the champion on the labelled batch", "metric"),
    "mlkeel_monitoring_holdout_metric": ("Metric the champion's training run recorded on its holdout", "metric"),
    "mlkeel_monitoring_metric_drop": ("Worsening of the degradation metric, holdout to live", "metric"),
    "mlkeel_monitoring_metric_max_drop": ("Largest tolerated worsening of the degradation metric", "metric"),
    "mlkeel_monitoring_degraded": ("1 when the live metric dropped by more than the tolerance", ""),
    "mlkeel_monitoring_rows_valid": ("Rows of the batch that passed validation", ""),
    "mlkeel_monitoring_rows_quarantined": ("Rows of the batch quarantined by validation", ""),
    "mlkeel_monitoring_quarantined_share": ("Share of the batch's rows quarantined by validation", ""),
    "mlkeel_monitoring_retraining_triggered": ("1 when the run retrained (drift or degradation)", ""),
    "mlkeel_monitoring_last_run_timestamp_seconds": ("Unix time of the monitoring run", ""),
    "mlkeel_monitoring_schedule_seconds": ("Expected seconds between two monitoring runs of the model", ""),
}


@dataclass(frozen=True)
class Sample:
    """One gauge value: ``name{model labels, extra label}`` = ``value``."""

    name: str
    value: float
    label: str = ""


@dataclass(frozen=True)
class MonitoringFigures:
    """What one monitoring run pushes.

    Attributes:
        model_name: The monitored registered model.
        model_version: Its champion version at the run.
        samples: Every gauge value (names from ``PUSHED_METRICS``).
    """

    model_name: str
    model_version: str
    samples: tuple[Sample, ...] = field(default_factory=tuple)

    def value(self, name: str, label: str = "") -> float:
        """The value of ``name`` (with ``label``), for reports and tests; KeyError when absent."""
        for sample in self.samples:
            if (sample.name, sample.label) == (name, label):
                return sample.value
        raise KeyError(f"{name}{{{label}}}")


@dataclass(frozen=True)
class PushOutcome:
    """Whether the figures reached the Pushgateway.

    Attributes:
        pushed: True once the gateway accepted them.
        message: What happened, one line (the error when the push failed; why nothing was pushed).
        samples: How many gauge values the run had.
    """

    pushed: bool
    message: str
    samples: int

    def to_dict(self) -> dict[str, Any]:
        """As JSON-ready data."""
        return {"pushed": self.pushed, "message": self.message, "samples": self.samples}


def model_version_of(model_uri: str) -> str:
    """The version of ``models:/NAME/VERSION`` (what the champion stage outputs).

    Args:
        model_uri: The champion's model URI.

    Returns:
        VERSION.

    Raises:
        ParameterError: not a ``models:/NAME/VERSION`` URI.
    """
    prefix, _, rest = model_uri.partition("models:/")
    name, _, version = rest.rpartition("/")
    if prefix or not name or not version.isdigit():
        raise ParameterError(f"champion model URI {model_uri!r}: expected models:/NAME/VERSION")
    return version


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DataError(f"{where}: expected a number, got {value!r}")
    return float(value)


def drift_samples(drift_result: Mapping[str, Any], source: str = "drift result") -> list[Sample]:
    """Gauges of a drift result (the drift stage's ``{"meta": ..., "data": ...}``).

    Args:
        drift_result: The parsed drift result.
        source: What to call it in errors (its file).

    Returns:
        Per feature p-value, PSI and drifted flag; the PSI threshold; drift detected; the drifted share.

    Raises:
        DataError: the result lacks ``data.features`` or a feature's p_value/psi is not a number.
    """
    data = drift_result.get("data")
    if not isinstance(data, Mapping):
        raise DataError(f"{source}: no data (is it the drift stage's result?)")
    features = data.get("features")
    if not isinstance(features, Mapping) or not features:
        raise DataError(f"{source}: no data.features (is it the drift stage's result?)")
    samples: list[Sample] = []
    for feature, stats in sorted(features.items()):
        where = f"{source}: data.features.{feature}"
        if not isinstance(stats, Mapping):
            raise DataError(f"{where}: expected an object")
        p_value = _number(stats.get("p_value"), f"{where}.p_value")
        psi = stats.get("psi")
        samples.append(Sample("mlkeel_monitoring_feature_p_value", p_value, feature))
        if psi is not None and not (isinstance(psi, float) and math.isnan(psi)):
            samples.append(Sample("mlkeel_monitoring_feature_psi", _number(psi, f"{where}.psi"), feature))
        samples.append(Sample("mlkeel_monitoring_feature_drifted", float(bool(stats.get("drift"))), feature))
    drifted = sum(bool(stats.get("drift")) for stats in features.values())
    samples.append(Sample("mlkeel_monitoring_drift_detected", float(bool(data.get("is_drift")))))
    samples.append(Sample("mlkeel_monitoring_drifted_feature_share", drifted / len(features)))
    threshold = drift_result.get("meta", {}).get("psi_threshold")
    if threshold is not None:
        samples.append(Sample("mlkeel_monitoring_psi_threshold", _number(threshold, f"{source}: meta.psi_threshold")))
    return samples


def performance_samples(performance_result: Mapping[str, Any], source: str = "performance result") -> list[Sample]:
    """Gauges of a performance result (the performance stage's ``{"meta": ..., "data": ...}``).

    Args:
        performance_result: The parsed performance result.
        source: What to call it in errors (its file).

    Returns:
        Every live metric; with an assessed version, its holdout metric, the drop and the tolerance of the
        degradation metric; the degraded flag.

    Raises:
        DataError: the result lacks ``data.live`` or a value is not a number.
    """
    data = performance_result.get("data")
    if not isinstance(data, Mapping):
        raise DataError(f"{source}: no data (is it the performance stage's result?)")
    live = data.get("live")
    if not isinstance(live, Mapping):
        raise DataError(f"{source}: no data.live (is it the performance stage's result?)")
    samples = [
        Sample("mlkeel_monitoring_live_metric", _number(value, f"{source}: data.live.{name}"), name)
        for name, value in sorted(live.items())
    ]
    assessed = [entry.get("assessment") for entry in data.get("versions", []) if entry.get("assessment")]
    if len(assessed) == 1:
        assessment = assessed[0]
        metric = str(assessment.get("metric", ""))
        where = f"{source}: data.versions[].assessment"
        samples += [
            Sample("mlkeel_monitoring_holdout_metric", _number(assessment.get("registered"), where), metric),
            Sample("mlkeel_monitoring_metric_drop", _number(assessment.get("drop"), where), metric),
            Sample("mlkeel_monitoring_metric_max_drop", _number(assessment.get("max_drop"), where), metric),
        ]
    samples.append(Sample("mlkeel_monitoring_degraded", float(bool(data.get("degraded")))))
    return samples


def monitoring_figures(
    drift_result: Mapping[str, Any],
    performance_result: Mapping[str, Any],
    model_name: str,
    model_version: str,
    rows_valid: int,
    rows_quarantined: int,
    retraining_triggered: bool,
    run_time: float | None = None,
    schedule_seconds: float = DEFAULT_SCHEDULE_SECONDS,
    sources: tuple[str, str] = ("drift result", "performance result"),
) -> MonitoringFigures:
    """Every figure of one monitoring run, as gauge samples.

    Args:
        drift_result: The drift stage's result.
        performance_result: The performance stage's result.
        model_name: The monitored registered model.
        model_version: Its champion version.
        rows_valid: Rows of the batch that passed validation.
        rows_quarantined: Rows validation quarantined.
        retraining_triggered: Whether the run retrains (drift or degradation).
        run_time: Unix time of the run; None = now.
        schedule_seconds: Expected seconds between two monitoring runs of this model (the staleness bound).
        sources: What to call the two results in errors (their files).

    Returns:
        The ``MonitoringFigures``.

    Raises:
        ParameterError: empty model name or version, negative row counts or a schedule that is not positive.
        DataError: a result lacks what it should hold.
    """
    if not model_name.strip() or not model_version.strip():
        raise ParameterError("model_name and model_version label every pushed metric: neither may be empty")
    if rows_valid < 0 or rows_quarantined < 0:
        raise ParameterError(f"row counts must be >= 0, got valid={rows_valid}, quarantined={rows_quarantined}")
    if not schedule_seconds > 0:
        raise ParameterError(f"schedule_seconds={schedule_seconds}: expected a positive number of seconds")
    rows = rows_valid + rows_quarantined
    samples = [
        *drift_samples(drift_result, sources[0]),
        *performance_samples(performance_result, sources[1]),
        Sample("mlkeel_monitoring_rows_valid", float(rows_valid)),
        Sample("mlkeel_monitoring_rows_quarantined", float(rows_quarantined)),
        Sample("mlkeel_monitoring_quarantined_share", rows_quarantined / rows if rows else 0.0),
        Sample("mlkeel_monitoring_retraining_triggered", float(retraining_triggered)),
        Sample("mlkeel_monitoring_last_run_timestamp_seconds", time.time() if run_time is None else float(run_time)),
        Sample("mlkeel_monitoring_schedule_seconds", float(schedule_seconds)),
    ]
    return MonitoringFigures(model_name, model_version, tuple(samples))


def build_registry(figures: MonitoringFigures) -> CollectorRegistry:
    """A prometheus-client registry holding ``figures`` as gauges (one per name in ``PUSHED_METRICS``).

    Args:
        figures: The run's figures.

    Returns:
        A new ``CollectorRegistry``.
    """
    from prometheus_client import CollectorRegistry, Gauge

    registry = CollectorRegistry()
    gauges: dict[str, Gauge] = {}
    for sample in figures.samples:
        description, extra = PUSHED_METRICS[sample.name]
        if sample.name not in gauges:
            labels = [*MODEL_LABELS, extra] if extra else list(MODEL_LABELS)
            gauges[sample.name] = Gauge(sample.name, description, labels, registry=registry)
        values = [figures.model_name, figures.model_version] + ([sample.label] if extra else [])
        gauges[sample.name].labels(*values).set(sample.value)
    return registry


def push_figures(
    figures: MonitoringFigures,
    pushgateway_url: str,
    job: str = DEFAULT_JOB,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> PushOutcome:
    """Push ``figures`` to a Pushgateway, replacing the model's previous figures; never raise on a failed push.

    Args:
        figures: The run's figures.
        pushgateway_url: ``http://host:port`` of the Pushgateway; "" pushes nothing.
        job: The ``job`` of the grouping key.
        timeout: Seconds to wait for the gateway.

    Returns:
        The ``PushOutcome``; a failed push is logged as a warning and returned with ``pushed=False``.
    """
    from prometheus_client import push_to_gateway

    count = len(figures.samples)
    if not pushgateway_url.strip():
        return PushOutcome(False, "no Pushgateway configured: nothing pushed", count)
    grouping = {"model_name": figures.model_name}
    try:
        push_to_gateway(
            pushgateway_url, job=job, registry=build_registry(figures), grouping_key=grouping, timeout=timeout
        )
    except Exception as error:  # any failure (refused, DNS, HTTP 4xx/5xx, timeout) is reported, never raised
        message = f"push to {pushgateway_url} failed ({type(error).__name__}: {error}); the run goes on without it"
        logger.warning("push_metrics: %s", message)
        return PushOutcome(False, message, count)
    message = f"pushed {count} values for {figures.model_name} version {figures.model_version} to {pushgateway_url}"
    logger.info("push_metrics: %s", message)
    return PushOutcome(True, message, count)


def push_monitoring_metrics(
    drift_result_path: str,
    performance_result_path: str,
    champion_model_uri: str,
    model_name: str,
    rows_valid: int,
    rows_quarantined: int,
    retraining_triggered: bool,
    pushgateway_url: str,
    job: str = DEFAULT_JOB,
    schedule_seconds: float = DEFAULT_SCHEDULE_SECONDS,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> PushOutcome:
    """Read a monitoring run's results and push its figures (the stage's entry: component, CLI and tests).

    Args:
        drift_result_path: The drift stage's result JSON.
        performance_result_path: The performance stage's result JSON.
        champion_model_uri: The monitored champion, ``models:/NAME/VERSION``.
        model_name: The registered model's name.
        rows_valid: Rows validation passed.
        rows_quarantined: Rows validation quarantined.
        retraining_triggered: Whether the run retrains.
        pushgateway_url: The Pushgateway; "" pushes nothing.
        job: The ``job`` of the grouping key.
        schedule_seconds: Expected seconds between two runs of this model.
        timeout: Seconds to wait for the gateway.

    Returns:
        The ``PushOutcome``.

    Raises:
        DataError: a result file is missing, not JSON, or lacks what it should hold.
        ParameterError: a bad model URI, name, row count or schedule.
    """
    documents = []
    for path, stage in ((drift_result_path, "drift"), (performance_result_path, "performance")):
        document = read_json(path)
        if not isinstance(document, Mapping):
            raise DataError(f"{path}: expected the {stage} stage's result object")
        documents.append(document)
    figures = monitoring_figures(
        documents[0],
        documents[1],
        model_name,
        model_version_of(champion_model_uri),
        rows_valid,
        rows_quarantined,
        retraining_triggered,
        schedule_seconds=schedule_seconds,
        sources=(drift_result_path, performance_result_path),
    )
    return push_figures(figures, pushgateway_url, job, timeout)
