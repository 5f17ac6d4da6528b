"""The monitoring pipeline: check a new batch against the champion and retrain when its world has moved.

champion -> ingest -> validate (the champion's schema) -> drift (vs the champion's reference rows)
                                                       -> batch_predict (champion) -> performance (live labels)
champion -> batch_predict (champion, on its reference rows) -> drift (prediction drift, beside the features)
-> dsl.If(drift) / dsl.Elif(degraded) -> the training pipeline, nested, on the current batch (gate + register).

Every task (binary, multiclass, regression; the ``task`` parameter, inferred from the target by default):
batch_predict writes the task's prediction log, performance measures the task's metric (``degradation_metric``
"" = roc_auc, macro_f1 or rmse), drift reports the predictions' drift in the task's shape, and the retraining
trains for the same task.
-> dsl.If(pushgateway_url) -> push_metrics: the run's figures to a Prometheus Pushgateway (failures only logged).
"""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact

from mlkeel.components.batch_predict.component import batch_predict
from mlkeel.components.champion.component import champion
from mlkeel.components.drift.component import drift
from mlkeel.components.ingest.component import ingest
from mlkeel.components.performance.component import performance
from mlkeel.components.push_metrics.component import push_metrics
from mlkeel.components.validate.component import validate
from mlkeel.pipelines.task_settings import configure
from mlkeel.pipelines.training import training_pipeline


class MonitoringOutputs(NamedTuple):
    """What a monitoring run returns."""

    champion_model_uri: str
    is_drift: bool
    degraded: bool
    drift_result: Artifact
    performance_result: Artifact


