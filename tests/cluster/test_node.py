"""A real node: mlkeel's images run as pods under a real kubelet, containerd 2.x and runc (marker ``node``).

The control plane is tools/kubecluster's (no fake node: the scheduler has only the real one); the node is
``mlkeel.cluster.node``: containerd built from its module, Debian's runc and CNI plugins, the project's own pause
image, kubelet and kube-proxy of the same build. Images are side-loaded from Docker (``docker save`` | ``ctr
images import``); pods use IfNotPresent. Pods run in a namespace that enforces Pod Security "restricted".
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from mlkeel.cluster import node as real
from mlkeel.cluster.controlplane import ControlPlane
from mlkeel.imagebuild import RUNTIME_UID
from tests.cluster.conftest import wait_for

NAMESPACE = "mlkeel-node-test"
POD_READY_TIMEOUT_S = 120.0


def restricted_container(name: str, image: str, command: list[str], **extra: Any) -> dict[str, Any]:
    """A container that Pod Security "restricted" admits, pulled only if not present."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": command,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        **extra,
    }


@pytest.fixture(scope="module")
def core(node_plane: ControlPlane, real_node: real.Node) -> Iterator[Any]:
    """A CoreV1Api of the admin, with the test namespace (Pod Security "restricted" enforced) created."""
    from kubernetes import client as k8s

    with node_plane.api_client() as api_client:
        api = k8s.CoreV1Api(api_client)
        api.create_namespace(
            {
                "metadata": {
                    "name": NAMESPACE,
                    "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                }
            }
        )
        wait_for(
            "the default ServiceAccount of the test namespace",
            lambda: any(sa.metadata.name == "default" for sa in api.list_namespaced_service_account(NAMESPACE).items),
            30,
            real_node.logs,
        )
        yield api


def pod_ready(core: Any, name: str) -> Any:
    pod = core.read_namespaced_pod(name, NAMESPACE)
    ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
    return pod if ready else None


def test_node_registers_with_the_runtime_and_versions_of_this_build(node_plane: ControlPlane, real_node: real.Node):
    from kubernetes import client as k8s

    with node_plane.api_client() as api_client:
        (registered,) = k8s.CoreV1Api(api_client).list_node().items
    info = registered.status.node_info
    assert registered.metadata.name == real.NODE_NAME
    assert info.kubelet_version == "v1.36.3"
    assert info.container_runtime_version.startswith("containerd://2.4.2")
    assert {address.address for address in registered.status.addresses if address.type == "InternalIP"} == {
        real.NODE_IP
    }
    assert real.normalized(real_node.pause_image) in real_node.images()
    print(f"node Ready {real_node.started_s:.1f} s after containerd started")


def test_serve_image_pod_runs_as_uid_1000_is_ready_logs_and_answers(
    core: Any, real_node: real.Node, serve_image: str
) -> None:
    """The serve image as a pod: Running and Ready (an HTTP readiness probe the kubelet really calls), its
    logs through the API server (kubectl logs' path: API server -> kubelet -> containerd), uid 1000 from the
    image's own USER, and its port reachable at the pod's IP on the node's bridge.
    """
    script = 'echo "uid=$(id -u) gid=$(id -g)"; exec python -m http.server 8080 --bind 0.0.0.0'
    container = restricted_container(
        "serve",
        serve_image,
        ["sh", "-c", script],
        ports=[{"containerPort": 8080, "name": "http"}],
        readinessProbe={"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 1},
    )
    core.create_namespaced_pod(NAMESPACE, {"metadata": {"name": "serve-image"}, "spec": {"containers": [container]}})
    started = time.monotonic()
    pod = wait_for(
        "the serve-image pod Ready", lambda: pod_ready(core, "serve-image"), POD_READY_TIMEOUT_S, real_node.logs
    )
    print(f"serve-image pod Ready {time.monotonic() - started:.1f} s after it was created")
    assert pod.status.phase == "Running"
    assert pod.spec.node_name == real.NODE_NAME
    assert pod.status.container_statuses[0].image.endswith(serve_image.split("/", 1)[1])
    log = core.read_namespaced_pod_log("serve-image", NAMESPACE)
    assert f"uid={RUNTIME_UID} gid={RUNTIME_UID}" in log
    with urllib.request.urlopen(f"http://{pod.status.pod_ip}:8080/", timeout=5) as response:
        assert response.status == 200
    assert pod.status.pod_ip.startswith(real.POD_CIDR.rsplit(".", 1)[0] + ".")


# ----------------------------------------------------------------------------------------------------------
# deploy of a registered champion with the real serve image
# ----------------------------------------------------------------------------------------------------------

SERVING_NAMESPACE = "mlkeel-serving"
DEPLOY_WAITING_TIMEOUT_S = 300.0
HOLDOUT_ROWS = 40


@pytest.fixture(scope="module")
def node_mlflow(real_node: real.Node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on the host, listening on the node's address so the serving pods reach it."""
    from tests.fixtures_mlflow import MlflowServer

    server = MlflowServer(tmp_path_factory.mktemp("node-mlflow"), host=real.NODE_IP)
    try:
        yield server.start()
    finally:
        server.stop()


def probe_successes(plane: ControlPlane, pod: str) -> set[str]:
    """The probe types (Startup, Readiness, Liveness) the kubelet counted as successful for ``pod``."""
    from prometheus_client.parser import text_string_to_metric_families

    status, text = plane.get(f"/api/v1/nodes/{real.NODE_NAME}/proxy/metrics/probes")
    assert status == 200, text
    return {
        sample.labels["probe_type"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "prober_probe_total"
        and sample.labels.get("pod") == pod
        and sample.labels.get("result") == "successful"
        and sample.value > 0
    }


@pytest.fixture(scope="module")
def serving_namespace(node_plane: ControlPlane, node_mlflow: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """manifests/serving applied (Pod Security "restricted", RBAC, the prediction-log claim), its MLflow Secret
    pointing at the host's server."""
    import base64

    from mlkeel.constants import MLFLOW_SECRET_NAME, MLFLOW_SECRET_URI_KEY
    from tests.cluster.conftest import MANIFESTS, apply, rendered_kustomization

    documents = rendered_kustomization(MANIFESTS / "serving", tmp_path_factory.mktemp("serving"))
    for document in documents:
        if document["kind"] == "Secret" and document["metadata"]["name"] == MLFLOW_SECRET_NAME:
            document.pop("stringData", None)
            document["data"] = {MLFLOW_SECRET_URI_KEY: base64.b64encode(node_mlflow.encode()).decode()}
    with node_plane.api_client() as admin:
        apply(admin, documents)
    return SERVING_NAMESPACE


@dataclass(frozen=True)
class Serving:
    """What the serving tests run on: the control plane, the real node, the serve image, the host's MLflow
    server (``manifests/serving`` applied, its Secret pointing there), the model trainer and the Telco split."""

    plane: ControlPlane
    node: real.Node
    image: str
    mlflow: str
    train: Any
    split: Any

    def parts(self) -> tuple[ControlPlane, real.Node, str, str, Any, Any]:
        return self.plane, self.node, self.image, self.mlflow, self.train, self.split


@pytest.fixture
def serving(
    node_plane: ControlPlane,
    real_node: real.Node,
    serve_image: str,
    serving_namespace: str,
    node_mlflow: str,
    train_telco: Any,
    telco_split: Any,
) -> Serving:
    """The serving tests' parts, in one fixture."""
    return Serving(node_plane, real_node, serve_image, node_mlflow, train_telco, telco_split)


def champion(node_mlflow: str, train_telco: Any, model_name: str, serve_image: str, **overrides: Any) -> Any:
    """Train and register (blessed, alias champion) the Telco model; the deploy settings that serve it."""
    from mlkeel.components.deploy.logic import DeploySettings
    from mlkeel.components.register.logic import register
    from tests.fixtures_serve import BLESSED

    trained = train_telco(node_mlflow, "strong")
    register(trained.model_uri, BLESSED, model_name, node_mlflow)
    settings = DeploySettings(
        model_name=model_name,
        model_version="",
        namespace=SERVING_NAMESPACE,
        image=serve_image,
        replicas=1,
        cpu_request="100m",
        **overrides,
    )
    return trained, settings


def one_holdout_record(trained: Any, telco_split: Any) -> str:
    """A /predict body of the holdout's first row, in the model's feature columns."""
    import json

    import pyarrow.parquet as pq

    from mlkeel.components.serve.logic import json_records
    from mlkeel.modeling import load_sklearn_model, model_feature_columns

    columns = model_feature_columns(load_sklearn_model(str(trained.model_dir)))
    return json.dumps({"records": json_records(pq.read_table(telco_split[1]).slice(0, 1).select(columns))})


def kube_apis(admin: Any) -> Any:
    """deploy's API clients on an admin connection."""
    from kubernetes import client as k8s

    from mlkeel.components.deploy.logic import KubeApis

    return KubeApis(apps=k8s.AppsV1Api(admin), core=k8s.CoreV1Api(admin), autoscaling=k8s.AutoscalingV2Api(admin))


@contextlib.contextmanager
def client_loop(url: str, payload: bytes) -> Iterator[list[str]]:
    """POST ``payload`` to ``url`` every 0.1 s in a thread while the block runs (2,000 requests at most).

    Yields the list it fills: each answer's status ("200", ...) or the connection error.
    """
    import threading

    from mlkeel.components.serve.logic import http_call

    outcomes: list[str] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set() and len(outcomes) < 2000:
            try:
                outcomes.append(str(http_call(url, payload)[0]))
            except OSError as error:
                outcomes.append(f"{type(error).__name__}: {error}")
            time.sleep(0.1)

    thread = threading.Thread(target=client, daemon=True)
    thread.start()
    try:
        yield outcomes
    finally:
        stop.set()
        thread.join(timeout=10)


def service_url(core: Any, service_name: str) -> str:
    """The Service's /predict at its ClusterIP."""
    service = core.read_namespaced_service(service_name, SERVING_NAMESPACE)
    return f"http://{service.spec.cluster_ip}:{service.spec.ports[0].port}/predict"


def predict_through_service(core: Any, service_name: str, payload: bytes, logs: Callable[[], str]) -> Any:
    """POST ``payload`` to /predict at the Service's ClusterIP until it answers 200; the decoded answer."""
    import json

    from mlkeel.components.serve.logic import http_call

    url = service_url(core, service_name)

    def predicted() -> Any:
        try:  # refused until kube-proxy has the Service's ready endpoint (it rejects one without)
            status, body = http_call(url, payload)
        except OSError:
            return None
        return json.loads(body) if status == 200 else None

    return wait_for("a 200 from /predict through the Service", predicted, 60, logs)


def test_deploy_serves_the_registered_champion_through_the_service_with_real_probes(
    serving: Serving,
    model_name: str,
) -> None:
    """deploy (rolling) of the champion the register stage blessed, with mlkeel/serve: the pod loads the model
    from the host's MLflow server, its startup, readiness and liveness probes call the real /healthz and /readyz,
    and /predict through the Service's ClusterIP (kube-proxy's iptables rules) returns the model's probabilities
    for the holdout rows.
    """
    node_plane, real_node, serve_image, node_mlflow, train_telco, telco_split = serving.parts()
    import json

    import pyarrow.parquet as pq

    from mlkeel.components.deploy.logic import Waiting, deploy_model
    from mlkeel.components.serve.logic import json_records
    from mlkeel.constants import ServingLabel
    from mlkeel.modeling import load_sklearn_model, model_feature_columns, positive_scores

    trained, settings = champion(node_mlflow, train_telco, model_name, serve_image)
    with node_plane.api_client() as admin:
        apis = kube_apis(admin)
        started = time.monotonic()
        result = deploy_model(
            apis,
            settings,
            strategy="rolling",
            tracking_uri=node_mlflow,
            waiting=Waiting(timeout_s=DEPLOY_WAITING_TIMEOUT_S, poll_s=1.0),
        )
        ready_s = time.monotonic() - started
        assert result.model_version == "1", result

        model = load_sklearn_model(str(trained.model_dir))
        columns = model_feature_columns(model)
        rows = pq.read_table(telco_split[1]).slice(0, HOLDOUT_ROWS)
        payload = json.dumps({"records": json_records(rows.select(columns))}).encode()
        answer = predict_through_service(apis.core, settings.serving_name, payload, real_node.logs)
        first_predict_s = time.monotonic() - started
        served = [item["probability"] for item in answer["predictions"]]
        assert served == pytest.approx(positive_scores(model, rows.to_pandas()[columns]).tolist(), abs=1e-9)

        (pod,) = apis.core.list_namespaced_pod(
            SERVING_NAMESPACE, label_selector=f"{ServingLabel.APP}={settings.serving_name}"
        ).items
        status = pod.status.container_statuses[0]
        assert (status.ready, status.started, status.restart_count) == (True, True, 0)
        assert pod.spec.node_name == real.NODE_NAME
        probes = pod.spec.containers[0]
        assert (probes.readiness_probe.http_get.path, probes.liveness_probe.http_get.path) == ("/readyz", "/healthz")
        # The kubelet's own prober counters (through the API server's node proxy): the startup, readiness and
        # liveness probes each ran against the container and succeeded (liveness starts 10 s after startup).
        wait_for(
            "a successful startup, readiness and liveness probe in the kubelet's /metrics/probes",
            lambda: probe_successes(node_plane, pod.metadata.name) >= {"Startup", "Readiness", "Liveness"},
            60,
            real_node.logs,
        )
        print(
            f"deploy -> pods Ready {ready_s:.1f} s; deploy -> first 200 from /predict through the Service "
            f"{first_predict_s:.1f} s"
        )


# ----------------------------------------------------------------------------------------------------------
# A stage image as a Job, with its compiled component's command and arguments
# ----------------------------------------------------------------------------------------------------------

JOB_TIMEOUT_S = 240.0
INGEST_ROWS = 200


def test_ingest_image_runs_as_a_job_with_the_compiled_components_command_as_uid_1000(
    node_plane: ControlPlane, real_node: real.Node, tmp_path: Any, telco_parquet: Any
) -> None:
    """components/ingest/component.yaml's container (image, command, args) as a Kubernetes Job: ``{{$}}`` is the
    executor input a KFP driver would write (a small CSV in, the Dataset and the executor output to a hostPath
    folder). The Job completes, its files belong to uid 1000, the Dataset holds the rows.
    """
    import json

    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    import yaml
    from kubernetes import client as k8s

    from mlkeel import imagebuild
    from tests.cluster.conftest import REPO

    compiled = yaml.safe_load((REPO / "components" / "ingest" / "component.yaml").read_text())
    (executor,) = compiled["deploymentSpec"]["executors"].values()
    container = executor["container"]
    imagebuild.build_all(offline=True, stages=["ingest"])  # the tag the YAML names, up to date with this tree
    real_node.load_images(container["image"])

    inputs, outputs = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    outputs.mkdir()
    outputs.chmod(0o777)  # the container's uid 1000 writes here
    inputs.chmod(0o755)
    pacsv.write_csv(pq.read_table(telco_parquet).slice(0, INGEST_ROWS), inputs / "telco.csv")
    (inputs / "telco.csv").chmod(0o644)
    executor_input = {
        "inputs": {"parameterValues": {"source_uri": "/in/telco.csv", "column_types": {}}},
        "outputs": {
            "artifacts": {
                "dataset": {
                    "artifacts": [
                        {
                            "name": "dataset",
                            "type": {"schemaTitle": "system.Dataset", "schemaVersion": "0.0.1"},
                            "uri": "/out/dataset",
                            "metadata": {},
                        }
                    ]
                }
            },
            "parameters": {"fingerprint": {"outputFile": "/out/fingerprint"}, "num_rows": {"outputFile": "/out/rows"}},
            "outputFile": "/out/executor_output.json",
        },
    }
    args = [json.dumps(executor_input) if arg == "{{$}}" else arg for arg in container["args"]]
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "ingest", "namespace": "default"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        restricted_container(
                            "main",
                            container["image"],
                            container["command"],
                            args=args,
                            volumeMounts=[
                                {"name": "in", "mountPath": "/in", "readOnly": True},
                                {"name": "out", "mountPath": "/out"},
                            ],
                        )
                    ],
                    "volumes": [
                        {"name": "in", "hostPath": {"path": str(inputs), "type": "Directory"}},
                        {"name": "out", "hostPath": {"path": str(outputs), "type": "Directory"}},
                    ],
                }
            },
        },
    }
    with node_plane.api_client() as admin:
        batch, core = k8s.BatchV1Api(admin), k8s.CoreV1Api(admin)
        batch.create_namespaced_job("default", job)

        def finished() -> Any:
            status = batch.read_namespaced_job_status("ingest", "default").status
            return "succeeded" if status.succeeded else "failed" if status.failed else None

        outcome = wait_for("the ingest Job to finish", finished, JOB_TIMEOUT_S, real_node.logs)
        (pod,) = core.list_namespaced_pod("default", label_selector="job-name=ingest").items
        log = core.read_namespaced_pod_log(pod.metadata.name, "default")
    assert outcome == "succeeded", log[-3000:]
    written = json.loads((outputs / "executor_output.json").read_text())
    assert written["parameterValues"]["num_rows"] == INGEST_ROWS
    assert written["parameterValues"]["fingerprint"].startswith("sha256:")
    assert pq.read_table(outputs / "dataset").num_rows == INGEST_ROWS
    owners = {os.stat(path).st_uid for path in [outputs / "executor_output.json", outputs / "dataset"]}
    assert owners == {RUNTIME_UID}


