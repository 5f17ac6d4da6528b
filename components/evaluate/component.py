"""KFP component for the evaluate stage: a thin shell around ``mlkeel.components.evaluate.logic.evaluate``."""

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("evaluate"), install_kfp_package=False)
def evaluate(
    model: Input[Model],
    test_data: Input[Dataset],
    metrics: Output[Metrics],
    classification_metrics: Output[ClassificationMetrics],
    target_column: str,
    positive_label: str,
    mlflow_tracking_uri: str = "",
):
    """Score the holdout with the trained model: metrics for the KFP UI and the model's MLflow run.

    Args:
        model: Input Model from the train stage (MLflow sklearn directory; metadata mlflow_run_id).
        test_data: Input Dataset (Parquet): the holdout rows, with the target column.
        metrics: Output Metrics of the model's task (also logged to the MLflow run as holdout_<name>). Binary:
            accuracy, precision, recall, f1 (at the model's decision threshold), roc_auc, log_loss. Multiclass:
            accuracy, macro_f1, weighted_f1, log_loss, roc_auc_ovr (one-vs-rest), precision.<class> and
            recall.<class>. Regression: rmse, mae, r2, mape (when no target value is 0); the residual plot goes
            to the MLflow run (evaluation/residuals.png).
        classification_metrics: Output ClassificationMetrics: confusion matrix (binary: at the model's decision
            threshold, with the ROC curve; multiclass: over every class); empty for regression.
        target_column: The label column (a class or a number; the task is the model's own).
        positive_label: The label value meaning positive (binary models only).
        mlflow_tracking_uri: MLflow tracking URI; "" reads $MLFLOW_TRACKING_URI.
    """
    from mlkeel.components.evaluate.logic import evaluate as run_evaluate
    from mlkeel.components.evaluate.logic import metric_key

    evaluation = run_evaluate(
        model.path,
        test_data.path,
        target_column,
        positive_label,
        mlflow_tracking_uri,
        model.metadata.get("mlflow_run_id", ""),
    )
    for name, value in evaluation.metrics.items():
        metrics.log_metric(name, value)
    for name, scores in evaluation.per_class.items():
        metrics.log_metric(f"precision.{metric_key(name)}", scores["precision"])
        metrics.log_metric(f"recall.{metric_key(name)}", scores["recall"])
    if evaluation.confusion_matrix:
        classification_metrics.log_confusion_matrix(evaluation.class_names, evaluation.confusion_matrix)
    if evaluation.roc_fpr:
        classification_metrics.log_roc_curve(evaluation.roc_fpr, evaluation.roc_tpr, evaluation.roc_thresholds)
