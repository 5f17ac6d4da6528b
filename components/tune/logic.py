"""Tune: a seeded hyperparameter search whose trials are fitted and scored on a validation part of the train split.

Three steps, each a task of the ``tuning`` pipeline (``pipelines/tuning.py``), so that on a cluster the trials
run side by side (``dsl.ParallelFor``) and KFP itself is the distributed engine:

1. ``propose``: N trial configurations from a search space (JSON per estimator, ``DEFAULT_SEARCH_SPACES`` when
   none is given), asked of Optuna's TPE sampler seeded with the run's seed (ask-and-tell: trials already scored
   can be told first, so a second batch learns from the first). Trial 0 is always the baseline (the shipped
   defaults plus the user's fixed hyperparameters), so the search can only keep or beat what training without
   it would have used, on the validation score. An MLflow parent run holds the search.
2. ``run_trial``: one configuration fitted exactly as the train stage fits (``train.logic.fit_model``: feature
   typing, estimator families, threshold policy), on the fit part of the train split, and scored on its
   validation part (``train.validation``). The holdout is never read: it stays the gate's unseen rows. Each
   trial is an MLflow child run of the parent.
3. ``select``: the best trial by the gate's metric on the validation part (ties: the lower trial number, so the
   baseline wins a tie), the trials table (Markdown, and HTML with a plot of score by parameter) and the
   chosen hyperparameters, which the train stage then fits the final model with and register records on the
   version (tag ``mlkeel.tuning``).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mlkeel.constants import LineageTag
from mlkeel.errors import ParameterError
from mlkeel.metrics import HIGHER_IS_BETTER, require_metric

if TYPE_CHECKING:
    from mlkeel.components.train.logic import FittedModel

logger = logging.getLogger(__name__)

# A parameter's search range: {"type": "float" | "int", "low": L, "high": H, "log": bool} or
# {"type": "categorical", "choices": [...]}. Ranges hold the shipped defaults (train.logic.ESTIMATORS), so the
# baseline is a point of the space. Chosen around what moved the validation score on the bundled Telco data.
DEFAULT_SEARCH_SPACES: dict[str, dict[str, dict[str, Any]]] = {
    "hist_gradient_boosting": {
        "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
        "max_leaf_nodes": {"type": "int", "low": 7, "high": 63, "log": True},
        "min_samples_leaf": {"type": "int", "low": 10, "high": 200, "log": True},
        "l2_regularization": {"type": "float", "low": 1e-4, "high": 10.0, "log": True},
    },
    "random_forest": {
        "n_estimators": {"type": "int", "low": 100, "high": 400, "log": False},
        "max_depth": {"type": "int", "low": 4, "high": 24, "log": False},
        "min_samples_leaf": {"type": "int", "low": 1, "high": 30, "log": True},
        "max_features": {"type": "float", "low": 0.2, "high": 1.0, "log": False},
    },
    "logistic_regression": {
        "C": {"type": "float", "low": 1e-3, "high": 100.0, "log": True},
    },
    # The linear regressor (a regression target's): its one strength of regularisation, around the default 1.0.
    "ridge": {
        "alpha": {"type": "float", "low": 1e-3, "high": 100.0, "log": True},
    },
}
PARAMETER_TYPES = ("float", "int", "categorical")
# Told trials before TPE stops sampling at random: a first batch is random (seeded), a later one learns.
STARTUP_TRIALS = 4
# Trial number of the baseline (the hyperparameters training without a search uses).
BASELINE_TRIAL = 0
# Artifact file names of the trials table, in the parent run's ``tuning/`` folder.
TRIALS_ARTIFACT_DIR = "tuning"
TRIALS_MARKDOWN = "trials.md"
TRIALS_HTML = "trials.html"
TRIALS_JSON = "trials.json"
# Run tags: which runs are a search's (the parent) and its trials' (children, numbered).
STAGE_TAG = "mlkeel.stage"
SEARCH_RUN = "tune"
TRIAL_RUN = "tune_trial"
TRIAL_TAG = "mlkeel.trial"


def search_space(estimator: str, spaces: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """The checked search space of ``estimator``: the user's entry for it, else ``DEFAULT_SEARCH_SPACES``.

    Args:
        estimator: A key of ``train.logic.ESTIMATORS``.
        spaces: Estimator -> {parameter -> range} (JSON); estimators it does not name use the default space.

    Returns:
        Parameter -> range, every range checked (type, bounds, choices).

    Raises:
        ParameterError: unknown estimator, or a range that names no type, bounds out of order, a log range that
            reaches 0, or a categorical range without choices; the message names the estimator and parameter.
    """
    if estimator not in DEFAULT_SEARCH_SPACES:
        raise ParameterError(f"unknown estimator {estimator!r}: expected one of {', '.join(DEFAULT_SEARCH_SPACES)}")
    unknown = sorted(set(spaces or {}) - set(DEFAULT_SEARCH_SPACES))
    if unknown:
        raise ParameterError(
            f"search_space names unknown estimator(s) {unknown}: expected keys among {', '.join(DEFAULT_SEARCH_SPACES)}"
        )
    chosen = (spaces or {}).get(estimator) or DEFAULT_SEARCH_SPACES[estimator]
    if not isinstance(chosen, dict):
        raise ParameterError(f"search_space[{estimator!r}]: expected a JSON object parameter -> range")
    for name, spec in chosen.items():
        where = f"search_space[{estimator!r}][{name!r}]"
        if not isinstance(spec, dict) or spec.get("type") not in PARAMETER_TYPES:
            raise ParameterError(f"{where}: expected an object with type one of {', '.join(PARAMETER_TYPES)}")
        if spec["type"] == "categorical":
            if not isinstance(spec.get("choices"), list) or not spec["choices"]:
                raise ParameterError(f"{where}: a categorical range needs a non-empty list 'choices'")
            continue
        low, high = spec.get("low"), spec.get("high")
        if not (_is_number(low) and _is_number(high)):
            raise ParameterError(f"{where}: 'low' and 'high' must be numbers, got {low!r} and {high!r}")
        assert isinstance(low, (int, float)) and isinstance(high, (int, float))
        if not low < high:
            raise ParameterError(f"{where}: 'low' ({low}) must be below 'high' ({high})")
        if spec.get("log") and low <= 0:
            raise ParameterError(f"{where}: a log range needs 'low' > 0, got {low}")
    return chosen


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class TrialResult:
    """One trial's configuration and its score on the validation part of the train split.

    Attributes:
        trial: Trial number (0 = the baseline).
        hyperparameters: What was fitted (the user's fixed ones plus the sampled ones).
        score: The metric on the validation part (NaN when the fit failed).
        metric: The metric's name (the gate's).
        train_score: The metric on the fit part (a large gap to ``score`` is overfitting).
        seconds: Wall time of the fit and scoring.
        mlflow_run_id: The trial's MLflow child run ("" when not logged).
        error: Why the fit failed ("" when it did not).
        parent_run_id: The search's MLflow run ("" when not logged).
    """

    trial: int
    hyperparameters: dict[str, Any]
    score: float
    metric: str
    train_score: float = math.nan
    seconds: float = 0.0
    mlflow_run_id: str = ""
    error: str = ""
    parent_run_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-able data (NaN as None)."""
        data = asdict(self)
        for key in ("score", "train_score"):
            if isinstance(data[key], float) and math.isnan(data[key]):
                data[key] = None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialResult:
        """Read ``to_dict``'s output (a KFP parameter: numbers may come back as floats)."""
        return cls(
            trial=int(data["trial"]),
            hyperparameters=dict(data.get("hyperparameters") or {}),
            score=math.nan if data.get("score") is None else float(data["score"]),
            metric=str(data["metric"]),
            train_score=math.nan if data.get("train_score") is None else float(data["train_score"]),
            seconds=float(data.get("seconds") or 0.0),
            mlflow_run_id=str(data.get("mlflow_run_id") or ""),
            error=str(data.get("error") or ""),
            parent_run_id=str(data.get("parent_run_id") or ""),
        )


