"""Command line for the evaluate stage: ``python -m mlkeel.components.evaluate --help``."""

import click

from mlkeel.clitools import echo_json, reports_user_errors


@click.command(name="evaluate")
@click.option("--model", "model_uri", required=True, help="Model directory or MLflow model URI.")
@click.option("--test-data", "test_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--target-column", required=True)
@click.option("--positive-label", default="", help="The positive class (binary models).")
@click.option("--mlflow-uri", "tracking_uri", default="", help="Default: $MLFLOW_TRACKING_URI.")
@click.option("--mlflow-run-id", default="", help="Log holdout_* metrics to this run.")
@reports_user_errors
def main(
    model_uri: str,
    test_path: str,
    target_column: str,
    positive_label: str,
    tracking_uri: str,
    mlflow_run_id: str,
) -> None:
    """Score a holdout set and print metrics, confusion matrix and ROC curve as JSON."""
    from mlkeel.components.evaluate.logic import evaluate

    echo_json(evaluate(model_uri, test_path, target_column, positive_label, tracking_uri, mlflow_run_id).to_dict())
