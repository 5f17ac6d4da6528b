"""Train: fit one scikit-learn Pipeline whose preprocessing travels inside the model, and log it to MLflow.

The Pipeline is ``ColumnTransformer(numeric: median impute + scale, categorical: impute + one-hot ignoring
unseen categories) -> estimator``. It is fitted on the train split only, so serving and batch scoring apply
exactly the preprocessing that training saw (no train/serve skew).
"""

from __future__ import annotations

import inspect
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkeel.components.train.features import FEATURE_KINDS, FeaturePlan, plan_features, skops_trusted_types
from mlkeel.constants import (
    MLFLOW_MODEL_ARTIFACT,
    REFERENCE_ARTIFACT_FILE,
    REFERENCE_MAX_ROWS,
    RUN_DATA_ARTIFACT_DIR,
    SCHEMA_ARTIFACT_FILE,
    ArtifactMetadata,
    LineageTag,
)
from mlkeel.errors import ParameterError, SchemaMismatchError
from mlkeel.storage import replace_directory_atomic

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from mlkeel.schema import DatasetSchema

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
    "hist_gradient_boosting": ("sklearn.ensemble:HistGradientBoostingClassifier", {"max_iter": 200}),
}
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
        feature_plan: Every column's decision (kind and reason) and the encoded width.
        train_metrics: Metrics on the train split.
        params: Estimator name, seed and effective hyperparameters.
    """

    model: Pipeline
    feature_columns: list[str]
    numeric_columns: list[str]
    categorical_columns: list[str]
    dropped_columns: dict[str, str] = field(default_factory=dict)
    feature_plan: FeaturePlan = field(default_factory=FeaturePlan)
    train_metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


def make_estimator(estimator: str, hyperparameters: dict[str, Any] | None, seed: int) -> Any:
    """Instantiate an estimator by name with the shipped defaults, ``hyperparameters`` and ``random_state=seed``.

    Args:
        estimator: A key of ``ESTIMATORS``.
        hyperparameters: Overrides of the estimator's ``__init__`` parameters.
        seed: Passed as ``random_state`` when the estimator has one.

    Returns:
        The unfitted estimator.

    Raises:
        ParameterError: unknown estimator or hyperparameter.
    """
    import importlib

    if estimator not in ESTIMATORS:
        raise ParameterError(f"unknown estimator {estimator!r}: expected one of {', '.join(ESTIMATORS)}")
    import_path, defaults = ESTIMATORS[estimator]
    module_name, class_name = import_path.split(":")
    estimator_class = getattr(importlib.import_module(module_name), class_name)
    accepted = set(inspect.signature(estimator_class).parameters)
    unknown = sorted(set(hyperparameters or {}) - accepted)
    if unknown:
        raise ParameterError(
            f"hyperparameters {unknown} are not parameters of {class_name}; see its scikit-learn documentation"
        )
    settings = {**defaults, **(hyperparameters or {})}
    if "random_state" in accepted:
        settings.setdefault("random_state", seed)
    return estimator_class(**settings)


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
    feature_types: dict[str, str] | None = None,
) -> FittedModel:
    """Fit preprocessing + estimator on ``frame`` (the train split only).

    Args:
        frame: Training rows, raw columns.
        target_column: The label column.
        positive_label: The label value that means positive (compared as text).
        key_columns: Identifier columns, never features.
        estimator: ``logistic_regression``, ``random_forest`` or ``hist_gradient_boosting``.
        hyperparameters: Estimator parameter overrides.
        seed: Random seed (estimator ``random_state``); same data + seed -> same model.
        source: Printable name of the data, for messages.
        feature_types: Overrides of the feature typing, column -> numeric | boolean | categorical | text |
            timestamp | ignore (see ``features.plan_features``).

    Returns:
        A ``FittedModel``.

    Raises:
        SchemaMismatchError: the target or a key column is missing.
        DataError: the target does not have exactly two classes, or no feature column is left.
        ParameterError: bad estimator, hyperparameters or feature_types.
    """
    from mlkeel.metrics import classification_metrics
    from mlkeel.modeling import binary_labels, one_native_thread, positive_scores

    keys = list(key_columns or [])
    for column, role in [(target_column, "target column"), *((key, "key column") for key in keys)]:
        if column not in frame.columns:
            raise SchemaMismatchError(f"{source}: {role} {column!r} not found; columns: {', '.join(frame.columns)}")
    labels = binary_labels(frame[target_column], positive_label, source)
    plan = plan_features(frame, target_column, keys, feature_types, source)
    model = build_pipeline(plan, make_estimator(estimator, hyperparameters, seed))
    features = frame[plan.feature_columns]
    with one_native_thread():
        model.fit(features, labels)
        train_scores = positive_scores(model, features)
        plan.encoded_width = int(model.named_steps["preprocess"].transform(features.head(1)).shape[1])
    return FittedModel(
        model=model,
        feature_columns=plan.feature_columns,
        numeric_columns=plan.columns("numeric"),
        categorical_columns=plan.columns("categorical"),
        dropped_columns=plan.not_used,
        feature_plan=plan,
        train_metrics=classification_metrics(labels, train_scores),
        params={
            "estimator": estimator,
            "seed": seed,
            **{f"hp.{name}": value for name, value in model.named_steps["classify"].get_params().items()},
        },
    )


def signature_example(frame: pd.DataFrame, feature_columns: list[str], rows: int = 5) -> pd.DataFrame:
    """A few input rows for the MLflow signature, integers as floats so a null in an int column still validates.

    Args:
        frame: Training rows.
        feature_columns: The model's input columns.
        rows: How many rows.

    Returns:
        The example DataFrame.
    """
    from pandas.api import types as ptypes

    example = frame[feature_columns].head(rows).copy()
    for column in example.columns:
        if ptypes.is_integer_dtype(example[column].dtype):
            example[column] = example[column].astype("float64")
    return example


@dataclass(frozen=True)
class TrainResult:
    """What the train stage produced.

    Attributes:
        mlflow_run_id: The MLflow run holding params, metrics, schema and the logged model.
        mlflow_model_uri: URI of the logged model (what register registers).
        feature_columns: The model's input columns.
        train_metrics: Metrics on the train split.
        target_column: The label column.
        positive_label: The label value meaning positive.
        estimator: The estimator name.
        features: The feature plan as data (``FeaturePlan.to_dict``) with its one-line ``summary``.
    """

    mlflow_run_id: str
    mlflow_model_uri: str
    feature_columns: list[str]
    train_metrics: dict[str, float]
    target_column: str
    positive_label: str
    estimator: str
    features: dict[str, Any] = field(default_factory=dict)

    @property
    def metadata(self) -> dict[str, Any]:
        """KFP Model artifact metadata (what evaluate, gate and register read)."""
        return {
            ArtifactMetadata.MLFLOW_RUN_ID: self.mlflow_run_id,
            ArtifactMetadata.MLFLOW_MODEL_URI: self.mlflow_model_uri,
            "feature_columns": self.feature_columns,
            "target_column": self.target_column,
            "positive_label": self.positive_label,
            "estimator": self.estimator,
            **{f"train_{name}": value for name, value in self.train_metrics.items()},
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
    feature_types: dict[str, str] | None = None,
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
        feature_types: Feature typing overrides, column -> numeric | boolean | categorical | text | timestamp |
            ignore; the rest is decided from the data (``features.plan_features``).

    Returns:
        A ``TrainResult``; its ``features`` summary is also logged (``train: features: ...``), tagged on the
        MLflow run (``mlkeel.features``) and written to the run's ``data/features.json``.
    """
    from mlkeel.modeling import import_model_libraries, one_native_thread, positive_scores

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
        source=train_path,
        feature_types=feature_types,
    )
    plan = fitted.feature_plan
    logger.info("train: %s", plan.summary())
    example = signature_example(frame, fitted.feature_columns)
    with one_native_thread():
        signature = infer_signature(example, positive_scores(fitted.model, example))

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
        + skops_trusted_types(plan, fitted.model.named_steps["classify"])
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
    }
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
        features={**plan.to_dict(), "summary": plan.summary()},
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