# ----------------------------------------------------------------------------------------------------------
# The prediction log on a PersistentVolume of the test's own
# ----------------------------------------------------------------------------------------------------------


def test_prediction_log_on_a_persistent_volume_survives_the_pod(
    serving: Serving,
    model_name: str,
    tmp_path: Any,
) -> None:
    """deploy with ``prediction_log_claim``: manifests/serving's claim binds to a hostPath PersistentVolume of the
    test's own; the serving pod logs the rows it scored there, and after the pod is deleted (its Deployment
    starts another) the host's folder holds every row once.
    """
    node_plane, real_node, serve_image, node_mlflow, train_telco, telco_split = serving.parts()
    import json

    import pyarrow.parquet as pq
    from kubernetes import client as k8s

    from mlkeel.components.deploy.logic import Waiting, deploy_model
    from mlkeel.components.serve.logic import json_records
    from mlkeel.constants import ServingLabel
    from mlkeel.modeling import load_sklearn_model, model_feature_columns
    from mlkeel.prediction_log import read_prediction_logs

    claim = "mlkeel-prediction-log"  # manifests/serving/prediction-log-pvc.yaml
    volume = tmp_path / "prediction-log-volume"
    volume.mkdir()
    volume.chmod(0o777)  # hostPath volumes take no fsGroup: the serving uid 1000 writes here
    trained, settings = champion(node_mlflow, train_telco, model_name, serve_image, prediction_log_claim=claim)
    with node_plane.api_client() as admin:
        core = k8s.CoreV1Api(admin)
        core.create_persistent_volume(
            {
                "metadata": {"name": "mlkeel-prediction-log-test"},
                "spec": {
                    "capacity": {"storage": "5Gi"},
                    "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Retain",
                    "storageClassName": "",
                    "hostPath": {"path": str(volume), "type": "Directory"},
                    "claimRef": {"namespace": SERVING_NAMESPACE, "name": claim},
                },
            }
        )
        wait_for(
            "the prediction-log claim Bound",
            lambda: core.read_namespaced_persistent_volume_claim(claim, SERVING_NAMESPACE).status.phase == "Bound",
            60,
            real_node.logs,
        )
        deploy_model(
            kube_apis(admin), settings, tracking_uri=node_mlflow, waiting=Waiting(timeout_s=DEPLOY_WAITING_TIMEOUT_S)
        )
        columns = model_feature_columns(load_sklearn_model(str(trained.model_dir)))
        rows = pq.read_table(telco_split[1]).slice(0, HOLDOUT_ROWS).select(columns)
        payload = json.dumps({"records": json_records(rows)}).encode()
        predict_through_service(core, settings.serving_name, payload, real_node.logs)

        selector = f"{ServingLabel.APP}={settings.serving_name}"
        (pod,) = core.list_namespaced_pod(SERVING_NAMESPACE, label_selector=selector).items
        core.delete_namespaced_pod(pod.metadata.name, SERVING_NAMESPACE)  # graceful: SIGTERM flushes the log

        def replaced() -> bool:
            current = core.list_namespaced_pod(SERVING_NAMESPACE, label_selector=selector).items
            return all(p.metadata.name != pod.metadata.name for p in current) and any(
                any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or []) for p in current
            )

        wait_for("the deleted serving pod gone, a new one Ready", replaced, DEPLOY_WAITING_TIMEOUT_S, real_node.logs)
    logged = read_prediction_logs(volume).to_pandas()
    assert len(logged) == HOLDOUT_ROWS
    assert logged["request_id"].is_unique
    assert sorted(logged["feature.tenure"].tolist()) == sorted(rows.column("tenure").to_pylist())
    assert {os.stat(path).st_uid for path in volume.rglob("*.parquet")} == {RUNTIME_UID}


