"""MLflow connection and lineage facts shared by train, gate and register."""

from __future__ import annotations

import json
import os
import subprocess
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from mlkeel import __version__
from mlkeel.constants import ENV_GIT_COMMIT, ENV_IMAGE_REF, ENV_TRACKING_URI
from mlkeel.errors import ParameterError

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

# Libraries whose versions are recorded on every registered model version.
LINEAGE_LIBRARIES = ("mlkeel", "scikit-learn", "pandas", "numpy", "pyarrow", "mlflow-skinny", "mlflow", "kfp")


def resolve_tracking_uri(tracking_uri: str = "") -> str:
    """Return the MLflow tracking URI to use: the argument, else ``$MLFLOW_TRACKING_URI``.

    Keeping the URI out of pipeline parameters on a cluster (set it from a Secret as an environment variable)
    keeps credentials out of compiled YAML.

    Args:
        tracking_uri: Explicit URI, or "" to read the environment.

    Returns:
        The URI.

    Raises:
        ParameterError: neither is set.
    """
    resolved = tracking_uri.strip() or os.environ.get(ENV_TRACKING_URI, "").strip()
    if not resolved:
        raise ParameterError(
            "no MLflow tracking URI: pass mlflow_tracking_uri or set the MLFLOW_TRACKING_URI environment variable"
        )
    return resolved


def connect(tracking_uri: str = "") -> MlflowClient:
    """Point mlflow (tracking and registry) at ``tracking_uri`` and return a client for it.

    Args:
        tracking_uri: See ``resolve_tracking_uri``.

    Returns:
        An ``MlflowClient`` bound to that URI.
    """
    import mlflow
    from mlflow.tracking import MlflowClient

    resolved = resolve_tracking_uri(tracking_uri)
    mlflow.set_tracking_uri(resolved)
    mlflow.set_registry_uri(resolved)
    return MlflowClient(tracking_uri=resolved, registry_uri=resolved)


def git_commit() -> str:
    """The git commit of the mlkeel code that runs: ``$MLKEEL_GIT_COMMIT`` (set in images) or ``git rev-parse``.

    Returns:
        A commit SHA, or "unknown" outside a git checkout without the variable.
    """
    from_environment = os.environ.get(ENV_GIT_COMMIT, "").strip()
    if from_environment:
        return from_environment
    try:
        completed = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return completed.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def library_versions() -> str:
    """Installed versions of the libraries that shape a model, as compact JSON (fits an MLflow tag).

    Returns:
        For example ``{"kfp": "2.17.0", "mlkeel": "0.1.0", ...}``.
    """
    versions = {}
    for library in LINEAGE_LIBRARIES:
        try:
            versions[library] = metadata.version(library)
        except metadata.PackageNotFoundError:
            continue
    versions["mlkeel"] = __version__
    return json.dumps(versions, sort_keys=True, separators=(",", ":"))


def image_lineage(recorded: str, stage: str) -> str:
    """Add the image this process runs in (``$MLKEEL_IMAGE``, set by every stage's Dockerfile) to a record.

    A container cannot know its own registry digest; the reference it was built as, with the git commit in
    its tag and in ``mlkeel.git_commit``, names the exact build.

    Args:
        recorded: JSON ``{stage: image}`` recorded by an earlier stage ("" = none), e.g. the training run's.
        stage: This stage's name.

    Returns:
        Compact JSON ``{stage: image}``; unchanged (``{}`` at least) outside an image.
    """
    try:
        images = json.loads(recorded) if recorded else {}
    except json.JSONDecodeError:
        images = {}
    if not isinstance(images, dict):
        images = {}
    reference = os.environ.get(ENV_IMAGE_REF, "").strip()
    if reference:
        images[stage] = reference
    return json.dumps(images, sort_keys=True, separators=(",", ":"))


def metric_key(text: str) -> str:
    """``text`` reduced to the characters MLflow accepts in a metric name (others become ``_``).

    Args:
        text: A column or feature name.

    Returns:
        The name, safe as (part of) an MLflow metric key.
    """
    return "".join(char if char.isalnum() or char in "_-." else "_" for char in text)


def log_on_run(
    run_id: str,
    tracking_uri: str = "",
    metrics: dict[str, float] | None = None,
    files: dict[str, str] | None = None,
) -> None:
    """Add metrics and files to a finished run (the model's training run), files under ``governance/``.

    Args:
        run_id: The MLflow run.
        tracking_uri: MLflow tracking URI ("" = ``$MLFLOW_TRACKING_URI``).
        metrics: Metric name -> value.
        files: Name in the run -> local file to copy there (KFP artifact paths have no useful name).
    """
    import shutil
    import tempfile
    import time

    from mlflow.entities import Metric

    from mlkeel.constants import RUN_GOVERNANCE_ARTIFACT_DIR

    client = connect(tracking_uri)
    if metrics:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(name, float(value), now, 0) for name, value in metrics.items()])
    if files:
        with tempfile.TemporaryDirectory(prefix="mlkeel-governance-") as folder:
            for name, source in files.items():
                shutil.copyfile(source, Path(folder) / name)
            client.log_artifacts(run_id, folder, artifact_path=RUN_GOVERNANCE_ARTIFACT_DIR)
