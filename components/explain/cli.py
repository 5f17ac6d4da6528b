"""Command line for the explain stage: ``python -m mlkeel.components.explain --help``."""

import click

from mlkeel.clitools import echo_json, reports_user_errors


@click.command(name="explain")
@click.option("--model", "model_uri", required=True, help="Model directory or MLflow model URI.")
@click.option("--test-data", "test_path", required=True, help="Holdout rows (Parquet).")
@click.option("--target-column", required=True)
@click.option("--positive-label", required=True)
@click.option("--output", "importance_path", required=True, type=click.Path(dir_okay=False), help="Table (JSON).")
@click.option("--plot", "plot_path", required=True, type=click.Path(dir_okay=False), help="Bar chart (PNG).")
@click.option("--report", "report_path", default="", type=click.Path(dir_okay=False), help="HTML page (optional).")
@click.option("--metric", default="roc_auc", show_default=True, help="Score whose drop measures importance.")
@click.option("--n-repeats", type=int, default=5, show_default=True, help="Shuffles per column.")
@click.option("--max-rows", type=int, default=2000, show_default=True, help="Holdout rows used at most.")
@click.option("--seed", type=int, default=42, show_default=True)
@click.option("--mlflow-uri", "tracking_uri", default="", help="Default: $MLFLOW_TRACKING_URI.")
@click.option("--mlflow-run-id", default="", help="Log the table, the plot and importance_* metrics on this run.")
@reports_user_errors
def main(
    model_uri: str,
    test_path: str,
    target_column: str,
    positive_label: str,
    importance_path: str,
    plot_path: str,
    report_path: str,
    metric: str,
    n_repeats: int,
    max_rows: int,
    seed: int,
    tracking_uri: str,
    mlflow_run_id: str,
) -> None:
    """Rank the model's input columns by permutation importance; write the table and plot, print the table."""
    from mlkeel.components.explain.logic import explain

    echo_json(
        explain(
            model_uri,
            test_path,
            target_column,
            positive_label,
            importance_path,
            plot_path,
            report_path,
            metric=metric,
            n_repeats=n_repeats,
            max_rows=max_rows,
            seed=seed,
            tracking_uri=tracking_uri,
            mlflow_run_id=mlflow_run_id,
        )
    )