# ----------------------------------------------------------------------------------------------------------
# A rolling update to an image that crashes at start is rolled back; traffic never fails meanwhile
# ----------------------------------------------------------------------------------------------------------

CRASH_WAITING_TIMEOUT_S = 25.0


def test_rolling_update_to_a_crashing_image_is_rolled_back_without_a_failed_request(
    serving: Serving,
    model_name: str,
) -> None:
    """The champion serves; deploy rolls it to an image whose container cannot start (the pause image: no
    python in it, so the kubelet reports the start error and backs off). deploy waits, puts the previous template
    back and says so; a client sending /predict through the Service the whole time sees no failed request
    (maxUnavailable 0: the old pod serves until the new one would be Ready).
    """
    node_plane, real_node, serve_image, node_mlflow, train_telco, telco_split = serving.parts()
    import dataclasses

    from mlkeel.components.deploy.logic import Waiting, deploy_model
    from mlkeel.constants import ServingLabel
    from mlkeel.errors import DeployError

    trained, settings = champion(node_mlflow, train_telco, model_name, serve_image)
    payload = one_holdout_record(trained, telco_split)
    with node_plane.api_client() as admin:
        apis = kube_apis(admin)
        deploy_model(apis, settings, tracking_uri=node_mlflow, waiting=Waiting(timeout_s=DEPLOY_WAITING_TIMEOUT_S))
        predict_through_service(apis.core, settings.serving_name, payload.encode(), real_node.logs)
        with client_loop(service_url(apis.core, settings.serving_name), payload.encode()) as outcomes:
            with pytest.raises(DeployError) as refused:
                deploy_model(
                    apis,
                    dataclasses.replace(settings, image=real_node.pause_image),
                    tracking_uri=node_mlflow,
                    waiting=Waiting(timeout_s=CRASH_WAITING_TIMEOUT_S),
                )
            selector = f"{ServingLabel.APP}={settings.serving_name}"

            def only_the_serve_image_left() -> bool:
                current = apis.core.list_namespaced_pod(SERVING_NAMESPACE, label_selector=selector).items
                return [p.spec.containers[0].image for p in current] == [serve_image]

            wait_for("the crashing pod scaled away", only_the_serve_image_left, 60, real_node.logs)
        message = str(refused.value)
        assert "did not become Ready" in message and "restored Deployment" in message, message
        (deployment,) = apis.apps.list_namespaced_deployment(SERVING_NAMESPACE, label_selector=selector).items
        assert deployment.spec.template.spec.containers[0].image == serve_image
    failed = [outcome for outcome in outcomes if outcome != "200"]
    assert len(outcomes) > 50 and failed == [], (len(outcomes), failed[:5])
    print(f"rolling update to a crashing image rolled back; {len(outcomes)} requests meanwhile, none failed")


