"""Command line for the register stage: ``python -m mlkeel.components.register --help``."""

import click

from mlkeel.clitools import echo_json, reports_user_errors


@click.command(name="register")
@click.option("--model-uri", required=True, help="The model: models:/m-... (from train), runs:/... or a path.")
@click.option(
    "--blessing",
    "blessing_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The gate's blessing JSON; an unblessed model is refused.",
)
@click.option("--model-name", required=True, help="Registered model name (created when missing).")
@click.option("--tracking-uri", default="", help="MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI).")
@click.option("--mlflow-run-id", default="", help="Training run whose lineage tags are copied (default: the model's).")
@click.option("--data-fingerprint", default="", help="Fingerprint of the ingested data (default: the run's).")
@click.option("--pipeline-name", default="", help="Recorded as a tag.")
@click.option("--pipeline-run", default="", help="Recorded as a tag.")
@reports_user_errors
def main(
    model_uri: str,
    blessing_path: str,
    model_name: str,
    tracking_uri: str,
    mlflow_run_id: str,
    data_fingerprint: str,
    pipeline_name: str,
    pipeline_run: str,
) -> None:
    """Register a blessed model with its lineage tags, make it the champion and print the result."""
    from mlkeel.components.gate.logic import Blessing
    from mlkeel.components.register.logic import register

    result = register(
        model_uri,
        Blessing.load(blessing_path),
        model_name,
        tracking_uri=tracking_uri,
        mlflow_run_id=mlflow_run_id,
        data_fingerprint=data_fingerprint,
        pipeline_name=pipeline_name,
        pipeline_run=pipeline_run,
    )
    echo_json(result.to_dict())
