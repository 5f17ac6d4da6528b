"""Fixtures on real MLflow: a fresh SQLite store per test, a real ``mlflow server`` per session, models.

Nothing here talks to any address but 127.0.0.1: MLflow's usage telemetry is switched off for the test process
and for the server subprocess.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlkeel.cluster.controlplane import free_port as _free_port
from mlkeel.cluster.controlplane import log_tail
from mlkeel.data import TELCO_CHURN_KEY, TELCO_CHURN_POSITIVE_LABEL, TELCO_CHURN_TARGET

# MLflow 3 sends usage telemetry unless told not to; tests must not reach the internet.
os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
os.environ["DO_NOT_TRACK"] = "true"

# Set by ``mlflow server --default-artifact-root``; read by MLflow 3.17 when it opens a SQL store without an
# artifact root. Without it, any experiment a test creates in a sqlite store puts its artifacts in ./mlruns.
MLFLOW_DEFAULT_ARTIFACT_ROOT_ENV = "_MLFLOW_SERVER_ARTIFACT_ROOT"
SERVER_START_TIMEOUT_S = 120.0
SERVER_STOP_TIMEOUT_S = 20.0
EXPERIMENT = "mlkeel"
# A deliberately weak model: 200 rows, 3 nearly uninformative columns. Holdout ROC AUC ~0.61 (log loss ~0.57)
# against ~0.84 (~0.42) for logistic regression on the full split: far apart whatever the margin.
# Three weak columns: at 0.5 (and at its best-F1 threshold, which marks every row positive) it predicts one class,
# which the gate refuses before any comparison; at recall 0.5 it predicts both, so it loses to the champion on AUC.
WEAK_MODEL: dict[str, Any] = {
    "rows": 200,
    "columns": ["gender", "Partner", "PhoneService"],
    "threshold_policy": "recall:0.5",
}
# A model whose schema the holdout no longer has: trained with one more column.
EXTRA_COLUMN = "LoyaltyScore"
# A feature the holdout lacks. It varies from row to row: train leaves a constant column out of the features.
EXTRA_COLUMN_MODEL: dict[str, Any] = {
    "rewrite": lambda frame: frame.assign(**{EXTRA_COLUMN: (frame["tenure"] % 7).astype("float64")})
}


def _sqlite_store(folder: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Create ``folder``, point MLflow's environment at a SQLite store in it and return the store's URI."""
    folder.mkdir(parents=True)
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    monkeypatch.setenv(MLFLOW_DEFAULT_ARTIFACT_ROOT_ENV, (folder / "artifacts").as_uri())
    # mlkeel.tracking.connect() -> mlflow.set_*_uri() exports both variables; monkeypatch restores them after.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    return uri


def _forget_uris() -> None:
    import mlflow

    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


@pytest.fixture
def mlflow_local_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh ``sqlite:///<tmp>/mlflow/mlflow.db`` tracking + registry store; artifacts stay inside tmp.

    Every experiment created in it (whatever its name) stores artifacts under ``<tmp>/mlflow/artifacts``;
    ``$MLFLOW_TRACKING_URI`` points at it for the test, so code called with ``tracking_uri=""`` uses it too.
    The test fails if anything wrote a ``./mlruns`` into the working directory.
    """
    stray = Path.cwd() / "mlruns"
    stray_before = stray.exists()
    yield _sqlite_store(tmp_path / "mlflow", monkeypatch)
    _forget_uris()
    assert stray_before or not stray.exists(), f"MLflow wrote artifacts into the working directory: {stray}"


@pytest.fixture(scope="session")
def _mlflow_session_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mlflow_shared") / "mlflow"


@pytest.fixture
def mlflow_shared_uri(_mlflow_session_store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """One SQLite store for the whole session (train models once; tests stay apart by ``model_name``).

    The environment points at it during each test only, as with ``mlflow_local_uri``.
    """
    folder = _mlflow_session_store
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    folder.mkdir(parents=True, exist_ok=True)
    monkeypatch.setenv(MLFLOW_DEFAULT_ARTIFACT_ROOT_ENV, (folder / "artifacts").as_uri())
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", uri)
    yield uri
    _forget_uris()


@pytest.fixture
def model_name(request: pytest.FixtureRequest) -> str:
    """A registered model name unique to the test, so tests sharing a store or a server stay apart."""
    return "mlkeel-" + "".join(char if char.isalnum() else "-" for char in request.node.name)[:80]


def _group_alive(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (uvicorn and a job runner too); SIGKILL what outlives the wait."""
    group = process.pid  # start_new_session=True: the server leads its own group
    if _group_alive(group):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + SERVER_STOP_TIMEOUT_S
    while _group_alive(group) and time.monotonic() < deadline:
        process.poll()  # reap the leader so a finished group stops counting as alive
        time.sleep(0.2)
    if _group_alive(group):
        os.killpg(group, signal.SIGKILL)
    process.wait(timeout=SERVER_STOP_TIMEOUT_S)