def test_blue_green_switch_to_a_new_champion_drops_no_request(
    serving: Serving,
    model_name: str,
) -> None:
    """Version 1 serves (blue); a second model is registered as champion and deployed blue-green: the green
    Deployment becomes Ready, the Service switches to it, blue goes. A client sending /predict through the
    Service every 0.1 s across the switch (and 5 s past it) sees no failed request.
    """
    node_plane, real_node, serve_image, node_mlflow, train_telco, telco_split = serving.parts()

    from mlkeel.components.deploy.logic import Waiting, deploy_model
    from mlkeel.components.register.logic import register
    from tests.fixtures_serve import BLESSED

    trained, settings = champion(node_mlflow, train_telco, model_name, serve_image)
    payload = one_holdout_record(trained, telco_split)
    with node_plane.api_client() as admin:
        apis = kube_apis(admin)
        waiting = Waiting(timeout_s=DEPLOY_WAITING_TIMEOUT_S)
        first = deploy_model(apis, settings, strategy="blue-green", tracking_uri=node_mlflow, waiting=waiting)
        predict_through_service(apis.core, settings.serving_name, payload.encode(), real_node.logs)
        second_model = train_telco(node_mlflow, "strong-f1", threshold_policy="f1")
        register(second_model.model_uri, BLESSED, model_name, node_mlflow)
        with client_loop(service_url(apis.core, settings.serving_name), payload.encode()) as outcomes:
            second = deploy_model(apis, settings, strategy="blue-green", tracking_uri=node_mlflow, waiting=waiting)
            time.sleep(5)  # keep the client going past the old slot's removal
    assert (first.model_version, second.model_version, second.previous_version) == ("1", "2", "1")
    assert second.deployment != first.deployment
    failed = [outcome for outcome in outcomes if outcome != "200"]
    assert len(outcomes) > 50 and failed == [], (len(outcomes), failed[:5])
    print(f"blue-green switch {first.deployment} -> {second.deployment}: {len(outcomes)} requests, none failed")


