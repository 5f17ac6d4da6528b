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
        metrics: Output Metrics: accuracy, precision, recall, f1 (at the model's decision threshold), roc_auc,
            log_loss (also logged to the MLflow run as holdout_<name>).
        classification_metrics: Output ClassificationMetrics: confusion matrix (at the model's decision
            threshold) and ROC curve.
        target_column: The label column.
        positive_label: The label value meaning positive.
        mlflow_tracking_uri: MLflow tracking URI; "" reads $MLFLOW_TRACKING_URI.
    """
    from mlkeel.components.evaluate.logic import CLASS_NAMES
    from mlkeel.components.evaluate.logic import evaluate as run_evaluate

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
    classification_metrics.log_confusion_matrix(CLASS_NAMES, evaluation.confusion_matrix)
    classification_metrics.log_roc_curve(evaluation.roc_fpr, evaluation.roc_tpr, evaluation.roc_thresholds)
