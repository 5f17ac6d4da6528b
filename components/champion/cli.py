"""Command line for the champion stage: ``python -m mlkeel.components.champion --help``."""

import click

from mlkeel.clitools import echo_json, reports_user_errors


@click.command(name="champion")
@click.option("--model-name", required=True)
@click.option("--reference-out", required=True, type=click.Path(dir_okay=False), help="Parquet to write.")
@click.option("--schema-out", required=True, type=click.Path(dir_okay=False), help="Schema JSON to write.")
@click.option("--mlflow-uri", "tracking_uri", default="", help="Default: $MLFLOW_TRACKING_URI.")
@click.option("--alias", default="champion", show_default=True)
@reports_user_errors
def main(model_name: str, reference_out: str, schema_out: str, tracking_uri: str, alias: str) -> None:
    """Fetch the champion's reference data and schema; print its version and lineage."""
    from mlkeel.components.champion.logic import fetch_champion

    echo_json(fetch_champion(model_name, reference_out, schema_out, tracking_uri, alias).to_dict())
