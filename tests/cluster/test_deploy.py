"""Deploy against a real Kubernetes API server: every strategy, rollback, idempotence, RBAC, the registry check.

The control plane is real (etcd, kube-apiserver with RBAC and Pod Security admission, the controller manager's
Deployment/ReplicaSet/EndpointSlice/garbage-collection controllers, the scheduler); the node is kwok's fake one:
it reports pods Running and Ready without running a container, and leaves pods of ``NEVER_READY_IMAGE``
Pending, as a node does with an image that never starts. Deploy runs as the ``mlkeel-deployer`` ServiceAccount
with the Role of manifests/serving/rbac.yaml (a token from the TokenRequest API), so every call it makes is
authorized by the real RBAC authorizer; the API server's audit log says which calls those were.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlkeel.cluster.controlplane import NEVER_READY_IMAGE, WRITE_VERBS, ControlPlane
from mlkeel.components.deploy.logic import (
    CANARY,
    CanaryReport,
    CanaryTarget,
    DeploySettings,
    KubeApis,
    Waiting,
    deploy,
    deploy_model,
    metrics_error_rate_check,
    render_deployment,
    render_hpa,
    render_service,
    to_manifest,
)
from mlkeel.constants import CHAMPION_ALIAS, ServingLabel
from mlkeel.errors import DeployError, NotBlessedError
from tests.cluster.conftest import MANIFESTS, apply, contains, rendered_kustomization, wait_for

NAMESPACE = "mlkeel-serving"
DEPLOYER = "mlkeel-deployer"
DEPLOYER_USER = f"system:serviceaccount:{NAMESPACE}:{DEPLOYER}"
IMAGE = "mlkeel/serve:cluster-test"  # kwok runs no container: the image is never pulled
QUICK = Waiting(timeout_s=60, poll_s=0.25)
NEVER_READY = Waiting(timeout_s=5, poll_s=0.25)


@pytest.fixture(scope="module")
def serving(control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> ControlPlane:
    """manifests/serving applied (namespace with Pod Security "restricted", the deployer's RBAC, the Secret)."""
    documents = rendered_kustomization(MANIFESTS / "serving", tmp_path_factory.mktemp("serving"))
    with control_plane.api_client() as admin:
        apply(admin, documents)
    return control_plane


@pytest.fixture(scope="module")
def deployer_token(serving: ControlPlane) -> str:
    """A token of the mlkeel-deployer ServiceAccount, issued by the API server (TokenRequest)."""
    from kubernetes import client as k8s

    with serving.api_client() as admin:
        request = k8s.AuthenticationV1TokenRequest(spec=k8s.V1TokenRequestSpec(audiences=[], expiration_seconds=3600))
        issued = k8s.CoreV1Api(admin).create_namespaced_service_account_token(DEPLOYER, NAMESPACE, request)
    return str(issued.status.token)


@pytest.fixture
def apis(serving: ControlPlane, deployer_token: str) -> Iterator[KubeApis]:
    """The API clients deploy uses, authenticated as the deployer ServiceAccount."""
    from kubernetes import client as k8s

    with serving.api_client(token=deployer_token) as api_client:
        yield KubeApis(
            apps=k8s.AppsV1Api(api_client), core=k8s.CoreV1Api(api_client), autoscaling=k8s.AutoscalingV2Api(api_client)
        )


@pytest.fixture
def admin(serving: ControlPlane) -> Iterator[Any]:
    """An admin API client, to read what the server holds."""
    with serving.api_client() as api_client:
        yield api_client


def settings(model: str, version: str, **overrides: Any) -> DeploySettings:
    return DeploySettings(
        model_name=model, model_version=version, namespace=NAMESPACE, **({"image": IMAGE} | overrides)
    )


def read(admin: Any, kind: str, name: str) -> dict[str, Any] | None:
    """An object as the server holds it (camelCase dict), or None when it does not exist."""
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    calls = {
        "Deployment": lambda: k8s.AppsV1Api(admin).read_namespaced_deployment(name, NAMESPACE),
        "Service": lambda: k8s.CoreV1Api(admin).read_namespaced_service(name, NAMESPACE),
        "HorizontalPodAutoscaler": lambda: k8s.AutoscalingV2Api(admin).read_namespaced_horizontal_pod_autoscaler(
            name, NAMESPACE
        ),
    }
    try:
        return admin.sanitize_for_serialization(calls[kind]())
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def names(admin: Any, kind: str, app: str) -> list[str]:
    """Names of the Deployments or Services of one serving app."""
    from kubernetes import client as k8s

    selector = f"{ServingLabel.APP}={app}"
    if kind == "Deployment":
        items = k8s.AppsV1Api(admin).list_namespaced_deployment(NAMESPACE, label_selector=selector).items
    else:
        items = k8s.CoreV1Api(admin).list_namespaced_service(NAMESPACE, label_selector=selector).items
    return sorted(item.metadata.name for item in items)


def pods(admin: Any, app: str) -> list[dict[str, Any]]:
    """The app's pods that are not being deleted: name, model version, slot, track, image, IP, ready."""
    from kubernetes import client as k8s

    items = k8s.CoreV1Api(admin).list_namespaced_pod(NAMESPACE, label_selector=f"{ServingLabel.APP}={app}").items
    return [
        {
            "version": pod.metadata.labels[ServingLabel.MODEL_VERSION],
            "slot": pod.metadata.labels[ServingLabel.SLOT],
            "track": pod.metadata.labels[ServingLabel.TRACK],
            "image": pod.spec.containers[0].image,
            "ip": pod.status.pod_ip,
            "ready": any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []),
        }
        for pod in items
        if pod.metadata.deletion_timestamp is None
    ]