# ----------------------------------------------------------------------------------------------------------
# Canary: a broken version is removed by the default check reading the canary pod's /metrics; a good one promoted
# ----------------------------------------------------------------------------------------------------------

# The default check as the CLI builds it, with a shorter look: a 1 % limit, at least this many /predict requests.
CANARY_OBSERVE_S = 6.0
CANARY_MIN_REQUESTS = 10
CANARY_MAX_ERROR_RATE = 0.01
BROKEN_MODEL_ARTIFACT = "model-without-coefficients"


def register_broken_champion(node_mlflow: str, trained: Any, model_name: str) -> None:
    """Register, as the new champion, ``trained`` with its logistic regression's coefficients gone.

    A corrupt artifact that still loads: the serving pod loads it and becomes Ready (classes, feature names,
    categories and threshold are all there), and every ``/predict`` fails inside ``predict_proba`` with an
    AttributeError, which the serving app answers with a 500. It is logged into the training run (which keeps
    the run's schema and lineage tags, as a re-logged model would) in the same format train saves models.
    """
    import copy

    import mlflow
    import mlflow.sklearn
    import yaml

    from mlkeel.components.register.logic import register
    from mlkeel.modeling import fitted_pipeline, load_sklearn_model
    from tests.fixtures_serve import BLESSED

    broken = copy.deepcopy(load_sklearn_model(str(trained.model_dir)))
    del fitted_pipeline(broken).named_steps["classify"].coef_
    flavor = yaml.safe_load((trained.model_dir / "MLmodel").read_text())["flavors"]["sklearn"]
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(node_mlflow)
    try:
        with mlflow.start_run(run_id=trained.run_id):
            # What makes it a registration of its own: from a clean checkout (CI) the registration key is the
            # data, the code and the run's parameters, not the artifact, so without this register would reuse
            # version 1 and deploy would find nothing to do.
            mlflow.log_param("mlkeel_test_broken", "classifier coefficients deleted")
            logged = mlflow.sklearn.log_model(
                broken,
                name=BROKEN_MODEL_ARTIFACT,
                signature=mlflow.models.get_model_info(str(trained.model_dir)).signature,
                skops_trusted_types=flavor.get("skops_trusted_types"),
                pip_requirements=str(trained.model_dir / "requirements.txt"),
            )
    finally:
        mlflow.set_tracking_uri(previous)
    register(logged.model_uri, BLESSED, model_name, node_mlflow)


