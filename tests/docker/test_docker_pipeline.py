"""The training pipeline under kfp.local's DockerRunner: every task in its own stage image, as a cluster runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from mlkeel.imagebuild import BuildResult
from mlkeel.local import run_training

pytestmark = [pytest.mark.docker, pytest.mark.pipeline]

ARGUMENTS = {"target_column": "Churn", "positive_label": "Yes", "key_columns": ["customerID"], "model_name": "churn"}


def test_docker_run_gives_the_warm_run_metrics_as_a_non_root_user(
    built: dict[str, BuildResult], tmp_path: Path
) -> None:
    """Every task in a fresh container against every task forked from one warm server: the same model.

    The subprocess runner (a fresh process per task, like a container) runs this pipeline in `make test-py313`
    (tests/e2e/test_python_versions.py); a third run here would cost CI a minute and prove nothing the two do not.
    """
    # The containers' MLflow store is a SQLite file outside the work folder (mounted into each task's container).
    store = f"sqlite:///{tmp_path / 'stores' / 'mlflow.db'}"
    in_containers = run_training(ARGUMENTS, workdir=tmp_path / "docker", tracking_uri=store, runner="docker")
    warm = run_training(ARGUMENTS, workdir=tmp_path / "warm", runner="warm")

    assert in_containers.fingerprint == warm.fingerprint
    assert in_containers.metrics == pytest.approx(warm.metrics, abs=1e-12)
    assert in_containers.top_features == warm.top_features
    assert (warm.blessed, warm.registered_version) == (True, "1")
    assert in_containers.metrics["roc_auc"] > 0.8
    assert (in_containers.rows_valid, in_containers.blessed, in_containers.registered_version) == (7043, True, "1")
    # Every file a task wrote belongs to the images' non-root user, not root.
    written = [path for path in in_containers.run_folder.rglob("*") if path.is_file()]
    assert written and {path.stat().st_uid for path in written} == {1000}
    # Train logged its run into that store, and evaluate, fairness, the gate and register found it and added to it.
    client = MlflowClient(store, registry_uri=store)
    champion = client.get_model_version_by_alias("churn", "champion")
    logged = client.get_run(champion.run_id).data.metrics
    assert str(champion.version) == "1" and logged["holdout_roc_auc"] == pytest.approx(in_containers.metrics["roc_auc"])
    assert {"train_roc_auc", "fairness_passed", "gate_blessed"} <= set(logged)
    assert not (tmp_path / "docker" / "mlflow.db").exists()


def test_a_multiclass_run_in_containers_gives_the_warm_run_metrics_and_registers_a_multiclass_champion(
    built: dict[str, BuildResult], tmp_path: Path
) -> None:
    """Issue 19's non-binary parity case: scikit-learn's wine (178 rows, three cultivars), every task in its image.

    Compared with the warm runner, as the binary test above: a subprocess run of wine costs 40-90 s of CI on 2 busy
    cores, a warm one under 10 s.
    """
    from sklearn.datasets import load_wine

    workdir = tmp_path / "docker"
    workdir.mkdir()
    wine = load_wine(as_frame=True).frame
    wine["cultivar"] = wine.pop("target").map({0: "barolo", 1: "grignolino", 2: "barbera"})
    data = workdir / "wine.csv"  # inside the pipeline root: the one folder the containers see
    wine.to_csv(data, index=False)
    arguments = {
        "data_uri": str(data), "target_column": "cultivar", "positive_label": "", "key_columns": [],
        "estimator": "logistic_regression", "model_name": "wine", "experiment_name": "wine",
        "gate_metric": "macro_f1", "gate_thresholds": {}, "sensitive_columns": [], "slice_columns": [],
    }  # fmt: skip
    store = f"sqlite:///{tmp_path / 'stores' / 'mlflow.db'}"
    in_containers = run_training(arguments, workdir=workdir, tracking_uri=store, runner="docker")
    warm = run_training(arguments, workdir=tmp_path / "warm", runner="warm")
    print(f"wine: docker {in_containers.seconds:.0f} s, warm {warm.seconds:.0f} s")

    assert in_containers.fingerprint == warm.fingerprint
    assert in_containers.metrics == pytest.approx(warm.metrics, abs=1e-12)
    assert {"accuracy", "macro_f1", "log_loss", "roc_auc_ovr"} <= set(in_containers.metrics)
    assert in_containers.metrics["macro_f1"] > 0.9 and "roc_auc" not in in_containers.metrics
    assert (in_containers.rows_valid, in_containers.blessed, in_containers.registered_version) == (178, True, "1")
    client = MlflowClient(store, registry_uri=store)
    champion = client.get_model_version_by_alias("wine", "champion")
    assert client.get_run(champion.run_id).data.tags["mlkeel.task"] == "multiclass"


def test_a_store_the_containers_cannot_write_refuses_the_run_before_any_task_starts(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    folder.mkdir()
    (folder / "notes.txt").write_text("someone else's file")
    if os.geteuid() != 0:
        folder.chmod(0o555)  # the containers run as this user, who cannot write there
    command = [sys.executable, "-m", "mlkeel.cli", "run", "training", "--local", "--runner", "docker"]
    completed = subprocess.run(
        [*command, "--mlflow-uri", f"sqlite:///{folder / 'mlflow.db'}", "--workdir", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 1, completed.stdout + completed.stderr
    last = completed.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --runner docker: ") and str(folder) in last, completed.stderr
    if os.geteuid() == 0:
        assert "does not hand over a folder holding other files (notes.txt)" in last
    assert not list((tmp_path / "work").glob("mlkeel-training-*")) and "started" not in completed.stdout