def served_versions(admin: Any, app: str) -> list[str]:
    """Sorted model versions of the app's Ready pods."""
    return sorted(pod["version"] for pod in pods(admin, app) if pod["ready"])


def endpoint_ips(admin: Any, service: str) -> set[str]:
    """Ready endpoint addresses of a Service, from the EndpointSlices the endpoint-slice controller keeps."""
    import json

    from kubernetes import client as k8s

    # Read as JSON: the kubernetes client (30.1) refuses to build a slice whose endpoints are null, which is what
    # the controller writes for a Service before its first pod is ready.
    response = k8s.DiscoveryV1Api(admin).list_namespaced_endpoint_slice(
        NAMESPACE, label_selector=f"kubernetes.io/service-name={service}", _preload_content=False
    )
    return {
        address
        for endpoint_slice in json.loads(response.data)["items"]
        for endpoint in endpoint_slice.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready") is not False
        for address in endpoint["addresses"]
    }


def model_arg(deployment: dict[str, Any]) -> str:
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    return str(args[args.index("--model") + 1])


def writes_by_deployer(plane: ControlPlane, since: int) -> list[tuple[str, str, str]]:
    """(verb, resource, name) of every write the deployer made after the mark, as the server audited it."""
    return [
        (event["verb"], event["objectRef"]["resource"], event["objectRef"].get("name", ""))
        for event in plane.audit_events(since, user=DEPLOYER_USER)
        if event["verb"] in WRITE_VERBS
    ]


def healthy(_: CanaryTarget) -> CanaryReport:
    return CanaryReport(True, "error rate 0.00% over 500 requests, within the limit 1.00%", 0.0, 500)


# ----------------------------------------------------------------------------------------------------------
# Rolling
# ----------------------------------------------------------------------------------------------------------


def test_rolling_creates_then_replaces_every_pod_and_the_server_holds_what_deploy_rendered(
    apis: KubeApis, admin: Any
) -> None:
    first = deploy(apis, settings("rolling", "1"), waiting=QUICK)
    assert (first.action, first.deployment) == ("created", "rolling-blue")
    assert served_versions(admin, "rolling") == ["1", "1"]

    second = deploy(apis, settings("rolling", "2"), waiting=QUICK)
    assert (second.action, second.deployment, second.previous_version) == ("updated", "rolling-blue", "1")
    # The Deployment controller rolled every pod: only version 2 pods are left (deploy waited for it).
    assert served_versions(admin, "rolling") == ["2", "2"]
    for kind, rendered in (
        ("Deployment", render_deployment(settings("rolling", "2"), "blue")),
        ("Service", render_service(settings("rolling", "2"), "blue")),
    ):
        expected = to_manifest(rendered)
        live = read(admin, kind, expected["metadata"]["name"])
        assert live is not None, f"{kind} {expected['metadata']['name']} is not on the server"
        assert contains(expected, live) == [], f"{kind} on the server differs from what deploy rendered"
    # The Service routes to the Ready pods of version 2 only.
    service_ips = endpoint_ips(admin, "rolling")
    wait_for(
        "the Service's endpoints are the version 2 pods",
        lambda: endpoint_ips(admin, "rolling") == {pod["ip"] for pod in pods(admin, "rolling") if pod["ready"]},
    )
    assert len(service_ips) <= 2


