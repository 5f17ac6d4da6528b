"""Deploy: each strategy, rollback, idempotence and the registry refusal, against tests/k8s_standin.py.

The Kubernetes API here is an in-memory STAND-IN (no API server can run on this machine); it validates every
object deploy writes against the Kubernetes OpenAPI schema and answers like the API server (404/409/422). The
registry is a real MLflow store with real registered versions.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlkeel.components.deploy.logic import (
    CanaryReport,
    CanaryTarget,
    DeploySettings,
    KubeApis,
    Waiting,
    check_settings,
    deploy,
    deploy_model,
    error_rate,
    metrics_error_rate_check,
    render_all,
    serving_name,
)
from mlkeel.constants import CHAMPION_ALIAS, PREVIOUS_CHAMPION_ALIAS, ServingLabel
from mlkeel.errors import DeployError, NotBlessedError, ParameterError
from mlkeel.k8s_schema import ManifestError, validate_manifest
from tests.k8s_standin import Call, FakeClock, KubernetesStandIn

NAMESPACE = "mlkeel-serving"
MODEL = "churn"
NO_WAIT = Waiting(timeout_s=30, poll_s=5, sleep=lambda _: None)


def waiting(timeout_s: float = 30, poll_s: float = 5) -> Waiting:
    clock = FakeClock()
    return Waiting(timeout_s=timeout_s, poll_s=poll_s, sleep=clock.sleep, clock=clock)


def settings(version: str, **overrides) -> DeploySettings:
    return DeploySettings(model_name=MODEL, model_version=version, namespace=NAMESPACE, **overrides)


def uri(version: str) -> str:
    return f"models:/{MODEL}/{version}"


@pytest.fixture
def cluster() -> KubernetesStandIn:
    return KubernetesStandIn()


def apis_of(cluster: KubernetesStandIn) -> KubeApis:
    return KubeApis(apps=cluster.apps, core=cluster.core, autoscaling=cluster.autoscaling)


def served_model(cluster: KubernetesStandIn, deployment: str) -> str:
    args = cluster.get("Deployment", NAMESPACE, deployment)["spec"]["template"]["spec"]["containers"][0]["args"]
    return args[args.index("--model") + 1]


def service(cluster: KubernetesStandIn) -> dict:
    return cluster.get("Service", NAMESPACE, MODEL)


def healthy(_: CanaryTarget) -> CanaryReport:
    return CanaryReport(True, "error rate 0.00% over 500 requests, within the limit 1.00%", 0.0, 500)


# ----------------------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------------------


def test_every_rendered_object_is_valid_against_the_kubernetes_openapi_schema() -> None:
    objects = render_all(settings("3", max_replicas=6, service_account="mlkeel-serve"))
    assert [obj["kind"] for obj in objects] == [
        "Deployment",
        "Service",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    ]
    for obj in objects:
        validate_manifest(obj, "render_all")
    # The validator is strict, so a misspelt field in a render would fail above.
    broken = objects[0] | {"spec": {**objects[0]["spec"], "replica": 2}}
    with pytest.raises(ManifestError, match="'replica' was unexpected"):
        validate_manifest(broken)


def test_the_deployment_serves_the_version_with_probes_resources_and_a_non_root_user() -> None:
    deployment, service_manifest, *_ = render_all(settings("3", image="registry.local/serve:1"))
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.local/serve:1"
    assert container["command"] == ["python", "-m", "mlkeel.components.serve"]
    assert container["args"] == [
        "--model",
        uri("3"),
        "--host",
        "0.0.0.0",
        "--port",
        "8080",
        "--prediction-log",
        "/home/mlkeel/prediction-log",
    ]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"cpu": "1", "memory": "1Gi"},
    }
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 1000
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    # The tracking URI comes from a Secret, never a literal.
    (uri_env,) = [env for env in container["env"] if env["name"] == "MLFLOW_TRACKING_URI"]
    assert uri_env["valueFrom"]["secretKeyRef"] == {"name": "mlkeel-mlflow", "key": "tracking_uri"}
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels[ServingLabel.APP] == MODEL
    assert labels[ServingLabel.MODEL_NAME] == MODEL
    assert labels[ServingLabel.MODEL_VERSION] == "3"
    # The Service selects pods the Deployment makes.
    assert service_manifest["spec"]["selector"].items() <= labels.items()


def test_the_prediction_log_goes_to_a_claim_when_one_is_named() -> None:
    """Without a claim the log lives in the pod's emptyDir; with one it survives the pod, on every replica."""

    def log_volume(deployment: dict) -> tuple[list[dict], list[dict]]:
        pod = deployment["spec"]["template"]["spec"]
        mounts = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == "/home/mlkeel/prediction-log"]
        volumes = [v for v in pod["volumes"] if v["name"] in {m["name"] for m in mounts}]
        return mounts, volumes

    assert log_volume(render_all(settings("3"))[0]) == ([], [])  # under /home/mlkeel, an emptyDir
    objects = render_all(settings("3", prediction_log_claim="churn-prediction-log"))
    for deployment in (obj for obj in objects if obj["kind"] == "Deployment"):  # blue and green slots alike
        validate_manifest(deployment, "render_all")
        mounts, volumes = log_volume(deployment)
        assert [volume["persistentVolumeClaim"] for volume in volumes] == [{"claimName": "churn-prediction-log"}]
        assert len(mounts) == 1 and not mounts[0].get("readOnly")
    assert settings("3", prediction_log_claim="a").digest() != settings("3").digest()  # a change is applied
    with pytest.raises(ParameterError, match="prediction_log_claim='Bad_Claim'"):
        check_settings(settings("3", prediction_log_claim="Bad_Claim"), "rolling", 0.2)


