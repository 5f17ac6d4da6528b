"""Champion: resolve ``models:/NAME@champion`` to its version and fetch its lineage data for monitoring.

The training run of every version keeps ``data/schema.json`` (the validated schema) and
``data/reference.parquet`` (a sample of the training rows); monitoring validates and drift-checks a new batch
against exactly those.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlkeel.constants import (
    CHAMPION_ALIAS,
    REFERENCE_ARTIFACT_FILE,
    RUN_DATA_ARTIFACT_DIR,
    SCHEMA_ARTIFACT_FILE,
    LineageTag,
)
from mlkeel.errors import RegistryError
from mlkeel.storage import copy_file_atomic


@dataclass(frozen=True)
class ChampionLineage:
    """The champion version and where its lineage came from.

    Attributes:
        model_name: Registered model name.
        version: The version under the alias.
        model_uri: ``models:/NAME/VERSION`` (the exact version, not the moving alias).
        run_id: The training run of that version.
        data_fingerprint: Fingerprint of the data it was trained on.
        schema_hash: Hash of its validated schema.
        target_column: Its label column.
        positive_label: Its positive label.
    """

    model_name: str
    version: str
    model_uri: str
    run_id: str
    data_fingerprint: str
    schema_hash: str
    target_column: str
    positive_label: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (also the KFP artifact metadata)."""
        return asdict(self)


def resolve_champion(model_name: str, tracking_uri: str = "", alias: str = CHAMPION_ALIAS) -> ChampionLineage:
    """Find the version under ``alias`` and read its lineage tags.

    Args:
        model_name: Registered model name.
        tracking_uri: MLflow URI ("" = ``$MLFLOW_TRACKING_URI``).
        alias: The alias to resolve.

    Returns:
        The ``ChampionLineage``.

    Raises:
        RegistryError: no such model or alias, or the registry is unreachable.
    """
    from mlflow.exceptions import MlflowException

    from mlkeel.storage import display_uri
    from mlkeel.tracking import connect, resolve_tracking_uri

    client = connect(tracking_uri)
    try:
        version = client.get_model_version_by_alias(model_name, alias)
    except MlflowException as error:
        raise RegistryError(
            f"no version of {model_name!r} has alias {alias!r} in {display_uri(resolve_tracking_uri(tracking_uri))}"
            f": train and register a model first ({error.error_code})"
        ) from error
    tags = version.tags or {}
    return ChampionLineage(
        model_name=model_name,
        version=str(version.version),
        model_uri=f"models:/{model_name}/{version.version}",
        run_id=str(version.run_id or ""),
        data_fingerprint=tags.get(LineageTag.DATA_FINGERPRINT, ""),
        schema_hash=tags.get(LineageTag.SCHEMA_HASH, ""),
        target_column=tags.get(LineageTag.TARGET_COLUMN, ""),
        positive_label=tags.get(LineageTag.POSITIVE_LABEL, ""),
    )


def fetch_champion(
    model_name: str,
    reference_path: str,
    schema_path: str,
    tracking_uri: str = "",
    alias: str = CHAMPION_ALIAS,
) -> ChampionLineage:
    """Resolve the champion and copy its reference data and schema to the given paths.

    Args:
        model_name: Registered model name.
        reference_path: Where to write the reference rows (Parquet).
        schema_path: Where to write the schema (JSON).
        tracking_uri: MLflow URI ("" = ``$MLFLOW_TRACKING_URI``).
        alias: The alias to resolve.

    Returns:
        The ``ChampionLineage``.

    Raises:
        RegistryError: as ``resolve_champion``, or the champion's run lacks its ``data/`` lineage artifacts.
    """
    import mlflow
    from mlflow.exceptions import MlflowException

    from mlkeel.tracking import resolve_tracking_uri

    lineage = resolve_champion(model_name, tracking_uri, alias)
    with tempfile.TemporaryDirectory(prefix="mlkeel-champion-") as folder:
        try:
            downloaded = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=lineage.run_id,
                    artifact_path=RUN_DATA_ARTIFACT_DIR,
                    dst_path=folder,
                    tracking_uri=resolve_tracking_uri(tracking_uri),
                )
            )
        except (MlflowException, OSError) as error:
            raise RegistryError(
                f"{model_name} version {lineage.version}: cannot fetch its training data lineage from run "
                f"{lineage.run_id}: {error}"
            ) from error
        for name, destination in ((REFERENCE_ARTIFACT_FILE, reference_path), (SCHEMA_ARTIFACT_FILE, schema_path)):
            if not (downloaded / name).is_file():
                raise RegistryError(
                    f"{model_name} version {lineage.version}: its run {lineage.run_id} has no "
                    f"{RUN_DATA_ARTIFACT_DIR}/{name} (trained by an mlkeel older than monitoring?)"
                )
            copy_file_atomic(downloaded / name, destination)
    return lineage
