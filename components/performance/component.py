"""KFP component for the performance stage: a thin shell around ``mlkeel.components.performance.logic``."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("performance"), install_kfp_package=False)
def performance(
    predictions: Input[Dataset],
    labels: Input[Dataset],
    result: Output[Artifact],
    metrics: Output[Metrics],
    label_column: str,
    positive_label: str = "",
    id_column: str = "request_id",
    label_id_column: str = "",
    mlflow_tracking_uri: str = "",
    metric: str = "",
    max_drop: float = 0.05,
) -> bool:
    """Join a prediction log with ground truth that arrived later and flag a model whose metric degraded.

    Predictions and labels are inner-joined by id (compared as text); every row on both sides is counted
    (matched, unmatched predictions, unmatched labels, label rows without an id or label). Each model version
    in the log is measured on its own rows with the evaluate stage's metrics and compared with the
    ``holdout_<metric>`` its training run recorded: degraded when worse by more than ``max_drop``, in the
    metric's direction. No matched row, or labels that contradict each other, fail the step. Every task: the
    log's task decides the metrics (binary: at each row's threshold; multiclass: from the logged class
    probabilities; regression: from the logged values), computed as the evaluate stage computed them.

    Args:
        predictions: Input Dataset (Parquet): a prediction log from batch_predict, or a folder of log files
            (a serving log).
        labels: Input Dataset (Parquet, or CSV named *.csv): ground truth, an id column and ``label_column``.
        result: Output Artifact (JSON): {"meta": {name, version, task (multiclass and regression only),
            metric, max_drop, id_column, label_id_column, label_column, positive_label, checked_at}, "data":
            {degraded, reason, counts, live, versions}}. Metadata: degraded, reason, metric, max_drop and the
            join counts.
        metrics: Output Metrics: the live metrics of the task on the matched rows (binary: accuracy, precision,
            recall, f1, roc_auc, log_loss; multiclass: accuracy, macro_f1, weighted_f1, log_loss, roc_auc_ovr;
            regression: rmse, mae, r2, mape when no label is 0);
            the join counts (predictions, labels, matched, unmatched_predictions, unmatched_labels,
            null_labels, duplicate_labels); with one assessed version, holdout_<metric> and drop.
        label_column: The label column of ``labels``.
        positive_label: The label value meaning positive (must be what the log calls positive); a binary
            model's log only ("" for multiclass and regression).
        id_column: The prediction log's id column (request_id, or e.g. feature.customerID).
        label_id_column: The id column of ``labels``; "" means ``id_column``.
        mlflow_tracking_uri: MLflow tracking/registry URI; "" reads $MLFLOW_TRACKING_URI.
        metric: Metric compared with the holdout, one of the task's; "" = the task's own: roc_auc (binary),
            macro_f1 (multiclass), rmse (regression).
        max_drop: Largest tolerated worsening (>= 0) in the metric's units: a fall for scores, a rise for
            log_loss and mape; for rmse and mae (in the target's units) a share of the holdout value: 0.05
            tolerates 5% worse.

    Returns:
        Whether the model degraded (a single output, so kfp.local resolves ``dsl.If`` on it; the reason is in
        the result artifact).
    """
    from mlkeel.components.performance.logic import performance as run_performance

    checked = run_performance(
        predictions.path,
        labels.path,
        result.path,
        label_column=label_column,
        positive_label=positive_label,
        id_column=id_column,
        label_id_column=label_id_column,
        tracking_uri=mlflow_tracking_uri,
        metric=metric,
        max_drop=max_drop,
    )
    for name, value in checked.metrics.items():
        metrics.log_metric(name, value)
    result.metadata.update(checked.metadata)
    return checked.degraded