def test_a_model_name_becomes_a_dns_label_or_is_refused() -> None:
    assert serving_name("Telco Churn_v2") == "telco-churn-v2"
    with pytest.raises(ParameterError, match="must start with a letter"):
        serving_name("42")


# ----------------------------------------------------------------------------------------------------------
# Rolling
# ----------------------------------------------------------------------------------------------------------


def test_rolling_creates_then_updates_the_same_deployment_in_place(cluster: KubernetesStandIn) -> None:
    first = deploy(apis_of(cluster), settings("1"), waiting=NO_WAIT)
    assert (first.action, first.deployment, first.previous_version) == ("created", f"{MODEL}-blue", "")
    second = deploy(apis_of(cluster), settings("2"), waiting=NO_WAIT)
    assert (second.action, second.deployment, second.previous_version) == ("updated", f"{MODEL}-blue", "1")
    assert cluster.names("Deployment", NAMESPACE) == [f"{MODEL}-blue"]
    assert served_model(cluster, f"{MODEL}-blue") == uri("2")
    assert service(cluster)["metadata"]["annotations"][ServingLabel.MODEL_VERSION] == "2"
    assert Call("update", "deployments", NAMESPACE, f"{MODEL}-blue") in cluster.calls


def test_rolling_puts_the_previous_template_back_when_the_new_version_never_becomes_ready(
    cluster: KubernetesStandIn,
) -> None:
    deploy(apis_of(cluster), settings("1"), waiting=NO_WAIT)
    cluster.ready_after[uri("2")] = None
    with pytest.raises(DeployError) as refused:
        deploy(apis_of(cluster), settings("2"), waiting=waiting(timeout_s=30, poll_s=5))
    assert f"{uri('2')} did not become Ready within 30s" in str(refused.value)
    assert f"restored Deployment {MODEL}-blue to {uri('1')}" in str(refused.value)
    assert served_model(cluster, f"{MODEL}-blue") == uri("1")
    assert service(cluster)["metadata"]["annotations"][ServingLabel.MODEL_VERSION] == "1"
    # Polled until the timeout: 30 s at 5 s intervals.
    polls = [call for call in cluster.calls if call == Call("get", "deployments", NAMESPACE, f"{MODEL}-blue")]
    assert len(polls) >= 7


def test_a_first_deploy_that_never_becomes_ready_leaves_no_deployment(cluster: KubernetesStandIn) -> None:
    cluster.ready_after[uri("1")] = None
    with pytest.raises(DeployError, match="deleted Deployment churn-blue"):
        deploy(apis_of(cluster), settings("1"), waiting=waiting())
    assert cluster.names("Deployment", NAMESPACE) == []
    assert service(cluster) is None


# ----------------------------------------------------------------------------------------------------------
# Blue-green
# ----------------------------------------------------------------------------------------------------------


