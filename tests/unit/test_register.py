"""Register: blessed models only, every lineage tag on the version, aliases moved without a gap."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from mlkeel import __version__
from mlkeel.components.gate.logic import Blessing, decide
from mlkeel.components.register.logic import register
from mlkeel.constants import CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS, LineageTag
from mlkeel.errors import DataError, NotBlessedError
from mlkeel.tracking import git_commit
from tests.fixtures_mlflow import WEAK_MODEL

METRICS = {"accuracy": 0.81, "precision": 0.66, "recall": 0.56, "f1": 0.60, "roc_auc": 0.84, "log_loss": 0.42}
BLESSED = decide(METRICS, thresholds={"roc_auc": 0.75}, no_comparison_reason="no model is registered yet")
NOT_BLESSED = decide(METRICS, champion_score=0.86, champion_version="1")
EVERY_LINEAGE_TAG = {
    LineageTag.DATA_FINGERPRINT,
    LineageTag.SCHEMA_HASH,
    LineageTag.TARGET_COLUMN,
    LineageTag.POSITIVE_LABEL,
    LineageTag.GIT_COMMIT,
    LineageTag.MLKEEL_VERSION,
    LineageTag.LIBRARY_VERSIONS,
    LineageTag.PIPELINE_NAME,
    LineageTag.PIPELINE_RUN,
    LineageTag.GATE_METRIC,
    LineageTag.GATE_SCORE,
    LineageTag.BLESSING_REASON,
}


def _registry_state(tracking_uri: str, model_name: str) -> dict:
    """Versions and aliases of ``model_name`` as a fresh client sees them."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri, registry_uri=tracking_uri)
    models = client.search_registered_models(filter_string=f"name = '{model_name}'")
    if not models:
        return {"versions": [], "aliases": {}}
    versions = client.search_model_versions(f"name = '{model_name}'")
    aliases = {alias: str(version) for alias, version in models[0].aliases.items()}
    return {"versions": sorted(str(version.version) for version in versions), "aliases": aliases}


def test_the_first_registration_is_version_1_and_the_champion(
    mlflow_shared_uri: str, train_telco, model_name: str
) -> None:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    trained = train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL)

    result = register(trained.model_uri, BLESSED, model_name, mlflow_shared_uri)

    assert (result.version, result.champion_version, result.previous_champion_version) == ("1", "1", None)
    assert result.model_uri == f"models:/{model_name}/1"
    assert _registry_state(mlflow_shared_uri, model_name) == {
        "versions": ["1"],
        "aliases": {CHAMPION_ALIAS: "1"},
    }
    client = MlflowClient(mlflow_shared_uri, registry_uri=mlflow_shared_uri)
    with pytest.raises(MlflowException, match="previous_champion"):
        client.get_model_version_by_alias(model_name, PREVIOUS_CHAMPION_ALIAS)
    assert LineageTag.REPLACED_VERSION not in client.get_model_version(model_name, "1").tags


def test_a_second_blessed_model_takes_over_with_its_whole_lineage(
    mlflow_shared_uri: str, train_telco, model_name: str, telco_fingerprint: str
) -> None:
    from mlflow import MlflowClient

    first = train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL)
    second = train_telco(mlflow_shared_uri, "strong")
    register(first.model_uri, BLESSED, model_name, mlflow_shared_uri)
    blessing = decide(METRICS, champion_score=0.61, champion_version="1", thresholds={"roc_auc": 0.75})

    result = register(
        second.model_uri,
        blessing,
        model_name,
        mlflow_shared_uri,
        data_fingerprint=telco_fingerprint,
        pipeline_name="mlkeel-training",
        pipeline_run="run-0042",
    )

    assert (result.version, result.champion_version, result.previous_champion_version) == ("2", "2", "1")
    assert _registry_state(mlflow_shared_uri, model_name) == {
        "versions": ["1", "2"],
        "aliases": {CHAMPION_ALIAS: "2", PREVIOUS_CHAMPION_ALIAS: "1"},
    }
    version = MlflowClient(mlflow_shared_uri, registry_uri=mlflow_shared_uri).get_model_version(model_name, "2")
    assert EVERY_LINEAGE_TAG | {LineageTag.REPLACED_VERSION} <= set(version.tags)
    assert version.tags == result.tags
    assert version.run_id == second.run_id  # the registry knows the training run too
    assert version.tags[LineageTag.DATA_FINGERPRINT] == telco_fingerprint
    assert version.tags[LineageTag.TARGET_COLUMN] == "Churn"
    assert version.tags[LineageTag.POSITIVE_LABEL] == "Yes"
    # Trained without a validated schema: the schema of its train rows is recorded instead, never nothing.
    assert version.tags[LineageTag.SCHEMA_HASH].startswith("sha256:")
    assert version.tags[LineageTag.GIT_COMMIT] == git_commit()
    assert version.tags[LineageTag.MLKEEL_VERSION] == __version__
    assert json.loads(version.tags[LineageTag.LIBRARY_VERSIONS])["scikit-learn"].count(".") >= 1
    assert version.tags[LineageTag.PIPELINE_NAME] == "mlkeel-training"
    assert version.tags[LineageTag.PIPELINE_RUN] == "run-0042"
    assert version.tags[LineageTag.GATE_METRIC] == "roc_auc"
    assert float(version.tags[LineageTag.GATE_SCORE]) == 0.84
    assert version.tags[LineageTag.BLESSING_REASON] == blessing.reason
    assert version.tags[LineageTag.REPLACED_VERSION] == "1"


