"""Compiled YAML is golden: the committed files equal a fresh compile, and compiling is byte-deterministic."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import yaml

from mlkeel import compiler
from mlkeel.components import STAGES

TRAINING_STAGES = (
    "ingest",
    "validate",
    "split",
    "train",
    "evaluate",
    "fairness",
    "explain",
    "gate",
    "register",
    "model_card",
)


def test_committed_yaml_and_readmes_are_current() -> None:
    stale = compiler.stale_targets()
    assert not stale, f"stale compiled files (run `mlkeel compile` and commit): {stale}"


def test_two_compiles_are_byte_identical_and_the_registry_setting_repoints_every_image(
    tmp_path: Path,
) -> None:
    compiler.run_compiler(tmp_path / "a")
    compiler.run_compiler(tmp_path / "b")
    for target in compiler.targets():
        assert filecmp.cmp(tmp_path / "a" / target.relative_path, tmp_path / "b" / target.relative_path, False)
    compiler.run_compiler(tmp_path / "acme", image_registry="ghcr.io/acme", image_tag="1.2.3")
    for stage in STAGES:
        component = yaml.safe_load((tmp_path / "acme" / "components" / stage / "component.yaml").read_text())
        (executor,) = component["deploymentSpec"]["executors"].values()
        assert executor["container"]["image"] == f"ghcr.io/acme/{stage}:1.2.3"
    # The first document is the PipelineSpec; the second, the platform spec (kfp-kubernetes settings).
    pipeline = next(yaml.safe_load_all((tmp_path / "acme" / "pipelines" / "training.yaml").read_text()))
    images = {executor["container"]["image"] for executor in pipeline["deploymentSpec"]["executors"].values()}
    assert images == {f"ghcr.io/acme/{stage}:1.2.3" for stage in TRAINING_STAGES}


def test_compiled_components_need_no_runtime_pip_install() -> None:
    for stage in STAGES:
        text = (compiler.source_root() / "components" / stage / "component.yaml").read_text()
        assert "pip install" not in text, f"{stage}: the component would pip-install at run time"


def test_check_command_fails_on_a_stale_file(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "mlkeel.cli", "compile", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    copy = tmp_path / "tree"
    compiler.run_compiler(copy)
    (copy / "components" / "split" / "component.yaml").write_text("stale\n")
    assert compiler.stale_targets(copy) == ["components/split/component.yaml"]
