"""The local MLflow store of ``mlkeel run --local``: a new one starts from the cached, migrated empty database.

``mlflow_local_uri`` only resets MLflow's process-wide URIs afterwards (``ensure_experiment`` sets them).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from mlkeel.local import LocalStore, seed_sqlite_store


def _experiments(database: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT name, artifact_location FROM experiments ORDER BY experiment_id").fetchall()


def _schema_revision(database: Path) -> str:
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT version_num FROM alembic_version").fetchone()[0]


def test_new_stores_start_from_one_cached_database_and_hold_what_mlflow_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_local_uri: str
) -> None:
    import mlflow
    from mlflow.store.db.utils import _get_latest_schema_revision

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    first = LocalStore.create(tmp_path / "first")
    # Seeded as soon as the store is decided: the monitoring command opens it (champion lookup) before a pipeline.
    assert _schema_revision(first.workdir / "mlflow.db") == _get_latest_schema_revision()
    first.ensure_experiment("churn")
    template = tmp_path / "cache" / "mlkeel" / f"mlflow-{mlflow.__version__}-empty.db"
    assert template.is_file()
    assert _experiments(template) == []  # tables only: MLflow creates its Default experiment on first use

    second = LocalStore.create(tmp_path / "second")
    second.ensure_experiment("churn")
    for store in (first, second):
        database = store.workdir / "mlflow.db"
        assert _schema_revision(database) == _get_latest_schema_revision()
        assert [name for name, _ in _experiments(database)] == ["Default", "churn"]
        assert _experiments(database)[1][1] == store.artifact_location
    assert not list((tmp_path / "cache" / "mlkeel").glob(".*")), "no partial file is left in the cache"


def test_an_unusable_cache_leaves_the_store_to_mlflow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mlflow_local_uri: str
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder would go")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    monkeypatch.chdir(tmp_path)
    store = LocalStore.create(tmp_path / "work")
    store.ensure_experiment("churn")
    assert [name for name, _ in _experiments(store.workdir / "mlflow.db")] == ["Default", "churn"]


def test_a_store_that_cannot_be_put_in_place_leaves_no_partial_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    work = tmp_path / "work"
    (work / "mlflow.db").mkdir(parents=True)  # the rename onto it fails after the copy is written
    (work / "mlflow.db" / "kept").write_text("a user's file")

    seed_sqlite_store(work / "mlflow.db")

    assert sorted(path.name for path in work.iterdir()) == ["mlflow.db"]
    assert (work / "mlflow.db" / "kept").read_text() == "a user's file"
