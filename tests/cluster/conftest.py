"""Fixtures of the cluster tests: a real control plane (``mlkeel.cluster.controlplane``) per test module.

The control plane is the project's build of the upstream components (tools/kubecluster, built on first use and
cached). Where Go is missing and nothing is cached, the tests skip with that reason; under CI (CI=true) or with
MLKEEL_REQUIRE_CLUSTER=1 that is an error instead, so CI never passes without running them.

The real-node tests (``test_node*.py``, marker ``node``) add a real kubelet, containerd, kube-proxy and CoreDNS
(``mlkeel.cluster.node``); where the machine lacks root, cgroups, iptables, runc, the CNI plugins or Docker
they skip with that reason, and under CI (or MLKEEL_REQUIRE_NODE=1) fail instead.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from mlkeel.cluster import controlplane, gotools, node

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


def _in_ci(variable: str) -> bool:
    return os.environ.get("CI", "").lower() == "true" or os.environ.get(variable) == "1"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    ours = [item for item in items if "tests/cluster/" in item.nodeid]
    real_node = [item for item in ours if "tests/cluster/test_node" in item.nodeid]
    for item in ours:
        item.add_marker(pytest.mark.cluster)
    for item in real_node:
        item.add_marker(pytest.mark.node)
    reason = _unavailable_reason() if ours else ""
    if reason:
        if _in_ci("MLKEEL_REQUIRE_CLUSTER"):
            raise pytest.UsageError(f"{reason}; CI must run the cluster tests: install Go")
        for item in ours:
            item.add_marker(pytest.mark.skip(reason=reason))
        return
    node_reason = node.unavailable_reason() if real_node else ""
    if node_reason:
        if _in_ci("MLKEEL_REQUIRE_NODE"):
            raise pytest.UsageError(f"{node_reason}; CI must run the real-node tests (marker node)")
        for item in real_node:
            item.add_marker(pytest.mark.skip(reason=node_reason))


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    """A running control plane with one kwok node, shared by one test module, stopped after it."""
    with controlplane.running(tmp_path_factory.mktemp("control-plane")) as plane:
        yield plane


@pytest.fixture(scope="module")
def node_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[controlplane.ControlPlane]:
    """A running control plane without fake nodes (every pod goes to the real node), shared by one module."""
    with controlplane.running(tmp_path_factory.mktemp("node-control-plane"), nodes=0) as plane:
        yield plane


@pytest.fixture(scope="module")
def serve_image() -> str:
    """The mlkeel/serve image of this checkout, built offline (reused when up to date)."""
    from mlkeel import imagebuild

    return imagebuild.build_all(offline=True, stages=["serve"])[0].tags[0]


@pytest.fixture(scope="module")
def real_node(
    node_plane: controlplane.ControlPlane,
    serve_image: str,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[node.Node]:
    """A real node (containerd, kubelet, kube-proxy, CoreDNS) joined to ``node_plane``, the serve image side-loaded.

    Prints the node's and the control plane's logs when a test of the module failed; cleans up the machine
    (containers, mounts, iptables rules, bridge, cgroups) after the module, and fails if a process of the node
    is still running then.
    """
    failed_before = request.session.testsfailed
    workdir = tmp_path_factory.mktemp("node")
    with node.running(node_plane, workdir, images=(serve_image,)) as real:
        print(
            f"node {node.NODE_NAME} Ready in {real.started_s:.1f} s (control plane {node_plane.started_s:.1f} s, "
            f"CoreDNS ready {real.dns_s:.1f} s after its start); {serve_image} side-loaded in {real.images_s:.1f} s"
        )
        yield real
        if request.session.testsfailed > failed_before:
            print(f"\nthe node's logs:\n{real.logs()}\n--- kube-apiserver\n{node_plane.log_tail('kube-apiserver')}")
    # Each of the node's processes (containerd, kubelet, kube-proxy, CoreDNS) names its work folder in its arguments.
    left = processes_naming(workdir)
    assert left == [], "processes of the node still running after it stopped:\n" + "\n".join(left)


def processes_naming(folder: Path) -> list[str]:
    """The command lines of running processes that name ``folder`` in their arguments."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            words = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:  # exited meanwhile
            continue
        line = " ".join(word.decode(errors="replace") for word in words if word)
        if str(folder) in line:
            found.append(f"{entry.name}: {line}")
    return found


def wait_for(what: str, condition: Callable[[], Any], timeout_s: float = 30.0, details: Callable[[], str] = str) -> Any:
    """Poll until ``condition()`` is truthy (controllers and kubelets act asynchronously); return its value.

    Fails naming ``what``, followed by ``details()`` (a node's logs, say).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout_s:g}s: {what}\n{details()}".rstrip())
        time.sleep(0.2)


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
