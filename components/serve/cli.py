"""Command line for the serve stage: ``python -m mlkeel.components.serve --help`` (also ``mlkeel serve``)."""

import click

from mlkeel.clitools import reports_user_errors
from mlkeel.components.serve.logic import (
    DEFAULT_HOST,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_PORT,
    DEFAULT_PREDICTION_LOG_DIR,
)


@click.command(name="serve")
@click.option(
    "--model",
    "model_uri",
    required=True,
    help="models:/NAME@ALIAS, models:/NAME/VERSION or an MLflow sklearn model folder.",
)
@click.option("--host", default=DEFAULT_HOST, show_default=True, help="Address to listen on (0.0.0.0 in a container).")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=int, help="TCP port.")
@click.option(
    "--prediction-log",
    "prediction_log_dir",
    default=DEFAULT_PREDICTION_LOG_DIR,
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder of the prediction log (Parquet part files, the batch prediction schema).",
)
@click.option(
    "--max-body-bytes", default=DEFAULT_MAX_BODY_BYTES, show_default=True, type=int, help="Largest /predict body."
)
@click.option("--threshold", default=None, type=float, help="Decision threshold in [0, 1]. Default: the model's own.")
@click.option("--mlflow-uri", "tracking_uri", default="", help="Default: $MLFLOW_TRACKING_URI.")
@reports_user_errors
def main(
    model_uri: str,
    host: str,
    port: int,
    prediction_log_dir: str,
    max_body_bytes: int,
    threshold: float | None,
    tracking_uri: str,
) -> None:
    """Serve a model over HTTP: POST /predict, GET /healthz, /readyz, /metrics (until Ctrl-C or SIGTERM)."""
    from mlkeel.components.serve.logic import ServeSettings, run_server

    settings = ServeSettings(
        model_uri,
        tracking_uri=tracking_uri,
        prediction_log_dir=prediction_log_dir,
        max_body_bytes=max_body_bytes,
        threshold=threshold,
    )
    settings.check()
    run_server(settings, host, port)