def test_blue_green_switches_the_service_only_after_the_new_deployment_is_ready(cluster: KubernetesStandIn) -> None:
    deploy(apis_of(cluster), settings("1"), waiting=NO_WAIT)
    cluster.ready_after[uri("2")] = 3
    cluster.calls.clear()
    result = deploy(apis_of(cluster), settings("2"), strategy="blue-green", waiting=NO_WAIT)

    assert (result.action, result.deployment) == ("switched", f"{MODEL}-green")
    assert service(cluster)["spec"]["selector"][ServingLabel.SLOT] == "green"
    switch = cluster.calls.index(Call("patch", "services", NAMESPACE, MODEL))
    reads_of_green = [
        index
        for index, call in enumerate(cluster.calls)
        if call == Call("get", "deployments", NAMESPACE, f"{MODEL}-green")
    ]
    # Three reads until Ready (the first is the leftover check before create), all before the switch.
    assert len([index for index in reads_of_green if index < switch]) >= 3
    # The old slot goes only after the switch.
    assert cluster.calls.index(Call("delete", "deployments", NAMESPACE, f"{MODEL}-blue")) > switch
    assert cluster.names("Deployment", NAMESPACE) == [f"{MODEL}-green"]
    assert served_model(cluster, f"{MODEL}-green") == uri("2")


def test_blue_green_that_never_becomes_ready_deletes_the_new_slot_and_never_moves_the_service(
    cluster: KubernetesStandIn,
) -> None:
    deploy(apis_of(cluster), settings("1"), waiting=NO_WAIT)
    cluster.ready_after[uri("2")] = None
    cluster.calls.clear()
    with pytest.raises(DeployError, match="the Service still selects the blue slot"):
        deploy(apis_of(cluster), settings("2"), strategy="blue-green", waiting=waiting())
    assert not [call for call in cluster.writes() if call.resource == "services"]
    assert not [call for call in cluster.writes() if call.name == f"{MODEL}-blue"]
    assert cluster.names("Deployment", NAMESPACE) == [f"{MODEL}-blue"]
    assert service(cluster)["spec"]["selector"][ServingLabel.SLOT] == "blue"


def test_blue_green_moves_the_autoscaler_to_the_new_slot(cluster: KubernetesStandIn) -> None:
    deploy(apis_of(cluster), settings("1", max_replicas=5), waiting=NO_WAIT)
    hpa = cluster.get("HorizontalPodAutoscaler", NAMESPACE, MODEL)
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{MODEL}-blue"
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    deploy(apis_of(cluster), settings("2", max_replicas=5), strategy="blue-green", waiting=NO_WAIT)
    hpa = cluster.get("HorizontalPodAutoscaler", NAMESPACE, MODEL)
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{MODEL}-green"


def test_a_rolling_update_keeps_the_replica_count_the_autoscaler_chose(cluster: KubernetesStandIn) -> None:
    deploy(apis_of(cluster), settings("1", max_replicas=6), waiting=NO_WAIT)
    cluster.get("Deployment", NAMESPACE, f"{MODEL}-blue")["spec"]["replicas"] = 5  # the HPA scaled it up
    deploy(apis_of(cluster), settings("2", max_replicas=6), waiting=NO_WAIT)
    assert cluster.get("Deployment", NAMESPACE, f"{MODEL}-blue")["spec"]["replicas"] == 5
    assert served_model(cluster, f"{MODEL}-blue") == uri("2")


# ----------------------------------------------------------------------------------------------------------
# Canary
# ----------------------------------------------------------------------------------------------------------


def test_a_healthy_canary_takes_a_share_of_traffic_then_is_promoted(cluster: KubernetesStandIn) -> None:
    deploy(apis_of(cluster), settings("1", replicas=4), waiting=NO_WAIT)
    seen: dict = {}

    def check(target: CanaryTarget) -> CanaryReport:
        canary = cluster.get("Deployment", NAMESPACE, target.deployment)
        seen["replicas"] = canary["spec"]["replicas"]
        seen["model"] = served_model(cluster, target.deployment)
        seen["selected_by_service"] = (
            service(cluster)["spec"]["selector"].items() <= canary["spec"]["template"]["metadata"]["labels"].items()
        )
        seen["stable"] = served_model(cluster, f"{MODEL}-blue")
        seen["url"] = target.metrics_url
        return healthy(target)

    result = deploy(
        apis_of(cluster),
        settings("2", replicas=4),
        strategy="canary",
        canary_fraction=0.25,
        canary_check=check,
        waiting=NO_WAIT,
    )
    assert seen == {
        "replicas": 1,
        "model": uri("2"),
        "selected_by_service": True,
        "stable": uri("1"),
        "url": f"http://{MODEL}-canary.{NAMESPACE}.svc:8080/metrics",
    }
    assert result.action == "promoted" and result.canary["healthy"] is True
    assert served_model(cluster, f"{MODEL}-blue") == uri("2")
    assert cluster.names("Deployment", NAMESPACE) == [f"{MODEL}-blue"]
    assert cluster.names("Service", NAMESPACE) == [MODEL]
    assert service(cluster)["metadata"]["annotations"][ServingLabel.MODEL_VERSION] == "2"


