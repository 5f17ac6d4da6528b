"""Train: fit one scikit-learn Pipeline whose preprocessing travels inside the model, and log it to MLflow.

The Pipeline is ``ColumnTransformer(numeric: median impute + scale, categorical: impute + one-hot ignoring
unseen categories) -> estimator``. It is fitted on the train split only, so serving and batch scoring apply
exactly the preprocessing that training saw (no train/serve skew).

Tasks (``mlkeel.task``): the target's task is inferred (two values: binary; a few discrete values: multiclass;
many numbers: regression) or named (``task``). Binary and multiclass fit a classifier, regression a regressor of
the same family (``REGRESSION_ESTIMATORS``); only a binary model carries a decision threshold.

Imbalance (binary): the fitted Pipeline is saved wrapped with its decision threshold, chosen by a policy on a validation
part of the train split (``validation.py``; default 0.5, see ``mlkeel.threshold``), so that a model of a rare
class can predict it; ``class_weight="balanced"`` reweights the classes where the estimator takes a class weight.
"""

from __future__ import annotations

import inspect
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkeel.components.train.features import FEATURE_KINDS, FeaturePlan, plan_features, skops_trusted_types
from mlkeel.components.train.validation import VALIDATION_FRACTION
from mlkeel.constants import (
    MLFLOW_MODEL_ARTIFACT,
    REFERENCE_ARTIFACT_FILE,
    REFERENCE_MAX_ROWS,
    RUN_DATA_ARTIFACT_DIR,
    SCHEMA_ARTIFACT_FILE,
    ArtifactMetadata,
    LineageTag,
    TrainParam,
)
from mlkeel.errors import ParameterError, SchemaMismatchError
from mlkeel.storage import replace_directory_atomic
from mlkeel.threshold import DEFAULT_THRESHOLD, DEFAULT_THRESHOLD_POLICY

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from mlkeel.components.train.validation import ValidatedFit
    from mlkeel.schema import DatasetSchema
    from mlkeel.task import TaskChoice

logger = logging.getLogger(__name__)
# The full feature plan, in the training run's artifacts (the one-line summary is the LineageTag.FEATURES tag).
FEATURES_ARTIFACT = "data/features.json"

