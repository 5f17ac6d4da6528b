"""The test control plane itself: one Kubernetes version everywhere, real authentication and authorization,
a fake node that runs pods, and nothing left running after it stops.
"""

from __future__ import annotations

import re
import socket
from pathlib import Path

import pytest
import yaml

from mlkeel.cluster import controlplane
from mlkeel.cluster.controlplane import ControlPlane
from mlkeel.k8s_schema import KUBERNETES_VERSION
from tests.cluster.conftest import MANIFESTS, REPO

KUBECLUSTER = REPO / "tools" / "kubecluster"


def _minor(version: str) -> str:
    match = re.match(r"v?(\d+\.\d+)", version)
    assert match, f"not a version: {version}"
    return match.group(1)


def test_one_kubernetes_minor_for_the_schemas_kind_and_the_control_plane(control_plane: ControlPlane) -> None:
    go_mod = (KUBECLUSTER / "go.mod").read_text()
    (required,) = re.findall(r"^\s*k8s\.io/kubernetes (v\S+)", go_mod, flags=re.MULTILINE)
    stamped = re.search(r"component-base/version\.gitVersion=(\S+)", (KUBECLUSTER / "ldflags").read_text())
    assert stamped and stamped.group(1) == required, "ldflags stamps another version than go.mod builds"
    # Every staging module is the published one of the same release (v1.X.Y <-> v0.X.Y).
    staging = set(re.findall(r"^\s*(k8s\.io/\S+) => \1 (v\S+)$", go_mod, flags=re.MULTILINE))
    assert len(staging) > 20 and {version for _, version in staging} == {"v0" + required[2:]}

    status, body = control_plane.get("/version")
    assert status == 200 and yaml.safe_load(body)["gitVersion"] == required

    kind = yaml.safe_load((MANIFESTS / "kind" / "cluster.yaml").read_text())
    images = {node["image"] for node in kind["nodes"]}
    assert {_minor(image.split(":")[1]) for image in images} == {_minor(required)} == {_minor(KUBERNETES_VERSION)}


def test_requests_are_authenticated_and_authorized_by_rbac(control_plane: ControlPlane) -> None:
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    assert control_plane.get("/api/v1/namespaces", token="not-a-token")[0] == 401
    with control_plane.api_client() as admin:
        core = k8s.CoreV1Api(admin)
        core.create_namespaced_service_account("default", {"metadata": {"name": "nobody"}})
        issued = core.create_namespaced_service_account_token(
            "nobody", "default", k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[]))
        )
    token = issued.status.token
    with control_plane.api_client(token=token) as nobody:
        review = k8s.AuthenticationV1Api(nobody).create_self_subject_review(k8s.V1SelfSubjectReview())
        assert review.status.user_info.username == "system:serviceaccount:default:nobody"
        with pytest.raises(ApiException) as refused:
            k8s.CoreV1Api(nobody).list_namespaced_pod("default")
    assert refused.value.status == 403
    assert 'cannot list resource \\"pods\\"' in refused.value.body


def test_a_deployment_gets_ready_pods_on_the_fake_node_and_a_broken_image_never_does(
    control_plane: ControlPlane,
) -> None:
    from kubernetes import client as k8s

    def deployment(name: str, image: str) -> dict:
        labels = {"app": name}
        return {
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": image}]}},
            },
        }

    with control_plane.api_client() as admin:
        apps, core = k8s.AppsV1Api(admin), k8s.CoreV1Api(admin)
        apps.create_namespaced_deployment("default", deployment("works", "example/works:1"))
        apps.create_namespaced_deployment("default", deployment("broken", controlplane.NEVER_READY_IMAGE))
        watched = {"works": 0, "broken": 0}
        import time

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and watched["works"] < 2:
            for name in watched:
                watched[name] = apps.read_namespaced_deployment(name, "default").status.ready_replicas or 0
            time.sleep(0.2)
        broken = core.list_namespaced_pod("default", label_selector="app=broken").items
    assert watched == {"works": 2, "broken": 0}
    assert [pod.status.phase for pod in broken] == ["Pending", "Pending"]
    assert {pod.spec.node_name for pod in broken} == set(control_plane.node_names), "scheduled, never started"


def test_the_audit_log_holds_client_calls_not_the_components(control_plane: ControlPlane) -> None:
    from kubernetes import client as k8s

    mark = control_plane.audit_mark()
    with control_plane.api_client() as admin:
        k8s.CoreV1Api(admin).create_namespaced_config_map("default", {"metadata": {"name": "audited"}})
    events = control_plane.audit_events(mark)
    assert [(event["verb"], event["objectRef"]["name"]) for event in events] == [("create", "audited")]
    assert events[0]["user"]["username"] == controlplane.ADMIN_USER
    assert controlplane.COMPONENTS_USER not in {event["user"].get("username") for event in control_plane.audit_events()}


def test_stopping_ends_every_process_and_frees_the_port(tmp_path: Path) -> None:
    with controlplane.running(tmp_path / "plane") as plane:
        port = int(plane.server.rsplit(":", 1)[1])
        processes = list(plane.processes.values())
        assert [name for name in plane.processes] == [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
        ]
        assert plane.started_s < controlplane.START_TIMEOUT_S
    assert [process.poll() is not None for process in processes] == [True] * 5
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, "the API server's port still answers"
