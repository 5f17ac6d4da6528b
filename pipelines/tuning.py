"""The tuning pipeline: the training pipeline with a hyperparameter search between split and train.

A separate pipeline rather than an option of ``training``: the search adds a ``dsl.ParallelFor`` over the trials
and a ``dsl.Collected`` of their results, which a ``tune_trials=0`` option could skip only inside a ``dsl.If`` (and
kfp.local runs no If around a ParallelFor with Collected); the compiled ``training.yaml`` stays as simple as it
was, and a plain training run pays nothing for tuning. Every parameter of ``training`` is one of ``tuning`` (the
signature is ``training_pipeline``'s plus the search's), and the tasks are the same functions
(``training.training_steps``): after split, ``tune`` proposes the trials, one ``tune_trial`` task per trial fits
and scores a configuration on a validation part of the train split (never the holdout), ``tune_select`` chooses
by the gate's metric, and train fits the final model with the chosen hyperparameters; evaluate, gate, register
(which records the choice on the version, tag ``mlkeel.tuning``) and the model card follow as in training.
"""

import inspect
from typing import Any, List

from kfp import dsl
from kfp.dsl import Dataset, Input

from mlkeel.components.tune.component import tune, tune_select, tune_trial
from mlkeel.pipelines.task_settings import TRIAL_PARALLELISM, configure
from mlkeel.pipelines.training import TrainingOutputs, training_pipeline, training_steps

# The search's own parameters, added after the training pipeline's: (name, type, default, description).
SEARCH_PARAMETERS = (
    ("tune_trials", int, 8, "How many trials, the baseline (trial 0: the shipped defaults) included; at least 1."),
    (
        "search_space",
        dict,
        {},
        'Estimator -> parameter -> range, e.g. {"random_forest": {"max_depth": {"type": "int", "low": 4, "high": '
        "24}}}; {} or an estimator not named: the default space (components/tune/logic.py).",
    ),
)


# The trials as a pipeline of their own (a sub-DAG) that returns dsl.Collected of the trial tasks: downstream tasks
# then depend on this sub-DAG's task, not on the ParallelFor inside it. The KFP backend's Argo compiler that
# tools/kfpcheck links (December 2023) refuses a task depending on a ParallelFor directly ("sorting failed: invalid
# dependency for-loop-1", kubeflow/pipelines#8830); this shape it accepts, and kfp.local runs it.
@dsl.pipeline(name="tune-trials")
def trial_tasks(
    trials: list,
    train_data: Input[Dataset],
    target_column: str,
    positive_label: str,
    key_columns: list,
    estimator: str,
    seed: int,
    metric: str,
    threshold_policy: str,
    class_weight: str,
    feature_types: str,
    mlflow_tracking_uri: str,
    experiment_name: str,
    task: str,
) -> List[dict]:
    """One tune_trial task per trial, at most TRIAL_PARALLELISM at once; their results, collected."""
    with dsl.ParallelFor(trials, parallelism=TRIAL_PARALLELISM) as trial:
        scored = configure(
            tune_trial(
                train_data=train_data,
                trial=trial,
                target_column=target_column,
                positive_label=positive_label,
                key_columns=key_columns,
                estimator=estimator,
                seed=seed,
                metric=metric,
                threshold_policy=threshold_policy,
                class_weight=class_weight,
                feature_types=feature_types,
                mlflow_tracking_uri=mlflow_tracking_uri,
                experiment_name=experiment_name,
                task=task,
            ),
            "tune_trial",
        )
    return dsl.Collected(scored.output)


def search(params: dict[str, Any], parts: dsl.PipelineTask, ingested: dsl.PipelineTask) -> tuple[Any, Any]:
    """The search's tasks: propose, one trial task per trial (bounded parallelism), select.

    Args:
        params: The pipeline's parameters by name.
        parts: The split task (its train_data is what the trials fit and score on).
        ingested: The ingest task (the data fingerprint).

    Returns:
        The chosen hyperparameters and the version tags (the select task's outputs).
    """
    p = params
    proposed = configure(
        tune(
            estimator=p["estimator"],
            n_trials=p["tune_trials"],
            seed=p["seed"],
            search_space=p["search_space"],
            hyperparameters=p["hyperparameters"],
            mlflow_tracking_uri=p["mlflow_tracking_uri"],
            experiment_name=p["experiment_name"],
            data_fingerprint=ingested.outputs["fingerprint"],
        ),
        "tune",
    )
    trials = trial_tasks(
        trials=proposed.output,
        train_data=parts.outputs["train_data"],
        target_column=p["target_column"],
        positive_label=p["positive_label"],
        key_columns=p["key_columns"],
        estimator=p["estimator"],
        seed=p["seed"],
        metric=p["gate_metric"],
        threshold_policy=p["threshold_policy"],
        class_weight=p["class_weight"],
        feature_types=p["feature_types"],
        mlflow_tracking_uri=p["mlflow_tracking_uri"],
        experiment_name=p["experiment_name"],
        task=p["task"],
    ).set_display_name("trials")
    chosen = configure(
        tune_select(
            results=trials.output,
            estimator=p["estimator"],
            seed=p["seed"],
            mlflow_tracking_uri=p["mlflow_tracking_uri"],
        ),
        "tune_select",
    )
    return chosen.outputs["hyperparameters"], chosen.outputs["version_tags"]


def _tuning(*args: Any, **kwargs: Any) -> TrainingOutputs:
    # KFP calls a pipeline function with its parameters positionally, in the signature's order.
    bound = inspect.signature(_tuning).bind(*args, **kwargs)
    return training_steps(dict(bound.arguments), choose=search)


def _with_search_parameters() -> None:
    """Give ``_tuning`` the training pipeline's signature and docstring plus the search's parameters."""
    function = training_pipeline.pipeline_func
    signature = inspect.signature(function)
    added = [
        inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=annotation)
        for name, annotation, default, _ in SEARCH_PARAMETERS
    ]
    _tuning.__signature__ = signature.replace(parameters=[*signature.parameters.values(), *added])  # type: ignore[attr-defined]
    _tuning.__annotations__ = {**function.__annotations__, **{name: kind for name, kind, _, _ in SEARCH_PARAMETERS}}
    described = "".join(f"    {name}: {text}\n" for name, _, _, text in SEARCH_PARAMETERS)
    # Dedented first: Python 3.13 strips a docstring's indentation when compiling, 3.11 and 3.12 keep it.
    args, returns = inspect.cleandoc(function.__doc__ or "").split("\nReturns:", 1)
    _tuning.__doc__ = (
        "Search hyperparameters on a validation part of the train split, then train, evaluate, gate and register."
        + args[args.index("\n") :].rstrip("\n")
        + "\n"
        + described
        + "\nReturns:"
        + returns
    )


_with_search_parameters()
tuning_pipeline = dsl.pipeline(
    name="mlkeel-tuning",
    description="A seeded hyperparameter search (one task per trial, in parallel) on a validation part of the train "
    "split, then the training pipeline with the chosen hyperparameters: train, evaluate, fairness, explain, gate, "
    "register (the choice recorded on the version) and the model card.",
)(_tuning)