# Estimator name -> (import path, defaults). Defaults are the ones we ship; hyperparameters override them.
ESTIMATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "logistic_regression": ("sklearn.linear_model:LogisticRegression", {"max_iter": 1000}),
    "random_forest": (
        "sklearn.ensemble:RandomForestClassifier",
        {"n_estimators": 200, "min_samples_leaf": 2},
    ),
    # Early stopping on a seeded, stratified 10 % of the rows it is fitted on (random_state = the seed): boosting
    # stops once 10 rounds bring no gain in validation loss, instead of running every round into overfitting.
    # Smaller trees, larger leaves and a slower rate than scikit-learn's defaults: on the bundled Telco data its
    # defaults scored ROC AUC 0.907 on train and 0.840 on the validation part (past OVERFIT_ROC_AUC_GAP); these
    # 0.885 and 0.843, chosen on the validation part (holdout 0.837 -> 0.848, measured after the choice).
    "hist_gradient_boosting": (
        "sklearn.ensemble:HistGradientBoostingClassifier",
        {
            "max_iter": 300,
            "learning_rate": 0.05,
            "max_leaf_nodes": 15,
            "min_samples_leaf": 50,
            "early_stopping": True,
            "validation_fraction": 0.1,
            "n_iter_no_change": 10,
        },
    ),
}
# Regression: the same three families, the regularised linear model (ridge) in logistic regression's slot; the
# boosting and forest defaults are the classifiers' (the same reasons hold: they bound tree size and rounds).
REGRESSION_ESTIMATORS: dict[str, tuple[str, dict[str, Any]]] = {
    "ridge": ("sklearn.linear_model:Ridge", {}),
    "random_forest": ("sklearn.ensemble:RandomForestRegressor", ESTIMATORS["random_forest"][1]),
    "hist_gradient_boosting": (
        "sklearn.ensemble:HistGradientBoostingRegressor",
        ESTIMATORS["hist_gradient_boosting"][1],
    ),
}
# From this many train rows on, these defaults replace the ones above: the small-data defaults underfit large
# tables. Validation ROC AUC (fit_model's validation part) on the bundled flights, small -> large defaults:
# 20,000 rows 0.694 -> 0.690, 50,000 rows 0.730 -> 0.741, 100,000 rows 0.743 -> 0.756, 261,876 rows 0.754 ->
# 0.778 (scikit-learn's own defaults: 0.773); on Telco (7,043 rows) the large ones overfit (0.845 -> 0.841).
LARGE_DATA_ROWS = 50_000
LARGE_DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "hist_gradient_boosting": {"learning_rate": 0.1, "max_leaf_nodes": 31},
}
# Multiclass boosting waits longer before stopping early: on January's flights with target carrier (21,117 train
# rows, 15 classes, three of 25-47 rows) 10 rounds without gain stopped it after 12 rounds, at validation accuracy
# 0.817 (log loss 1.07); with 30 it ran all 300 rounds to 0.994 (log loss 0.04).
MULTICLASS_DEFAULTS: dict[str, dict[str, Any]] = {"hist_gradient_boosting": {"n_iter_no_change": 30}}
# Below this many train rows, a multiclass or regression boosting model's leaves hold at least rows / 20 rows (5 at
# the least) instead of 50: on wine (124 train rows, 3 classes) 50-row leaves allow no split at all (validation
# accuracy 0.40, the majority class; 0.96 with 6-row leaves). Binary keeps its defaults (its results unchanged).
SMALL_DATA_ROWS = 1_000
# Values of ``class_weight``: "" keeps the estimator's default (every row counts once).
CLASS_WEIGHTS = ("", "balanced")
# MLflow saves sklearn models with skops, which refuses types it is not told to trust. We trust exactly the
# types our own pipelines contain: numpy dtypes (in the fitted encoders) and, per estimator, what skops lists.
SKOPS_TRUSTED_TYPES = ["numpy.dtype"]
SKOPS_TRUSTED_BY_ESTIMATOR = {
    "hist_gradient_boosting": ["sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor"],
    "random_forest": ["sklearn.tree._tree.Tree"],
}
# What loading the model needs. Stated, not inferred: MLflow's inference re-imports the model in a subprocess
# (about 9 s per save here) and would record whatever else this environment has installed.
MODEL_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "pandas", "scipy")


def estimators_for(task: str = "binary") -> dict[str, tuple[str, dict[str, Any]]]:
    """The estimators of a task: ``REGRESSION_ESTIMATORS`` for regression, ``ESTIMATORS`` (classifiers) else.

    Args:
        task: ``binary``, ``multiclass`` or ``regression`` (``mlkeel.task.Task``).

    Returns:
        Estimator name -> (import path, defaults).
    """
    from mlkeel.task import Task

    return REGRESSION_ESTIMATORS if task == Task.REGRESSION else ESTIMATORS


def model_pip_requirements() -> list[str]:
    """Pinned requirements of a saved model: the libraries that load it, at the versions that trained it.

    Returns:
        For example ``["mlflow==3.17.2", "scikit-learn==1.9.1", ...]``.
    """
    from importlib import metadata

    import mlflow

    return [f"mlflow=={mlflow.__version__}"] + [f"{name}=={metadata.version(name)}" for name in MODEL_REQUIREMENTS]


