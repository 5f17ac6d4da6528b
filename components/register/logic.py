"""Register: add a blessed model to the MLflow model registry with its lineage, and make it the champion.

Order of writes, so that no reader ever sees a version without its lineage or a model without a champion:
    1. create the version with every lineage tag in the same call (``mlflow.register_model(..., tags=...)``);
    2. point ``previous_champion`` at the old champion;
    3. point ``champion`` at the new version (a crash between 2 and 3 leaves the old champion in place);
    4. tag the new version with the version it replaced.

An unblessed model is refused before the registry is touched, with the gate's reason in the error and the log.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlkeel import __version__
from mlkeel.components.gate.logic import Blessing, champion_version, registry_call
from mlkeel.constants import CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS, ArtifactMetadata, LineageTag
from mlkeel.errors import DataError, NotBlessedError, ParameterError
from mlkeel.storage import display_uri

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)
# The refusal is logged for pipeline logs (KFP's executor configures logging); a command line without logging
# set up prints the error once, through ``reports_user_errors``, instead of Python's last-resort handler too.
logger.addHandler(logging.NullHandler())

# A logged model's URI (MLflow 3 LoggedModel): models:/m-<hex id>.
LOGGED_MODEL_URI = re.compile(r"^models:/(m-[0-9a-f]+)$")
# Tags copied from the training run onto the version.
RUN_LINEAGE_TAGS = (
    LineageTag.DATA_FINGERPRINT,
    LineageTag.SCHEMA_HASH,
    LineageTag.TARGET_COLUMN,
    LineageTag.POSITIVE_LABEL,
)


@dataclass(frozen=True)
class RegistrationResult:
    """What register did.

    Attributes:
        model_name: The registered model.
        version: The new version.
        champion_version: The version under the ``champion`` alias afterwards (the new one).
        previous_champion_version: The champion it replaced (now ``previous_champion``); None for the first.
        tags: The lineage tags set on the new version.
    """

    model_name: str
    version: str
    champion_version: str
    previous_champion_version: str | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def model_uri(self) -> str:
        """``models:/NAME/VERSION`` of the new version."""
        return f"models:/{self.model_name}/{self.version}"

    @property
    def aliases(self) -> list[str]:
        """The aliases the new version holds."""
        return [CHAMPION_ALIAS]

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-serialisable dict (what the CLI prints and the artifact file holds)."""
        return {
            "model_name": self.model_name,
            "version": self.version,
            "model_uri": self.model_uri,
            "champion_version": self.champion_version,
            "previous_champion_version": self.previous_champion_version,
            "aliases": self.aliases,
            "tags": self.tags,
        }

    @property
    def metadata(self) -> dict[str, Any]:
        """KFP artifact metadata of the registered model."""
        return {
            ArtifactMetadata.REGISTERED_MODEL_NAME: self.model_name,
            ArtifactMetadata.REGISTERED_MODEL_VERSION: self.version,
            ArtifactMetadata.REGISTERED_MODEL_ALIASES: self.aliases,
            "previous_champion_version": self.previous_champion_version,
        }


def logged_model_run_id(client: MlflowClient, model_uri: str, tracking_uri: str) -> str:
    """Find the run that logged the model at ``model_uri`` (a ``models:/m-...`` or ``runs:/`` URI).

    Args:
        client: A client bound to the tracking server.
        model_uri: The model's URI.
        tracking_uri: The resolved URI, for messages.

    Returns:
        The run id, or "" for other URIs (a local directory, ``models:/NAME/VERSION``).

    Raises:
        RegistryError: the logged model cannot be read.
    """
    if model_uri.startswith("runs:/"):
        return model_uri[len("runs:/") :].split("/", 1)[0]
    match = LOGGED_MODEL_URI.match(model_uri)
    if not match:
        return ""
    logged = registry_call(
        tracking_uri, f"read logged model {match.group(1)}", lambda: client.get_logged_model(match.group(1))
    )
    return logged.source_run_id or ""


def lineage_tags(
    run_tags: dict[str, str],
    blessing: Blessing,
    data_fingerprint: str = "",
    pipeline_name: str = "",
    pipeline_run: str = "",
) -> dict[str, str]:
    """Every lineage tag of a new version ("" where a fact is unknown, so every key is always present).

    Args:
        run_tags: Tags of the training run (data fingerprint, schema hash, target, positive label).
        blessing: The gate's decision (metric, score, reason).
        data_fingerprint: Fingerprint of the ingested data; must match the run's when both are set.
        pipeline_name: The KFP pipeline (job) name.
        pipeline_run: The KFP pipeline run (job) id.

    Returns:
        Tag name -> value.

    Raises:
        DataError: ``data_fingerprint`` differs from the one the training run recorded.
    """
    from mlkeel.tracking import git_commit, image_lineage, library_versions

    tags = {name: run_tags.get(name, "") for name in RUN_LINEAGE_TAGS}
    recorded = tags[LineageTag.DATA_FINGERPRINT]
    if data_fingerprint and recorded and data_fingerprint != recorded:
        raise DataError(
            f"data_fingerprint {data_fingerprint} differs from {recorded}, which the training run recorded: "
            "the model was trained on other data"
        )
    tags[LineageTag.DATA_FINGERPRINT] = data_fingerprint or recorded
    tags.update(
        {
            LineageTag.GIT_COMMIT: git_commit(),
            LineageTag.MLKEEL_VERSION: __version__,
            LineageTag.LIBRARY_VERSIONS: library_versions(),
            LineageTag.IMAGES: image_lineage(run_tags.get(LineageTag.IMAGES, ""), "register"),
            LineageTag.PIPELINE_NAME: pipeline_name,
            LineageTag.PIPELINE_RUN: pipeline_run,
            LineageTag.GATE_METRIC: blessing.metric,
            LineageTag.GATE_SCORE: repr(blessing.challenger_score),
            LineageTag.BLESSING_REASON: blessing.reason,
        }
    )
    return tags


