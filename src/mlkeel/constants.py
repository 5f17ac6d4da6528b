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
# Set in every stage image by its Dockerfile: the exact reference the image was built as (lineage reads it).
ENV_IMAGE_REF: Final = "MLKEEL_IMAGE"

# The model card: files logged on a version's source run under ``model_card/``.
MODEL_CARD_ARTIFACT_DIR: Final = "model_card"
MODEL_CARD_HTML_FILE: Final = "model_card.html"
MODEL_CARD_MARKDOWN_FILE: Final = "model_card.md"

# On a cluster, pods read MLFLOW_TRACKING_URI from this Kubernetes Secret's key (manifests/pipelines, serving):
# the URI may carry credentials, so it is never a pipeline argument or a literal in compiled YAML.
MLFLOW_SECRET_NAME: Final = "mlkeel-mlflow"
MLFLOW_SECRET_URI_KEY: Final = "tracking_uri"


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
    # The train stage's Model: the decision threshold inside the model, the policy that chose it (and why it
    # could not be followed, when so), boosting iterations run before early stopping, the overfitting warning.
    DECISION_THRESHOLD: Final = "decision_threshold"
    THRESHOLD_POLICY: Final = "threshold_policy"
    THRESHOLD_NOTE: Final = "threshold_note"
    ITERATIONS: Final = "iterations"
    OVERFIT_WARNING: Final = "overfit_warning"


class TrainParam:
    """MLflow params the train stage logs besides the estimator's hyperparameters (``hp.<name>``)."""

    DECISION_THRESHOLD: Final = "decision_threshold"
    THRESHOLD_POLICY: Final = "threshold_policy"
    CLASS_WEIGHT: Final = "class_weight"
    TASK: Final = "task"
    VALIDATION_FRACTION: Final = "threshold_validation_fraction"


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
    # The task the model was trained for (binary | multiclass | regression, ``mlkeel.task``) and why (the summary).
    TASK: Final = "mlkeel.task"
    TASK_REASON: Final = "mlkeel.task_reason"
    # The decision threshold inside the model (repr of a float); set on the training run, copied to the version.
    DECISION_THRESHOLD: Final = "mlkeel.decision_threshold"
    # The other class's text. Read by batch predict for the prediction log's prediction_label when present.
    NEGATIVE_LABEL: Final = "mlkeel.negative_label"
    BLESSING_REASON: Final = "mlkeel.blessing_reason"
    GATE_METRIC: Final = "mlkeel.gate_metric"
    GATE_SCORE: Final = "mlkeel.gate_score"
    REPLACED_VERSION: Final = "mlkeel.replaced_version"
    # JSON stage -> image reference of the images that trained and registered the version ({} outside images).
    IMAGES: Final = "mlkeel.images"
    # ``runs:/<run>/model_card/model_card.html``: where the version's model card is.
    MODEL_CARD: Final = "mlkeel.model_card"
    # Training run: the one-line feature summary (which columns are features, of which kind; which are not, why).
    FEATURES: Final = "mlkeel.features"
    # A tuned version: the search's summary as JSON (estimator, metric, chosen trial and hyperparameters, scores,
    # the MLflow parent run of the trials); set by register on the version (components/tune).
    TUNING: Final = "mlkeel.tuning"

    # Register's bookkeeping: what makes two registrations "the same" (data + code + training parameters), the
    # state of a version (``RegistrationState``) and the promotion decision (also set on the training run).
    REGISTRATION_KEY: Final = "mlkeel.registration_key"
    REGISTRATION_STATE: Final = "mlkeel.registration"
    PROMOTION_DECISION: Final = "mlkeel.promotion"
    # A registered-model tag: who may move the aliases now, and until when (a lease; see register's docstring).
    PROMOTION_LOCK: Final = "mlkeel.promotion_lock"


class RollbackTag:
    """Tags ``mlkeel rollback`` sets on both the demoted and the restored version (the latest rollback wins)."""

    BY: Final = "mlkeel.rollback.by"
    AT: Final = "mlkeel.rollback.at"
    REASON: Final = "mlkeel.rollback.reason"
    # ROLLBACK_DEMOTED (was champion) or ROLLBACK_RESTORED (champion again).
    ROLE: Final = "mlkeel.rollback.role"
    FROM_VERSION: Final = "mlkeel.rollback.from_version"
    TO_VERSION: Final = "mlkeel.rollback.to_version"


ROLLBACK_DEMOTED: Final = "demoted"
ROLLBACK_RESTORED: Final = "restored"


class RegistrationState:
    """Values of ``LineageTag.REGISTRATION_STATE``: a version counts as registered only once ``complete``."""

    PENDING: Final = "pending"
    COMPLETE: Final = "complete"


class GateRunMetric:
    """Metrics the gate logs on the challenger's MLflow run (the prefixes take the gate metric's name)."""

    BLESSED: Final = "gate_blessed"
    CHAMPION_PREFIX: Final = "gate_champion_"
    CHALLENGER_PREFIX: Final = "gate_challenger_"


class ServingLabel:
    """Labels and annotations on the Kubernetes objects the deploy stage manages."""

    APP: Final = "app.kubernetes.io/name"
    MANAGED_BY: Final = "app.kubernetes.io/managed-by"
    MODEL_NAME: Final = "mlkeel.io/model-name"
    MODEL_VERSION: Final = "mlkeel.io/model-version"
    # blue | green: the Service selects one slot; a canary's pods carry the slot they join.
    SLOT: Final = "mlkeel.io/slot"
    # stable | canary: keeps the Deployments' selectors apart.
    TRACK: Final = "mlkeel.io/track"
    # Annotations.
    MODEL: Final = "mlkeel.io/model-uri"
    SETTINGS_DIGEST: Final = "mlkeel.io/settings-digest"
    ACTIVE_DEPLOYMENT: Final = "mlkeel.io/active-deployment"


class FairnessRunMetric:
    """Metrics the fairness stage logs on the model's MLflow run (``fairness_<column>_<difference>``)."""

    PASSED: Final = "fairness_passed"
    PREFIX: Final = "fairness_"


class ImportanceRunMetric:
    """Metrics the explain stage logs on the model's MLflow run (``importance_<feature>``)."""

    PREFIX: Final = "importance_"


# How ``mlkeel run ... --local`` runs each task (mlkeel.local.init_runner).
RUNNERS = ("warm", "subprocess", "docker")
DEFAULT_RUNNER = "warm"
RUNNER_HELP = (
    "warm: this Python environment, each task forked from a process that imported the stages' libraries once; "
    "subprocess: this Python environment, a fresh interpreter per task; docker: each task in its stage image."
)
