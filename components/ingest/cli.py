"""Command line for the ingest stage: ``python -m mlkeel.components.ingest --help``."""

import click

from mlkeel.clitools import JSON_OBJECT, echo_json, reports_user_errors


@click.command(name="ingest")
@click.option("--source", "source_uri", required=True, help="CSV or Parquet file: path or pyarrow URI.")
@click.option("--output", "output_path", required=True, type=click.Path(dir_okay=False), help="Parquet to write.")
@click.option("--format", "file_format", default="auto", type=click.Choice(["auto", "csv", "parquet"]))
@click.option("--column-types", type=JSON_OBJECT, default=None, help='Type overrides, e.g. \'{"id": "string"}\'.')
@click.option(
    "--delimiter",
    default="auto",
    show_default=True,
    help="CSV delimiter: auto (detected: comma, semicolon, tab, pipe), a character, or comma|semicolon|tab|pipe.",
)
@reports_user_errors
def main(source_uri: str, output_path: str, file_format: str, column_types: dict | None, delimiter: str) -> None:
    """Read a CSV/Parquet file, normalise its types, write Parquet and print its fingerprint."""
    from mlkeel.components.ingest.logic import ingest

    result = ingest(source_uri, output_path, file_format=file_format, column_types=column_types, delimiter=delimiter)
    echo_json(result.metadata)