def serving_objects(apis: Any, serving_name: str) -> tuple[list[str], list[str], list[str]]:
    """(Deployments, Services, model URIs of the pods not being deleted) of one served model, names sorted.

    A pod being deleted is out of the Service's endpoints already (it answers in-flight requests during its
    preStop sleep): waiting for it to be gone would only add that sleep to the test.
    """
    from mlkeel.constants import ServingLabel

    selector = f"{ServingLabel.APP}={serving_name}"
    deployments = apis.apps.list_namespaced_deployment(SERVING_NAMESPACE, label_selector=selector).items
    services = apis.core.list_namespaced_service(SERVING_NAMESPACE, label_selector=selector).items
    pods = apis.core.list_namespaced_pod(SERVING_NAMESPACE, label_selector=selector).items
    return (
        sorted(d.metadata.name for d in deployments),
        sorted(s.metadata.name for s in services),
        sorted(
            next(arg for arg in p.spec.containers[0].args if arg.startswith("models:/"))
            for p in pods
            if p.metadata.deletion_timestamp is None
        ),
    )


def test_canary_of_a_broken_model_is_removed_by_its_real_metrics_and_a_good_canary_is_promoted(
    serving: Serving,
    model_name: str,
) -> None:
    """Version 1 serves. Version 2 (the same model with its coefficients gone: it loads, turns Ready, and answers
    /predict with 500) goes out as a canary while a client sends /predict through the Service: the default
    check reads the canary pod's own /metrics at its pod IP, sees its 5xx share, and deploy removes the canary;
    version 1 still serves. Version 3 (a good model) goes out the same way: no 5xx, promoted, the stable pods
    now answer with version 3.
    """
    node_plane, real_node, serve_image, node_mlflow, train_telco, telco_split = serving.parts()
    import json

    from mlkeel.components.deploy.logic import Waiting, deploy_model, metrics_error_rate_check
    from mlkeel.components.register.logic import register
    from mlkeel.components.serve.logic import http_call
    from mlkeel.errors import DeployError
    from tests.fixtures_serve import BLESSED

    trained, settings = champion(node_mlflow, train_telco, model_name, serve_image)
    payload = one_holdout_record(trained, telco_split).encode()
    name = settings.serving_name
    check = metrics_error_rate_check(
        max_error_rate=CANARY_MAX_ERROR_RATE, observe_s=CANARY_OBSERVE_S, min_requests=CANARY_MIN_REQUESTS
    )
    with node_plane.api_client() as admin:
        apis = kube_apis(admin)
        waiting = Waiting(timeout_s=DEPLOY_WAITING_TIMEOUT_S, poll_s=1.0)
        deploy_model(apis, settings, tracking_uri=node_mlflow, waiting=waiting)
        predict_through_service(apis.core, name, payload, real_node.logs)
        url = service_url(apis.core, name)

        def only_version_serves(version: str) -> None:
            """No canary left, the stable pods on ``version``, and 20 answers in a row from it."""
            wait_for(
                f"the canary gone, the stable pods on version {version}",
                lambda: serving_objects(apis, name) == ([f"{name}-blue"], [name], [f"models:/{model_name}/{version}"]),
                60,
                real_node.logs,
            )
            # Then 20 answers in a row from it (once kube-proxy has dropped the stopping pods: within a second).
            wait_for(
                f"20 answers in a row from version {version}",
                lambda: all(
                    status == 200 and json.loads(body)["model_version"] == version
                    for status, body in (http_call(url, payload) for _ in range(20))
                ),
                15,
                real_node.logs,
            )

        register_broken_champion(node_mlflow, trained, model_name)
        started = time.monotonic()
        with client_loop(url, payload) as broken_outcomes, pytest.raises(DeployError) as refused:
            deploy_model(
                apis, settings, strategy="canary", tracking_uri=node_mlflow, canary_check=check, waiting=waiting
            )
        broken_s = time.monotonic() - started
        message = str(refused.value)
        assert f"canary models:/{model_name}/2 failed its check: error rate 100.00% over" in message, message
        assert f"above the limit 1.00%; rolled back: removed {SERVING_NAMESPACE}/{name}-canary" in message, message
        only_version_serves("1")

        good = train_telco(node_mlflow, "strong-f1", threshold_policy="f1")
        register(good.model_uri, BLESSED, model_name, node_mlflow)
        started = time.monotonic()
        with client_loop(url, payload) as good_outcomes:
            promoted = deploy_model(
                apis, settings, strategy="canary", tracking_uri=node_mlflow, canary_check=check, waiting=waiting
            )
        good_s = time.monotonic() - started
        only_version_serves("3")

    assert (promoted.action, promoted.model_version, promoted.previous_version) == ("promoted", "3", "1")
    assert promoted.canary["healthy"] is True and promoted.canary["error_rate"] == 0.0, promoted.canary
    assert promoted.canary["requests"] >= CANARY_MIN_REQUESTS, promoted.canary
    # The clients saw the broken canary's share of the traffic fail (500), and only that; the good one none.
    assert {"200", "500"} >= set(broken_outcomes) and "500" in broken_outcomes, set(broken_outcomes)
    assert set(good_outcomes) == {"200"}, set(good_outcomes)
    print(
        f"broken canary removed {broken_s:.1f} s after deploy ({message.split(': ', 1)[1].split(';')[0]}; "
        f"the client: {broken_outcomes.count('500')} of {len(broken_outcomes)} requests answered 500); "
        f"good canary promoted {good_s:.1f} s after deploy ({promoted.canary['reason']}; the client: "
        f"{len(good_outcomes)} requests, none failed)"
    )


