"""Register: add a blessed model to the MLflow model registry with its lineage, and make it the champion.

Order of writes, so that no reader ever sees a version without its lineage or an alias on a missing version:
    1. find the version this registration already made (same ``mlkeel.registration_key`` tag: a rerun after a
       crash, or the same data + code + training parameters registered again), else create it with every
       lineage tag and ``mlkeel.registration=pending`` in the same call;
    2. take the promotion lock (a registered-model tag with a lease), re-read the champion;
    3. point ``previous_champion`` at the old champion, then ``champion`` at the new version (a crash between
       the two leaves the old champion in place), tag the version with the version it replaced;
    4. record the decision (``mlkeel.promotion``) on the version and the training run, then tag the version
       ``mlkeel.registration=complete`` last, and release the lock.

Behaviour a user can rely on:
    - **Failures**: every registry call is retried with exponential backoff on transient errors (connection
      refused, 5xx); a 4xx fails at once. If the registry stays away, the step fails; it may leave a *pending*
      version, which holds no alias and which no stage reads. Rerunning finishes that same version (no second
      version is created).
    - **Idempotent re-registration**: the registration key is a hash of the data fingerprint, the git commit
      of the training code and the training run's parameters (and the target and schema). Registering the same
      key again returns the existing version and creates no new one; when it is already the champion nothing
      moves. When the commit is unknown or ``-dirty`` the code is not identified, so the model URI joins the
      key and every registration makes a new version.
    - **Rollbacks stick**: a version ``mlkeel rollback`` demoted is not promoted again by a retraining that
      gives back that same registration (same key); the step fails and says how to restore it on purpose
      (``mlkeel rollback NAME --to VERSION``) or to retrain on other data or parameters.
    - **Races** (MLflow has no compare-and-set): aliases move only under the promotion lock, taken by writing
      the tag, waiting ``LOCK_SETTLE_S`` and reading it back (the last writer holds it). Under the lock the
      champion is re-read: if it is no longer the one the gate compared against, the blessing is stale, the
      version stays registered but is not promoted, the decision is recorded and the step fails (rerun the
      gate). A blessing made without a champion (the first model) compared against nothing, so it promotes over
      whatever champion there is by then, still one at a time under the lock. Guarantee: exactly one champion
      and a ``previous_champion`` that matches the order of promotion, as long as no registrant stalls for more
      than ``LOCK_SETTLE_S`` between reading and writing the lock tag and the hosts' clocks agree within the
      lease; a crashed holder blocks promotions for at most the lease.

An unblessed model is refused before the registry is touched, with the gate's reason in the error and the log.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from mlkeel import __version__
from mlkeel.components.gate.logic import Blessing, champion_version, registry_call
from mlkeel.constants import (
    CHAMPION_ALIAS,
    PREVIOUS_CHAMPION_ALIAS,
    ROLLBACK_DEMOTED,
    ArtifactMetadata,
    LineageTag,
    RegistrationState,
    RollbackTag,
)
from mlkeel.errors import DataError, NotBlessedError, ParameterError, RegistryError
from mlkeel.retry import RetryPolicy, call_with_retries
from mlkeel.storage import display_uri

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)
# The refusal is logged for pipeline logs (KFP's executor configures logging); a command line without logging
# set up prints the error once, through ``reports_user_errors``, instead of Python's last-resort handler too.
logger.addHandler(logging.NullHandler())

T = TypeVar("T")

# Registry calls: 4 attempts, waits 1 s, 2 s, 4 s (on top of MLflow's own HTTP retries).
REGISTRY_RETRY_POLICY = RetryPolicy(attempts=4, initial_delay_s=1.0, max_delay_s=8.0)
# Promotion lock: the lease outlasts any promotion (a few calls); the settle time outlasts the gap between a
# competitor's read and its write of the tag (one HTTP round trip).
LOCK_LEASE_S = 30.0
LOCK_SETTLE_S = 1.0
LOCK_WAIT_S = 120.0
LOCK_POLL_S = 0.3

# A logged model's URI (MLflow 3 LoggedModel): models:/m-<hex id>.
LOGGED_MODEL_URI = re.compile(r"^models:/(m-[0-9a-f]+)$")
# Tags copied from the training run onto the version.
RUN_LINEAGE_TAGS = (
    LineageTag.DATA_FINGERPRINT,
    LineageTag.SCHEMA_HASH,
    LineageTag.TARGET_COLUMN,
    LineageTag.POSITIVE_LABEL,
    LineageTag.DECISION_THRESHOLD,
    LineageTag.FEATURES,
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


def registration_key(model_name: str, tags: dict[str, str], run_params: dict[str, str], model_uri: str) -> str:
    """The identity of a registration: same data, code and training parameters give the same key.

    Args:
        model_name: The registered model.
        tags: The lineage tags (data fingerprint, schema hash, target, positive label, git commit).
        run_params: The training run's parameters (estimator, hyperparameters, feature columns).
        model_uri: The model; part of the key only when the code is not identified (commit unknown or dirty).

    Returns:
        ``sha256:<hex>``.
    """
    commit = tags.get(LineageTag.GIT_COMMIT, "")
    identity: dict[str, Any] = {
        "model_name": model_name,
        "lineage": {name: tags.get(name, "") for name in (*RUN_LINEAGE_TAGS, LineageTag.GIT_COMMIT)},
        "params": dict(sorted(run_params.items())),
    }
    if not commit or commit == "unknown" or commit.endswith("-dirty") or not tags.get(LineageTag.DATA_FINGERPRINT):
        identity["model_uri"] = model_uri
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()
    return f"sha256:{digest}"


def is_transient_registry_error(error: BaseException) -> bool:
    """Whether a registry failure may go away by itself: no connection, a timeout, a 5xx or 429 answer.

    Args:
        error: A ``RegistryError`` (from ``registry_call``) or what it wraps.

    Returns:
        False for "not found", "already exists", bad parameters, permission errors (4xx).
    """
    cause = error.__cause__ if isinstance(error, RegistryError) and error.__cause__ else error
    status = getattr(cause, "get_http_status_code", None)
    if callable(status):
        code = int(status())
        return code >= 500 or code == 429
    return isinstance(cause, OSError | TimeoutError) or type(cause).__module__.startswith(("requests", "urllib3"))


class _Registry:
    """Registry calls for one registration: each turned into a ``RegistryError`` and retried when transient."""

    def __init__(self, client: MlflowClient, tracking_uri: str, model_name: str) -> None:
        self.client = client
        self.tracking_uri = tracking_uri
        self.model_name = model_name

    def call(self, action: str, function: Callable[[], T]) -> T:
        return call_with_retries(
            lambda: registry_call(self.tracking_uri, action, function),
            is_transient_registry_error,
            f"register: {action}",
            REGISTRY_RETRY_POLICY,
        )

    def champion(self) -> str | None:
        return call_with_retries(
            lambda: champion_version(self.client, self.model_name, self.tracking_uri)[0],
            is_transient_registry_error,
            f"register: read the {CHAMPION_ALIAS!r} of {self.model_name!r}",
            REGISTRY_RETRY_POLICY,
        )

    def versions_with_key(self, key: str) -> list[Any]:
        """Versions of the model tagged with ``key``, oldest first ([] when the model does not exist yet)."""
        quoted = self.model_name.replace("'", "\\'")
        versions = self.call(
            f"search the versions of {self.model_name!r}",
            lambda: self.client.search_model_versions(f"name = '{quoted}'"),
        )
        matching = [version for version in versions if version.tags.get(LineageTag.REGISTRATION_KEY) == key]
        return sorted(matching, key=lambda version: int(version.version))

    def set_version_tag(self, version: str, name: str, value: str) -> None:
        self.call(
            f"tag version {version} with {name}",
            lambda: self.client.set_model_version_tag(self.model_name, version, name, value),
        )

    def lock_holder(self) -> tuple[str, float]:
        registered = self.call(
            f"read registered model {self.model_name!r}", lambda: self.client.get_registered_model(self.model_name)
        )
        owner, _, expires = (registered.tags or {}).get(LineageTag.PROMOTION_LOCK, "").partition("|")
        try:
            return owner, float(expires)
        except ValueError:
            return "", 0.0

    def set_lock(self, value: str) -> None:
        self.call(
            f"take the promotion lock of {self.model_name!r}",
            lambda: self.client.set_registered_model_tag(self.model_name, LineageTag.PROMOTION_LOCK, value),
        )

    @contextmanager
    def promotion_lock(self) -> Iterator[None]:
        """Hold the model's promotion lock (see the module docstring for what it guarantees)."""
        owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            holder, expires = self.lock_holder()
            if not holder or holder == owner or expires < time.time():
                self.set_lock(f"{owner}|{time.time() + LOCK_LEASE_S:.3f}")
                time.sleep(LOCK_SETTLE_S)  # a competitor that read "free" with us writes within this time
                holder, expires = self.lock_holder()
                if holder == owner:
                    break
            if time.monotonic() > deadline:
                raise RegistryError(
                    f"MLflow registry at {display_uri(self.tracking_uri)}: the promotion lock of "
                    f"{self.model_name!r} is held by {holder} (lease until {expires:.0f}); waited {LOCK_WAIT_S}s"
                )
            time.sleep(LOCK_POLL_S * (1 + random.random()))
        try:
            yield
        finally:
            try:
                if self.lock_holder()[0] == owner:
                    self.call(
                        f"release the promotion lock of {self.model_name!r}",
                        lambda: self.client.delete_registered_model_tag(self.model_name, LineageTag.PROMOTION_LOCK),
                    )
            except RegistryError as error:  # the lease expires by itself; keep the error that matters
                logger.warning("register: could not release the promotion lock (its lease expires): %s", error)