def propose(
    estimator: str,
    n_trials: int,
    seed: int,
    spaces: dict[str, Any] | None = None,
    fixed: dict[str, Any] | None = None,
    told: list[TrialResult] | None = None,
) -> list[dict[str, Any]]:
    """Propose ``n_trials`` configurations: the baseline first, then Optuna TPE asks (seeded).

    The same estimator, space, seed and told results propose the same trials. ``told`` (already scored trials,
    baseline excluded) are told to the sampler first, so a later batch learns from an earlier one; their trial
    numbers are continued.

    Args:
        estimator: A key of ``train.logic.ESTIMATORS``.
        n_trials: How many configurations (1 = the baseline only).
        seed: The sampler's seed.
        spaces: Search spaces per estimator (``search_space``).
        fixed: Hyperparameters every trial keeps (the user's); sampled ones override them.
        told: Scored trials of earlier batches.

    Returns:
        ``[{"trial": i, "hyperparameters": {...}}, ...]``.

    Raises:
        ParameterError: ``n_trials`` < 1, or a bad search space.
    """
    if n_trials < 1:
        raise ParameterError(f"n_trials must be at least 1 (the baseline), got {n_trials}")
    space = search_space(estimator, spaces)
    base = dict(fixed or {})
    previous = list(told or [])
    trials: list[dict[str, Any]] = []
    if not previous:
        trials.append({"trial": BASELINE_TRIAL, "hyperparameters": base})
    asks = n_trials - len(trials)
    if asks <= 0 or not space:
        return trials
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    distributions = _distributions(space)
    higher = HIGHER_IS_BETTER.get(previous[0].metric if previous else "roc_auc", True)
    direction = optuna.study.StudyDirection.MAXIMIZE if higher else optuna.study.StudyDirection.MINIMIZE
    # TPE samples at random (seeded) until STARTUP_TRIALS are told, then models the told ones: reproducible.
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=STARTUP_TRIALS, multivariate=True)
    study = optuna.create_study(direction=direction, sampler=sampler)
    for result in previous:
        if result.trial == BASELINE_TRIAL or math.isnan(result.score):
            continue
        sampled = {name: result.hyperparameters[name] for name in distributions if name in result.hyperparameters}
        if len(sampled) == len(distributions):
            study.add_trial(optuna.trial.create_trial(params=sampled, distributions=distributions, value=result.score))
    first = max([result.trial for result in previous], default=BASELINE_TRIAL) + 1
    for offset in range(asks):
        asked = study.ask(distributions)
        trials.append({"trial": first + offset, "hyperparameters": {**base, **asked.params}})
    return trials