def test_an_unblessed_model_is_refused_with_the_reason_and_the_registry_is_unchanged(
    mlflow_shared_uri: str, train_telco, model_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    register(train_telco(mlflow_shared_uri, "strong").model_uri, BLESSED, model_name, mlflow_shared_uri)
    before = _registry_state(mlflow_shared_uri, model_name)
    weak = train_telco(mlflow_shared_uri, "weak", **WEAK_MODEL)

    with caplog.at_level(logging.ERROR), pytest.raises(NotBlessedError) as caught:
        register(weak.model_uri, NOT_BLESSED, model_name, mlflow_shared_uri)

    assert NOT_BLESSED.reason in str(caught.value)
    refusal = f"is not registered as '{model_name}'; the gate's decision: {NOT_BLESSED.reason}"
    assert refusal in str(caught.value)
    assert any(NOT_BLESSED.reason in record.getMessage() for record in caplog.records)
    assert (
        _registry_state(mlflow_shared_uri, model_name)
        == before
        == {
            "versions": ["1"],
            "aliases": {CHAMPION_ALIAS: "1"},
        }
    )


def test_a_fingerprint_that_contradicts_the_training_run_registers_nothing(
    mlflow_shared_uri: str, train_telco, model_name: str
) -> None:
    trained = train_telco(mlflow_shared_uri, "strong")
    with pytest.raises(DataError, match="the model was trained on other data"):
        register(trained.model_uri, BLESSED, model_name, mlflow_shared_uri, data_fingerprint="sha256:other")
    assert _registry_state(mlflow_shared_uri, model_name) == {"versions": [], "aliases": {}}


def test_cli_refuses_an_unblessed_blessing_file_in_one_line(
    mlflow_local_uri: str, tmp_path: Path, model_name: str
) -> None:
    NOT_BLESSED.save(str(tmp_path / "blessing.json"))
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlkeel.components.register",
            "--model-uri",
            "models:/m-0123456789abcdef",
            "--blessing",
            str(tmp_path / "blessing.json"),
            "--model-name",
            model_name,
            "--tracking-uri",
            mlflow_local_uri,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1
    assert completed.stdout == ""
    assert completed.stderr.splitlines() == [
        f"error: models:/m-0123456789abcdef is not registered as '{model_name}'; "
        f"the gate's decision: {NOT_BLESSED.reason}"
    ]
    assert _registry_state(mlflow_local_uri, model_name) == {"versions": [], "aliases": {}}


def test_cli_registers_a_blessed_model_and_prints_the_result(
    mlflow_shared_uri: str, train_telco, model_name: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from mlkeel.components.register.cli import main

    BLESSED.save(str(tmp_path / "blessing.json"))
    trained = train_telco(mlflow_shared_uri, "strong")
    done = CliRunner().invoke(
        main,
        [
            "--model-uri",
            trained.model_uri,
            "--blessing",
            str(tmp_path / "blessing.json"),
            "--model-name",
            model_name,
            "--tracking-uri",
            mlflow_shared_uri,
        ],
    )
    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    assert (printed["version"], printed["aliases"], printed["model_uri"]) == (
        "1",
        [CHAMPION_ALIAS],
        f"models:/{model_name}/1",
    )
    assert Blessing.load(str(tmp_path / "blessing.json")).blessed
