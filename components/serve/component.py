"""KFP component for the serve stage: an infrastructure check around ``mlkeel.components.serve.logic``."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("serve"), install_kfp_package=False)
def serve(
    test_data: Input[Dataset],
    report: Output[Artifact],
    model_uri: str,
    mlflow_tracking_uri: str = "",
    sample_rows: int = 200,
    records_per_request: int = 20,
    max_body_bytes: int = 1048576,
) -> bool:
    """Check that the serving app serves a model correctly before it is released (like TFX InfraValidator).

    Starts the serving app (the one ``mlkeel serve`` runs) in the step's own process on a loopback port,
    waits until it is ready, sends the first holdout rows as /predict requests and checks: every request
    answers 200, every served output equals the model's own on the same rows (the positive-class probability
    of a binary model, every class's probability of a multiclass one, a regression model's value), a
    malformed body gets a 4xx, /metrics counts the requests sent and the prediction log holds one row per
    record sent.

    The app answers in the shape of the model's task (read from the model): a binary model's record gets
    prediction (0/1), label and probability (of the positive class); a multiclass model's gets label (the
    predicted class), probability (of that class) and probabilities (every class -> its probability); a
    regression model's gets predicted_value. The Open Inference Protocol (/v2/models/NAME/infer) answers with
    the same outputs as tensors (a multiclass model's probabilities as an [N, classes] tensor whose parameters
    name the classes); /readyz and /v2/models/NAME name the task and the classes; /openapi.json describes the
    served model's answer. /metrics adds per task: predicted classes (mlkeel_serve_class_predictions_total) or
    a histogram of predicted values (mlkeel_serve_predicted_value). The prediction log has the task's columns
    (mlkeel.prediction_log).

    Args:
        test_data: Input Dataset (Parquet): holdout rows with the model's feature columns (others ignored).
        report: Output Artifact (JSON): passed, each check and whether it held, and the facts behind them
            (records and requests sent, largest difference between a served and a direct output, latency
            p50/p99, the model's name, version, task, classes and input fields). Metadata: passed,
            model_version.
        model_uri: The model: models:/NAME@ALIAS, models:/NAME/VERSION, or an MLflow model folder in the image.
        mlflow_tracking_uri: MLflow tracking/registry URI; "" reads $MLFLOW_TRACKING_URI.
        sample_rows: Holdout rows sent (the first ones).
        records_per_request: Records per /predict request.
        max_body_bytes: The serving app's request body limit.

    Returns:
        True when every check held (the model may be deployed).
    """
    from mlkeel.components.serve.logic import validate_infrastructure

    result = validate_infrastructure(
        model_uri,
        test_data.path,
        report.path,
        tracking_uri=mlflow_tracking_uri,
        sample_rows=sample_rows,
        records_per_request=records_per_request,
        max_body_bytes=max_body_bytes,
    )
    report.metadata.update({"passed": result.passed, "model_version": result.details["model_version"]})
    return result.passed
