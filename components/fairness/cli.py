"""Command line for the fairness stage: ``python -m mlkeel.components.fairness --help``."""

import click

from mlkeel.clitools import JSON_OBJECT, echo_json, reports_user_errors


@click.command(name="fairness")
@click.option("--model", "model_uri", required=True, help="Model directory or MLflow model URI.")
@click.option("--test-data", "test_path", required=True, help="Holdout rows (Parquet).")
@click.option("--target-column", required=True)
@click.option("--positive-label", default="", help="The positive label (binary models).")
@click.option(
    "--sensitive-column",
    "sensitive_columns",
    multiple=True,
    help="A column whose groups are compared; repeatable. None: nothing is checked.",
)
@click.option(
    "--thresholds",
    type=JSON_OBJECT,
    default=None,
    help='Largest allowed differences by name, of any task, e.g. \'{"demographic_parity_difference": 0.1, '
    '"selection_rate_difference": 0.3, "relative_mae_difference": 0.4}\'; the model\'s task\'s names apply '
    "(defaults: components/fairness/logic.py DEFAULT_THRESHOLDS_BY_TASK).",
)
@click.option("--min-group-rows", type=int, default=30, show_default=True, help="Smaller groups are not compared.")
@click.option(
    "--output",
    "output_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the fairness JSON.",
)
@click.option("--mlflow-uri", "tracking_uri", default="", help="Default: $MLFLOW_TRACKING_URI.")
@click.option("--mlflow-run-id", default="", help="Log the metrics and the document on this run.")
@reports_user_errors
def main(
    model_uri: str,
    test_path: str,
    target_column: str,
    positive_label: str,
    sensitive_columns: tuple[str, ...],
    thresholds: dict | None,
    min_group_rows: int,
    output_path: str,
    tracking_uri: str,
    mlflow_run_id: str,
) -> None:
    """Compare the model's decisions or errors between groups, write and print the fairness JSON (exit 0 either way)."""
    from mlkeel.components.fairness.logic import fairness

    echo_json(
        fairness(
            model_uri,
            test_path,
            target_column,
            positive_label,
            output_path,
            sensitive_columns=list(sensitive_columns),
            thresholds=thresholds,
            min_group_rows=min_group_rows,
            tracking_uri=tracking_uri,
            mlflow_run_id=mlflow_run_id,
        )
    )
