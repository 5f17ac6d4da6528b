"""Command line for the model card stage: ``python -m mlkeel.components.model_card --help``."""

import click

from mlkeel.clitools import echo_json, reports_user_errors


@click.command(name="model_card")
@click.option("--model-name", required=True, help="Registered model name.")
@click.option("--version", required=True, help="Version number, or @ALIAS (e.g. @champion).")
@click.option("--html-out", "html_path", required=True, type=click.Path(dir_okay=False), help="HTML card to write.")
@click.option(
    "--markdown-out", "markdown_path", required=True, type=click.Path(dir_okay=False), help="Markdown card to write."
)
@click.option("--tracking-uri", default="", help="MLflow URI (default: $MLFLOW_TRACKING_URI, else ./.mlkeel's store).")
@click.option("--schema", "schema_path", default="", help="Schema JSON (default: the training run's data/schema.json).")
@click.option(
    "--blessing", "blessing_path", default="", help="Blessing JSON (default: what the gate logged on the run)."
)
@click.option("--fairness", "fairness_path", default="", help="The fairness stage's JSON (default: not computed).")
@click.option("--importance", "importance_path", default="", help="The explain stage's JSON (default: not computed).")
@click.option("--importance-plot", "importance_plot_path", default="", help="The explain stage's PNG plot.")
@click.option("--test-data", "test_path", default="", help="Holdout rows (Parquet), for per-slice metrics.")
@click.option("--slice-column", "slice_columns", multiple=True, help="Column to slice metrics by; repeatable.")
@click.option("--no-attach", is_flag=True, help="Write the files only; do not log them on the version's run.")
@reports_user_errors
def main(
    model_name: str,
    version: str,
    html_path: str,
    markdown_path: str,
    tracking_uri: str,
    schema_path: str,
    blessing_path: str,
    fairness_path: str,
    importance_path: str,
    importance_plot_path: str,
    test_path: str,
    slice_columns: tuple[str, ...],
    no_attach: bool,
) -> None:
    """Rebuild the model card of an existing version from what MLflow holds (plus any files given)."""
    from mlkeel.components.model_card.logic import model_card

    result = model_card(
        model_name,
        version,
        html_path,
        markdown_path,
        tracking_uri=tracking_uri,
        schema_path=schema_path,
        blessing_path=blessing_path,
        fairness_path=fairness_path,
        importance_path=importance_path,
        importance_plot_path=importance_plot_path,
        test_path=test_path,
        slice_columns=list(slice_columns),
        attach=not no_attach,
    )
    echo_json(
        {
            "model_name": result.model_name,
            "version": result.version,
            "html": html_path,
            "markdown": markdown_path,
            "card_uri": result.card_uri,
        }
    )
