"""Fixtures of the cluster tests: a real control plane (``mlkeel.cluster.controlplane``) per test module.

The control plane is the project's build of the upstream components (tools/kubecluster, built on first use and
cached). Where Go is missing and nothing is cached, the tests skip with that reason; under CI (CI=true) or with
MLKEEL_REQUIRE_CLUSTER=1 that is an error instead, so CI never passes without running them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlkeel.cluster import controlplane, gotools

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
FIELD_MANAGER = "mlkeel-tests"


def _unavailable_reason() -> str:
    if shutil.which("go") is not None:
        return ""
    try:
        if gotools.binary_path(controlplane.TOOL).is_file():
            return ""
    except gotools.GoToolError:
        pass
    return "Go is not installed and no kubecluster binary is cached: the control plane cannot be built here"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _unavailable_reason()
    ours = [item for item in items if "tests/cluster/" in item.nodeid]
    for item in ours:
        item.add_marker(pytest.mark.cluster)
    if not reason or not ours:
        return
    if os.environ.get("CI", "").lower() == "true" or os.environ.get("MLKEEL_REQUIRE_CLUSTER") == "1":
        raise pytest.UsageError(f"{reason}; CI must run the cluster tests: install Go")
    for item in ours:
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    """A running control plane with one kwok node, shared by one test module, stopped after it."""
    with controlplane.running(tmp_path_factory.mktemp("control-plane")) as plane:
        yield plane


def apply(api_client: Any, documents: list[dict[str, Any]]) -> list[Any]:
    """Server-side apply each object, as ``kubectl apply --server-side`` does; returns what the server holds."""
    from kubernetes.dynamic import DynamicClient

    dynamic = DynamicClient(api_client)
    applied = []
    for document in documents:
        resource = dynamic.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        applied.append(
            dynamic.server_side_apply(
                resource,
                body=document,
                namespace=document["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
            )
        )
    return applied


def rendered_kustomization(directory: Path, scratch: Path) -> list[dict[str, Any]]:
    """A local kustomization rendered with ``kubectl kustomize``, its ``*.env`` files from the examples."""
    from mlkeel.k8s_schema import kustomize, with_example_env_files

    return kustomize(with_example_env_files(MANIFESTS, directory, scratch))


def contains(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Where ``actual`` (an object read back from the server) differs from ``expected`` (what was rendered).

    Every field ``expected`` sets must be in ``actual`` with the same value; fields the server added
    (defaults, status, metadata it manages) are ignored.

    Returns:
        One line per difference (empty: ``actual`` holds all of ``expected``).
    """
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{path or '.'}: expected a map, the server has {actual!r}"]
        differences = []
        for key, value in expected.items():
            if key not in actual:
                differences.append(f"{path}.{key}: missing on the server")
            else:
                differences += contains(value, actual[key], f"{path}.{key}")
        return differences
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{path}: expected {expected!r}, the server has {actual!r}"]
        return [
            line for index, item in enumerate(expected) for line in contains(item, actual[index], f"{path}[{index}]")
        ]
    return [] if expected == actual else [f"{path}: expected {expected!r}, the server has {actual!r}"]
