"""KFP component for the train stage: a thin shell around ``mlkeel.components.train.logic.train``."""

from typing import Optional

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("train"), install_kfp_package=False)
def train(
    train_data: Input[Dataset],
    schema: Input[Artifact],
    model: Output[Model],
    target_column: str,
    positive_label: str,
    key_columns: Optional[list] = None,
    estimator: str = "hist_gradient_boosting",
    hyperparameters: Optional[dict] = None,
    seed: int = 42,
    mlflow_tracking_uri: str = "",
    experiment_name: str = "mlkeel",
    data_fingerprint: str = "",
    threshold_policy: str = "fixed:0.5",
    class_weight: str = "",
    feature_types: str = "{}",
    task: str = "",
):
    """Fit one scikit-learn Pipeline (preprocessing fitted on the train split only + estimator); log to MLflow.

    Args:
        train_data: Input Dataset (Parquet): the train split.
        schema: Input Artifact (JSON): the validated schema; logged to the MLflow run, its hash tagged.
        model: Output Model: an MLflow sklearn model directory; a binary model is the fitted Pipeline inside
            scikit-learn's FixedThresholdClassifier, which holds the decision threshold; a multiclass or
            regression model the fitted Pipeline. Metadata: mlflow_run_id, mlflow_model_uri, feature_columns,
            target_column, positive_label, estimator, task, task_reason, classes (multiclass), decision_threshold,
            threshold_policy, threshold_note (binary only), overfit_warning, iterations (early stopping; boosting
            only), train_<metric> and validation_<metric> (the task's metrics; binary: at the decision
            threshold), features (the one-line summary: columns used by kind, columns not used with the reason),
            feature_kinds (column -> kind or "not used"), encoded_width (columns of the encoded matrix).
        target_column: The label column (binary, multiclass) or the value to predict (regression).
        positive_label: The label value meaning positive (compared as text; binary only).
        key_columns: Identifier columns, never features.
        estimator: logistic_regression (ridge for regression) | random_forest | hist_gradient_boosting.
        hyperparameters: Estimator parameter overrides, e.g. {"max_iter": 300}.
        seed: Random seed: same data + seed -> same model.
        mlflow_tracking_uri: MLflow tracking URI; "" reads $MLFLOW_TRACKING_URI (set it from a Secret).
        experiment_name: MLflow experiment, created when missing.
        data_fingerprint: Fingerprint of the ingested data (lineage tag).
        threshold_policy: How the decision threshold is chosen on a validation part of the train split (never
            the holdout): f1 (best F1) | precision:P | recall:R | fixed:T.
        class_weight: "" (every row counts once) | balanced (the rarer class weighs as much in total).
        feature_types: JSON object of feature typing overrides, column -> numeric | boolean | categorical | text |
            timestamp | ignore, e.g. '{"session": "ignore", "comment": "text"}'; other columns are typed from
            the data (identifiers and nested values left out, free text as TF-IDF, timestamps as calendar parts).
        task: binary | multiclass | regression, or "" to infer it from the target (2 values: binary; at most 20
            whole numbers or text values: multiclass; other numbers: regression); the reason is in the metadata.
    """
    from mlkeel.components.train.features import parse_feature_types
    from mlkeel.components.train.logic import train as run_train

    result = run_train(
        train_data.path,
        model.path,
        target_column,
        positive_label,
        key_columns,
        estimator,
        hyperparameters,
        seed,
        mlflow_tracking_uri,
        experiment_name,
        data_fingerprint,
        schema.path,
        threshold_policy=threshold_policy,
        class_weight=class_weight,
        feature_types=parse_feature_types(feature_types),
        task=task,
    )
    model.metadata.update(result.metadata)
