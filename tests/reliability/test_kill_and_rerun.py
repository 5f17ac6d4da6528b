"""Drill 2: a step killed mid-write and rerun; the same data + code registered twice.

A real ``python -m mlkeel.components.validate`` process is SIGKILLed the moment it starts writing an output
(its temporary file appears): no truncated output is left where a downstream step would read it, and the rerun
writes byte-identical artifacts to a clean run's. Registering a second model trained on the same data with the
same code and parameters gives back the first version: one version, one champion (the register stage's
docstring and the README's behaviour section say so).
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mlkeel.components.gate.logic import Blessing
from mlkeel.components.register.logic import register
from mlkeel.constants import CHAMPION_ALIAS, LineageTag, RegistrationState
from mlkeel.data import TELCO_CHURN_TARGET

OUTPUTS = ("valid.parquet", "quarantine.parquet", "schema.json", "report.md")
COPIES = 40  # Telco x 40 = 281,720 rows: writing takes long enough to be caught in the middle
KILL_TIMEOUT_S = 300.0


def validate_command(dataset: Path, folder: Path) -> list[str]:
    return [
        sys.executable, "-m", "mlkeel.components.validate", "--dataset", str(dataset),
        "--valid-out", str(folder / "valid.parquet"), "--quarantine-out", str(folder / "quarantine.parquet"),
        "--schema-out", str(folder / "schema.json"), "--report-out", str(folder / "report.md"),
        "--target-column", TELCO_CHURN_TARGET,
    ]  # fmt: skip


def digests(folder: Path) -> dict[str, str]:
    return {name: hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in OUTPUTS}


def temporary_files(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith(".") and ".tmp" in name]


@pytest.fixture(scope="module")
def large_dataset(telco_parquet: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    table = pq.read_table(telco_parquet)
    path = tmp_path_factory.mktemp("large") / "telco_x40.parquet"
    pq.write_table(pa.concat_tables([table] * COPIES), path)
    return path


def test_a_step_killed_mid_write_leaves_no_partial_output_and_reruns_byte_identical(
    large_dataset: Path, tmp_path: Path
) -> None:
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    clean.mkdir()
    killed.mkdir()
    subprocess.run(validate_command(large_dataset, clean), check=True, capture_output=True, timeout=KILL_TIMEOUT_S)

    process = subprocess.Popen(
        validate_command(large_dataset, killed), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + KILL_TIMEOUT_S
    caught: list[str] = []
    while process.poll() is None and time.monotonic() < deadline:
        caught = temporary_files(killed)
        if caught:
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.001)
    process.wait(timeout=30)
    assert caught, f"validate finished before it was caught writing (exit {process.returncode})"
    assert process.returncode == -signal.SIGKILL

    # Whatever was being written is only in a temporary file; every output present is complete.
    for name in OUTPUTS:
        if (killed / name).exists():
            assert hashlib.sha256((killed / name).read_bytes()).hexdigest() == digests(clean)[name], name
    written = [name for name in OUTPUTS if (killed / name).exists()]
    assert len(written) < len(OUTPUTS), "the kill came after every output was written"

    subprocess.run(validate_command(large_dataset, killed), check=True, capture_output=True, timeout=KILL_TIMEOUT_S)
    assert digests(killed) == digests(clean)
    if len(caught) == 1:  # a rerun does not trust, or need, the dead process's temporary file
        assert temporary_files(killed) in ([], caught)


def test_the_same_data_and_code_registered_twice_is_one_version_and_one_champion(
    mlflow_local_uri: str, train_telco, model_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    monkeypatch.setenv("MLKEEL_GIT_COMMIT", "same0123")  # the code is identified (not a dirty checkout)
    first_model = train_telco(mlflow_local_uri, "same-code-1")
    second_model = train_telco(mlflow_local_uri, "same-code-2")  # a pipeline rerun: a new run, same everything
    assert first_model.run_id != second_model.run_id

    first = register(first_model.model_uri, Blessing(True, "Blessed", "roc_auc", 0.0, 0.8), model_name)
    second = register(
        second_model.model_uri, Blessing(True, "Blessed", "roc_auc", 0.0, 0.8, champion_version="1"), model_name
    )

    assert (first.version, second.version) == ("1", "1")
    assert second.tags[LineageTag.REGISTRATION_KEY] == first.tags[LineageTag.REGISTRATION_KEY]
    client = MlflowClient(tracking_uri=mlflow_local_uri, registry_uri=mlflow_local_uri)
    versions = client.search_model_versions(f"name = '{model_name}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert versions[0].tags[LineageTag.REGISTRATION_STATE] == RegistrationState.COMPLETE
    aliases = {alias: str(v) for alias, v in client.get_registered_model(model_name).aliases.items()}
    assert aliases == {CHAMPION_ALIAS: "1"}, "no previous_champion pointing at a copy of the champion"

    # Other code (another commit) is another registration: a new version.
    monkeypatch.setenv("MLKEEL_GIT_COMMIT", "other4567")
    other_model = train_telco(mlflow_local_uri, "other-code")
    third = register(
        other_model.model_uri, Blessing(True, "Blessed", "roc_auc", 0.0, 0.8, champion_version="1"), model_name
    )
    assert (third.version, third.previous_champion_version) == ("2", "1")


@pytest.mark.parametrize(
    ("commit", "same_key_for_another_model"),
    [("0123abcd", True), ("0123abcd-dirty", False), ("unknown", False)],
    ids=["identified code", "dirty checkout", "unknown commit"],
)
def test_the_registration_key_identifies_data_code_and_parameters(
    commit: str, same_key_for_another_model: bool
) -> None:
    from mlkeel.components.register.logic import registration_key

    tags = {LineageTag.DATA_FINGERPRINT: "sha256:data", LineageTag.GIT_COMMIT: commit}
    params = {"estimator": "logistic_regression", "C": "1.0"}
    key = registration_key("churn", tags, params, "models:/m-1")
    assert key == registration_key("churn", dict(tags), dict(params), "models:/m-1")
    assert (key == registration_key("churn", tags, params, "models:/m-2")) is same_key_for_another_model
    assert key != registration_key("churn", tags, {**params, "C": "0.5"}, "models:/m-1")
    assert key != registration_key(
        "churn", {**tags, LineageTag.DATA_FINGERPRINT: "sha256:other"}, params, "models:/m-1"
    )
    assert key != registration_key("other-model", tags, params, "models:/m-1")
