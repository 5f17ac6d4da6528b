"""Fixtures of the integration tests (a real ``mlflow server`` process: ``mlflow_server`` in fixtures_mlflow)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def server_uri(mlflow_server: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The server's URI as this process's MLflow URIs; MLflow's process-wide URIs are put back after the test."""
    import mlflow

    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", mlflow_server)
    yield mlflow_server
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)
