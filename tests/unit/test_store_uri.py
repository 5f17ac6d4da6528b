"""Local MLflow store URIs (mlkeel.docker_runner): where the store is, and its URI made absolute for the tasks."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlkeel.docker_runner import absolute_store_uri, local_store_path
from mlkeel.errors import ParameterError


def test_local_stores_are_found_and_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert local_store_path("sqlite:////srv/stores/mlflow.db") == ("sqlite", Path("/srv/stores/mlflow.db"))
    assert local_store_path("sqlite:///stores/mlflow.db") == ("sqlite", tmp_path / "stores" / "mlflow.db")
    assert local_store_path("file:///srv/mlruns") == ("file", Path("/srv/mlruns"))
    assert local_store_path("mlruns") == ("file", tmp_path / "mlruns")
    assert absolute_store_uri("sqlite:///stores/mlflow.db") == f"sqlite:///{tmp_path}/stores/mlflow.db"
    assert absolute_store_uri("./mlruns") == (tmp_path / "mlruns").as_uri()
    for remote in ("http://127.0.0.1:5000", "postgresql://user@db/mlflow", ""):
        assert absolute_store_uri(remote) == remote
    assert local_store_path("https://mlflow.example.com") is None


def test_an_in_memory_store_is_refused() -> None:
    with pytest.raises(ParameterError, match="in memory"):
        local_store_path("sqlite://")


def test_a_store_under_root_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    from mlkeel.docker_runner import StoreFolder, prepare_store_folders

    folder = Path("/root/mlkeel-never-made/stores")
    with pytest.raises(
        ParameterError, match=r"cannot reach the store \(/root/mlkeel-never-made/stores\): it is inside"
    ):
        prepare_store_folders([StoreFolder(folder, "the store", whole=False)], tmp_path, f"sqlite:///{folder}/m.db")
    assert not folder.parent.exists()
