"""The tree keeps its promises: every stage has the same shape, and mlkeel installs under one namespace."""

from __future__ import annotations

import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from mlkeel import compiler
from mlkeel.components import STAGES

REPO = Path(__file__).resolve().parent.parent
STAGE_FILES = (
    "__init__.py",
    "logic.py",
    "component.py",
    "cli.py",
    "__main__.py",
    "component.yaml",
    "README.md",
)


@pytest.mark.parametrize("stage", STAGES)
def test_every_stage_folder_has_the_same_shape(stage: str) -> None:
    folder = REPO / "components" / stage
    missing = [name for name in STAGE_FILES if not (folder / name).is_file()]
    assert not missing, f"components/{stage} lacks {missing}"
    assert (REPO / "tests" / "unit" / f"test_{stage}.py").is_file(), f"no tests/unit/test_{stage}.py"
    assert (REPO / "images" / stage / "Dockerfile").is_file(), f"no images/{stage}/Dockerfile"


def test_stage_folders_and_packaging_agree() -> None:
    folders = {path.parent.name for path in (REPO / "components").glob("*/component.py")}
    assert folders == set(STAGES), "components/ folders and mlkeel.components.STAGES differ"
    packages = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    assert {f"mlkeel.components.{stage}" for stage in STAGES} <= set(packages)
    assert all(package == "mlkeel" or package.startswith("mlkeel.") for package in packages)


@pytest.mark.parametrize("stage", STAGES)
def test_logic_imports_without_kfp_or_heavy_libraries(stage: str) -> None:
    probe = (
        f"import sys, mlkeel.components.{stage}.logic; "
        "heavy = [m for m in ('kfp', 'mlflow', 'sklearn', 'pandas', 'pyarrow') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    completed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert completed.stdout.strip() == "", f"importing {stage}.logic pulls in {completed.stdout.strip()}"


def test_wheel_installs_one_namespace_with_the_compiled_yaml(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("mlkeel-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {name.split("/")[0] for name in names} == {
        "mlkeel",
        f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info",
    }
    for stage in STAGES:
        assert f"mlkeel/components/{stage}/component.yaml" in names
        for name in compiler.more_components(stage):  # a stage's other components (tune: tune_trial, tune_select)
            assert f"mlkeel/components/{stage}/{name}.yaml" in names
    assert "mlkeel/pipelines/training.yaml" in names
    assert "mlkeel/data/telco_churn/telco_churn.csv" in names
    assert "mlkeel/components/model_card/templates/card.html.j2" in names  # package data, read at run time