class MlflowServer:
    """A real ``mlflow server`` process (SQLite backend, proxied artifacts under ``root``) on 127.0.0.1.

    ``start()`` and ``stop()`` may be called again: the server comes back on the same port with the same store,
    as a restarted registry would.
    """

    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = root
        self.host = host  # another address of this machine (a real node's bridge) for pods to reach it
        self.port = _free_port()
        self.uri = f"http://{host}:{self.port}"
        self.log_path = root / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        """Start the server and wait until ``/health`` answers; return its URI."""
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
            "--host", self.host,
            "--port", str(self.port),
            "--workers", "1",
        ]  # fmt: skip
        environment = {
            key: value
            for key, value in os.environ.items()
            if key not in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", MLFLOW_DEFAULT_ARTIFACT_ROOT_ENV)
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, cwd=self.root, stdout=log, stderr=subprocess.STDOUT, env=environment, start_new_session=True
            )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"mlflow server exited with {self.process.returncode}:\n{log_tail(self.log_path, 40)}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as response:
                    if response.status == 200:
                        return self.uri
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(
                    f"mlflow server not healthy after {SERVER_START_TIMEOUT_S}s:\n{log_tail(self.log_path, 40)}"
                )
            time.sleep(0.25)

    def stop(self) -> None:
        """Stop the server (its whole process group); a no-op when it is not running."""
        if self.process is not None:
            _stop(self.process)
            self.process = None


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (SQLite backend, proxied artifacts under tmp) on 127.0.0.1; yields its URI.

    Started once per session and stopped (process group, bounded waits) at the end. Tests share it, so each
    uses its own registered model name. A test that stops the server uses ``own_mlflow_server`` instead.
    """
    server = MlflowServer(tmp_path_factory.mktemp("mlflow_server"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def own_mlflow_server(tmp_path: Path) -> Iterator[MlflowServer]:
    """A started ``MlflowServer`` of this test alone, which the test may stop and start again."""
    (tmp_path / "mlflow_server").mkdir()
    server = MlflowServer(tmp_path / "mlflow_server")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class TrainedModel:
    """A model trained by ``mlkeel.components.train.logic.train`` on (a variant of) the Telco train split.

    Attributes:
        model_dir: The MLflow sklearn model directory (what the KFP Model artifact's path holds).
        train_path: The Parquet it was trained on.
        result: The ``TrainResult`` (run id, ``models:/m-...`` URI, feature columns).
    """

    model_dir: Path
    train_path: Path
    result: Any

    @property
    def model_uri(self) -> str:
        """The logged model's ``models:/m-...`` URI."""
        return self.result.mlflow_model_uri

    @property
    def run_id(self) -> str:
        """The training run."""
        return self.result.mlflow_run_id

    def holdout_metrics(self, test_path: Path) -> dict[str, float]:
        """The evaluate stage's metrics of this model on ``test_path`` (what the gate reads)."""
        from mlkeel.components.evaluate.logic import evaluate

        return evaluate(str(self.model_dir), str(test_path), TELCO_CHURN_TARGET, TELCO_CHURN_POSITIVE_LABEL).metrics


@pytest.fixture(scope="session")
def telco_fingerprint(telco_parquet: Path) -> str:
    """The ingest fingerprint of the Telco data (the lineage fact train and register record)."""
    import pyarrow.parquet as pq

    from mlkeel.components.ingest.logic import fingerprint_table

    return fingerprint_table(pq.read_table(telco_parquet))


@pytest.fixture(scope="session")
def train_telco(
    telco_split: tuple[Path, Path], telco_fingerprint: str, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., TrainedModel]:
    """Factory: ``train_telco(tracking_uri, name, ...)`` trains a real model and logs it to ``tracking_uri``.

    Keyword arguments: ``estimator`` (default logistic_regression), ``hyperparameters``, ``rows`` (first N
    train rows only), ``columns`` (feature columns to keep), ``extra_columns`` (name -> constant added to the
    train rows, which the holdout then lacks), ``rewrite`` (a function DataFrame -> DataFrame applied to the
    train rows last, e.g. to corrupt some labels), ``threshold_policy``. ``train_telco(uri, "weak", **WEAK_MODEL)``
    is a clearly worse model. Session-scoped and cached: the same ``(tracking_uri, name)`` trains once and is
    returned again.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mlkeel.components.train.logic import train

    full_train_path, _ = telco_split
    root = tmp_path_factory.mktemp("trained")
    trained: dict[tuple[str, str], TrainedModel] = {}

    def make(
        tracking_uri: str,
        name: str,
        estimator: str = "logistic_regression",
        hyperparameters: dict[str, Any] | None = None,
        rows: int | None = None,
        columns: list[str] | None = None,
        extra_columns: dict[str, Any] | None = None,
        rewrite: Callable[[Any], Any] | None = None,
        threshold_policy: str = "",
    ) -> TrainedModel:
        if (tracking_uri, name) in trained:
            return trained[tracking_uri, name]
        folder = root / f"{name}-{len(trained)}"
        train_path = full_train_path
        folder.mkdir()
        if rows or columns or extra_columns or rewrite:
            table = pq.read_table(full_train_path)
            if rows:
                table = table.slice(0, rows)
            if columns:
                table = table.select([TELCO_CHURN_KEY, *columns, TELCO_CHURN_TARGET])
            for column, value in (extra_columns or {}).items():
                table = table.append_column(column, pa.array([value] * table.num_rows))
            if rewrite:
                table = pa.Table.from_pandas(rewrite(table.to_pandas()), preserve_index=False)
            train_path = folder / "train.parquet"
            pq.write_table(table, train_path)
        result = train(
            str(train_path),
            str(folder / "model"),
            TELCO_CHURN_TARGET,
            TELCO_CHURN_POSITIVE_LABEL,
            key_columns=[TELCO_CHURN_KEY],
            estimator=estimator,
            hyperparameters=hyperparameters,
            tracking_uri=tracking_uri,
            experiment_name=EXPERIMENT,
            data_fingerprint=telco_fingerprint,
            run_name=name,
            threshold_policy=threshold_policy,
        )
        trained[tracking_uri, name] = TrainedModel(folder / "model", Path(train_path), result)
        return trained[tracking_uri, name]

    return make


@pytest.fixture
def registered_champion(
    mlflow_shared_uri: str, train_telco: Callable[..., TrainedModel], model_name: str
) -> tuple[str, str]:
    """``(tracking_uri, model_name)``: version 1 is the champion (registered through the register stage with a
    blessing); version 2 is registered with no alias.
    """
    import mlflow

    from mlkeel.components.register.logic import register
    from tests.unit.test_register import BLESSED

    trained = train_telco(mlflow_shared_uri, "strong")
    register(trained.model_uri, BLESSED, model_name, mlflow_shared_uri)
    mlflow.register_model(trained.model_uri, model_name)
    return mlflow_shared_uri, model_name
