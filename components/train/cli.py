"""Command line for the train stage: ``python -m mlkeel.components.train --help``."""

import click

from mlkeel.clitools import JSON_OBJECT, echo_json, model_choice_options, reports_user_errors, task_option


@click.command(name="train")
@click.option("--train-data", "train_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--model-out", "model_dir", required=True, type=click.Path(file_okay=False))
@click.option("--target-column", required=True)
@click.option("--positive-label", default="", help="The positive class (binary targets).")
@click.option("--key-column", "key_columns", multiple=True, help="Identifier column, never a feature.")
@click.option("--estimator", default="hist_gradient_boosting", show_default=True)
@click.option("--hyperparameters", type=JSON_OBJECT, default=None, help="E.g. '{\"max_iter\": 300}'.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--mlflow-uri", "tracking_uri", default="", help="Default: $MLFLOW_TRACKING_URI.")
@click.option("--experiment", "experiment_name", default="mlkeel", show_default=True)
@click.option("--data-fingerprint", default="")
@click.option("--schema", "schema_path", default="", help="Schema JSON from the validate stage.")
@task_option
@model_choice_options
@reports_user_errors
def main(
    train_path: str,
    model_dir: str,
    target_column: str,
    positive_label: str,
    key_columns: tuple[str, ...],
    estimator: str,
    hyperparameters: dict | None,
    seed: int,
    tracking_uri: str,
    experiment_name: str,
    data_fingerprint: str,
    schema_path: str,
    threshold_policy: str,
    class_weight: str,
    feature_types: dict | None,
    task: str,
) -> None:
    """Fit preprocessing + estimator on a train split and log the model to MLflow."""
    from mlkeel.components.train.features import parse_feature_types
    from mlkeel.components.train.logic import train

    result = train(
        train_path,
        model_dir,
        target_column,
        positive_label,
        list(key_columns),
        estimator,
        hyperparameters,
        seed,
        tracking_uri,
        experiment_name,
        data_fingerprint,
        schema_path,
        threshold_policy=threshold_policy,
        class_weight=class_weight,
        feature_types=parse_feature_types(feature_types),
        task=task,
    )
    click.echo(result.task_reason, err=True)
    click.echo(result.metadata["features"], err=True)
    echo_json(result.metadata)
