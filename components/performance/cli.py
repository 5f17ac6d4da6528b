"""Command line for the performance stage: ``python -m mlkeel.components.performance --help``."""

import click

from mlkeel.clitools import echo_json, reports_user_errors


@click.command(name="performance")
@click.option(
    "--predictions",
    "prediction_paths",
    required=True,
    multiple=True,
    help="A prediction log (Parquet) or a folder of them; repeat for several.",
)
@click.option("--labels", "labels_path", required=True, help="Ground truth: Parquet, or CSV (*.csv).")
@click.option(
    "--result-out",
    "result_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the result JSON.",
)
@click.option("--label-column", required=True, help="The label column of the ground truth.")
@click.option("--positive-label", default="", help="The label value meaning positive (binary models).")
@click.option("--id-column", default="request_id", show_default=True, help="The prediction log's id column.")
@click.option("--label-id-column", default="", help="The ground truth's id column (default: --id-column).")
@click.option("--mlflow-uri", "tracking_uri", default="", help="Default: $MLFLOW_TRACKING_URI.")
@click.option(
    "--metric",
    default="",
    help="Metric compared with the holdout (default: the task's: roc_auc, macro_f1 or rmse).",
)
@click.option("--max-drop", default=0.05, show_default=True, type=float, help="Largest tolerated worsening.")
@reports_user_errors
def main(
    prediction_paths: tuple[str, ...],
    labels_path: str,
    result_path: str,
    label_column: str,
    positive_label: str,
    id_column: str,
    label_id_column: str,
    tracking_uri: str,
    metric: str,
    max_drop: float,
) -> None:
    """Join predictions with labels, compare live metrics with the holdout and print the result (exit 0 either way)."""
    from mlkeel.components.performance.logic import performance

    result = performance(
        list(prediction_paths),
        labels_path,
        result_path,
        label_column=label_column,
        positive_label=positive_label,
        id_column=id_column,
        label_id_column=label_id_column,
        tracking_uri=tracking_uri,
        metric=metric,
        max_drop=max_drop,
    )
    echo_json(result.to_dict())
