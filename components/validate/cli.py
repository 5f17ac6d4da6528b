"""Command line for the validate stage: ``python -m mlkeel.components.validate --help``."""

import click

from mlkeel.clitools import echo_json, reports_user_errors, task_option
from mlkeel.components.validate.logic import DEFAULT_MAX_CATEGORIES, DEFAULT_MAX_INVALID_FRACTION

OUTPUT_FILE = click.Path(dir_okay=False)


@click.command(name="validate")
@click.option("--dataset", "dataset_path", required=True, help="Parquet dataset: path or pyarrow URI.")
@click.option("--valid-out", "valid_path", required=True, type=OUTPUT_FILE, help="Parquet of the valid rows.")
@click.option(
    "--quarantine-out",
    "quarantine_path",
    required=True,
    type=OUTPUT_FILE,
    help="Parquet of the quarantined rows.",
)
@click.option("--schema-out", "schema_path", required=True, type=OUTPUT_FILE, help="JSON of the schema used.")
@click.option("--report-out", "report_path", required=True, type=OUTPUT_FILE, help="Markdown report.")
@click.option("--schema", "schema_uri", default="", help="Schema JSON to validate against; default: infer it.")
@click.option("--key-column", "key_columns", multiple=True, help="Key column (repeat for a composite key).")
@click.option("--target-column", default="", help="Label column: must fit its task (binary: exactly 2 classes).")
@click.option("--positive-label", default="", help="The positive class of the target column.")
@click.option(
    "--max-invalid-fraction",
    type=float,
    default=DEFAULT_MAX_INVALID_FRACTION,
    show_default=True,
    help="Largest share of quarantined rows that still passes.",
)
@click.option(
    "--max-categories",
    type=int,
    default=DEFAULT_MAX_CATEGORIES,
    show_default=True,
    help="When inferring: most distinct values of a categorical text column.",
)
@task_option
@reports_user_errors
def main(
    dataset_path: str,
    valid_path: str,
    quarantine_path: str,
    schema_path: str,
    report_path: str,
    schema_uri: str,
    key_columns: tuple[str, ...],
    target_column: str,
    positive_label: str,
    max_invalid_fraction: float,
    max_categories: int,
    task: str,
) -> None:
    """Validate a Parquet dataset against a schema (given or inferred) and print the result."""
    from mlkeel.components.validate.logic import validate

    outcome = validate(
        dataset_path,
        valid_path,
        quarantine_path,
        schema_path,
        report_path,
        schema_uri=schema_uri,
        key_columns=key_columns,
        target_column=target_column,
        positive_label=positive_label,
        max_invalid_fraction=max_invalid_fraction,
        max_categories=max_categories,
        task=task,
    )
    echo_json(outcome.result)
