"""Lineage and rollback on the MLflow registry: versions by data, what built a version, the champion moved back.

Everything here reads what train and register record on every version (``mlkeel.constants.LineageTag``), so it
works against any tracking URI: a local SQLite store, a file store or an ``mlflow server``.

Rollback writes in this order, so that ``champion`` always names an existing version and the record follows
the action:
    1. ``champion`` -> the restored version (``set_registered_model_alias`` reassigns an alias in one call);
    2. ``previous_champion`` -> the version rolled back from. A second ``mlkeel rollback`` therefore undoes the
       first, and the next registration moves ``previous_champion`` to the restored version, as for any
       champion it replaces. The demoted version keeps a ``mlkeel.rollback.role = demoted`` tag, so a reader
       of ``previous_champion`` can tell it was rolled back from rather than retired by a better model;
    3. who, when and why as tags on both versions (``mlkeel.constants.RollbackTag``).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlkeel.constants import (
    CHAMPION_ALIAS,
    ENV_TRACKING_URI,
    PREVIOUS_CHAMPION_ALIAS,
    ROLLBACK_DEMOTED,
    ROLLBACK_RESTORED,
    LineageTag,
    RollbackTag,
)
from mlkeel.errors import ParameterError, RegistryError

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

# Fingerprints are "sha256:<hex>"; anything else that could break out of a filter string is refused.
FINGERPRINT_PATTERN = re.compile(r"^[A-Za-z0-9:._-]+$")
# search_model_versions pages; MLflow's server caps a page at this many.
SEARCH_PAGE_SIZE = 1000
NOT_RECORDED = "(not recorded)"
ROLLBACK_PREFIX = RollbackTag.BY.rpartition(".")[0] + "."


@dataclass(frozen=True)
class VersionRecord:
    """One registered model version, as ``mlkeel lineage --data`` lists it.

    Attributes:
        model_name: The registered model.
        version: The version.
        aliases: Aliases it holds now (``champion``, ``previous_champion``...).
        created: When it was registered (UTC, ISO 8601).
        run_id: The training run.
        data_fingerprint: The data it was trained on.
    """

    model_name: str
    version: str
    aliases: list[str]
    created: str
    run_id: str
    data_fingerprint: str

    def to_dict(self) -> dict[str, Any]:
        """Return the record as a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class RollbackResult:
    """What ``rollback`` did.

    Attributes:
        model_name: The registered model.
        from_version: The champion before (now ``previous_champion``).
        to_version: The champion now.
        by: Who rolled back.
        at: When (UTC, ISO 8601).
        reason: Why ("" when not given).
        tags: The ``mlkeel.rollback.*`` tags set on both versions (besides the role).
    """

    model_name: str
    from_version: str
    to_version: str
    by: str
    at: str
    reason: str = ""
    tags: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the result as a JSON-ready dict."""
        return {**asdict(self), CHAMPION_ALIAS: self.to_version, PREVIOUS_CHAMPION_ALIAS: self.from_version}


def default_tracking_uri(tracking_uri: str = "") -> str:
    """The registry to read: the argument, else ``$MLFLOW_TRACKING_URI``, else the local store of ``mlkeel run``.

    Args:
        tracking_uri: Explicit URI, or "".

    Returns:
        The URI.

    Raises:
        RegistryError: nothing given and no local store (``.mlkeel/mlflow.db``) in the working directory.
    """
    from mlkeel.local import DEFAULT_WORKDIR

    resolved = tracking_uri.strip() or os.environ.get(ENV_TRACKING_URI, "").strip()
    if resolved:
        return resolved
    database = Path(DEFAULT_WORKDIR).resolve() / "mlflow.db"
    if not database.is_file():
        raise RegistryError(
            f"no MLflow registry: pass --mlflow-uri, set {ENV_TRACKING_URI}, or run where `mlkeel run` left "
            f"its local store ({database} does not exist)"
        )
    return f"sqlite:///{database}"


def open_registry(tracking_uri: str = "") -> tuple[MlflowClient, str]:
    """A registry client for ``default_tracking_uri(tracking_uri)``, and that URI."""
    from mlflow.tracking import MlflowClient

    resolved = default_tracking_uri(tracking_uri)
    return MlflowClient(tracking_uri=resolved, registry_uri=resolved), resolved


def _iso(timestamp_ms: int | None) -> str:
    if not timestamp_ms:
        return ""
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(timespec="seconds")


def _model_aliases(client: MlflowClient, model_name: str, tracking_uri: str) -> dict[str, str]:
    """Alias -> version of ``model_name``; RegistryError naming the model when there is no such model."""
    from mlkeel.components.gate.logic import is_not_found, registry_call

    try:
        registered = registry_call(
            tracking_uri, f"read registered model {model_name!r}", lambda: client.get_registered_model(model_name)
        )
    except RegistryError as error:
        if is_not_found(error):
            raise RegistryError(f"no registered model named {model_name!r} in the registry") from error
        raise
    return {alias: str(version) for alias, version in (registered.aliases or {}).items()}


def _aliases_of(aliases: dict[str, str], version: str) -> list[str]:
    return sorted(alias for alias, held in aliases.items() if held == str(version))


def _search_versions(client: MlflowClient, filter_string: str, tracking_uri: str) -> list[ModelVersion]:
    from mlkeel.components.gate.logic import registry_call

    found: list[ModelVersion] = []
    token = None
    while True:
        page = registry_call(
            tracking_uri,
            f"search model versions ({filter_string or 'all'})",
            lambda token=token: client.search_model_versions(
                filter_string or None, max_results=SEARCH_PAGE_SIZE, page_token=token
            ),
        )
        found.extend(page)
        token = getattr(page, "token", None)
        if not token:
            return found


def versions_trained_on(fingerprint: str, tracking_uri: str = "") -> list[VersionRecord]:
    """Every registered version, across registered models, whose lineage names data ``fingerprint``.

    Uses the registry's tag filter; a backend that cannot filter by tag is scanned instead.

    Args:
        fingerprint: A data fingerprint, as ingest computes it (``sha256:...``).
        tracking_uri: See ``default_tracking_uri``.

    Returns:
        The versions, by model name then version number.

    Raises:
        ParameterError: an empty fingerprint or one with quotes or spaces.
        RegistryError: the registry cannot be reached.
    """
    fingerprint = fingerprint.strip()
    if not fingerprint or not FINGERPRINT_PATTERN.match(fingerprint):
        raise ParameterError(f"--data {fingerprint!r}: expected a data fingerprint such as sha256:75d1e84...")
    client, resolved = open_registry(tracking_uri)
    try:
        versions = _search_versions(client, f"tags.`{LineageTag.DATA_FINGERPRINT}` = '{fingerprint}'", resolved)
    except RegistryError:
        versions = [
            version
            for version in _search_versions(client, "", resolved)
            if (version.tags or {}).get(LineageTag.DATA_FINGERPRINT) == fingerprint
        ]
    aliases: dict[str, dict[str, str]] = {}
    records = []
    for version in versions:
        if version.name not in aliases:
            aliases[version.name] = _model_aliases(client, version.name, resolved)
        records.append(
            VersionRecord(
                model_name=version.name,
                version=str(version.version),
                aliases=_aliases_of(aliases[version.name], str(version.version)),
                created=_iso(version.creation_timestamp),
                run_id=version.run_id or "",
                data_fingerprint=fingerprint,
            )
        )
    return sorted(records, key=lambda record: (record.model_name, int(record.version)))


def parse_model_reference(reference: str) -> tuple[str, str]:
    """Split ``NAME/VERSION`` or ``NAME@ALIAS`` (``models:/`` prefix allowed).

    Args:
        reference: The reference.

    Returns:
        ``(name, version)`` or ``(name, "@alias")``.

    Raises:
        ParameterError: neither form.
    """
    text = reference.strip().removeprefix("models:/")
    name, at, alias = text.rpartition("@")
    if at and name and alias:
        return name, f"@{alias}"
    name, slash, version = text.rpartition("/")
    if not slash or not name or not version.isdigit():
        raise ParameterError(f"--model {reference!r}: expected NAME/VERSION (e.g. churn/3) or NAME@ALIAS")
    return name, version


def _json_tag(text: str) -> dict[str, Any]:
    try:
        parsed = json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {"(unparsed)": text}
    return parsed if isinstance(parsed, dict) else {"(unparsed)": text}


def lineage_from_tags(tags: dict[str, str]) -> dict[str, Any]:
    """The lineage facts of a version, from its tags ("" where a fact was not recorded).

    Args:
        tags: The version's tags.

    Returns:
        data_fingerprint, schema_hash, target_column, positive_label, git_commit, mlkeel_version, images
        (stage -> reference), pipeline_name, pipeline_run, library_versions (library -> version), gate_metric,
        gate_score, blessing_reason, replaced_version, model_card, features (the training's one-line feature
        summary).
    """
    return {
        "data_fingerprint": tags.get(LineageTag.DATA_FINGERPRINT, ""),
        "schema_hash": tags.get(LineageTag.SCHEMA_HASH, ""),
        "target_column": tags.get(LineageTag.TARGET_COLUMN, ""),
        "positive_label": tags.get(LineageTag.POSITIVE_LABEL, ""),
        "git_commit": tags.get(LineageTag.GIT_COMMIT, ""),
        "mlkeel_version": tags.get(LineageTag.MLKEEL_VERSION, ""),
        "images": _json_tag(tags.get(LineageTag.IMAGES, "")),
        "pipeline_name": tags.get(LineageTag.PIPELINE_NAME, ""),
        "pipeline_run": tags.get(LineageTag.PIPELINE_RUN, ""),
        "library_versions": _json_tag(tags.get(LineageTag.LIBRARY_VERSIONS, "")),
        "gate_metric": tags.get(LineageTag.GATE_METRIC, ""),
        "gate_score": tags.get(LineageTag.GATE_SCORE, ""),
        "blessing_reason": tags.get(LineageTag.BLESSING_REASON, ""),
        "replaced_version": tags.get(LineageTag.REPLACED_VERSION, ""),
        "model_card": tags.get(LineageTag.MODEL_CARD, ""),
        "features": tags.get(LineageTag.FEATURES, ""),
    }


def resolve_version(client: MlflowClient, model_name: str, version: str, tracking_uri: str) -> ModelVersion:
    """Read one version (``version`` may be ``@alias``), with a clear error when it does not exist.

    Args:
        client: A registry client.
        model_name: The registered model.
        version: A version number or ``@alias``.
        tracking_uri: The resolved URI, for messages.

    Returns:
        The ``ModelVersion``.

    Raises:
        RegistryError: no such model, version or alias; the registry cannot be reached.
    """
    from mlkeel.components.gate.logic import is_not_found, registry_call

    aliases = _model_aliases(client, model_name, tracking_uri)
    if version.startswith("@"):
        if version[1:] not in aliases:
            raise RegistryError(f"registered model {model_name!r} has no alias {version[1:]!r}")
        version = aliases[version[1:]]
    try:
        return registry_call(
            tracking_uri,
            f"read version {version} of {model_name!r}",
            lambda: client.get_model_version(model_name, version),
        )
    except RegistryError as error:
        if is_not_found(error):
            raise RegistryError(f"registered model {model_name!r} has no version {version}") from error
        raise


def version_lineage(reference: str, tracking_uri: str = "") -> dict[str, Any]:
    """Everything recorded about one version: lineage tags, aliases, training run and its metrics, rollbacks.

    Args:
        reference: ``NAME/VERSION`` or ``NAME@ALIAS``.
        tracking_uri: See ``default_tracking_uri``.

    Returns:
        model_name, version, aliases, created, run_id, source, the ``lineage_from_tags`` facts, metrics (the
        training run's: ``holdout_*``, ``train_*``, ``gate_*``) and rollback (the ``mlkeel.rollback.*`` tags).

    Raises:
        ParameterError: a malformed reference.
        RegistryError: no such model or version; the registry cannot be reached.
    """
    from mlkeel.components.gate.logic import registry_call

    model_name, version = parse_model_reference(reference)
    client, resolved = open_registry(tracking_uri)
    entity = resolve_version(client, model_name, version, resolved)
    tags = dict(entity.tags or {})
    metrics: dict[str, float] = {}
    if entity.run_id:
        try:
            run = registry_call(resolved, f"read run {entity.run_id}", lambda: client.get_run(entity.run_id))
            metrics = dict(sorted(run.data.metrics.items()))
        except RegistryError:
            metrics = {}  # the run was deleted: the version's own tags still tell its lineage
    aliases = _model_aliases(client, model_name, resolved)
    return {
        "model_name": model_name,
        "version": str(entity.version),
        "aliases": _aliases_of(aliases, str(entity.version)),
        "created": _iso(entity.creation_timestamp),
        "run_id": entity.run_id or "",
        "source": entity.source or "",
        **lineage_from_tags(tags),
        "metrics": metrics,
        "rollback": {
            name.rpartition(".")[2]: value for name, value in tags.items() if name.startswith("mlkeel.rollback.")
        },
    }


def current_user() -> str:
    """Who runs this: ``getpass.getuser()`` (LOGNAME, USER, ... then the password database), else ``$USER``."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "") or "unknown"


def rollback(
    model_name: str,
    tracking_uri: str = "",
    reason: str = "",
    to_version: str = "",
    by: str = "",
    at: str = "",
) -> RollbackResult:
    """Move ``champion`` back to ``previous_champion`` (or ``to_version``) and record who, when and why.

    See the module docstring for the order of writes and why ``previous_champion`` then names the version
    rolled back from.

    Args:
        model_name: The registered model.
        tracking_uri: See ``default_tracking_uri``.
        reason: Why, recorded as a tag on both versions.
        to_version: The version to restore ("" = the ``previous_champion`` alias).
        by: Who ("" = ``current_user()``).
        at: When ("" = now, UTC ISO 8601).

    Returns:
        A ``RollbackResult``.

    Raises:
        RegistryError: no such model, no champion, no previous_champion (and no ``to_version``), no such
            version, or the registry refuses a write.
        ParameterError: ``to_version`` is not a number or is the champion already.
    """
    from mlkeel.components.gate.logic import registry_call
    from mlkeel.components.register.logic import promotion_lock

    client, resolved = open_registry(tracking_uri)
    aliases = _model_aliases(client, model_name, resolved)
    current = aliases.get(CHAMPION_ALIAS)
    if not current:
        raise RegistryError(f"registered model {model_name!r} has no {CHAMPION_ALIAS!r} alias: nothing to roll back")
    target = to_version.strip()
    if target and not target.isdigit():
        raise ParameterError(f"--to {to_version!r}: expected a version number")
    if not target:
        target = aliases.get(PREVIOUS_CHAMPION_ALIAS, "")
        if not target:
            raise RegistryError(
                f"registered model {model_name!r} has no {PREVIOUS_CHAMPION_ALIAS!r} alias (its champion, version "
                f"{current}, replaced no other version): name the version to restore with --to VERSION"
            )
    if target == current:
        raise ParameterError(f"version {target} of {model_name!r} is the {CHAMPION_ALIAS} already")
    resolve_version(client, model_name, target, resolved)  # exists, before any write

    record = {
        RollbackTag.BY: by.strip() or current_user(),
        RollbackTag.AT: at or datetime.now(UTC).isoformat(timespec="seconds"),
        RollbackTag.REASON: reason,
        RollbackTag.FROM_VERSION: current,
        RollbackTag.TO_VERSION: target,
    }
    # Under register's promotion lock, so a rollback and a promotion never interleave their alias writes.
    with promotion_lock(client, resolved, model_name):
        now = _model_aliases(client, model_name, resolved).get(CHAMPION_ALIAS)
        if now != current:
            raise RegistryError(
                f"registered model {model_name!r}: {CHAMPION_ALIAS!r} moved from version {current} to {now} while "
                "rolling back; nothing changed, look again and rerun"
            )
        registry_call(
            resolved,
            f"set alias {CHAMPION_ALIAS!r} to version {target}",
            lambda: client.set_registered_model_alias(model_name, CHAMPION_ALIAS, target),
        )
        registry_call(
            resolved,
            f"set alias {PREVIOUS_CHAMPION_ALIAS!r} to version {current}",
            lambda: client.set_registered_model_alias(model_name, PREVIOUS_CHAMPION_ALIAS, current),
        )
    for version, role in ((current, ROLLBACK_DEMOTED), (target, ROLLBACK_RESTORED)):
        for name, value in {**record, RollbackTag.ROLE: role}.items():
            registry_call(
                resolved,
                f"tag version {version} with {name}",
                lambda version=version, name=name, value=value: client.set_model_version_tag(
                    model_name, version, name, value
                ),
            )
    return RollbackResult(
        model_name=model_name,
        from_version=current,
        to_version=target,
        by=record[RollbackTag.BY],
        at=record[RollbackTag.AT],
        reason=reason,
        tags=record,
    )