def register(
    model_uri: str,
    blessing: Blessing,
    model_name: str,
    tracking_uri: str = "",
    mlflow_run_id: str = "",
    data_fingerprint: str = "",
    pipeline_name: str = "",
    pipeline_run: str = "",
) -> RegistrationResult:
    """Register the blessed model at ``model_uri`` as a new version of ``model_name``; make it the champion.

    Args:
        model_uri: The model: a LoggedModel ``models:/m-...`` URI (what train records), ``runs:/...``, a path.
        blessing: The gate's decision; an unblessed model is refused.
        model_name: Registered model name (created when missing).
        tracking_uri: MLflow tracking/registry URI ("" = ``$MLFLOW_TRACKING_URI``).
        mlflow_run_id: The training run whose lineage tags are copied; "" = the run that logged ``model_uri``.
        data_fingerprint: Fingerprint of the ingested data ("" = the training run's).
        pipeline_name: KFP pipeline (job) name, recorded as a tag.
        pipeline_run: KFP pipeline run (job) id, recorded as a tag.

    Returns:
        A ``RegistrationResult``.

    Raises:
        NotBlessedError: the gate did not bless the model (the message holds its reason).
        ParameterError: empty model URI or name; no tracking URI.
        DataError: ``data_fingerprint`` contradicts the training run.
        RegistryError: the registry cannot be reached or refuses a write.
    """
    from mlkeel.tracking import connect, resolve_tracking_uri

    if not model_uri.strip():
        raise ParameterError("model_uri is empty: pass the URI of the model to register")
    if not model_name.strip():
        raise ParameterError("model_name is empty: name the registered model")
    if not blessing.blessed:
        logger.error("register: refusing to register %s as %r: %s", display_uri(model_uri), model_name, blessing.reason)
        raise NotBlessedError(
            f"{display_uri(model_uri)} is not registered as {model_name!r}; the gate's decision: {blessing.reason}"
        )
    resolved_uri = resolve_tracking_uri(tracking_uri)
    client = connect(resolved_uri)

    run_id = mlflow_run_id or logged_model_run_id(client, model_uri, resolved_uri)
    run_tags: dict[str, str] = {}
    if run_id:
        run = registry_call(resolved_uri, f"read training run {run_id}", lambda: client.get_run(run_id))
        run_tags = dict(run.data.tags)
    else:
        logger.warning("register: no training run for %s: its lineage tags are recorded empty", model_uri)
    tags = lineage_tags(run_tags, blessing, data_fingerprint, pipeline_name, pipeline_run)
    previous, _ = champion_version(client, model_name, resolved_uri)

    created = registry_call(
        resolved_uri,
        f"register {display_uri(model_uri)} as {model_name!r}",
        lambda: _register_model(model_uri, model_name, tags),
    )
    version = str(created.version)
    if previous is not None:
        registry_call(
            resolved_uri,
            f"set alias {PREVIOUS_CHAMPION_ALIAS!r} to version {previous}",
            lambda: client.set_registered_model_alias(model_name, PREVIOUS_CHAMPION_ALIAS, previous),
        )
    registry_call(
        resolved_uri,
        f"set alias {CHAMPION_ALIAS!r} to version {version}",
        lambda: client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version),
    )
    if previous is not None:
        registry_call(
            resolved_uri,
            f"tag version {version} with the version it replaced",
            lambda: client.set_model_version_tag(model_name, version, LineageTag.REPLACED_VERSION, previous),
        )
        tags[LineageTag.REPLACED_VERSION] = previous
    logger.info(
        "register: %s version %s is the %s%s",
        model_name,
        version,
        CHAMPION_ALIAS,
        f" (replacing version {previous}, now {PREVIOUS_CHAMPION_ALIAS})" if previous else " (first version)",
    )
    return RegistrationResult(
        model_name=model_name,
        version=version,
        champion_version=version,
        previous_champion_version=previous,
        tags=tags,
    )


def _register_model(model_uri: str, model_name: str, tags: dict[str, str]) -> Any:
    """Create the registered model if missing and a version with ``tags`` in one create call.

    ``mlflow.register_model`` is MLflow 3's path for a LoggedModel ``models:/m-...`` URI: the registry stores
    the logged model's artifact location and source run, and the logged model is linked to the new version.
    """
    import mlflow

    return mlflow.register_model(model_uri, model_name, tags=tags)