@dataclass
class FittedModel:
    """A fitted model and what it was fitted on.

    Attributes:
        model: The fitted scikit-learn Pipeline.
        feature_columns: Raw input columns, in order.
        numeric_columns: The numeric subset.
        categorical_columns: The categorical subset.
        dropped_columns: Columns not used as features, with the reason.
        train_metrics: Metrics on the rows fitted on, at the decision threshold.
        params: Estimator name, seed, effective hyperparameters, threshold policy, class weight and threshold.
        validation: The fit/validation cut, the chosen threshold and the validation metrics (``ValidatedFit``).
        feature_plan: Every column's decision (kind and reason) and the encoded width.
        task: The task trained for and why (``mlkeel.task.TaskChoice``).
    """

    model: Any
    feature_columns: list[str]
    numeric_columns: list[str]
    categorical_columns: list[str]
    dropped_columns: dict[str, str] = field(default_factory=dict)
    feature_plan: FeaturePlan = field(default_factory=FeaturePlan)
    train_metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    validation: ValidatedFit | None = None
    task: TaskChoice | None = None


def make_estimator(
    estimator: str,
    hyperparameters: dict[str, Any] | None,
    seed: int,
    class_weight: str = "",
    rows: int = 0,
    task: str = "binary",
) -> Any:
    """Instantiate an estimator by name with the shipped defaults, ``hyperparameters`` and ``random_state=seed``.

    Args:
        estimator: A key of ``estimators_for(task)``.
        hyperparameters: Overrides of the estimator's ``__init__`` parameters.
        seed: Passed as ``random_state`` when the estimator has one.
        class_weight: "" (the estimator's default) or "balanced" (each class weighs as much in total).
        rows: Train rows; from ``LARGE_DATA_ROWS`` on, ``LARGE_DATA_DEFAULTS`` apply (0 = unknown: small data).
        task: ``binary`` and ``multiclass`` make a classifier, ``regression`` a regressor.

    Returns:
        The unfitted estimator.

    Raises:
        ParameterError: unknown estimator, hyperparameter or class weight, or a class weight for an estimator
            that takes none.
    """
    import importlib

    table = estimators_for(task)
    if estimator not in table:
        raise ParameterError(
            f"unknown estimator {estimator!r} for task {task}: expected one of {', '.join(table)}"
            + (" (ridge is the linear regressor)" if estimator == "logistic_regression" else "")
        )
    import_path, defaults = table[estimator]
    module_name, class_name = import_path.split(":")
    estimator_class = getattr(importlib.import_module(module_name), class_name)
    accepted = set(inspect.signature(estimator_class).parameters)
    unknown = sorted(set(hyperparameters or {}) - accepted)
    if unknown:
        raise ParameterError(
            f"hyperparameters {unknown} are not parameters of {class_name}; see its scikit-learn documentation"
        )
    if rows >= LARGE_DATA_ROWS:
        defaults = {**defaults, **LARGE_DATA_DEFAULTS.get(estimator, {})}
    if task == "multiclass":
        defaults = {**defaults, **MULTICLASS_DEFAULTS.get(estimator, {})}
    if task != "binary" and 0 < rows < SMALL_DATA_ROWS and "min_samples_leaf" in defaults:
        defaults = {**defaults, "min_samples_leaf": min(defaults["min_samples_leaf"], max(5, rows // 20))}
    settings = {**defaults, **declared_hyperparameters(estimator, hyperparameters, task)}
    if class_weight not in CLASS_WEIGHTS:
        raise ParameterError(f"class_weight {class_weight!r}: expected one of {', '.join(map(repr, CLASS_WEIGHTS))}")
    if class_weight:
        if "class_weight" not in accepted:
            raise ParameterError(f"class_weight: {class_name} takes no class weight")
        settings["class_weight"] = class_weight
    if "random_state" in accepted:
        settings.setdefault("random_state", seed)
    return estimator_class(**settings)


def declared_hyperparameters(
    estimator: str, hyperparameters: dict[str, Any] | None, task: str = "binary"
) -> dict[str, Any]:
    """``hyperparameters`` with integral floats back to ints where the estimator's parameter is not a float.

    Args:
        estimator: A key of ``estimators_for(task)``.
        hyperparameters: Estimator parameters (names already checked, or unknown ones kept as they are).
        task: The task (regression has its own estimators).

    Returns:
        The same parameters, ``{"max_leaf_nodes": 15.0}`` as ``{"max_leaf_nodes": 15}``.
    """
    import importlib

    table = estimators_for(task)
    if estimator not in table:  # make_estimator says so
        return dict(hyperparameters or {})
    module_name, class_name = table[estimator][0].split(":")
    signature = inspect.signature(getattr(importlib.import_module(module_name), class_name)).parameters
    return {
        name: _as_declared(value, signature[name].default) if name in signature else value
        for name, value in (hyperparameters or {}).items()
    }


def _as_declared(value: Any, default: Any) -> Any:
    """``15.0`` -> ``15`` unless the parameter's default is a float.

    A KFP dict parameter carries JSON through protobuf Struct, where every number is a double: the user's
    ``{"max_leaf_nodes": 15}`` arrives as 15.0, which scikit-learn refuses for an integer parameter.
    """
    if isinstance(value, float) and value.is_integer() and not isinstance(default, float):
        return int(value)
    return value


def build_pipeline(plan: FeaturePlan, estimator: Any) -> Pipeline:
    """Preprocessing (decided by ``plan``, see ``features.build_preprocessing``) + estimator as one Pipeline.

    Args:
        plan: The feature plan: which columns, of which kind.
        estimator: The classifier.

    Returns:
        The unfitted Pipeline, steps ``preprocess`` and ``classify``.
    """
    from sklearn.pipeline import Pipeline

    from mlkeel.components.train.features import build_preprocessing

    # Only scikit-learn's own classes, plus mlkeel's CalendarFeatures when a timestamp is a feature: MLflow saves
    # the model with skops (no arbitrary pickle).
    return Pipeline([("preprocess", build_preprocessing(plan, estimator)), ("classify", estimator)])


def fit_model(
    frame: pd.DataFrame,
    target_column: str,
    positive_label: str,
    key_columns: list[str] | None = None,
    estimator: str = "hist_gradient_boosting",
    hyperparameters: dict[str, Any] | None = None,
    seed: int = 42,
    source: str = "train data",
    threshold_policy: str = DEFAULT_THRESHOLD_POLICY,
    class_weight: str = "",
    feature_types: dict[str, str] | None = None,
    task: str = "",
) -> FittedModel:
    """Fit preprocessing + estimator on ``frame`` (the train split only); for binary, choose the decision threshold.

    The estimator is fitted on a stratified, seeded part of ``frame``; for a binary target the threshold is
    chosen by ``threshold_policy`` on the rest (``validation.fit_validated``) and travels inside the returned
    model; multiclass and regression models are scored on the rest (``validation.fit_validated_task``).

    Args:
        frame: Training rows, raw columns.
        target_column: The label column.
        positive_label: The label value that means positive (compared as text; binary only).
        key_columns: Identifier columns, never features.
        estimator: ``logistic_regression`` (``ridge`` for regression), ``random_forest`` or
            ``hist_gradient_boosting``.
        hyperparameters: Estimator parameter overrides.
        seed: Random seed (estimator ``random_state``, fit/validation cut); same data + seed -> same model.
        source: Printable name of the data, for messages.
        threshold_policy: ``f1``, ``precision:P``, ``recall:R`` or ``fixed:T`` (see ``mlkeel.threshold``).
        class_weight: "" or "balanced".
        feature_types: Overrides of the feature typing, column -> numeric | boolean | categorical | text |
            timestamp | ignore (see ``features.plan_features``).
        task: ``binary``, ``multiclass``, ``regression`` or "" to infer it from the target (``mlkeel.task``).

    Returns:
        A ``FittedModel``.

    Raises:
        SchemaMismatchError: the target or a key column is missing.
        DataError: the target fits no task (or not the one named), has nulls, or no feature column is left.
        ParameterError: bad task, estimator, hyperparameters, class weight, threshold policy or feature_types.
    """
    from mlkeel.components.train.validation import fit_validated, fit_validated_task
    from mlkeel.modeling import binary_labels, fitted_pipeline, task_targets
    from mlkeel.threshold import parse_policy

    policy = parse_policy(threshold_policy)

    keys = list(key_columns or [])
    for column, role in [(target_column, "target column"), *((key, "key column") for key in keys)]:
        if column not in frame.columns:
            raise SchemaMismatchError(f"{source}: {role} {column!r} not found; columns: {', '.join(frame.columns)}")
    from mlkeel.task import Task, resolve_task

    choice = resolve_task(frame[target_column], task, source)
    if choice.task == Task.BINARY:
        labels = binary_labels(frame[target_column], positive_label, source)
    else:
        labels = task_targets(frame[target_column], choice.task, source)
    plan = plan_features(frame, target_column, keys, feature_types, source)
    model = build_pipeline(
        plan, make_estimator(estimator, hyperparameters, seed, class_weight, len(frame), choice.task)
    )
    features = frame[plan.feature_columns]
    if choice.task == Task.BINARY:
        validated = fit_validated(model, features, labels, policy, seed)
    else:
        validated = fit_validated_task(model, features, labels, choice.task, seed)
    pipeline = fitted_pipeline(validated.model)
    classifier = pipeline.named_steps["classify"]
    plan.encoded_width = int(pipeline.named_steps["preprocess"].transform(features.head(1)).shape[1])
    return FittedModel(
        model=validated.model,
        feature_columns=plan.feature_columns,
        numeric_columns=plan.columns("numeric"),
        categorical_columns=plan.columns("categorical"),
        dropped_columns=plan.not_used,
        feature_plan=plan,
        train_metrics=validated.train_metrics,
        params={
            "estimator": estimator,
            "seed": seed,
            TrainParam.TASK: choice.task,
            **{f"hp.{name}": value for name, value in classifier.get_params().items()},
            TrainParam.CLASS_WEIGHT: class_weight,
            TrainParam.VALIDATION_FRACTION: VALIDATION_FRACTION if validated.validation_rows else 0.0,
            **(
                {TrainParam.THRESHOLD_POLICY: validated.policy, TrainParam.DECISION_THRESHOLD: validated.threshold}
                if choice.task == Task.BINARY
                else {}
            ),
        },
        validation=validated,
        task=choice,
    )


def signature_example(frame: pd.DataFrame, feature_columns: list[str], rows: int = 5) -> pd.DataFrame:
    """A few input rows for the MLflow signature, integers as floats so a null in an int column still validates.

    Timezone-aware timestamps become naive UTC: MLflow's schema enforcement accepts naive datetimes only (with an
    aware example, logging the model printed "Please ensure that the input data of datetime column only contains
    timezone-naive datetime objects"); the model's calendar features read both.

    Args:
        frame: Training rows.
        feature_columns: The model's input columns.
        rows: How many rows.

    Returns:
        The example DataFrame.
    """
    import pandas as pd
    from pandas.api import types as ptypes

    example = frame[feature_columns].head(rows).copy()
    for column in example.columns:
        if ptypes.is_integer_dtype(example[column].dtype):
            example[column] = example[column].astype("float64")
        elif isinstance(example[column].dtype, pd.DatetimeTZDtype):
            example[column] = example[column].dt.tz_convert("UTC").dt.tz_localize(None)
    return example


@dataclass(frozen=True)
class TrainResult:
    """What the train stage produced.

    Attributes:
        mlflow_run_id: The MLflow run holding params, metrics, schema and the logged model.
        mlflow_model_uri: URI of the logged model (what register registers).
        feature_columns: The model's input columns.
        train_metrics: Metrics on the rows fitted on, at the decision threshold.
        target_column: The label column.
        positive_label: Label value meaning positive.
        estimator: Estimator name.
        decision_threshold: The threshold inside the saved model.
        threshold_policy: The policy that chose it.
        validation_metrics: Metrics on the validation part of the train split, at the decision threshold.
        iterations: Boosting iterations run (early stopping), or None for other estimators.
        overfit_warning: The overfitting warning line, or "".
        threshold_note: Why the policy could not be followed as asked, or "".
        features: The feature plan as data (``FeaturePlan.to_dict``) with its one-line ``summary``.
        task: ``binary``, ``multiclass`` or ``regression``.
        task_reason: The task's summary line (inferred or requested, and why).
        classes: The model's classes as text, in its probability-column order ([] for regression).
    """

    mlflow_run_id: str
    mlflow_model_uri: str
    feature_columns: list[str]
    train_metrics: dict[str, float]
    target_column: str
    positive_label: str
    estimator: str
    decision_threshold: float = DEFAULT_THRESHOLD
    threshold_policy: str = DEFAULT_THRESHOLD_POLICY
    validation_metrics: dict[str, float] = field(default_factory=dict)
    iterations: int | None = None
    overfit_warning: str = ""
    threshold_note: str = ""
    features: dict[str, Any] = field(default_factory=dict)
    task: str = "binary"
    task_reason: str = ""
    classes: list[str] = field(default_factory=list)

    @property
    def metadata(self) -> dict[str, Any]:
        """KFP Model artifact metadata (what evaluate, gate and register read).

        A binary model's keys are today's plus ``task``/``task_reason``; multiclass and regression models carry
        no decision threshold or policy, and multiclass ones their ``classes``.
        """
        binary = self.task == "binary"
        return {
            ArtifactMetadata.MLFLOW_RUN_ID: self.mlflow_run_id,
            ArtifactMetadata.MLFLOW_MODEL_URI: self.mlflow_model_uri,
            "feature_columns": self.feature_columns,
            "target_column": self.target_column,
            "positive_label": self.positive_label,
            "estimator": self.estimator,
            "task": self.task,
            "task_reason": self.task_reason,
            **({"classes": self.classes} if self.task == "multiclass" else {}),
            **(
                {
                    ArtifactMetadata.DECISION_THRESHOLD: self.decision_threshold,
                    ArtifactMetadata.THRESHOLD_POLICY: self.threshold_policy,
                    ArtifactMetadata.THRESHOLD_NOTE: self.threshold_note,
                }
                if binary
                else {}
            ),
            ArtifactMetadata.OVERFIT_WARNING: self.overfit_warning,
            **({ArtifactMetadata.ITERATIONS: self.iterations} if self.iterations is not None else {}),
            **{f"train_{name}": value for name, value in self.train_metrics.items()},
            **{f"validation_{name}": value for name, value in self.validation_metrics.items()},
            "features": self.features.get("summary", ""),
            "feature_kinds": {column: entry["kind"] for column, entry in self.features.get("columns", {}).items()},
            "encoded_width": self.features.get("encoded_width", 0),
        }


def train(
    train_path: str,
    model_dir: str,
    target_column: str,
    positive_label: str,
    key_columns: list[str] | None = None,
    estimator: str = "hist_gradient_boosting",
    hyperparameters: dict[str, Any] | None = None,
    seed: int = 42,
    tracking_uri: str = "",
    experiment_name: str = "mlkeel",
    data_fingerprint: str = "",
    schema_path: str = "",
    run_name: str = "",
    threshold_policy: str = DEFAULT_THRESHOLD_POLICY,
    class_weight: str = "",
    feature_types: dict[str, str] | None = None,
    task: str = "",
) -> TrainResult:
    """Fit the model on the Parquet at ``train_path``, save it to ``model_dir`` and log it to MLflow.

    Args:
        train_path: Train split (Parquet).
        model_dir: Directory to save the model in MLflow's sklearn format (written atomically).
        target_column: The label column.
        positive_label: Label value meaning positive.
        key_columns: Identifier columns, never features.
        estimator: Estimator name (see ``ESTIMATORS``).
        hyperparameters: Estimator parameter overrides.
        seed: Random seed.
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``).
        experiment_name: MLflow experiment (created when missing).
        data_fingerprint: Fingerprint of the ingested data, recorded as a lineage tag.
        schema_path: The validated schema JSON, logged as data/schema.json and hashed into a tag ("" = infer
            it from the train rows).
        run_name: MLflow run name ("" = MLflow's default).
        threshold_policy: How the decision threshold is chosen (``f1``, ``precision:P``, ``recall:R``,
            ``fixed:T``); the threshold is saved inside the model, logged as the ``decision_threshold`` param
            and tagged ``mlkeel.decision_threshold`` (register copies it onto the version).
        class_weight: "" or "balanced".
        feature_types: Feature typing overrides, column -> numeric | boolean | categorical | text | timestamp |
            ignore; the rest is decided from the data (``features.plan_features``).
        task: ``binary``, ``multiclass``, ``regression`` or "" to infer it from the target; the choice and its
            reason are logged (``train: task: ...``), tagged (``mlkeel.task``, ``mlkeel.task_reason``) and in
            the result.

    Returns:
        A ``TrainResult``; its ``features`` summary is also logged (``train: features: ...``), tagged on the
        MLflow run (``mlkeel.features``) and written to the run's ``data/features.json``.
    """
    from mlkeel.modeling import fitted_pipeline, import_model_libraries, model_outputs, one_native_thread

    import_model_libraries()  # before mlflow: see its docstring
    import mlflow
    import mlflow.sklearn
    import pyarrow.parquet as pq
    from mlflow.models import infer_signature

    from mlkeel.tracking import connect, git_commit, image_lineage, library_versions

    frame = pq.read_table(train_path).to_pandas()
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
        source=train_path,
        feature_types=feature_types,
        task=task,
    )
    validated, choice = fitted.validation, fitted.task
    assert validated is not None and choice is not None  # fit_model always validates and resolves the task
    plan = fitted.feature_plan
    logger.info("train: %s", choice.summary)
    logger.info("train: %s", plan.summary())
    example = signature_example(frame, fitted.feature_columns)
    with one_native_thread():
        signature = infer_signature(example, model_outputs(fitted.model, example, choice.task))

    def save(directory: str) -> None:
        mlflow.sklearn.save_model(
            fitted.model,
            directory,
            signature=signature,
            input_example=example,
            skops_trusted_types=trusted_types,
            pip_requirements=requirements,
        )

    trusted_types = (
        SKOPS_TRUSTED_TYPES
        + SKOPS_TRUSTED_BY_ESTIMATOR.get(estimator, [])
        + skops_trusted_types(plan, fitted_pipeline(fitted.model).named_steps["classify"])
    )
    requirements = model_pip_requirements()
    replace_directory_atomic(save, model_dir)

    connect(tracking_uri)
    mlflow.set_experiment(experiment_name)
    tags = {
        LineageTag.DATA_FINGERPRINT: data_fingerprint,
        LineageTag.TARGET_COLUMN: target_column,
        LineageTag.POSITIVE_LABEL: positive_label,
        LineageTag.GIT_COMMIT: git_commit(),
        LineageTag.LIBRARY_VERSIONS: library_versions(),
        LineageTag.IMAGES: image_lineage("", "train"),
        LineageTag.TASK: choice.task,
        LineageTag.TASK_REASON: choice.summary,
    }
    if validated.threshold is not None:
        tags[LineageTag.DECISION_THRESHOLD] = repr(validated.threshold)
    from mlkeel.schema import DatasetSchema, infer_schema

    if schema_path:
        schema = DatasetSchema.load(schema_path)
    else:  # trained outside the pipeline: record the schema of the train rows, so lineage is never partial
        schema = infer_schema(pq.read_table(train_path), key_columns or (), target_column)
    tags[LineageTag.SCHEMA_HASH] = schema.schema_hash()
    tags[LineageTag.FEATURES] = _param_text(plan.summary())
    with mlflow.start_run(run_name=run_name or None) as run:
        mlflow.set_tags(tags)
        mlflow.log_params({name: _param_text(value) for name, value in fitted.params.items()})
        mlflow.log_param("feature_columns", json.dumps(fitted.feature_columns))
        mlflow.log_params(
            {
                **{f"features.{kind}": len(plan.columns(kind)) for kind in FEATURE_KINDS},
                "features.not_used": _param_text(json.dumps(plan.not_used)),
                "features.encoded_width": plan.encoded_width,
                "feature_types": _param_text(json.dumps(feature_types or {}, sort_keys=True)),
            }
        )
        mlflow.log_dict({**plan.to_dict(), "summary": plan.summary()}, FEATURES_ARTIFACT)
        mlflow.log_metrics({f"train_{name}": value for name, value in fitted.train_metrics.items()})
        mlflow.log_metrics({f"validation_{name}": value for name, value in validated.validation_metrics.items()})
        if validated.iterations is not None:
            mlflow.log_metric(ArtifactMetadata.ITERATIONS, validated.iterations)
        log_reference_data(train_path, schema, seed)
        info = mlflow.sklearn.log_model(
            fitted.model,
            name=MLFLOW_MODEL_ARTIFACT,
            signature=signature,
            input_example=example,
            skops_trusted_types=trusted_types,
            pip_requirements=requirements,
        )
    return TrainResult(
        mlflow_run_id=run.info.run_id,
        mlflow_model_uri=info.model_uri,
        feature_columns=fitted.feature_columns,
        train_metrics=fitted.train_metrics,
        target_column=target_column,
        positive_label=positive_label,
        estimator=estimator,
        decision_threshold=DEFAULT_THRESHOLD if validated.threshold is None else validated.threshold,
        threshold_policy=validated.policy or DEFAULT_THRESHOLD_POLICY,
        validation_metrics=validated.validation_metrics,
        iterations=validated.iterations,
        overfit_warning=validated.overfit_warning,
        threshold_note=validated.note,
        features={**plan.to_dict(), "summary": plan.summary()},
        task=choice.task,
        task_reason=choice.summary,
        classes=[str(name) for name in getattr(fitted.model, "classes_", [])] if choice.task != "regression" else [],
    )


def log_reference_data(train_path: str, schema: DatasetSchema, seed: int = 42) -> None:
    """Log, into the active MLflow run's ``data/``, what monitoring later compares new data with.

    ``data/reference.parquet`` is the train split (a seeded sample of at most ``REFERENCE_MAX_ROWS`` rows) and
    ``data/schema.json`` the validated schema: drift and validation of a later batch read them through the
    champion's lineage.

    Args:
        train_path: The train split (Parquet).
        schema: The schema the rows were validated against.
        seed: Seed of the sample.
    """
    import tempfile

    import mlflow
    import numpy as np
    import pyarrow.parquet as pq

    from mlkeel.storage import write_parquet_atomic

    table = pq.read_table(train_path)
    if table.num_rows > REFERENCE_MAX_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(table.num_rows, REFERENCE_MAX_ROWS, replace=False))
        table = table.take(rows)
    with tempfile.TemporaryDirectory(prefix="mlkeel-reference-") as folder:
        write_parquet_atomic(table, Path(folder) / REFERENCE_ARTIFACT_FILE)
        schema.save(Path(folder) / SCHEMA_ARTIFACT_FILE)
        mlflow.log_artifacts(folder, artifact_path=RUN_DATA_ARTIFACT_DIR)


def _param_text(value: Any) -> str:
    """MLflow params are text of at most 6000 characters."""
    return str(value)[:6000]