def test_a_canary_failing_the_error_rate_check_is_removed_and_the_stable_version_keeps_serving(
    cluster: KubernetesStandIn,
) -> None:
    deploy(apis_of(cluster), settings("1", replicas=4), waiting=NO_WAIT)
    metrics = (
        "# TYPE mlkeel_serve_requests_total counter\n"
        'mlkeel_serve_requests_total{endpoint="/predict",status="200"} 180.0\n'
        'mlkeel_serve_requests_total{endpoint="/predict",status="422"} 5.0\n'
        'mlkeel_serve_requests_total{endpoint="/predict",status="500"} 15.0\n'
        'mlkeel_serve_requests_total{endpoint="/readyz",status="200"} 400.0\n'
    )
    fetched: list[str] = []

    def fetch(url: str) -> str:
        fetched.append(url)
        return metrics

    check = metrics_error_rate_check(max_error_rate=0.05, observe_s=60, fetch=fetch, sleep=lambda _: None)
    cluster.calls.clear()
    with pytest.raises(DeployError) as refused:
        deploy(apis_of(cluster), settings("2", replicas=4), strategy="canary", canary_check=check, waiting=NO_WAIT)
    assert "error rate 7.50% over 200 requests, above the limit 5.00%" in str(refused.value)
    assert "rolled back" in str(refused.value)
    assert fetched == [f"http://{MODEL}-canary.{NAMESPACE}.svc:8080/metrics"]
    assert cluster.names("Deployment", NAMESPACE) == [f"{MODEL}-blue"]
    assert cluster.names("Service", NAMESPACE) == [MODEL]
    assert served_model(cluster, f"{MODEL}-blue") == uri("1")
    assert not [call for call in cluster.writes() if call.name in (MODEL, f"{MODEL}-blue")]


def test_a_canary_that_never_becomes_ready_is_removed_without_being_judged(cluster: KubernetesStandIn) -> None:
    deploy(apis_of(cluster), settings("1"), waiting=NO_WAIT)
    cluster.ready_after[uri("2")] = None
    judged: list = []
    with pytest.raises(DeployError, match="canary models:/churn/2 did not become Ready"):
        deploy(apis_of(cluster), settings("2"), strategy="canary", canary_check=judged.append, waiting=waiting())
    assert judged == []
    assert cluster.names("Deployment", NAMESPACE) == [f"{MODEL}-blue"]
    assert served_model(cluster, f"{MODEL}-blue") == uri("1")


def test_a_canary_without_enough_traffic_fails_when_a_minimum_is_set() -> None:
    quiet = 'mlkeel_serve_requests_total{endpoint="/predict",status="200"} 3\n'
    target = CanaryTarget(NAMESPACE, f"{MODEL}-canary", 8080, f"{MODEL}-canary", "2")
    strict = metrics_error_rate_check(min_requests=50, observe_s=60, fetch=lambda _: quiet, sleep=lambda _: None)
    assert strict(target) == CanaryReport(False, "only 3 requests in 60s, fewer than 50", 0.0, 3.0)
    lenient = metrics_error_rate_check(observe_s=60, fetch=lambda _: quiet, sleep=lambda _: None)
    assert lenient(target).healthy is True