# ----------------------------------------------------------------------------------------------------------
# Cluster DNS (CoreDNS, tools/coredns): a pod reaches the serving Service by name
# ----------------------------------------------------------------------------------------------------------

MISSING_SERVICE = "no-such-service"
# Run in a pod of the serve image (it has Python): resolve and call the Service by its names, then a name that
# does not exist. Prints one JSON line.
DNS_CLIENT = """\
import json, socket, sys, time, urllib.request
service, namespace, port, domain, missing = sys.argv[1:6]
fqdn = f"{service}.{namespace}.svc.{domain}"
found = {}
started = time.monotonic()
found["address"] = socket.gethostbyname(fqdn)
found["lookup_s"] = time.monotonic() - started
for key, host in (("fqdn", fqdn), ("short", service)):
    with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=10) as answer:
        found[key] = [answer.status, json.loads(answer.read())]
started = time.monotonic()
try:
    found["missing"] = socket.getaddrinfo(f"{missing}.{namespace}.svc.{domain}.", int(port))[0][4][0]
except socket.gaierror as error:
    found["missing"] = [error.errno, str(error)]
found["missing_s"] = time.monotonic() - started
with open("/etc/resolv.conf") as conf:
    found["resolv_conf"] = conf.read()
print(json.dumps(found))
"""