def test_rolling_puts_the_previous_template_back_when_the_new_version_never_becomes_ready(
    apis: KubeApis, admin: Any
) -> None:
    deploy(apis, settings("stuck", "1"), waiting=QUICK)
    with pytest.raises(DeployError) as refused:
        deploy(apis, settings("stuck", "2", image=NEVER_READY_IMAGE), waiting=NEVER_READY)
    assert "models:/stuck/2 did not become Ready within 5s" in str(refused.value)
    assert "restored Deployment stuck-blue to models:/stuck/1" in str(refused.value)
    deployment = read(admin, "Deployment", "stuck-blue")
    assert deployment is not None
    assert (model_arg(deployment), deployment["spec"]["template"]["spec"]["containers"][0]["image"]) == (
        "models:/stuck/1",
        IMAGE,
    )
    # The controller scales the stuck pod away; version 1 kept serving throughout (maxUnavailable 0).
    wait_for("only version 1 pods are left", lambda: [p["version"] for p in pods(admin, "stuck")] == ["1", "1"])
    assert served_versions(admin, "stuck") == ["1", "1"]
    service = read(admin, "Service", "stuck")
    assert service is not None and service["metadata"]["annotations"][ServingLabel.MODEL_VERSION] == "1"


def test_a_first_deploy_that_never_becomes_ready_leaves_nothing_behind(apis: KubeApis, admin: Any) -> None:
    with pytest.raises(DeployError, match="deleted Deployment first-blue"):
        deploy(apis, settings("first", "1", image=NEVER_READY_IMAGE), waiting=NEVER_READY)
    assert names(admin, "Deployment", "first") == []
    assert read(admin, "Service", "first") is None
    # Garbage collection removes the ReplicaSet's pods too.
    wait_for("the pods of the deleted Deployment are gone", lambda: pods(admin, "first") == [])


# ----------------------------------------------------------------------------------------------------------
# Blue-green
# ----------------------------------------------------------------------------------------------------------


def test_blue_green_moves_the_service_to_the_ready_slot_then_removes_the_old_one(
    apis: KubeApis, admin: Any, serving: ControlPlane
) -> None:
    deploy(apis, settings("bg", "1", max_replicas=4), waiting=QUICK)
    blue_ips = endpoint_ips(admin, "bg") or wait_for("blue endpoints", lambda: endpoint_ips(admin, "bg"))
    mark = serving.audit_mark()
    result = deploy(apis, settings("bg", "2", max_replicas=4), strategy="blue-green", waiting=QUICK)
    assert (result.action, result.deployment, result.previous_version) == ("switched", "bg-green", "1")

    writes = writes_by_deployer(serving, mark)
    switch = writes.index(("patch", "services", "bg"))
    assert (
        writes.index(("create", "deployments", "bg-green"))
        < switch
        < writes.index(("delete", "deployments", "bg-blue"))
    )
    service = read(admin, "Service", "bg")
    assert service is not None and service["spec"]["selector"][ServingLabel.SLOT] == "green"
    assert names(admin, "Deployment", "bg") == ["bg-green"]
    hpa = read(admin, "HorizontalPodAutoscaler", "bg")
    assert (
        hpa is not None and contains(to_manifest(render_hpa(settings("bg", "2", max_replicas=4), "green")), hpa) == []
    )
    # The endpoint controller follows the selector: the Service now routes to green pods only.
    wait_for("only version 2 pods remain", lambda: served_versions(admin, "bg") == ["2", "2"])
    green_ips = {pod["ip"] for pod in pods(admin, "bg")}
    wait_for("the Service's endpoints are the green pods", lambda: endpoint_ips(admin, "bg") == green_ips)
    assert not green_ips & blue_ips