def _distributions(space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    made: dict[str, Any] = {}
    for name, spec in space.items():
        if spec["type"] == "categorical":
            made[name] = CategoricalDistribution(spec["choices"])
        elif spec["type"] == "int":
            made[name] = IntDistribution(int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
        else:
            made[name] = FloatDistribution(float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
    return made


def score_trial(
    frame: Any,
    trial: int,
    hyperparameters: dict[str, Any],
    target_column: str,
    positive_label: str,
    key_columns: list[str] | None = None,
    estimator: str = "hist_gradient_boosting",
    seed: int = 42,
    metric: str = "roc_auc",
    threshold_policy: str = "fixed:0.5",
    class_weight: str = "",
    feature_types: dict[str, str] | None = None,
    task: str = "",
) -> tuple[TrialResult, FittedModel | None]:
    """Fit one configuration as the train stage does and score it on the validation part of the train split.

    A configuration that scikit-learn refuses (say, a value out of its range) is a failed trial (NaN score, the
    error kept), not a failed search: the other trials still count.

    Args:
        frame: The train split (never the holdout).
        trial: Trial number.
        hyperparameters: The estimator's hyperparameters.
        target_column: The label column.
        positive_label: Label value meaning positive.
        key_columns: Identifier columns, never features.
        estimator: Estimator name.
        seed: Seed of the estimator and of the fit/validation cut (the same cut for every trial).
        metric: The metric compared (the gate's).
        threshold_policy: As the train stage's.
        class_weight: As the train stage's.
        feature_types: As the train stage's.
        task: As the train stage's (binary, multiclass, regression; "" = inferred from the target).

    Returns:
        The ``TrialResult`` and the fitted model (None when the fit failed).

    Raises:
        ParameterError: unknown metric, or a train split without a validation part (too few rows of a class).
    """
    from mlkeel.components.train.logic import fit_model

    require_metric(metric)
    started = time.perf_counter()
    try:
        fitted = fit_model(
            frame,
            target_column,
            positive_label,
            key_columns,
            estimator,
            hyperparameters,
            seed,
            threshold_policy=threshold_policy,
            class_weight=class_weight,
            feature_types=feature_types,
            task=task,
        )
    except ValueError as error:  # scikit-learn's InvalidParameterError is a ValueError
        logger.warning("tune: trial %d %s failed: %s", trial, hyperparameters, error)
        return TrialResult(trial, hyperparameters, math.nan, metric, error=str(error)[:500]), None
    validation = fitted.validation
    if validation is None or not validation.validation_metrics:
        raise ParameterError(
            f"tuning needs a validation part of the train split: the rarer class has too few rows "
            f"(at least {_min_class_rows()} needed)"
        )
    result = TrialResult(
        trial=trial,
        hyperparameters=hyperparameters,
        score=float(validation.validation_metrics[metric]),
        metric=metric,
        train_score=float(validation.train_metrics[metric]),
        seconds=round(time.perf_counter() - started, 3),
    )
    return result, fitted


def _min_class_rows() -> int:
    from mlkeel.components.train.validation import MIN_CLASS_ROWS_FOR_VALIDATION

    return MIN_CLASS_ROWS_FOR_VALIDATION


def select(results: list[TrialResult]) -> TrialResult:
    """The best trial by its metric's direction; a tie goes to the lower trial number (the baseline first).

    Args:
        results: Every trial's result.

    Returns:
        The best scored trial.

    Raises:
        ParameterError: no trial at all, or none with a score (every fit failed; the first error is quoted).
    """
    scored = [result for result in results if not math.isnan(result.score)]
    if not scored:
        errors = [result.error for result in results if result.error]
        raise ParameterError(
            f"no trial of {len(results)} could be scored" + (f"; the first error: {errors[0]}" if errors else "")
        )
    sign = 1.0 if HIGHER_IS_BETTER[scored[0].metric] else -1.0
    return min(scored, key=lambda result: (-sign * result.score, result.trial))


@dataclass(frozen=True)
class TuningSummary:
    """What the search chose, as recorded on the parent run and on the registered version.

    Attributes:
        estimator: The estimator searched.
        metric: The metric compared, on the validation part of the train split.
        best_trial: The winning trial's number.
        best_score: Its score.
        baseline_score: The baseline trial's score (NaN when it failed).
        hyperparameters: The winning hyperparameters (what the final model is fitted with).
        trials: How many trials ran.
        seed: The search's seed.
        parent_run_id: The MLflow run holding the trials as child runs.
    """

    estimator: str
    metric: str
    best_trial: int
    best_score: float
    baseline_score: float
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    trials: int = 0
    seed: int = 0
    parent_run_id: str = ""

    def tag(self) -> str:
        """The ``mlkeel.tuning`` tag: this summary as compact JSON (MLflow tags hold up to 8000 characters)."""
        data = asdict(self)
        for key in ("best_score", "baseline_score"):
            data[key] = None if math.isnan(data[key]) else round(data[key], 6)
        return json.dumps(data, sort_keys=True, default=str)[:8000]


def summarise(results: list[TrialResult], estimator: str, seed: int, parent_run_id: str = "") -> TuningSummary:
    """Choose the best trial (``select``) and describe the search.

    Args:
        results: Every trial's result.
        estimator: The estimator searched.
        seed: The search's seed.
        parent_run_id: The MLflow parent run.

    Returns:
        The ``TuningSummary``.
    """
    from mlkeel.components.train.logic import declared_hyperparameters

    best = select(results)
    baseline = next((result.score for result in results if result.trial == BASELINE_TRIAL), math.nan)
    return TuningSummary(
        estimator=estimator,
        metric=best.metric,
        best_trial=best.trial,
        best_score=best.score,
        baseline_score=baseline,
        hyperparameters=declared_hyperparameters(estimator, best.hyperparameters),  # JSON numbers back to ints
        trials=len(results),
        seed=seed,
        parent_run_id=parent_run_id,
    )


def version_tags(summary: TuningSummary) -> dict[str, str]:
    """The tags register sets on the version the tuned model becomes.

    Args:
        summary: The search's summary.

    Returns:
        ``{"mlkeel.tuning": <summary JSON>}``.
    """
    return {LineageTag.TUNING: summary.tag()}


def start_search(
    estimator: str,
    n_trials: int,
    seed: int,
    spaces: dict[str, Any] | None = None,
    fixed: dict[str, Any] | None = None,
    tracking_uri: str = "",
    experiment_name: str = "mlkeel",
    data_fingerprint: str = "",
) -> tuple[list[dict[str, Any]], str]:
    """Propose the trials (``propose``) and open the MLflow parent run that will hold them as child runs.

    Args:
        estimator: The estimator searched.
        n_trials: How many trials (the baseline included).
        seed: The sampler's seed.
        spaces: Search spaces per estimator ("" or {} = ``DEFAULT_SEARCH_SPACES``).
        fixed: Hyperparameters every trial keeps.
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``).
        experiment_name: MLflow experiment (created when missing).
        data_fingerprint: Fingerprint of the ingested data (lineage tag on the parent run).

    Returns:
        The trials, each also naming the parent run (``parent_run_id``: what a trial task logs under), and the
        parent run's id.
    """
    import mlflow

    from mlkeel.tracking import connect

    trials = propose(estimator, n_trials, seed, spaces, fixed)
    connect(tracking_uri)
    mlflow.set_experiment(experiment_name)
    with mlflow.start_run(run_name=f"tune-{estimator}") as run:
        mlflow.set_tags({LineageTag.DATA_FINGERPRINT: data_fingerprint, STAGE_TAG: SEARCH_RUN})
        mlflow.log_params(
            {
                "estimator": estimator,
                "n_trials": n_trials,
                "seed": seed,
                "search_space": json.dumps(search_space(estimator, spaces), sort_keys=True)[:6000],
                "fixed_hyperparameters": json.dumps(fixed or {}, sort_keys=True)[:6000],
            }
        )
        mlflow.log_dict({"trials": trials}, f"{TRIALS_ARTIFACT_DIR}/proposed.json")
    logger.info(
        "tune: %d trials of %s proposed (seed %d), parent run %s", len(trials), estimator, seed, run.info.run_id
    )
    return [{**trial, "parent_run_id": run.info.run_id} for trial in trials], run.info.run_id


def run_trial(
    train_path: str,
    trial: dict[str, Any],
    target_column: str,
    positive_label: str,
    key_columns: list[str] | None = None,
    estimator: str = "hist_gradient_boosting",
    seed: int = 42,
    metric: str = "roc_auc",
    threshold_policy: str = "fixed:0.5",
    class_weight: str = "",
    feature_types: dict[str, str] | None = None,
    parent_run_id: str = "",
    tracking_uri: str = "",
    experiment_name: str = "mlkeel",
    task: str = "",
) -> TrialResult:
    """Score one proposed trial on the train split's validation part and log it as a child run of the search.

    Args:
        train_path: The train split (Parquet).
        trial: One element of ``propose``'s (or ``start_search``'s) list.
        target_column: The label column.
        positive_label: Label value meaning positive.
        key_columns: Identifier columns.
        estimator: Estimator name.
        seed: Seed of the estimator and of the fit/validation cut.
        metric: The metric compared.
        threshold_policy: As the train stage's.
        class_weight: As the train stage's.
        feature_types: As the train stage's.
        parent_run_id: The search's MLflow run ("" = the trial's ``parent_run_id``; neither = log no run).
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``).
        experiment_name: MLflow experiment.
        task: As the train stage's ("" = inferred from the target).

    Returns:
        The ``TrialResult`` (with its child run's id).

    Raises:
        ParameterError: ``trial`` lacks its number, or see ``score_trial``.
    """
    from mlkeel.modeling import import_model_libraries

    import_model_libraries()
    import pyarrow.parquet as pq

    from mlkeel.components.train.logic import declared_hyperparameters

    if "trial" not in trial:
        raise ParameterError(f"trial {trial!r}: expected an object with 'trial' and 'hyperparameters'")
    number = int(trial["trial"])
    parent_run_id = parent_run_id or str(trial.get("parent_run_id") or "")
    hyperparameters = declared_hyperparameters(estimator, trial.get("hyperparameters"))  # JSON numbers: floats
    frame = pq.read_table(train_path).to_pandas()
    result, _ = score_trial(
        frame,
        number,
        hyperparameters,
        target_column,
        positive_label,
        key_columns,
        estimator,
        seed,
        metric,
        threshold_policy,
        class_weight,
        feature_types,
        task,
    )
    logger.info("tune: trial %d %s: validation %s %s", number, hyperparameters, metric, result.score)
    if not parent_run_id:
        return result
    import mlflow

    from mlkeel.tracking import connect

    connect(tracking_uri)
    mlflow.set_experiment(experiment_name)
    with mlflow.start_run(run_name=f"trial-{number}", parent_run_id=parent_run_id) as run:
        mlflow.set_tags({STAGE_TAG: TRIAL_RUN, TRIAL_TAG: str(number)})
        mlflow.log_params(
            {"estimator": estimator, "trial": number, **{f"hp.{k}": v for k, v in hyperparameters.items()}}
        )
        metrics = {"seconds": result.seconds}
        if not math.isnan(result.score):
            metrics |= {f"validation_{metric}": result.score, f"train_{metric}": result.train_score}
        mlflow.log_metrics(metrics)
        if result.error:
            mlflow.set_tag("mlkeel.trial_error", result.error)
    return TrialResult(**{**asdict(result), "mlflow_run_id": run.info.run_id, "parent_run_id": parent_run_id})


def finish_search(
    results: list[dict[str, Any]],
    estimator: str,
    seed: int,
    table_dir: str,
    parent_run_id: str = "",
    tracking_uri: str = "",
) -> TuningSummary:
    """Choose the best trial, write the trials table and record the choice on the parent run.

    Args:
        results: Every trial's ``TrialResult.to_dict()`` (KFP's ``dsl.Collected`` of the trial tasks).
        estimator: The estimator searched.
        seed: The search's seed.
        table_dir: Folder receiving ``trials.md``, ``trials.html`` and ``trials.json``.
        parent_run_id: The search's MLflow run ("" = the one the results name; none = log nothing).
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``).

    Returns:
        The ``TuningSummary``.

    Raises:
        ParameterError: no trial could be scored.
    """
    from pathlib import Path

    from mlkeel.components.tune.report import render_html, render_markdown
    from mlkeel.storage import write_json_atomic, write_text_atomic

    trials = sorted((TrialResult.from_dict(item) for item in results), key=lambda result: result.trial)
    parent_run_id = parent_run_id or next((trial.parent_run_id for trial in trials if trial.parent_run_id), "")
    summary = summarise(trials, estimator, seed, parent_run_id)
    folder = Path(table_dir)
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomic(render_markdown(trials, summary), folder / TRIALS_MARKDOWN)
    write_text_atomic(render_html(trials, summary), folder / TRIALS_HTML)
    write_json_atomic(
        {"summary": json.loads(summary.tag()), "trials": [t.to_dict() for t in trials]}, folder / TRIALS_JSON
    )
    logger.info(
        "tune: chose trial %d of %d, validation %s %.4f (baseline %.4f): %s",
        summary.best_trial,
        summary.trials,
        summary.metric,
        summary.best_score,
        summary.baseline_score,
        summary.hyperparameters,
    )
    if parent_run_id:
        from mlkeel.tracking import connect

        client = connect(tracking_uri)
        for name in (TRIALS_MARKDOWN, TRIALS_HTML, TRIALS_JSON):
            client.log_artifact(parent_run_id, str(folder / name), TRIALS_ARTIFACT_DIR)
        client.set_tag(parent_run_id, LineageTag.TUNING, summary.tag())
        client.log_metric(parent_run_id, f"best_validation_{summary.metric}", summary.best_score)
        client.log_param(parent_run_id, "best_trial", summary.best_trial)
    return summary


def run_search(
    train_path: str,
    target_column: str,
    positive_label: str,
    table_dir: str,
    key_columns: list[str] | None = None,
    estimator: str = "hist_gradient_boosting",
    n_trials: int = 8,
    seed: int = 42,
    batch_size: int = 0,
    metric: str = "roc_auc",
    spaces: dict[str, Any] | None = None,
    fixed: dict[str, Any] | None = None,
    threshold_policy: str = "fixed:0.5",
    class_weight: str = "",
    feature_types: dict[str, str] | None = None,
    tracking_uri: str = "",
    experiment_name: str = "mlkeel",
    task: str = "",
) -> TuningSummary:
    """A whole search in this process, in batches: ask a batch, score it, tell it, ask the next (ask-and-tell).

    The pipeline runs one batch (its trials side by side); here a later batch learns from the earlier ones once
    ``STARTUP_TRIALS`` are told. Seeded: the same arguments give the same trials and the same choice.

    Args:
        train_path: The train split (Parquet).
        target_column: The label column.
        positive_label: Label value meaning positive.
        table_dir: Folder receiving the trials table.
        key_columns: Identifier columns.
        estimator: The estimator searched.
        n_trials: Trials in all, the baseline included.
        seed: The sampler's and the estimator's seed.
        batch_size: Trials per batch (0 = one batch of ``n_trials``).
        metric: The metric compared on the validation part.
        spaces: Search spaces per estimator.
        fixed: Hyperparameters every trial keeps.
        threshold_policy: As the train stage's.
        class_weight: As the train stage's.
        feature_types: As the train stage's.
        tracking_uri: MLflow URI: when set, a parent run with the trials as child runs; "" logs nothing.
        experiment_name: MLflow experiment.
        task: As the train stage's ("" = inferred from the target).

    Returns:
        The ``TuningSummary``.

    Raises:
        ParameterError: ``n_trials`` < 1, a negative ``batch_size``, a bad space, or no trial scored.
    """
    if batch_size < 0:
        raise ParameterError(f"batch_size must be 0 (one batch) or more, got {batch_size}")
    size = min(batch_size or n_trials, n_trials)
    if tracking_uri:
        batch, parent = start_search(estimator, size, seed, spaces, fixed, tracking_uri, experiment_name)
    else:
        batch, parent = propose(estimator, size, seed, spaces, fixed), ""
    scored: list[TrialResult] = []
    while True:
        scored += [
            run_trial(
                train_path,
                trial,
                target_column,
                positive_label,
                key_columns,
                estimator,
                seed,
                metric,
                threshold_policy,
                class_weight,
                feature_types,
                parent,
                tracking_uri,
                experiment_name,
                task,
            )
            for trial in batch
        ]
        if len(scored) >= n_trials:
            break
        batch = propose(estimator, min(size, n_trials - len(scored)), seed, spaces, fixed, told=scored)
    return finish_search([result.to_dict() for result in scored], estimator, seed, table_dir, parent, tracking_uri)
