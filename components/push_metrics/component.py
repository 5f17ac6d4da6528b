"""KFP component for the push_metrics stage: a thin shell around ``mlkeel.components.push_metrics.logic``."""

from kfp import dsl
from kfp.dsl import Artifact, Input

from mlkeel.images import stage_image


# Defaults are literals: KFP runs this function's source on its own, where no imported name is defined.
# A unit test checks them against logic's DEFAULT_JOB, DEFAULT_SCHEDULE_SECONDS and DEFAULT_TIMEOUT_SECONDS.
@dsl.component(base_image=stage_image("push_metrics"), install_kfp_package=False)
def push_metrics(
    drift_result: Input[Artifact],
    performance_result: Input[Artifact],
    champion_model_uri: str,
    model_name: str,
    rows_valid: int,
    rows_quarantined: int,
    is_drift: bool,
    degraded: bool,
    pushgateway_url: str,
    job: str = "mlkeel-monitoring",
    schedule_seconds: float = 86400.0,
    timeout: float = 10.0,
) -> bool:
    """Push a monitoring run's figures to a Prometheus Pushgateway (gauges labelled model_name, model_version).

    Pushed under the grouping key ``{job, model_name}`` with prometheus-client's ``push_to_gateway``, so each
    run replaces the model's previous figures: per feature p-value, PSI and drifted flag
    (``mlkeel_monitoring_feature_*``), the PSI threshold, drift detected and the drifted-feature share; every
    live metric, the holdout metric, its drop and the tolerated drop; degraded; valid and quarantined rows and
    the quarantined share; whether retraining ran; the run's time and the expected schedule. A failed push is
    logged as a warning and the step still succeeds (its output says False): monitoring goes on without it.

    Args:
        drift_result: Input Artifact (JSON): the drift stage's result.
        performance_result: Input Artifact (JSON): the performance stage's result.
        champion_model_uri: The monitored champion, models:/NAME/VERSION (the version labels every gauge).
        model_name: The registered model (labels every gauge; part of the grouping key).
        rows_valid: Rows of the batch validation passed.
        rows_quarantined: Rows validation quarantined.
        is_drift: The drift stage's verdict (retraining runs on drift ...).
        degraded: The performance stage's verdict (... or on degradation).
        pushgateway_url: The Pushgateway, http://host:port; "" pushes nothing.
        job: The job label of the grouping key.
        schedule_seconds: Expected seconds between two monitoring runs of the model (staleness alert bound).
        timeout: Seconds to wait for the Pushgateway.

    Returns:
        Whether the figures were pushed.
    """
    from mlkeel.components.push_metrics.logic import push_monitoring_metrics

    outcome = push_monitoring_metrics(
        drift_result.path,
        performance_result.path,
        champion_model_uri,
        model_name,
        rows_valid,
        rows_quarantined,
        is_drift or degraded,
        pushgateway_url,
        job=job,
        schedule_seconds=schedule_seconds,
        timeout=timeout,
    )
    print(outcome.message)
    return outcome.pushed
