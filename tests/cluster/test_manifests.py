"""manifests/ against a real API server: every local kustomization applied (server-side apply) and read back,
and the Secret the compiled pipelines read exists under the name and key they name.

The kustomizations' ``*.env`` files come from their committed ``*.env.example``. The KFP kustomizations pull
remote bases from GitHub, which cannot be fetched here: they stay skipped with that reason.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlkeel.cluster.controlplane import ControlPlane
from mlkeel.k8s_schema import is_remote_kustomization, kustomization_dirs
from tests.cluster.conftest import MANIFESTS, REPO, apply, contains, rendered_kustomization

KUSTOMIZATIONS = kustomization_dirs(MANIFESTS)
# KFP's own namespace: the KFP install (manifests/kfp, remote) creates it; manifests/pipelines puts a Secret in it.
KFP_NAMESPACE = "kubeflow"


def _id(path: Path) -> str:
    return str(path.relative_to(MANIFESTS))


@pytest.fixture(scope="module")
def admin(control_plane: ControlPlane) -> Any:
    """An admin client; the KFP namespace exists, as a KFP install leaves it."""
    from kubernetes import client as k8s

    with control_plane.api_client() as api_client:
        k8s.CoreV1Api(api_client).create_namespace({"metadata": {"name": KFP_NAMESPACE}})
        yield api_client


def _read_back(admin: Any, document: dict[str, Any]) -> dict[str, Any]:
    from kubernetes.dynamic import DynamicClient

    resource = DynamicClient(admin).resources.get(api_version=document["apiVersion"], kind=document["kind"])
    live = resource.get(name=document["metadata"]["name"], namespace=document["metadata"].get("namespace"))
    return dict(live.to_dict())


@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=[_id(path) for path in KUSTOMIZATIONS])
def test_every_local_kustomization_applies_and_reads_back_as_written(
    directory: Path, admin: Any, tmp_path: Path
) -> None:
    if is_remote_kustomization(directory):
        pytest.skip(f"{_id(directory)} pulls a remote base from GitHub, which cannot be fetched here")
    documents = rendered_kustomization(directory, tmp_path)
    assert documents, f"{_id(directory)} rendered nothing"
    apply(admin, documents)
    for document in documents:
        live = _read_back(admin, document)
        assert contains(document, live) == [], f"{document['kind']} {document['metadata']['name']} differs"


def _secrets_named_by(pipeline: Path) -> set[tuple[str, str]]:
    """(Secret name, key) of every ``secretAsEnv`` in a compiled pipeline's Kubernetes platform spec."""
    _, platform = yaml.safe_load_all(pipeline.read_text())
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    return {
        (secret["secretName"], mapping["secretKey"])
        for executor in executors.values()
        for secret in executor.get("secretAsEnv", [])
        for mapping in secret["keyToEnv"]
    }


def test_the_secret_the_compiled_pipelines_read_exists_after_applying_manifests_pipelines(
    admin: Any, tmp_path: Path
) -> None:
    from kubernetes import client as k8s

    named = set().union(*(_secrets_named_by(path) for path in sorted((REPO / "pipelines").glob("*.yaml"))))
    assert named, "the compiled pipelines name no Secret"
    apply(admin, rendered_kustomization(MANIFESTS / "pipelines", tmp_path))
    example = dict(
        line.split("=", 1)
        for line in (MANIFESTS / "pipelines" / "mlflow-client.env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    core = k8s.CoreV1Api(admin)
    for name, key in sorted(named):
        secret = core.read_namespaced_secret(name, KFP_NAMESPACE)
        assert key in (secret.data or {}), f"Secret {KFP_NAMESPACE}/{name} has no key {key!r}"
        assert base64.b64decode(secret.data[key]).decode() == example[key]
