"""Command line for the tune stage: ``python -m mlkeel.components.tune --help``.

``propose`` writes the trials a pipeline fans out; ``search`` runs a whole search in this process, in batches
(ask a batch, score it, tell it, ask the next), and prints the chosen hyperparameters.
"""

import json

import click

from mlkeel.clitools import JSON_OBJECT, echo_json, model_choice_options, reports_user_errors, task_option


@click.group(name="tune")
def main() -> None:
    """Hyperparameter search on a validation part of the train split (never the holdout)."""


@main.command(name="propose")
@click.option("--estimator", default="hist_gradient_boosting", show_default=True)
@click.option("--trials", "n_trials", default=8, show_default=True, type=int, help="Trial 0 is the baseline.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--search-space", "spaces", type=JSON_OBJECT, default=None, help="Estimator -> parameter -> range.")
@click.option("--hyperparameters", "fixed", type=JSON_OBJECT, default=None, help="Kept by every trial.")
@click.option("--output", required=True, type=click.Path(dir_okay=False), help="The trials (JSON list).")
@reports_user_errors
def propose_command(
    estimator: str, n_trials: int, seed: int, spaces: dict | None, fixed: dict | None, output: str
) -> None:
    """Propose the trials of a search (seeded) and write them as JSON."""
    from mlkeel.components.tune.logic import propose
    from mlkeel.storage import write_json_atomic

    trials = propose(estimator, n_trials, seed, spaces, fixed)
    write_json_atomic(trials, output)
    echo_json(trials)


@main.command(name="search")
@click.option("--train-data", "train_path", required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--target-column", required=True)
@click.option("--positive-label", required=True)
@click.option("--key-column", "key_columns", multiple=True, help="Identifier column, never a feature.")
@click.option("--estimator", default="hist_gradient_boosting", show_default=True)
@click.option("--trials", "n_trials", default=8, show_default=True, type=int, help="Trial 0 is the baseline.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--batch-size", default=0, show_default=True, type=int, help="Trials per batch; 0: one batch.")
@click.option("--metric", default="roc_auc", show_default=True, help="Compared on the validation part.")
@click.option("--search-space", "spaces", type=JSON_OBJECT, default=None, help="Estimator -> parameter -> range.")
@click.option("--hyperparameters", "fixed", type=JSON_OBJECT, default=None, help="Kept by every trial.")
@click.option("--table-dir", required=True, type=click.Path(file_okay=False), help="Receives trials.md/.html/.json.")
@click.option("--mlflow-uri", "tracking_uri", default="", help="Log the trials as child runs (default: none).")
@click.option("--experiment", "experiment_name", default="mlkeel", show_default=True)
@model_choice_options
@task_option
@reports_user_errors
def search_command(
    train_path: str,
    target_column: str,
    positive_label: str,
    key_columns: tuple[str, ...],
    estimator: str,
    n_trials: int,
    seed: int,
    batch_size: int,
    metric: str,
    spaces: dict | None,
    fixed: dict | None,
    table_dir: str,
    tracking_uri: str,
    experiment_name: str,
    threshold_policy: str,
    class_weight: str,
    feature_types: dict | None,
    task: str,
) -> None:
    """Run a whole search here, in batches (ask, score, tell); print the summary."""
    from mlkeel.components.train.features import parse_feature_types
    from mlkeel.components.tune.logic import run_search

    summary = run_search(
        train_path,
        target_column,
        positive_label,
        table_dir,
        list(key_columns),
        estimator,
        n_trials,
        seed,
        batch_size,
        metric,
        spaces,
        fixed,
        threshold_policy,
        class_weight,
        parse_feature_types(feature_types),
        tracking_uri,
        experiment_name,
        task,
    )
    echo_json(json.loads(summary.tag()))
