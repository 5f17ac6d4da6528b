"""KFP component for the batch predict stage: a thin shell around ``mlkeel.components.batch_predict.logic``."""

from typing import Optional

from kfp import dsl
from kfp.dsl import Dataset, Input, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("batch_predict"), install_kfp_package=False)
def batch_predict(
    dataset: Input[Dataset],
    predictions: Output[Dataset],
    model_uri: str,
    mlflow_tracking_uri: str = "",
    key_column: str = "",
    threshold: Optional[float] = None,
):
    """Score every row of a dataset with a registered model version and write the prediction log.

    Every task: the model's task (its training run's mlkeel.task tag, else the model itself) decides the log's
    outputs. An alias (``models:/churn@champion``) is resolved to the version it points to when the step runs; that
    version is loaded and named in every log row. Missing values and unseen categories are handled by the
    model's own preprocessing; the log holds exactly one row per input row.

    Args:
        dataset: Input Dataset (Parquet): the rows to score, with the model's feature columns (other columns
            are ignored).
        predictions: Output Dataset (Parquet): the prediction log, one row per input row: request_id,
            model_name, model_version, model_uri, prediction (1 = positive), prediction_label, probability,
            threshold, predicted_at and each input feature as feature.<column>. A multiclass model's log adds
            task and class_probabilities (every class -> its probability; prediction_label is the predicted
            class, probability its probability, prediction and threshold null); a regression model's adds task
            and predicted_value (the other outputs null). Metadata: rows, model_name, model_version and
            positive_rate (binary), class_shares (multiclass) or mean_predicted_value (regression), task.
        model_uri: The model: models:/NAME@ALIAS, models:/NAME/VERSION, or an MLflow model folder in the image.
        mlflow_tracking_uri: MLflow tracking/registry URI; "" reads $MLFLOW_TRACKING_URI.
        key_column: Column whose value becomes each row's request_id (what labels join on later); "" generates
            ids <sha256 of the dataset>-<row number>.
        threshold: Decision threshold in [0, 1]: prediction is 1 when the positive probability reaches it;
            None = the model's own (chosen by train and saved inside the model). Binary models only.
    """
    from mlkeel.components.batch_predict.logic import batch_predict as run_batch_predict

    result = run_batch_predict(
        model_uri,
        dataset.path,
        predictions.path,
        tracking_uri=mlflow_tracking_uri,
        key_column=key_column,
        threshold=threshold,
    )
    predictions.metadata.update(result.metadata)
