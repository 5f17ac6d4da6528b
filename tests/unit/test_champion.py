"""Champion: the registry's champion resolved to an exact version, with the data it was trained on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from mlkeel.components.champion.logic import fetch_champion, resolve_champion
from mlkeel.components.gate.logic import decide
from mlkeel.components.register.logic import register
from mlkeel.errors import RegistryError

BLESSED = decide({"roc_auc": 0.84}, thresholds={"roc_auc": 0.7}, no_comparison_reason="no model is registered yet")


def test_fetch_returns_the_champion_version_its_reference_rows_and_lineage(
    mlflow_shared_uri: str, train_telco, model_name: str, telco_fingerprint: str, tmp_path: Path
) -> None:
    trained = train_telco(mlflow_shared_uri, "strong")
    register(trained.model_uri, BLESSED, model_name, mlflow_shared_uri)
    lineage = fetch_champion(model_name, str(tmp_path / "reference"), str(tmp_path / "schema"), mlflow_shared_uri)
    assert (lineage.version, lineage.model_uri) == ("1", f"models:/{model_name}/1")
    assert lineage.run_id == trained.result.mlflow_run_id
    assert lineage.data_fingerprint == telco_fingerprint
    assert (lineage.target_column, lineage.positive_label) == ("Churn", "Yes")
    assert pq.read_table(tmp_path / "reference").equals(pq.read_table(trained.train_path))


def test_a_missing_alias_is_a_clear_registry_error(mlflow_local_uri: str, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="no version of 'nobody' has alias 'champion'"):
        resolve_champion("nobody", mlflow_local_uri)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlkeel.components.champion",
            "--model-name",
            "nobody",
            "--mlflow-uri",
            mlflow_local_uri,
            "--reference-out",
            str(tmp_path / "r"),
            "--schema-out",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr.startswith("error: no version of 'nobody' has alias 'champion'")
