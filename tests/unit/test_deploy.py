"""Deploy without a cluster: what it renders, its settings, the canary's error-rate check and the CLI.

Every strategy, rollback, idempotence, RBAC and the registry refusal run against a real API server in
tests/cluster/test_deploy.py. The registry here is a real MLflow store with real registered versions.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from mlkeel.components.deploy.logic import (
    CanaryReport,
    CanaryTarget,
    DeploySettings,
    check_settings,
    error_rate,
    metrics_error_rate_check,
    render_all,
    serving_name,
)
from mlkeel.constants import ServingLabel
from mlkeel.errors import DeployError, ParameterError
from mlkeel.k8s_schema import ManifestError, validate_manifest

NAMESPACE = "mlkeel-serving"
MODEL = "churn"


def settings(version: str, **overrides) -> DeploySettings:
    return DeploySettings(model_name=MODEL, model_version=version, namespace=NAMESPACE, **overrides)


def uri(version: str) -> str:
    return f"models:/{MODEL}/{version}"


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
    # A stopping pod answers 5 s more while the Service proxies stop sending it requests (the real node's
    # canary test counts the refused ones: none).
    assert container["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}}
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
# The canary's error-rate check
# ----------------------------------------------------------------------------------------------------------


def test_a_canary_without_enough_traffic_fails_when_a_minimum_is_set() -> None:
    quiet = 'mlkeel_serve_requests_total{endpoint="/predict",status="200"} 3\n'
    target = CanaryTarget(NAMESPACE, f"{MODEL}-canary", 8080, f"{MODEL}-canary", "2")
    strict = metrics_error_rate_check(min_requests=50, observe_s=60, fetch=lambda _: quiet, sleep=lambda _: None)
    assert strict(target) == CanaryReport(False, "only 3 requests in 60s, fewer than 50", 0.0, 3.0)
    lenient = metrics_error_rate_check(observe_s=60, fetch=lambda _: quiet, sleep=lambda _: None)
    assert lenient(target).healthy is True


def test_the_default_check_reads_every_canary_pod_at_its_ip_and_sums_their_counters() -> None:
    """Two canary pods: each pod's own /metrics (its IP, no cluster DNS name), the counters added up."""
    pages = {
        "http://10.88.0.7:8080/metrics": 'mlkeel_serve_requests_total{endpoint="/predict",status="200"} 30\n',
        "http://10.88.0.9:8080/metrics": 'mlkeel_serve_requests_total{endpoint="/predict",status="500"} 10\n',
    }
    read: list[str] = []

    def fetch(url: str) -> str:
        read.append(url)
        return pages[url]

    target = CanaryTarget(
        NAMESPACE, f"{MODEL}-canary", 8080, f"{MODEL}-canary", "2", ("10.88.0.7:8080", "10.88.0.9:8080")
    )
    report = metrics_error_rate_check(max_error_rate=0.05, observe_s=0, fetch=fetch, sleep=lambda _: None)(target)
    assert read == list(pages)
    assert report == CanaryReport(
        False, "error rate 25.00% over 40 requests on 2 canary pods, above the limit 5.00%", 0.25, 40.0
    )


def test_a_canary_pod_that_cannot_be_read_fails_the_check_naming_its_url() -> None:
    def unreachable(url: str) -> str:
        raise ConnectionRefusedError(111, "Connection refused")

    target = CanaryTarget(NAMESPACE, f"{MODEL}-canary", 8080, f"{MODEL}-canary", "2", ("10.88.0.7:8080",))
    report = metrics_error_rate_check(observe_s=0, fetch=unreachable, sleep=lambda _: None)(target)
    assert (report.healthy, report.reason) == (
        False,
        "could not read http://10.88.0.7:8080/metrics: [Errno 111] Connection refused",
    )


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
# Registry: only an aliased (blessed) version is deployed
# ----------------------------------------------------------------------------------------------------------


def test_cli_refuses_an_unaliased_version_in_one_line(registered_champion: tuple[str, str]) -> None:
    tracking_uri, model_name = registered_champion
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


def test_cli_dry_run_prints_valid_manifests_of_the_champion(registered_champion: tuple[str, str]) -> None:
    import yaml
    from click.testing import CliRunner

    from mlkeel.cli import main

    tracking_uri, model_name = registered_champion
    outcome = CliRunner().invoke(
        main, ["deploy", "--model-name", model_name, "--tracking-uri", tracking_uri, "--dry-run", "--max-replicas", "4"]
    )
    assert outcome.exit_code == 0, outcome.output
    documents = list(yaml.safe_load_all(outcome.output))
    assert [document["kind"] for document in documents].count("HorizontalPodAutoscaler") == 1
    for document in documents:
        validate_manifest(document)
    assert f"models:/{model_name}/1" in documents[0]["spec"]["template"]["spec"]["containers"][0]["args"]
