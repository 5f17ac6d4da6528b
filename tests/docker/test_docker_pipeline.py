"""The training pipeline under kfp.local's DockerRunner: every task in its own stage image, as a cluster runs it."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlkeel.imagebuild import BuildResult
from mlkeel.local import run_training

pytestmark = [pytest.mark.docker, pytest.mark.pipeline]

ARGUMENTS = {"target_column": "Churn", "positive_label": "Yes", "key_columns": ["customerID"], "model_name": "churn"}


def test_docker_run_gives_the_subprocess_and_warm_run_metrics_as_a_non_root_user(
    built: dict[str, BuildResult], tmp_path: Path
) -> None:
    in_containers = run_training(ARGUMENTS, workdir=tmp_path / "docker", runner="docker")
    in_subprocesses = run_training(ARGUMENTS, workdir=tmp_path / "subprocess", runner="subprocess")
    warm = run_training(ARGUMENTS, workdir=tmp_path / "warm", runner="warm")

    assert in_containers.fingerprint == in_subprocesses.fingerprint == warm.fingerprint
    assert in_containers.metrics == pytest.approx(in_subprocesses.metrics, abs=1e-12)
    assert warm.metrics == in_subprocesses.metrics  # forked from a warm server: the same process, bit for bit
    assert warm.top_features == in_subprocesses.top_features
    assert (warm.blessed, warm.registered_version) == (True, "1")
    assert in_containers.metrics["roc_auc"] > 0.8
    assert (in_containers.rows_valid, in_containers.blessed, in_containers.registered_version) == (7043, True, "1")
    # Every file a task wrote belongs to the images' non-root user, not root.
    written = [path for path in in_containers.run_folder.rglob("*") if path.is_file()]
    assert written and {path.stat().st_uid for path in written} == {1000}
