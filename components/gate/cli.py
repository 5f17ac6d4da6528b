"""Command line for the gate stage: ``python -m mlkeel.components.gate --help``."""

from pathlib import Path
from typing import Any

import click

from mlkeel.clitools import JSON_OBJECT, echo_json, reports_user_errors


class MetricsJson(click.ParamType):
    """A JSON object given inline (``'{"roc_auc": 0.84}'``) or as the path of a JSON file."""

    name = "file_or_json"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> dict[str, Any]:
        """Read ``value`` as a JSON file when such a file exists, else parse it as a JSON object."""
        from mlkeel.errors import DataError
        from mlkeel.storage import read_json

        if isinstance(value, dict):
            return value
        if Path(value).is_file():
            try:
                document = read_json(value)
            except DataError as error:
                self.fail(str(error), param, ctx)
            if not isinstance(document, dict):
                self.fail(f"{value}: expected a JSON object of metric -> value", param, ctx)
            return document
        return JSON_OBJECT.convert(value, param, ctx)


@click.command(name="gate")
@click.option(
    "--model",
    "model_path",
    required=True,
    type=click.Path(exists=True, file_okay=False),
    help="The challenger: an MLflow sklearn model directory.",
)
@click.option("--test-data", "test_path", required=True, help="Holdout rows (Parquet).")
@click.option(
    "--metrics-json",
    "metrics",
    required=True,
    type=MetricsJson(),
    help="The challenger's holdout metrics: a JSON file or an inline JSON object.",
)
@click.option("--model-name", required=True, help="Registered model whose champion the challenger must beat.")
@click.option("--target-column", required=True)
@click.option("--positive-label", default="", help="The positive class (binary models).")
@click.option(
    "--blessing-out",
    "blessing_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Where to write the blessing JSON.",
)
@click.option("--tracking-uri", default="", help="MLflow tracking/registry URI (default: $MLFLOW_TRACKING_URI).")
@click.option("--metric", default="roc_auc", show_default=True, help="Metric compared with the champion.")
@click.option("--margin", default=0.01, show_default=True, type=float, help="Required improvement (>= 0).")
@click.option("--thresholds", type=JSON_OBJECT, default=None, help="Absolute bounds, e.g. '{\"roc_auc\": 0.75}'.")
@click.option("--mlflow-run-id", default="", help="The challenger's MLflow run, to log the decision on.")
@click.option(
    "--fairness",
    "fairness_path",
    default="",
    type=click.Path(dir_okay=False),
    help="The fairness stage's JSON: a failed check refuses the challenger.",
)
@click.option("--slice-column", "slice_columns", multiple=True, help="Compare the champion per value; repeatable.")
@click.option("--slice-margin", type=float, default=0.02, show_default=True, help="Largest shortfall on a slice.")
@click.option("--slice-min-rows", type=int, default=100, show_default=True, help="Smaller slices are not compared.")
@reports_user_errors
def main(
    model_path: str,
    test_path: str,
    metrics: dict,
    model_name: str,
    target_column: str,
    positive_label: str,
    blessing_path: str,
    tracking_uri: str,
    metric: str,
    margin: float,
    thresholds: dict | None,
    mlflow_run_id: str,
    fairness_path: str,
    slice_columns: tuple[str, ...],
    slice_margin: float,
    slice_min_rows: int,
) -> None:
    """Decide whether to bless a challenger, write the blessing JSON and print it (exit 0 either way)."""
    from mlkeel.components.gate.logic import gate

    blessing = gate(
        model_path,
        test_path,
        metrics,
        model_name,
        target_column,
        positive_label,
        blessing_path,
        tracking_uri=tracking_uri,
        metric=metric,
        margin=margin,
        thresholds=thresholds,
        mlflow_run_id=mlflow_run_id,
        fairness_path=fairness_path,
        slice_columns=list(slice_columns),
        slice_margin=slice_margin,
        slice_min_rows=slice_min_rows,
    )
    echo_json(blessing.to_dict())
