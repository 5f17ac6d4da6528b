"""Command line for the batch predict stage: ``python -m mlkeel.components.batch_predict --help``."""

import click

from mlkeel.clitools import echo_json, reports_user_errors


@click.command(name="batch-predict")
@click.option(
    "--model",
    "model_uri",
    required=True,
    help="models:/NAME@ALIAS, models:/NAME/VERSION or an MLflow sklearn model folder.",
)
@click.option("--dataset", "dataset_path", required=True, help="Rows to score (Parquet, path or URI).")
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the prediction log (Parquet).",
)
@click.option("--mlflow-uri", "tracking_uri", default="", help="Default: $MLFLOW_TRACKING_URI.")
@click.option("--key-column", default="", help="Column whose value is each row's request_id (default: generated).")
@click.option(
    "--threshold",
    default=None,
    type=float,
    help="Decision threshold in [0, 1] (binary models). Default: the model's own.",
)
@click.option("--batch-id", default="", help="Prefix of generated request ids (default: from the file's SHA-256).")
@click.option("--positive-label", default="", help="Text of the positive class (default: the model's tag).")
@click.option("--negative-label", default="", help="Text of the other class (default: the model's tag, if any).")
@reports_user_errors
def main(
    model_uri: str,
    dataset_path: str,
    output_path: str,
    tracking_uri: str,
    key_column: str,
    threshold: float | None,
    batch_id: str,
    positive_label: str,
    negative_label: str,
) -> None:
    """Score every row of a dataset, write the prediction log and print a summary as JSON."""
    from mlkeel.components.batch_predict.logic import batch_predict

    result = batch_predict(
        model_uri,
        dataset_path,
        output_path,
        tracking_uri=tracking_uri,
        key_column=key_column,
        threshold=threshold,
        batch_id=batch_id,
        positive_label=positive_label,
        negative_label=negative_label,
    )
    echo_json(result.to_dict())
