"""Command line for the drift stage: ``python -m mlkeel.components.drift --help``."""

import sys

import click

from mlkeel.clitools import echo_json, reports_user_errors
from mlkeel.components.drift.logic import (
    CORRECTIONS,
    DEFAULT_CORRECTION,
    DEFAULT_P_VAL,
    DEFAULT_PSI_THRESHOLD,
    DEFAULT_SEED,
)

OUTPUT_FILE = click.Path(dir_okay=False)
# Exit code with --fail-on-drift when drift is found: distinct from a user error (1) and bad usage (2).
DRIFT_EXIT_CODE = 3


@click.command(name="drift")
@click.option("--reference", "reference_path", required=True, help="Reference Parquet: path or pyarrow URI.")
@click.option("--current", "current_path", required=True, help="Current batch Parquet: path or pyarrow URI.")
@click.option("--result-out", "result_path", required=True, type=OUTPUT_FILE, help="JSON of the drift result.")
@click.option("--report-out", "report_path", required=True, type=OUTPUT_FILE, help="HTML report.")
@click.option(
    "--feature-column",
    "feature_columns",
    multiple=True,
    help="Column to compare (repeat); default: every column but the excluded ones.",
)
@click.option(
    "--categorical-column",
    "categorical_columns",
    multiple=True,
    help="Numeric column to treat as categorical (repeat); text and boolean columns always are.",
)
@click.option("--exclude-column", "exclude_columns", multiple=True, help="Column never compared (repeat): key, target.")
@click.option(
    "--p-val", type=float, default=DEFAULT_P_VAL, show_default=True, help="Significance level of the decision."
)
@click.option(
    "--correction",
    type=click.Choice(CORRECTIONS),
    default=DEFAULT_CORRECTION,
    show_default=True,
    help="Multiple-testing correction across the features.",
)
@click.option(
    "--psi-threshold",
    type=float,
    default=DEFAULT_PSI_THRESHOLD,
    show_default=True,
    help="PSI above which a feature is flagged (reported; does not decide).",
)
@click.option(
    "--max-rows", type=int, default=0, show_default=True, help="Compare at most this many rows per side; 0: all."
)
@click.option("--seed", type=int, default=DEFAULT_SEED, show_default=True, help="Seed of the --max-rows sample.")
@click.option(
    "--reference-predictions",
    default="",
    help="The model's prediction log on the reference rows; with --current-predictions, prediction drift is reported.",
)
@click.option("--current-predictions", default="", help="The same model's prediction log on the current batch.")
@click.option(
    "--fail-on-drift",
    is_flag=True,
    help=f"Exit with code {DRIFT_EXIT_CODE} when drift is found (after writing both outputs); default: exit 0.",
)
@reports_user_errors
def main(
    reference_path: str,
    current_path: str,
    result_path: str,
    report_path: str,
    feature_columns: tuple[str, ...],
    categorical_columns: tuple[str, ...],
    exclude_columns: tuple[str, ...],
    p_val: float,
    correction: str,
    psi_threshold: float,
    max_rows: int,
    seed: int,
    reference_predictions: str,
    current_predictions: str,
    fail_on_drift: bool,
) -> None:
    """Test a current batch against reference data for drift; write the JSON result and HTML report, print it.

    Exit codes: 0 when the comparison ran, drift or not (unless --fail-on-drift); 3 with --fail-on-drift when
    drift is found; 1 on a user error (missing file, mismatched columns, bad parameter); 2 on bad usage.
    """
    from mlkeel.components.drift.logic import drift

    result = drift(
        reference_path,
        current_path,
        result_path,
        report_path,
        feature_columns=list(feature_columns) or None,
        categorical_columns=list(categorical_columns),
        p_val=p_val,
        correction=correction,
        psi_threshold=psi_threshold,
        max_rows=max_rows,
        seed=seed,
        exclude_columns=exclude_columns,
        reference_predictions_path=reference_predictions,
        current_predictions_path=current_predictions,
    )
    echo_json(result)
    if fail_on_drift and result["data"]["is_drift"]:
        click.echo(f"drift found in: {', '.join(result['data']['drifted_features'])}", err=True)
        sys.exit(DRIFT_EXIT_CODE)
