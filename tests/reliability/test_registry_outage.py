"""Drill 1: the MLflow server goes away in the middle of register; no half state; a rerun completes.

A real ``mlflow server`` process is stopped right after register created the new version (observed through
register's own log line) and before any alias moved; the step retries with backoff, then fails. With the
server back, a rerun finishes that same version instead of creating another one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from mlkeel.components.gate.logic import Blessing
from mlkeel.components.register import logic as register_logic
from mlkeel.constants import (
    CHAMPION_ALIAS,
    PREVIOUS_CHAMPION_ALIAS,
    LineageTag,
    RegistrationState,
)
from mlkeel.errors import RegistryError
from mlkeel.retry import RetryPolicy
from tests.fixtures_mlflow import WEAK_MODEL, MlflowServer

pytestmark = pytest.mark.integration

# Every lineage fact a version must carry from the moment it exists.
LINEAGE = (
    LineageTag.DATA_FINGERPRINT,
    LineageTag.SCHEMA_HASH,
    LineageTag.TARGET_COLUMN,
    LineageTag.GIT_COMMIT,
    LineageTag.LIBRARY_VERSIONS,
    LineageTag.BLESSING_REASON,
    LineageTag.REGISTRATION_KEY,
)


def blessing(champion: str | None) -> Blessing:
    return Blessing(True, "Blessed: drill", "roc_auc", 0.0, 0.8, champion_version=champion)


class StopServerOn(logging.Handler):
    """Stops the server when register logs a record containing ``text`` (once)."""

    def __init__(self, server: MlflowServer, text: str) -> None:
        super().__init__()
        self.server, self.text, self.fired = server, text, False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.fired and self.text in record.getMessage():
            self.fired = True
            self.server.stop()


@pytest.fixture
def fast_failures(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Register's backoff short, so the outage is noticed in seconds (MLflow's own HTTP retries: see the test)."""
    monkeypatch.setenv("MLKEEL_GIT_COMMIT", "0123456789abcdef")
    monkeypatch.setattr(register_logic, "REGISTRY_RETRY_POLICY", RetryPolicy(attempts=3, initial_delay_s=0.2))
    monkeypatch.setattr(register_logic, "LOCK_SETTLE_S", 0.1)
    yield
    import mlflow

    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def test_register_survives_the_registry_going_away_and_a_rerun_completes(
    own_mlflow_server: MlflowServer,
    fast_failures: None,
    train_telco,
    model_name: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlflow import MlflowClient

    server = own_mlflow_server
    uri = server.uri
    weak = train_telco(uri, "outage-weak", **WEAK_MODEL)
    strong = train_telco(uri, "outage-strong")
    # Connection refused fails at once instead of MLflow's own HTTP retries (minutes of backoff by default).
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    first = register_logic.register(weak.model_uri, blessing(None), model_name, uri, pipeline_run="run-1")
    assert first.version == "1"

    caplog.set_level(logging.INFO, logger=register_logic.__name__)
    caplog.set_level(logging.WARNING, logger="mlkeel.retry")
    stopper = StopServerOn(server, "created")
    register_logic.logger.addHandler(stopper)
    try:
        with pytest.raises(RegistryError, match=f"MLflow registry at {uri}: could not") as failure:
            register_logic.register(strong.model_uri, blessing("1"), model_name, uri, pipeline_run="run-2")
    finally:
        register_logic.logger.removeHandler(stopper)
    assert stopper.fired, "register never logged the creation of the new version"
    retries = [record.getMessage() for record in caplog.records if "retrying in" in record.getMessage()]
    assert len(retries) == 2, retries  # 3 attempts: waits of 0.2 s then 0.4 s
    assert "Traceback" not in str(failure.value)

    server.start()  # the registry comes back: what does everyone else see?
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    versions = {v.version: v for v in client.search_model_versions(f"name = '{model_name}'")}
    aliases = {alias: str(version) for alias, version in client.get_registered_model(model_name).aliases.items()}
    assert aliases == {CHAMPION_ALIAS: "1"}, "no alias may move to the half-registered version"
    assert all(version in versions for version in aliases.values())
    assert versions["1"].tags[LineageTag.REGISTRATION_STATE] == RegistrationState.COMPLETE
    assert versions["2"].tags[LineageTag.REGISTRATION_STATE] == RegistrationState.PENDING
    assert all(versions["2"].tags.get(tag) for tag in LINEAGE), "the version was created with its lineage"

    rerun = register_logic.register(strong.model_uri, blessing("1"), model_name, uri, pipeline_run="run-2")
    assert (rerun.version, rerun.previous_champion_version) == ("2", "1")
    versions = {v.version: v for v in client.search_model_versions(f"name = '{model_name}'")}
    assert sorted(versions) == ["1", "2"], "the rerun finished the pending version, it did not add one"
    aliases = {alias: str(version) for alias, version in client.get_registered_model(model_name).aliases.items()}
    assert aliases == {CHAMPION_ALIAS: "2", PREVIOUS_CHAMPION_ALIAS: "1"}
    assert versions["2"].tags[LineageTag.REGISTRATION_STATE] == RegistrationState.COMPLETE
    assert versions["2"].tags[LineageTag.REPLACED_VERSION] == "1"
    assert versions["2"].tags[LineageTag.PROMOTION_DECISION].startswith("promoted: version 2")
    assert (
        client.get_run(strong.run_id).data.tags[LineageTag.PROMOTION_DECISION]
        == (versions["2"].tags[LineageTag.PROMOTION_DECISION])
    )
    assert LineageTag.PROMOTION_LOCK not in client.get_registered_model(model_name).tags


def test_only_transient_registry_errors_are_retried() -> None:
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import (
        INTERNAL_ERROR,
        INVALID_PARAMETER_VALUE,
        PERMISSION_DENIED,
        RESOURCE_DOES_NOT_EXIST,
        TEMPORARILY_UNAVAILABLE,
    )

    def wrapped(cause: BaseException) -> RegistryError:
        try:
            raise RegistryError("MLflow registry at http://127.0.0.1:5000: could not ...") from cause
        except RegistryError as error:
            return error

    transient = [MlflowException("down", INTERNAL_ERROR), MlflowException("busy", TEMPORARILY_UNAVAILABLE)]
    permanent = [
        MlflowException("no such model", RESOURCE_DOES_NOT_EXIST),
        MlflowException("bad name", INVALID_PARAMETER_VALUE),
        MlflowException("denied", PERMISSION_DENIED),
    ]
    assert all(register_logic.is_transient_registry_error(wrapped(error)) for error in transient)
    assert not any(register_logic.is_transient_registry_error(wrapped(error)) for error in permanent)
    assert register_logic.is_transient_registry_error(wrapped(ConnectionRefusedError()))
    assert not register_logic.is_transient_registry_error(RegistryError("the promotion lock is held"))
