"""The local registry a pipeline run under test wrote to, as a user's fresh MLflow client sees it."""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from mlkeel.local import LocalStore


def registry(workdir: Path) -> MlflowClient:
    """A client of ``workdir``'s MLflow store, tracking and registry both set explicitly.

    Explicit, because an in-process run elsewhere in the session may have set mlflow's global registry URI.
    """
    uri = LocalStore.create(workdir).tracking_uri
    return MlflowClient(uri, registry_uri=uri)
