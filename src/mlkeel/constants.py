"""Names shared by several stages: artifact files, registry aliases, tags, columns.

One place for every string two stages must agree on, so a rename cannot leave a reader behind.
"""

from typing import Final

# Registry aliases (MLflow model registry).
CHAMPION_ALIAS: Final = "champion"
PREVIOUS_CHAMPION_ALIAS: Final = "previous_champion"

# Columns added to quarantined rows.
QUARANTINE_REASON_COLUMN: Final = "_mlkeel_reason"
SOURCE_ROW_COLUMN: Final = "_mlkeel_source_row"

# Format version of the schema JSON written by the validate stage.
SCHEMA_FORMAT_VERSION: Final = 1

# Files inside directory artifacts / MLflow runs. A training run keeps what monitoring compares against in
# ``data/``: the validated schema and a reference sample of the training rows.
RUN_DATA_ARTIFACT_DIR: Final = "data"
SCHEMA_ARTIFACT_FILE: Final = "schema.json"
REFERENCE_ARTIFACT_FILE: Final = "reference.parquet"
REFERENCE_MAX_ROWS: Final = 100_000
MLFLOW_MODEL_ARTIFACT: Final = "model"
# Governance documents on the model's MLflow run, under ``governance/``: the fairness stage's document and the
# explain stage's importance table and plot (the same JSON and PNG as their KFP artifacts).
RUN_GOVERNANCE_ARTIFACT_DIR: Final = "governance"
FAIRNESS_ARTIFACT_FILE: Final = "fairness.json"
IMPORTANCE_ARTIFACT_FILE: Final = "feature_importance.json"
IMPORTANCE_PLOT_FILE: Final = "feature_importance.png"
# A missing value of a sensitive or slice column is its own group, under this name.
MISSING_GROUP: Final = "(missing)"

# Environment variables.
ENV_TRACKING_URI: Final = "MLFLOW_TRACKING_URI"
ENV_GIT_COMMIT: Final = "MLKEEL_GIT_COMMIT"
ENV_IMAGE_REGISTRY: Final = "MLKEEL_IMAGE_REGISTRY"
ENV_IMAGE_TAG: Final = "MLKEEL_IMAGE_TAG"


class ArtifactMetadata:
    """Keys of KFP artifact metadata that a downstream stage reads."""

    FINGERPRINT: Final = "fingerprint"
    NUM_ROWS: Final = "num_rows"
    MLFLOW_RUN_ID: Final = "mlflow_run_id"
    MLFLOW_MODEL_URI: Final = "mlflow_model_uri"
    SCHEMA_HASH: Final = "schema_hash"
    # The register stage's output artifact.
    REGISTERED_MODEL_NAME: Final = "model_name"
    REGISTERED_MODEL_VERSION: Final = "model_version"
    REGISTERED_MODEL_ALIASES: Final = "aliases"


class LineageTag:
    """Tags set on MLflow runs and registered model versions."""

    DATA_FINGERPRINT: Final = "mlkeel.data_fingerprint"
    SCHEMA_HASH: Final = "mlkeel.schema_hash"
    GIT_COMMIT: Final = "mlkeel.git_commit"
    MLKEEL_VERSION: Final = "mlkeel.version"
    LIBRARY_VERSIONS: Final = "mlkeel.library_versions"
    PIPELINE_NAME: Final = "mlkeel.pipeline_name"
    PIPELINE_RUN: Final = "mlkeel.pipeline_run"
    TARGET_COLUMN: Final = "mlkeel.target_column"
    POSITIVE_LABEL: Final = "mlkeel.positive_label"
    # The other class's text. Read by batch predict for the prediction log's prediction_label when present.
    NEGATIVE_LABEL: Final = "mlkeel.negative_label"
    BLESSING_REASON: Final = "mlkeel.blessing_reason"
    GATE_METRIC: Final = "mlkeel.gate_metric"
    GATE_SCORE: Final = "mlkeel.gate_score"
    REPLACED_VERSION: Final = "mlkeel.replaced_version"


class GateRunMetric:
    """Metrics the gate logs on the challenger's MLflow run (the prefixes take the gate metric's name)."""

    BLESSED: Final = "gate_blessed"
    CHAMPION_PREFIX: Final = "gate_champion_"
    CHALLENGER_PREFIX: Final = "gate_challenger_"


class FairnessRunMetric:
    """Metrics the fairness stage logs on the model's MLflow run (``fairness_<column>_<difference>``)."""

    PASSED: Final = "fairness_passed"
    PREFIX: Final = "fairness_"


class ImportanceRunMetric:
    """Metrics the explain stage logs on the model's MLflow run (``importance_<feature>``)."""

    PREFIX: Final = "importance_"
