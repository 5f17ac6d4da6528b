"""KFP components of the tune stage: thin shells around ``mlkeel.components.tune.logic``.

``tune`` proposes the trials, ``tune_trial`` scores one (a task per trial, under ``dsl.ParallelFor``) and
``tune_select`` reads them all (``dsl.Collected``) and chooses; ``pipelines/tuning.py`` wires them.
"""

from typing import NamedTuple, Optional

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Markdown, Output

from mlkeel.images import stage_image


@dsl.component(base_image=stage_image("tune"), install_kfp_package=False)
def tune(
    estimator: str,
    n_trials: int,
    seed: int = 42,
    search_space: Optional[dict] = None,
    hyperparameters: Optional[dict] = None,
    mlflow_tracking_uri: str = "",
    experiment_name: str = "mlkeel",
    data_fingerprint: str = "",
) -> list:
    """Propose the trials of a seeded hyperparameter search and open the MLflow run that holds them.

    Trial 0 is the baseline (the shipped defaults plus ``hyperparameters``); the others are asked of Optuna's
    TPE sampler, seeded: the same seed proposes the same trials. Each trial is then fitted and scored by a
    ``tune_trial`` task on a validation part of the train split (never the holdout).

    Args:
        estimator: logistic_regression | random_forest | hist_gradient_boosting.
        n_trials: How many trials, the baseline included (at least 1).
        seed: The sampler's seed.
        search_space: Estimator -> parameter -> range, a range being {"type": "float"|"int", "low": L,
            "high": H, "log": true|false} or {"type": "categorical", "choices": [...]}; an estimator not named
            uses the default space (components/tune/logic.py DEFAULT_SEARCH_SPACES).
        hyperparameters: Estimator parameters every trial keeps (sampled ones override them).
        mlflow_tracking_uri: MLflow tracking URI; "" reads $MLFLOW_TRACKING_URI.
        experiment_name: MLflow experiment, created when missing.
        data_fingerprint: Fingerprint of the ingested data (lineage tag of the parent run).

    Returns:
        The trials, [{"trial": i, "hyperparameters": {...}, "parent_run_id": ...}, ...]: what ParallelFor fans
        out; parent_run_id is the MLflow run each trial logs under as a child run.
    """
    from mlkeel.components.tune.logic import start_search

    trials, _ = start_search(
        estimator,
        n_trials,
        seed,
        search_space,
        hyperparameters,
        mlflow_tracking_uri,
        experiment_name,
        data_fingerprint,
    )
    return trials


@dsl.component(base_image=stage_image("tune"), install_kfp_package=False)
def tune_trial(
    train_data: Input[Dataset],
    trial: dict,
    target_column: str,
    positive_label: str,
    key_columns: Optional[list] = None,
    estimator: str = "hist_gradient_boosting",
    seed: int = 42,
    metric: str = "roc_auc",
    threshold_policy: str = "fixed:0.5",
    class_weight: str = "",
    feature_types: str = "{}",
    mlflow_tracking_uri: str = "",
    experiment_name: str = "mlkeel",
    task: str = "",
) -> dict:
    """Fit one trial's configuration as the train stage does and score it on the train split's validation part.

    Args:
        train_data: Input Dataset (Parquet): the train split (the holdout is never read).
        trial: One proposed trial, {"trial": i, "hyperparameters": {...}, "parent_run_id": ...}; the trial is
            logged as a child run of parent_run_id.
        target_column: The label column.
        positive_label: The label value meaning positive.
        key_columns: Identifier columns, never features.
        estimator: logistic_regression (ridge for regression) | random_forest | hist_gradient_boosting.
        seed: Seed of the estimator and of the fit/validation cut (the same cut for every trial).
        metric: The metric compared (the gate's).
        threshold_policy: As the train stage's.
        class_weight: As the train stage's.
        feature_types: As the train stage's (JSON object).
        mlflow_tracking_uri: MLflow tracking URI; "" reads $MLFLOW_TRACKING_URI.
        experiment_name: MLflow experiment.
        task: binary | multiclass | regression, as the train stage's ("" = inferred from the target).

    Returns:
        The trial's result: trial, hyperparameters, score (validation), train_score, seconds, mlflow_run_id,
        error (a configuration scikit-learn refuses scores null and says why).
    """
    from mlkeel.components.train.features import parse_feature_types
    from mlkeel.components.tune.logic import run_trial

    return run_trial(
        train_data.path,
        trial,
        target_column,
        positive_label,
        key_columns,
        estimator,
        seed,
        metric,
        threshold_policy,
        class_weight,
        parse_feature_types(feature_types),
        "",
        mlflow_tracking_uri,
        experiment_name,
        task,
    ).to_dict()


@dsl.component(base_image=stage_image("tune"), install_kfp_package=False)
def tune_select(
    results: list,
    trials_table: Output[Markdown],
    trials_page: Output[HTML],
    estimator: str,
    seed: int = 42,
    mlflow_tracking_uri: str = "",
) -> NamedTuple("TuneSelectOutputs", [("hyperparameters", dict), ("version_tags", dict), ("best_score", float)]):
    """Choose the best trial by the gate's metric on the validation part and write the trials table.

    Args:
        results: Every trial's result (dsl.Collected of the tune_trial tasks). Their parent run (the search's)
            gets the table files (tuning/) and the tag mlkeel.tuning.
        trials_table: Output Markdown: the trials, best first, the chosen one marked.
        trials_page: Output HTML: the same table with a plot of validation score by each parameter.
        estimator: The estimator searched.
        seed: The search's seed.
        mlflow_tracking_uri: MLflow tracking URI; "" reads $MLFLOW_TRACKING_URI.

    Returns:
        hyperparameters: The chosen hyperparameters: what the train stage fits the final model with.
        version_tags: {"mlkeel.tuning": <the search's summary, JSON>}: register sets it on the version.
        best_score: The chosen trial's validation score.
    """
    import shutil
    import tempfile
    from pathlib import Path

    from mlkeel.components.tune.logic import TRIALS_HTML, TRIALS_MARKDOWN, finish_search, version_tags

    with tempfile.TemporaryDirectory(prefix="mlkeel-tune-") as folder:
        summary = finish_search(results, estimator, seed, folder, "", mlflow_tracking_uri)
        shutil.copyfile(Path(folder) / TRIALS_MARKDOWN, trials_table.path)
        shutil.copyfile(Path(folder) / TRIALS_HTML, trials_page.path)
    trials_table.metadata.update({"best_trial": summary.best_trial, "metric": summary.metric})
    outputs = NamedTuple(
        "TuneSelectOutputs", [("hyperparameters", dict), ("version_tags", dict), ("best_score", float)]
    )
    return outputs(summary.hyperparameters, version_tags(summary), summary.best_score)
