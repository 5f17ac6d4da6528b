"""Command line for the push_metrics stage: ``python -m mlkeel.components.push_metrics --help``."""

import click

from mlkeel.clitools import echo_json, reports_user_errors


@click.command(name="push_metrics")
@click.option("--drift-result", required=True, type=click.Path(dir_okay=False), help="The drift stage's result JSON.")
@click.option(
    "--performance-result", required=True, type=click.Path(dir_okay=False), help="The performance stage's result."
)
@click.option("--champion-model-uri", required=True, help="The monitored champion, models:/NAME/VERSION.")
@click.option("--model-name", required=True)
@click.option("--rows-valid", required=True, type=int, help="Rows validation passed.")
@click.option("--rows-quarantined", required=True, type=int, help="Rows validation quarantined.")
@click.option("--retraining/--no-retraining", default=False, show_default=True, help="Whether the run retrained.")
@click.option("--pushgateway", "pushgateway_url", required=True, help="http://host:port of the Pushgateway.")
@click.option("--job", default="mlkeel-monitoring", show_default=True, help="The job label of the grouping key.")
@click.option("--schedule-seconds", default=86400.0, show_default=True, type=float, help="Expected run interval.")
@reports_user_errors
def main(
    drift_result: str,
    performance_result: str,
    champion_model_uri: str,
    model_name: str,
    rows_valid: int,
    rows_quarantined: int,
    retraining: bool,
    pushgateway_url: str,
    job: str,
    schedule_seconds: float,
) -> None:
    """Push a monitoring run's figures to a Pushgateway; print the outcome (exit 0 even when the push fails)."""
    from mlkeel.components.push_metrics.logic import push_monitoring_metrics

    outcome = push_monitoring_metrics(
        drift_result,
        performance_result,
        champion_model_uri,
        model_name,
        rows_valid,
        rows_quarantined,
        retraining,
        pushgateway_url,
        job=job,
        schedule_seconds=schedule_seconds,
    )
    echo_json(outcome.to_dict())