def test_blue_green_that_never_becomes_ready_removes_the_new_slot_and_never_moves_the_service(
    apis: KubeApis, admin: Any, serving: ControlPlane
) -> None:
    deploy(apis, settings("bgstuck", "1"), waiting=QUICK)
    mark = serving.audit_mark()
    with pytest.raises(DeployError, match="the Service still selects the blue slot"):
        deploy(apis, settings("bgstuck", "2", image=NEVER_READY_IMAGE), strategy="blue-green", waiting=NEVER_READY)
    writes = writes_by_deployer(serving, mark)
    assert writes == [("create", "deployments", "bgstuck-green"), ("delete", "deployments", "bgstuck-green")]
    service = read(admin, "Service", "bgstuck")
    assert service is not None and service["spec"]["selector"][ServingLabel.SLOT] == "blue"
    assert names(admin, "Deployment", "bgstuck") == ["bgstuck-blue"]
    assert served_versions(admin, "bgstuck") == ["1", "1"]


# ----------------------------------------------------------------------------------------------------------
# Canary
# ----------------------------------------------------------------------------------------------------------


def test_a_healthy_canary_serves_its_share_through_the_service_then_is_promoted(apis: KubeApis, admin: Any) -> None:
    deploy(apis, settings("can", "1", replicas=4), waiting=QUICK)
    seen: dict[str, Any] = {}

    def check(target: CanaryTarget) -> CanaryReport:
        # What the canary check meets, as the server has it at that moment.
        everyone = pods(admin, "can")
        canary_ips = {pod["ip"] for pod in everyone if pod["track"] == CANARY}
        seen["ready"] = sorted((pod["track"], pod["version"]) for pod in everyone if pod["ready"])
        seen["canary_only_service"] = wait_for(
            "the canary-only Service's endpoints", lambda: endpoint_ips(admin, target.service) == canary_ips
        )
        seen["main_service_includes_canary"] = wait_for(
            "the main Service's endpoints include the canary",
            lambda: canary_ips <= endpoint_ips(admin, "can") and len(endpoint_ips(admin, "can")) == 5,
        )
        # The default check reads each canary pod's /metrics at its IP (the canary-only Service's Endpoints).
        seen["urls"] = target.pod_metrics_urls == tuple(f"http://{ip}:8080/metrics" for ip in sorted(canary_ips))
        seen["pods"] = len(target.pod_addresses)
        return healthy(target)

    result = deploy(
        apis,
        settings("can", "2", replicas=4),
        strategy="canary",
        canary_fraction=0.25,
        canary_check=check,
        waiting=QUICK,
    )
    # One canary pod of version 2 next to four stable pods of version 1: a fifth of the Service's endpoints.
    assert seen == {
        "ready": [("canary", "2"), ("stable", "1"), ("stable", "1"), ("stable", "1"), ("stable", "1")],
        "canary_only_service": True,
        "main_service_includes_canary": True,
        "urls": True,
        "pods": 1,
    }
    assert result.action == "promoted" and result.canary["healthy"] is True
    assert names(admin, "Deployment", "can") == ["can-blue"]
    assert names(admin, "Service", "can") == ["can"]
    wait_for("four stable pods of version 2", lambda: served_versions(admin, "can") == ["2"] * 4)