@dsl.pipeline(
    name="mlkeel-monitoring",
    description="Validate and drift-check a new batch against the champion, measure live performance, and "
    "retrain (the training pipeline, nested) on drift or degradation.",
)
def monitoring_pipeline(
    current_uri: str,
    model_name: str = "mlkeel-churn",
    target_column: str = "Churn",
    positive_label: str = "Yes",
    task: str = "",
    key_column: str = "customerID",
    file_format: str = "auto",
    max_invalid_fraction: float = 0.05,
    drift_p_val: float = 0.05,
    psi_threshold: float = 0.2,
    degradation_metric: str = "",
    max_metric_drop: float = 0.05,
    mlflow_tracking_uri: str = "",
    experiment_name: str = "mlkeel-churn",
    estimator: str = "hist_gradient_boosting",
    seed: int = 42,
    gate_metric: str = "roc_auc",
    gate_margin: float = 0.01,
    gate_thresholds: dict = {"roc_auc": 0.7},
    pushgateway_url: str = "",
    schedule_seconds: float = 86400.0,
) -> MonitoringOutputs:
    """Monitor a labelled batch against the registry's champion; retrain on drift or degradation.

    Args:
        current_uri: The new batch (CSV or Parquet, path or pyarrow URI), with its labels.
        model_name: Registered model whose champion is monitored (and retrained).
        target_column: The label column.
        positive_label: The label value meaning positive (binary targets).
        task: binary | multiclass | regression, or "" to infer it from the target (as the training pipeline);
            validation and the retraining follow it. For multiclass or regression, set gate_metric and
            gate_thresholds to the task's metrics (``mlkeel run monitoring`` does: macro_f1 or rmse, no
            thresholds).
        key_column: The row identifier (joins predictions with labels; excluded from drift). Retraining keeps
            the champion's key columns.
        file_format: "auto", "csv" or "parquet".
        max_invalid_fraction: Fail when more than this share of the batch breaks the champion's schema.
        drift_p_val: Significance level of the drift tests (before the multiple-testing correction).
        psi_threshold: PSI above which a feature is reported as shifted.
        degradation_metric: Live metric compared with the champion's registered holdout metric, one of the
            task's; "" = the task's own: roc_auc (binary), macro_f1 (multiclass), rmse (regression).
        max_metric_drop: Largest tolerated worsening of that metric, in its direction: a difference for scores
            and log_loss; for rmse and mae a share of the holdout value (0.05 = 5% worse).
        mlflow_tracking_uri: MLflow tracking URI; "" reads $MLFLOW_TRACKING_URI in each task.
        experiment_name: MLflow experiment of retraining runs.
        estimator: Estimator of a retraining run.
        seed: Seed of a retraining run.
        gate_metric: Metric a retrained challenger must improve on the champion.
        gate_margin: Required improvement.
        gate_thresholds: Absolute bounds a retrained model must meet.
        pushgateway_url: A Prometheus Pushgateway (http://host:port) that receives the run's figures; "" pushes
            nothing. A failed push is logged and does not fail the run.
        schedule_seconds: Expected seconds between two monitoring runs of this model (pushed; the staleness
            alert fires after 1.5 times this without a run).

    Returns:
        champion_model_uri: The monitored champion, models:/NAME/VERSION.
        is_drift: Whether the batch drifted from the champion's reference rows.
        degraded: Whether the champion's live metric dropped by more than max_metric_drop.
        drift_result: Per-feature drift statistics (JSON).
        performance_result: Live versus registered metrics (JSON).
    """
    looked_up = configure(champion(model_name=model_name, mlflow_tracking_uri=mlflow_tracking_uri), "champion")
    ingested = configure(ingest(source_uri=current_uri, file_format=file_format), "ingest")
    validated = configure(
        validate(
            dataset=ingested.outputs["dataset"],
            expected_schema=looked_up.outputs["schema"],
            target_column=target_column,
            positive_label=positive_label,
            max_invalid_fraction=max_invalid_fraction,
            task=task,
        ),
        "validate",
    )
    champion_scores = {"model_uri": looked_up.outputs["model_uri"], "mlflow_tracking_uri": mlflow_tracking_uri}
    scored = configure(
        batch_predict(dataset=validated.outputs["valid"], key_column=key_column, **champion_scores), "batch_predict"
    )
    # The champion's answers on its own reference rows: what drift compares the batch's answers with.
    scored_reference = configure(
        batch_predict(dataset=looked_up.outputs["reference"], **champion_scores), "batch_predict"
    ).set_display_name("batch-predict-reference")
    drifted = configure(
        drift(
            reference=looked_up.outputs["reference"],
            current=validated.outputs["valid"],
            reference_predictions=scored_reference.outputs["predictions"],
            current_predictions=scored.outputs["predictions"],
            exclude_columns=[key_column, target_column],
            p_val=drift_p_val,
            psi_threshold=psi_threshold,
        ),
        "drift",
    )
    judged = configure(
        performance(
            predictions=scored.outputs["predictions"],
            labels=validated.outputs["valid"],
            label_column=target_column,
            positive_label=positive_label,
            label_id_column=key_column,
            mlflow_tracking_uri=mlflow_tracking_uri,
            metric=degradation_metric,
            max_drop=max_metric_drop,
        ),
        "performance",
    )
    retraining = {
        "data_uri": current_uri,
        "file_format": file_format,
        "target_column": target_column,
        "positive_label": positive_label,
        "task": task,
        # The champion's keys (a list built from parameters does not reach a nested pipeline under kfp.local).
        "key_columns": looked_up.outputs["key_columns"],
        "max_invalid_fraction": max_invalid_fraction,
        "seed": seed,
        "estimator": estimator,
        "model_name": model_name,
        "experiment_name": experiment_name,
        "mlflow_tracking_uri": mlflow_tracking_uri,
        "gate_metric": gate_metric,
        "gate_margin": gate_margin,
        "gate_thresholds": gate_thresholds,
        # The training pipeline's fairness and slice defaults name Telco columns; a monitored model's data
        # (flights, say) need not have them: no sensitive attribute, no slices.
        "sensitive_columns": [],
        "slice_columns": [],
    }
    with dsl.If(pushgateway_url != "", name="pushgateway"):
        configure(
            push_metrics(
                drift_result=drifted.outputs["result"],
                performance_result=judged.outputs["result"],
                champion_model_uri=looked_up.outputs["model_uri"],
                model_name=model_name,
                rows_valid=validated.outputs["rows_valid"],
                rows_quarantined=validated.outputs["rows_quarantined"],
                is_drift=drifted.outputs["Output"],
                degraded=judged.outputs["Output"],
                pushgateway_url=pushgateway_url,
                schedule_seconds=schedule_seconds,
            ),
            "push_metrics",
        )
    with dsl.If(drifted.outputs["Output"] == True, name="drift"):  # noqa: E712 (KFP builds a condition)
        training_pipeline(**retraining).set_display_name("retrain-on-drift")
    with dsl.Elif(judged.outputs["Output"] == True, name="degraded"):  # noqa: E712
        training_pipeline(**retraining).set_display_name("retrain-on-degradation")
    return MonitoringOutputs(
        looked_up.outputs["model_uri"],
        drifted.outputs["Output"],
        judged.outputs["Output"],
        drifted.outputs["result"],
        judged.outputs["result"],
    )
