"""Command line for the split stage: ``python -m mlkeel.components.split --help``."""

import click

from mlkeel.clitools import echo_json, reports_user_errors, task_option


@click.command(name="split")
@click.option("--dataset", "dataset_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--train-out", "train_path", required=True, type=click.Path(dir_okay=False))
@click.option("--test-out", "test_path", required=True, type=click.Path(dir_okay=False))
@click.option("--target-column", default="", help="Stratify on this column.")
@click.option("--positive-label", default="", help="Reported positive rate of each part.")
@click.option("--test-fraction", default=0.2, show_default=True, type=float)
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--hash-key-column", default="", help="Split by hashing this key column instead.")
@task_option
@reports_user_errors
def main(
    dataset_path: str,
    train_path: str,
    test_path: str,
    target_column: str,
    positive_label: str,
    test_fraction: float,
    seed: int,
    hash_key_column: str,
    task: str,
) -> None:
    """Split a Parquet dataset into train and test parts."""
    from mlkeel.components.split.logic import split

    result = split(
        dataset_path,
        train_path,
        test_path,
        target_column,
        positive_label,
        test_fraction,
        seed,
        hash_key_column,
        task=task,
    )
    if result.task_reason:
        click.echo(result.task_reason, err=True)
    echo_json(result.metadata)