def test_a_canary_failing_the_error_rate_check_is_removed_and_the_stable_version_is_untouched(
    apis: KubeApis, admin: Any, serving: ControlPlane
) -> None:
    deploy(apis, settings("canbad", "1", replicas=4), waiting=QUICK)
    metrics = (
        'mlkeel_serve_requests_total{endpoint="/predict",status="200"} 180.0\n'
        'mlkeel_serve_requests_total{endpoint="/predict",status="500"} 20.0\n'
    )
    check = metrics_error_rate_check(max_error_rate=0.05, observe_s=0, fetch=lambda _: metrics, sleep=lambda _: None)
    mark = serving.audit_mark()
    with pytest.raises(DeployError, match=r"error rate 10\.00% over 200 requests, above the limit 5\.00%"):
        deploy(apis, settings("canbad", "2", replicas=4), strategy="canary", canary_check=check, waiting=QUICK)
    writes = writes_by_deployer(serving, mark)
    assert {name for _, _, name in writes} == {"canbad-canary"}, "only the canary's objects were written"
    assert names(admin, "Deployment", "canbad") == ["canbad-blue"]
    assert names(admin, "Service", "canbad") == ["canbad"]
    wait_for("the canary pod is gone", lambda: served_versions(admin, "canbad") == ["1"] * 4)


def test_a_canary_that_never_becomes_ready_is_removed_without_being_judged(apis: KubeApis, admin: Any) -> None:
    deploy(apis, settings("canstuck", "1"), waiting=QUICK)
    judged: list[CanaryTarget] = []
    with pytest.raises(DeployError, match="canary models:/canstuck/2 did not become Ready"):
        deploy(
            apis,
            settings("canstuck", "2", image=NEVER_READY_IMAGE),
            strategy="canary",
            canary_check=judged.append,  # type: ignore[arg-type]
            waiting=NEVER_READY,
        )
    assert judged == []
    assert names(admin, "Deployment", "canstuck") == ["canstuck-blue"]
    wait_for("version 1 alone serves", lambda: [p["version"] for p in pods(admin, "canstuck")] == ["1", "1"])


# ----------------------------------------------------------------------------------------------------------
# Idempotence
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["rolling", "blue-green", "canary"])
def test_reapplying_the_served_version_makes_no_write_call(
    apis: KubeApis, serving: ControlPlane, strategy: str
) -> None:
    model = f"same-{strategy}"
    deploy(apis, settings(model, "1", max_replicas=3), waiting=QUICK)
    deploy(apis, settings(model, "2", max_replicas=3), strategy=strategy, canary_check=healthy, waiting=QUICK)
    mark = serving.audit_mark()
    result = deploy(apis, settings(model, "2", max_replicas=3), strategy=strategy, canary_check=healthy, waiting=QUICK)
    assert result.action == "unchanged"
    audited = serving.audit_events(mark, user=DEPLOYER_USER)
    assert audited, "the server audited no request of the deployer: the check would pass vacuously"
    assert writes_by_deployer(serving, mark) == []


# ----------------------------------------------------------------------------------------------------------
# RBAC: the Role is what deploy needs, and no more
# ----------------------------------------------------------------------------------------------------------


def test_a_verb_outside_the_role_is_forbidden(serving: ControlPlane, deployer_token: str) -> None:
    from kubernetes import client as k8s
    from kubernetes.client.exceptions import ApiException

    with serving.api_client(token=deployer_token) as api_client:
        refused = {
            "patch deployments": lambda: k8s.AppsV1Api(api_client).patch_namespaced_deployment(
                "rolling-blue", NAMESPACE, {"spec": {"replicas": 3}}
            ),
            "get secrets": lambda: k8s.CoreV1Api(api_client).read_namespaced_secret("mlkeel-mlflow", NAMESPACE),
            "list pods": lambda: k8s.CoreV1Api(api_client).list_namespaced_pod(NAMESPACE),
            "get deployments in another namespace": lambda: k8s.AppsV1Api(api_client).list_namespaced_deployment(
                "default"
            ),
        }
        statuses = {}
        for what, call in refused.items():
            with pytest.raises(ApiException) as error:
                call()
            statuses[what] = error.value.status
    assert statuses == dict.fromkeys(refused, 403)