def test_a_pod_reaches_the_serving_service_by_name_through_coredns(serving: Serving, model_name: str) -> None:
    """deploy serves the champion; a pod in the serving namespace (the serve image running a small Python
    client) resolves ``<service>.<namespace>.svc.cluster.local`` to the Service's ClusterIP through CoreDNS on the
    node, gets 200 from ``/readyz`` by that name and by the short ``<service>`` (the pod's search path), and a
    Service name that does not exist fails at once with "name not known" (NXDOMAIN), not a timeout.
    """
    node_plane, real_node, serve_image, node_mlflow, train_telco, _ = serving.parts()
    import json
    import socket

    from mlkeel.cluster import dns
    from mlkeel.components.deploy.logic import Waiting, deploy_model

    _, settings = champion(node_mlflow, train_telco, model_name, serve_image)
    with node_plane.api_client() as admin:
        apis = kube_apis(admin)
        deploy_model(apis, settings, tracking_uri=node_mlflow, waiting=Waiting(timeout_s=DEPLOY_WAITING_TIMEOUT_S))
        service = apis.core.read_namespaced_service(settings.serving_name, SERVING_NAMESPACE)
        port = str(service.spec.ports[0].port)
        ready_url = f"http://{service.spec.cluster_ip}:{port}/readyz"
        # kube-proxy has the Service's rules once its ClusterIP answers from the host: what follows is DNS's.
        wait_for(
            "/readyz at the Service's ClusterIP from the host", lambda: real.answers(ready_url), 60, real_node.logs
        )
        client = restricted_container(
            "client",
            serve_image,
            [
                "python",
                "-c",
                DNS_CLIENT,
                settings.serving_name,
                SERVING_NAMESPACE,
                port,
                dns.CLUSTER_DOMAIN,
                MISSING_SERVICE,
            ],
        )
        apis.core.create_namespaced_pod(
            SERVING_NAMESPACE,
            {"metadata": {"name": "dns-client"}, "spec": {"restartPolicy": "Never", "containers": [client]}},
        )

        def finished() -> Any:
            phase = apis.core.read_namespaced_pod("dns-client", SERVING_NAMESPACE).status.phase
            return phase if phase in ("Succeeded", "Failed") else None

        phase = wait_for("the DNS client pod to finish", finished, POD_READY_TIMEOUT_S, real_node.logs)
        # Unparsed: the client would turn a JSON log line into a dict's repr.
        log = apis.core.read_namespaced_pod_log("dns-client", SERVING_NAMESPACE, _preload_content=False).data.decode()
    assert phase == "Succeeded", f"{log[-3000:]}\n--- coredns\n{real_node.logs(20)}"
    found = json.loads(log.strip().splitlines()[-1])
    assert f"nameserver {real.NODE_IP}" in found["resolv_conf"]
    assert f"search {SERVING_NAMESPACE}.svc.{dns.CLUSTER_DOMAIN}" in found["resolv_conf"]
    assert found["address"] == service.spec.cluster_ip
    for name in ("fqdn", "short"):
        status, body = found[name]
        assert (status, body["ready"]) == (200, True), found
    assert found["missing"][0] == socket.EAI_NONAME, found["missing"]
    assert found["missing_s"] < 2.0, found
    print(
        f"CoreDNS ready {real_node.dns_s:.2f} s after it started; {settings.serving_name}.{SERVING_NAMESPACE}"
        f".svc.{dns.CLUSTER_DOMAIN} -> {found['address']} in {found['lookup_s'] * 1000:.1f} ms from a pod; "
        f"{MISSING_SERVICE}: {found['missing'][1]} in {found['missing_s'] * 1000:.1f} ms"
    )
