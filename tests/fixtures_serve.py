"""Fixtures for the serving app: a registered champion, holdout rows as records, a real server process.

``task_champion(tracking_uri, task)`` registers a multiclass (scikit-learn's wine: three cultivars) or a
regression (diabetes: disease progression) champion trained by the train stage, for the per-task serving tests.

The server process is ``python -m mlkeel.components.serve`` on 127.0.0.1 (what a serving pod runs), so a test
can watch its memory, send it SIGTERM and read the prediction log it wrote on the way out.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mlkeel.components.gate.logic import decide
from mlkeel.components.register.logic import register
from mlkeel.components.serve.logic import http_call, wait_until_ok
from tests.fixtures_mlflow import _free_port

METRICS = {"accuracy": 0.81, "precision": 0.66, "recall": 0.56, "f1": 0.60, "roc_auc": 0.84, "log_loss": 0.42}
BLESSED = decide(METRICS, thresholds={"roc_auc": 0.75}, no_comparison_reason="no model is registered yet")
SERVER_READY_TIMEOUT_S = 90.0
SERVER_STOP_TIMEOUT_S = 60.0


@pytest.fixture
def champion(mlflow_shared_uri: str, train_telco, model_name: str) -> str:
    """``models:/<test's model>@champion``: a logistic regression on the Telco train split, version 1, whose
    decision threshold is its best F1 (not 0.5, so tests see that serving labels at the model's own threshold)."""
    trained = train_telco(mlflow_shared_uri, "strong-f1", threshold_policy="f1")
    register(trained.model_uri, BLESSED, model_name, mlflow_shared_uri)
    return f"models:/{model_name}@champion"


@dataclass(frozen=True)
class TaskChampion:
    """A registered champion of a non-binary task and the holdout rows it never saw.

    Attributes:
        task: ``multiclass`` or ``regression``.
        model_uri: ``models:/NAME@champion``.
        name: The registered model name.
        holdout: Holdout rows: the feature columns and ``target``.
    """

    task: str
    model_uri: str
    name: str
    holdout: pa.Table


def task_frame(task: str) -> pd.DataFrame:
    """scikit-learn's wine (target: the cultivar's name) for multiclass, diabetes for regression."""
    from sklearn.datasets import load_diabetes, load_wine

    if task == "regression":
        return load_diabetes(as_frame=True).frame
    frame = load_wine(as_frame=True).frame
    frame["target"] = frame["target"].map({0: "barolo", 1: "grignolino", 2: "barbera"})
    return frame


@pytest.fixture(scope="session")
def task_champion(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], TaskChampion]:
    """Factory: ``task_champion(tracking_uri, task)`` splits the task's data, trains with the train stage's logic
    (a logistic regression, a ridge), registers version 1 as ``champion``; cached per ``(tracking_uri, task)``."""
    from mlflow import MlflowClient, register_model

    from mlkeel.components.split.logic import split
    from mlkeel.components.train.logic import train
    from mlkeel.constants import CHAMPION_ALIAS
    from mlkeel.tracking import connect

    cache: dict[tuple[str, str], TaskChampion] = {}

    def make(tracking_uri: str, task: str) -> TaskChampion:
        if (tracking_uri, task) in cache:
            return cache[tracking_uri, task]
        folder = tmp_path_factory.mktemp(f"serve-{task}")
        pq.write_table(pa.Table.from_pandas(task_frame(task), preserve_index=False), folder / "all.parquet")
        train_path, test_path = folder / "train.parquet", folder / "test.parquet"
        split(str(folder / "all.parquet"), str(train_path), str(test_path), "target", "", 0.3, seed=7)
        estimator = "ridge" if task == "regression" else "logistic_regression"
        trained = train(
            str(train_path), str(folder / "model"), "target", "", estimator=estimator, tracking_uri=tracking_uri, seed=3
        )
        assert trained.metadata["task"] == task
        name = f"serve-{task}"
        connect(tracking_uri)
        version = str(register_model(trained.mlflow_model_uri, name).version)
        MlflowClient(tracking_uri, registry_uri=tracking_uri).set_registered_model_alias(name, CHAMPION_ALIAS, version)
        cache[tracking_uri, task] = TaskChampion(
            task, f"models:/{name}@{CHAMPION_ALIAS}", name, pq.read_table(test_path)
        )
        return cache[tracking_uri, task]

    return make


def holdout_rows(test_path: Path, rows: int) -> pa.Table:
    """The first holdout rows, with the rows whose TotalCharges is blank (null) first."""
    table = pq.read_table(test_path)
    nulls = np.flatnonzero(table.column("TotalCharges").is_null().to_numpy(zero_copy_only=False))
    others = np.setdiff1d(np.arange(table.num_rows), nulls)
    return table.take(np.concatenate([nulls, others])[:rows])


def metric(base: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` with these labels in the server's ``/metrics``."""
    text = http_call(f"{base}/metrics")[1].decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(key) == value for key, value in labels.items())
    )


@dataclass
class ServeProcess:
    """A running ``python -m mlkeel.components.serve``.

    Attributes:
        process: The server process (its pid is the server's: no shell in between).
        base: ``http://127.0.0.1:PORT``.
        log_dir: The prediction-log folder.
        stderr_path: Where its stderr goes (a file, so a chatty server never blocks on a full pipe).
    """

    process: subprocess.Popen[bytes]
    base: str
    log_dir: Path
    stderr_path: Path

    def stderr(self) -> str:
        """What the server has written to stderr so far."""
        return self.stderr_path.read_text(errors="replace")

    def terminate(self) -> int:
        """SIGTERM (a graceful stop, as Kubernetes sends); wait and return the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=SERVER_STOP_TIMEOUT_S)
            pytest.fail(f"the server did not stop within {SERVER_STOP_TIMEOUT_S}s of SIGTERM")


@contextmanager
def serve_process(model_uri: str, tracking_uri: str, folder: Path, *options: str) -> Iterator[ServeProcess]:
    """Start the serving app in its own process and wait until ``/readyz`` says ready; SIGTERM it after.

    Args:
        model_uri: ``models:/NAME@ALIAS`` to serve.
        tracking_uri: The MLflow store holding it.
        folder: Gets ``prediction-log/`` and ``serve.stderr``.
        *options: More ``python -m mlkeel.components.serve`` options (e.g. ``--max-body-bytes``).
    """
    log_dir, stderr_path = folder / "prediction-log", folder / "serve.stderr"
    port = _free_port()
    command = [sys.executable, "-m", "mlkeel.components.serve", "--model", model_uri, "--port", str(port),
               "--prediction-log", str(log_dir), "--mlflow-uri", tracking_uri, *options]  # fmt: skip
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
    server = ServeProcess(process, f"http://127.0.0.1:{port}", log_dir, stderr_path)
    try:
        if not wait_until_ok(f"{server.base}/readyz", SERVER_READY_TIMEOUT_S, lambda: process.poll() is None):
            pytest.fail(f"the server did not become ready:\n{server.stderr()[-3000:]}")
        yield server
    finally:
        server.terminate()