def test_no_kubeconfig_is_a_one_line_error(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mlkeel.components.deploy.logic import kube_apis

    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(DeployError, match=r"no Kubernetes configuration from kubeconfig context \(current\)"):
        kube_apis()


def test_error_rate_is_the_5xx_share_of_predict_requests() -> None:
    text = (
        'mlkeel_serve_requests_total{endpoint="/predict",status="200"} 90\n'
        'mlkeel_serve_requests_total{endpoint="/predict",status="503"} 10\n'
        'mlkeel_serve_requests_total{endpoint="/readyz",status="503"} 30\n'
    )
    assert error_rate(text) == (100.0, 0.1)
    assert error_rate('mlkeel_serve_requests_total{endpoint="/healthz",status="200"} 3\n') == (0.0, 0.0)
    with pytest.raises(DeployError, match="no 'mlkeel_serve_requests_total' counter"):
        error_rate("process_cpu_seconds_total 1.5\n")


# ----------------------------------------------------------------------------------------------------------
# Idempotence
# ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["rolling", "blue-green", "canary"])
def test_reapplying_the_served_version_writes_nothing(cluster: KubernetesStandIn, strategy: str) -> None:
    deploy(apis_of(cluster), settings("1"), waiting=NO_WAIT)
    deploy(apis_of(cluster), settings("2"), strategy=strategy, canary_check=healthy, waiting=NO_WAIT)
    cluster.calls.clear()
    result = deploy(apis_of(cluster), settings("2"), strategy=strategy, canary_check=healthy, waiting=NO_WAIT)
    assert result.action == "unchanged"
    assert cluster.calls and cluster.writes() == []


def test_a_changed_setting_of_the_same_version_is_applied(cluster: KubernetesStandIn) -> None:
    deploy(apis_of(cluster), settings("1"), waiting=NO_WAIT)
    result = deploy(apis_of(cluster), settings("1", replicas=3), waiting=NO_WAIT)
    assert result.action == "updated"
    assert cluster.get("Deployment", NAMESPACE, f"{MODEL}-blue")["spec"]["replicas"] == 3


# ----------------------------------------------------------------------------------------------------------
# Registry: only an aliased (blessed) version is deployed
# ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def registered(mlflow_shared_uri: str, train_telco, model_name: str) -> tuple[str, str]:
    """Version 1: the champion (registered through the register stage); version 2: registered, no alias."""
    import mlflow

    from mlkeel.components.register.logic import register
    from tests.unit.test_register import BLESSED

    trained = train_telco(mlflow_shared_uri, "strong")
    register(trained.model_uri, BLESSED, model_name, mlflow_shared_uri)
    mlflow.register_model(trained.model_uri, model_name)
    return mlflow_shared_uri, model_name


def test_an_unaliased_version_is_refused_before_any_kubernetes_call(
    registered: tuple[str, str], cluster: KubernetesStandIn
) -> None:
    tracking_uri, model_name = registered
    with pytest.raises(NotBlessedError) as refused:
        deploy_model(
            apis_of(cluster), DeploySettings(model_name, "2", NAMESPACE), tracking_uri=tracking_uri, waiting=NO_WAIT
        )
    assert str(refused.value).startswith(
        f"refusing to deploy '{model_name}' version 2: it is not the '{CHAMPION_ALIAS}' (it holds no alias)"
    )
    assert cluster.calls == []


def test_the_champion_deploys_and_an_empty_version_means_the_champion(
    registered: tuple[str, str], cluster: KubernetesStandIn, tmp_path
) -> None:
    import json

    tracking_uri, model_name = registered
    result = deploy_model(
        apis_of(cluster),
        DeploySettings(model_name, "", NAMESPACE),
        tracking_uri=tracking_uri,
        waiting=NO_WAIT,
        result_path=str(tmp_path / "result.json"),
    )
    assert (result.action, result.model_version) == ("created", "1")
    assert json.loads((tmp_path / "result.json").read_text())["model_version"] == "1"
    with pytest.raises(NotBlessedError, match=f"no version under the '{PREVIOUS_CHAMPION_ALIAS}' alias"):
        deploy_model(
            apis_of(cluster),
            DeploySettings(model_name, "", NAMESPACE),
            required_alias=PREVIOUS_CHAMPION_ALIAS,
            tracking_uri=tracking_uri,
            waiting=NO_WAIT,
        )


def test_cli_refuses_an_unaliased_version_in_one_line(registered: tuple[str, str]) -> None:
    tracking_uri, model_name = registered
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "mlkeel.components.deploy",
            "--model-name",
            model_name,
            "--model-version",
            "2",
            "--tracking-uri",
            tracking_uri,
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 1
    assert completed.stderr.startswith(f"error: refusing to deploy '{model_name}' version 2: it is not the 'champion'")
    assert "Traceback" not in completed.stderr and completed.stdout == ""


def test_cli_dry_run_prints_valid_manifests_of_the_champion(registered: tuple[str, str]) -> None:
    import yaml
    from click.testing import CliRunner

    from mlkeel.cli import main

    tracking_uri, model_name = registered
    outcome = CliRunner().invoke(
        main, ["deploy", "--model-name", model_name, "--tracking-uri", tracking_uri, "--dry-run", "--max-replicas", "4"]
    )
    assert outcome.exit_code == 0, outcome.output
    documents = list(yaml.safe_load_all(outcome.output))
    assert [document["kind"] for document in documents].count("HorizontalPodAutoscaler") == 1
    for document in documents:
        validate_manifest(document)
    assert f"models:/{model_name}/1" in documents[0]["spec"]["template"]["spec"]["containers"][0]["args"]