def test_the_deployer_role_grants_exactly_the_calls_deploy_makes(apis: KubeApis, serving: ControlPlane) -> None:
    """Every strategy, with and without an autoscaler, each rollback; the audit log lists what deploy called."""
    mark = serving.audit_mark()
    bad = metrics_error_rate_check(
        observe_s=0,
        fetch=lambda _: 'mlkeel_serve_requests_total{endpoint="/predict",status="500"} 9\n',
        sleep=lambda _: None,
    )
    deploy(apis, settings("every", "1", max_replicas=4), waiting=QUICK)
    deploy(apis, settings("every", "1", max_replicas=4), waiting=QUICK)  # unchanged
    deploy(apis, settings("every", "2", max_replicas=4), strategy="blue-green", waiting=QUICK)
    deploy(apis, settings("every", "3", max_replicas=4), strategy="canary", canary_check=healthy, waiting=QUICK)
    with pytest.raises(DeployError):
        deploy(apis, settings("every", "4"), strategy="canary", canary_check=bad, waiting=QUICK)
    deploy(apis, settings("every", "4"), waiting=QUICK)  # the autoscaler goes
    for strategy in ("rolling", "blue-green", "canary"):
        with pytest.raises(DeployError):
            deploy(
                apis,
                settings("every", "5", image=NEVER_READY_IMAGE),
                strategy=strategy,
                canary_check=healthy,
                waiting=NEVER_READY,
            )

    events = serving.audit_events(mark, user=DEPLOYER_USER)
    assert {event["responseStatus"]["code"] for event in events} <= {200, 201, 404}, "a call was refused"
    assert {event["objectRef"]["namespace"] for event in events} == {NAMESPACE}
    used: dict[tuple[str, str], set[str]] = {}
    for event in events:
        ref = event["objectRef"]
        used.setdefault((ref.get("apiGroup", ""), ref["resource"]), set()).add(event["verb"])

    documents = list(yaml.safe_load_all((MANIFESTS / "serving" / "rbac.yaml").read_text()))
    (role,) = [doc for doc in documents if doc["kind"] == "Role"]
    granted = {
        (group, resource): set(rule["verbs"])
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert granted == used


# ----------------------------------------------------------------------------------------------------------
# Registry: only an aliased (blessed) version is deployed
# ----------------------------------------------------------------------------------------------------------


def test_the_champion_deploys_and_an_unaliased_version_is_refused_before_any_api_call(
    registered_champion: tuple[str, str],
    apis: KubeApis,
    admin: Any,
    serving: ControlPlane,
    tmp_path: Path,
) -> None:
    tracking_uri, model_name = registered_champion
    mark = serving.audit_mark()
    with pytest.raises(NotBlessedError, match=f"it is not the '{CHAMPION_ALIAS}'"):
        deploy_model(
            apis, DeploySettings(model_name, "2", NAMESPACE, image=IMAGE), tracking_uri=tracking_uri, waiting=QUICK
        )
    assert serving.audit_events(mark, user=DEPLOYER_USER) == []

    result = deploy_model(
        apis, DeploySettings(model_name, "", NAMESPACE, image=IMAGE), tracking_uri=tracking_uri, waiting=QUICK
    )
    assert (result.action, result.model_version) == ("created", "1")
    deployment = read(admin, "Deployment", result.deployment)
    assert deployment is not None and model_arg(deployment) == f"models:/{model_name}/1"


def test_the_cli_deploys_the_champion_through_a_kubeconfig_as_the_deployer(
    registered_champion: tuple[str, str], serving: ControlPlane, deployer_token: str, admin: Any, tmp_path: Path
) -> None:
    """``python -m mlkeel.components.deploy`` as a user runs it: KUBECONFIG names the cluster and a token."""
    import json
    import os
    import subprocess
    import sys

    from mlkeel.cluster.controlplane import write_kubeconfig

    tracking_uri, model_name = registered_champion
    kubeconfig = write_kubeconfig(tmp_path / "deployer.kubeconfig", serving.server, serving.ca_file, deployer_token)
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlkeel.components.deploy",
            "--model-name",
            model_name,
            "--tracking-uri",
            tracking_uri,
            "--image",
            IMAGE,
            "--ready-timeout-seconds",
            "60",
            "--result-out",
            str(tmp_path / "result.json"),
        ],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert (result["action"], result["model_version"], result["namespace"]) == ("created", "1", NAMESPACE)
    deployment = read(admin, "Deployment", result["deployment"])
    assert deployment is not None and model_arg(deployment) == f"models:/{model_name}/1"
    assert deployer_token not in completed.stdout + completed.stderr, "the token was printed"