def promotion_lock(client: MlflowClient, tracking_uri: str, model_name: str) -> AbstractContextManager[None]:
    """The promotion lock of ``model_name``: whoever moves its aliases (register, ``mlkeel rollback``) holds it.

    Args:
        client: An MLflow client of the registry.
        tracking_uri: The registry's URI (for messages).
        model_name: The registered model.

    Returns:
        A context manager holding the lock (see the module docstring for what it guarantees).
    """
    return _Registry(client, tracking_uri, model_name).promotion_lock()


def register(
    model_uri: str,
    blessing: Blessing,
    model_name: str,
    tracking_uri: str = "",
    mlflow_run_id: str = "",
    data_fingerprint: str = "",
    pipeline_name: str = "",
    pipeline_run: str = "",
    version_tags: dict[str, str] | None = None,
) -> RegistrationResult:
    """Register the blessed model at ``model_uri`` as a version of ``model_name``; make it the champion.

    Idempotent: the same data, code and training parameters registered again give back the existing version
    (no new version, and no alias move when it is already the champion); a rerun after a crash finishes the
    pending version it had created. See the module docstring for the order of writes, retries and races.

    Args:
        model_uri: The model: a LoggedModel ``models:/m-...`` URI (what train records), ``runs:/...``, a path.
        blessing: The gate's decision; an unblessed model is refused.
        model_name: Registered model name (created when missing).
        tracking_uri: MLflow tracking/registry URI ("" = ``$MLFLOW_TRACKING_URI``).
        mlflow_run_id: The training run whose lineage tags are copied; "" = the run that logged ``model_uri``.
        data_fingerprint: Fingerprint of the ingested data ("" = the training run's).
        pipeline_name: KFP pipeline (job) name, recorded as a tag.
        pipeline_run: KFP pipeline run (job) id, recorded as a tag.
        version_tags: More tags for the version, e.g. ``mlkeel.tuning`` (the chosen hyperparameters of a search);
            not part of the registration key (the training run's parameters already are).

    Returns:
        A ``RegistrationResult``.

    Raises:
        NotBlessedError: the gate did not bless the model (the message holds its reason), or its blessing is
            stale: another run promoted a new champion after this run's gate compared against the old one.
        ParameterError: empty model URI or name; no tracking URI.
        DataError: ``data_fingerprint`` contradicts the training run.
        RegistryError: the registry cannot be reached (after retries) or refuses a write.
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
    registry = _Registry(client, resolved_uri, model_name)

    run_id = mlflow_run_id or call_with_retries(
        lambda: logged_model_run_id(client, model_uri, resolved_uri),
        is_transient_registry_error,
        "register: find the training run",
        REGISTRY_RETRY_POLICY,
    )
    run_tags: dict[str, str] = {}
    run_params: dict[str, str] = {}
    if run_id:
        run = registry.call(f"read training run {run_id}", lambda: client.get_run(run_id))
        run_tags, run_params = dict(run.data.tags), dict(run.data.params)
    else:
        logger.warning("register: no training run for %s: its lineage tags are recorded empty", model_uri)
    tags = lineage_tags(run_tags, blessing, data_fingerprint, pipeline_name, pipeline_run)
    if run_tags.get(LineageTag.GIT_COMMIT):
        tags[LineageTag.GIT_COMMIT] = run_tags[LineageTag.GIT_COMMIT]  # the code that trained the model
    key = registration_key(model_name, tags, run_params, model_uri)
    tags[LineageTag.REGISTRATION_KEY] = key
    tags.update({str(name): str(value) for name, value in (version_tags or {}).items()})

    existing = registry.versions_with_key(key)
    if existing:
        found = next(
            (v for v in existing if v.tags.get(LineageTag.REGISTRATION_STATE) == RegistrationState.COMPLETE),
            existing[0],
        )
        version = str(found.version)
        tags = {**tags, **{name: value for name, value in found.tags.items() if name.startswith("mlkeel.")}}
        logger.info(
            "register: %r version %s already holds this registration (key %s): reusing it", model_name, version, key
        )
    else:
        tags[LineageTag.REGISTRATION_STATE] = RegistrationState.PENDING
        created = registry.call(
            f"register {display_uri(model_uri)} as {model_name!r}",
            lambda: _find_or_create(registry, model_uri, key, tags),
        )
        version = str(created.version)
        logger.info(
            "register: created %r version %s (%s until promoted)", model_name, version, RegistrationState.PENDING
        )

    with registry.promotion_lock():
        champion = registry.champion()
        if champion == version:  # a rerun: the aliases moved before the crash or the earlier registration
            previous = tags.get(LineageTag.REPLACED_VERSION) or None
            decision = tags.get(LineageTag.PROMOTION_DECISION) or f"promoted: version {version} is the {CHAMPION_ALIAS}"
        elif tags.get(RollbackTag.ROLE) == ROLLBACK_DEMOTED:
            # Retraining on the same data, code and parameters gives back this very version: promoting it would
            # silently undo the rollback that took it out of service.
            decision = (
                f"not promoted: version {version} holds this registration but was rolled back by "
                f"{tags.get(RollbackTag.BY) or 'someone'} at {tags.get(RollbackTag.AT) or '?'} "
                f"({tags.get(RollbackTag.REASON) or 'no reason given'}); restore it with "
                f"`mlkeel rollback {model_name} --to {version}`, or retrain on other data or parameters"
            )
            _record_decision(registry, client, version, run_id, decision)
            logger.error("register: %r version %s %s", model_name, version, decision)
            raise NotBlessedError(f"{model_name!r} version {version} is registered but {decision}")
        elif blessing.champion_version is not None and champion != blessing.champion_version:
            decision = (
                f"not promoted: the gate compared against {CHAMPION_ALIAS} version {blessing.champion_version}, but "
                f"version {champion} became the {CHAMPION_ALIAS} since (another run promoted it); rerun the gate"
            )
            _record_decision(registry, client, version, run_id, decision)
            logger.error("register: %r version %s %s", model_name, version, decision)
            raise NotBlessedError(f"{model_name!r} version {version} is registered but {decision}")
        else:
            previous = champion
            if previous is not None:
                registry.call(
                    f"set alias {PREVIOUS_CHAMPION_ALIAS!r} to version {previous}",
                    lambda: client.set_registered_model_alias(model_name, PREVIOUS_CHAMPION_ALIAS, previous),
                )
            registry.call(
                f"set alias {CHAMPION_ALIAS!r} to version {version}",
                lambda: client.set_registered_model_alias(model_name, CHAMPION_ALIAS, version),
            )
            if previous is not None:
                registry.set_version_tag(version, LineageTag.REPLACED_VERSION, previous)
                tags[LineageTag.REPLACED_VERSION] = previous
            decision = f"promoted: version {version} is the {CHAMPION_ALIAS}" + (
                f", replacing version {previous}" if previous else " (first version)"
            )
        tags[LineageTag.PROMOTION_DECISION] = decision
        _record_decision(registry, client, version, run_id, decision)
    tags[LineageTag.REGISTRATION_STATE] = RegistrationState.COMPLETE
    logger.info("register: %r version %s: %s", model_name, version, decision)
    return RegistrationResult(
        model_name=model_name,
        version=version,
        champion_version=version,
        previous_champion_version=previous,
        tags=tags,
    )


def _record_decision(registry: _Registry, client: MlflowClient, version: str, run_id: str, decision: str) -> None:
    """Tag the version and the training run with the decision, then mark the version complete (last)."""
    registry.set_version_tag(version, LineageTag.PROMOTION_DECISION, decision)
    if run_id:
        registry.call(
            f"tag training run {run_id} with the decision",
            lambda: client.set_tag(run_id, LineageTag.PROMOTION_DECISION, decision),
        )
    registry.set_version_tag(version, LineageTag.REGISTRATION_STATE, RegistrationState.COMPLETE)


def _find_or_create(registry: _Registry, model_uri: str, key: str, tags: dict[str, str]) -> Any:
    """Create the version, unless an earlier attempt of this call did before its answer was lost."""
    existing = registry.versions_with_key(key)
    return existing[0] if existing else _register_model(model_uri, registry.model_name, tags)


def _register_model(model_uri: str, model_name: str, tags: dict[str, str]) -> Any:
    """Create the registered model if missing and a version with ``tags`` in one create call.

    ``mlflow.register_model`` is MLflow 3's path for a LoggedModel ``models:/m-...`` URI: the registry stores
    the logged model's artifact location and source run, and the logged model is linked to the new version.
    """
    import mlflow

    return mlflow.register_model(model_uri, model_name, tags=tags)
