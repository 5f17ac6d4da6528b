"""Deploy: serve a registered model version on Kubernetes (Deployment + Service + optional HPA).

Objects (``NAME`` = the model name as a DNS label, ``serving_name``):
    Service ``NAME``             the stable address; selects ``app=NAME, slot=<active slot>``; its annotations
                                 record the served version, the active Deployment and a hash of the settings
    Deployment ``NAME-blue``     the two slots blue-green alternates between; rolling updates the active one
    Deployment ``NAME-green``
    Deployment ``NAME-canary``   a canary's pods: labelled with the active slot, so the Service sends them a share
    Service ``NAME-canary``      selects the canary's pods alone: its Endpoints give the check their addresses
                                 (each pod's ``/metrics``); removed with the canary
    HPA ``NAME``                 autoscaling/v2 on CPU, targets the active Deployment (optional)

Strategies:
    rolling     replace the active Deployment's pod template (Kubernetes rolls the pods); when it is not Ready
                within the timeout, put the previous template back (or delete a Deployment that never served).
    blue-green  create the other slot with the new version; switch the Service selector only once it is Ready;
                then delete the old slot. Never Ready: delete the new slot, the Service never moved.
    canary      run ``canary_fraction`` of the replicas of the new version behind the same Service; when Ready,
                ``canary_check`` judges it (default: the error rate summed over every canary pod's ``/metrics``,
                read at the pod's IP: no cluster DNS needed, so it works from a pod and from a host that routes
                the pod network); pass: roll the stable Deployment to the new version and remove the canary;
                fail: remove the canary.

Re-applying the same version with the same settings writes nothing. A version without the required registry
alias (``champion`` by default; the register stage sets it on blessed models) is refused before any API call.

The Kubernetes API is the official ``kubernetes`` client's ``AppsV1Api``/``CoreV1Api``/``AutoscalingV2Api``,
passed in (``KubeApis``): the tests build them for a real API server as the least-privilege ServiceAccount
(tests/cluster/test_deploy.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from mlkeel.constants import (
    CHAMPION_ALIAS,
    ENV_TRACKING_URI,
    MLFLOW_SECRET_NAME,
    MLFLOW_SECRET_URI_KEY,
    PREVIOUS_CHAMPION_ALIAS,
    ServingLabel,
)
from mlkeel.errors import DeployError, NotBlessedError, ParameterError
from mlkeel.storage import write_json_atomic

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

logger = logging.getLogger(__name__)

STRATEGIES = ("rolling", "blue-green", "canary")
SLOTS = ("blue", "green")
CANARY = "canary"
STABLE = "stable"
CONTAINER_NAME = "serve"
SERVING_PORT = 8080
# The serving container's contract (mlkeel.components.serve).
SERVE_MODULE = "mlkeel.components.serve"
LIVENESS_PATH = "/healthz"
READINESS_PATH = "/readyz"
METRICS_PATH = "/metrics"
PREDICT_PATH = "/predict"
# The serving app's Prometheus counter of requests, labelled by endpoint and HTTP status: a canary's error rate
# is the share of its /predict requests answered 5xx (probes and /metrics scrapes do not count).
REQUESTS_METRIC = "mlkeel_serve_requests_total"
ENDPOINT_LABEL = "endpoint"
STATUS_LABEL = "status"
# Where the serving container writes its prediction log: in the home emptyDir (the root filesystem is
# read-only), or on the volume of ``prediction_log_claim`` mounted there.
PREDICTION_LOG_DIR = "/home/mlkeel/prediction-log"
PREDICTION_LOG_VOLUME = "prediction-log"
HTTP_NOT_FOUND = 404
MAX_DNS_LABEL = 63
# "-canary" is the longest suffix added to the serving name; names stay valid DNS labels with it.
MAX_SERVING_NAME = MAX_DNS_LABEL - len("-canary")
RUNTIME_UID = 1000
# A stopping serving pod keeps answering this long before it gets SIGTERM: kube-proxy (and any other Service
# proxy) needs a moment to stop sending it new connections once it is marked terminating. Without it a rolling
# update, a promoted canary's cleanup or a removed canary refuses some requests (seen on the real node).
PRE_STOP_SLEEP_S = 5


@dataclass(frozen=True)
class KubeApis:
    """The Kubernetes API clients deploy calls (``kubernetes.client`` objects, or a stand-in in tests).

    Attributes:
        apps: ``AppsV1Api``: Deployments.
        core: ``CoreV1Api``: Services.
        autoscaling: ``AutoscalingV2Api``: HorizontalPodAutoscalers.
    """

    apps: Any
    core: Any
    autoscaling: Any


@dataclass(frozen=True)
class DeploySettings:
    """How a model version is served. Every field but the version is part of the settings hash.

    Attributes:
        model_name: Registered model name.
        model_version: Registered version to serve.
        namespace: Kubernetes namespace.
        image: The serving image (default: ``stage_image("serve")``).
        replicas: Pods of the stable Deployment (the HPA's minimum when ``max_replicas`` is set).
        max_replicas: 0 = no HPA; else an autoscaling/v2 HPA from ``replicas`` to this many pods.
        target_cpu_utilization: The HPA's average CPU utilisation target, percent of the request.
        cpu_request: Container CPU request.
        memory_request: Container memory request.
        cpu_limit: Container CPU limit ("" = none).
        memory_limit: Container memory limit.
        port: The serving container's port.
        service_account: Pod ServiceAccount ("" = the namespace default).
        prediction_log_claim: A PersistentVolumeClaim to keep the prediction log on ("" = the pod's emptyDir,
            lost with the pod). Every replica writes its own part files into the same folder, so with pods on
            several nodes the claim needs ReadWriteMany.
    """

    model_name: str
    model_version: str
    namespace: str = "mlkeel-serving"
    image: str = ""
    replicas: int = 2
    max_replicas: int = 0
    target_cpu_utilization: int = 70
    cpu_request: str = "250m"
    memory_request: str = "512Mi"
    cpu_limit: str = "1"
    memory_limit: str = "1Gi"
    port: int = SERVING_PORT
    service_account: str = ""
    prediction_log_claim: str = ""

    @property
    def serving_name(self) -> str:
        """The Service / app name: the model name as a DNS label."""
        return serving_name(self.model_name)

    def digest(self) -> str:
        """A short hash of the settings (the served image, resources, replicas...): equal = nothing to change."""
        document = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(document.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CanaryReport:
    """A canary check's verdict.

    Attributes:
        healthy: True to promote, False to roll back.
        reason: One sentence with the numbers.
        error_rate: The measured error rate, when one was measured.
        requests: Requests observed, when counted.
    """

    healthy: bool
    reason: str
    error_rate: float | None = None
    requests: float | None = None


@dataclass(frozen=True)
class CanaryTarget:
    """What a canary check is told: where the canary is.

    Attributes:
        namespace: Namespace.
        service: The canary-only Service's name.
        port: Its port.
        deployment: The canary Deployment's name.
        model_version: The version the canary serves.
        pod_addresses: The ready canary pods' ``IP:port``, from the canary-only Service's Endpoints.
    """

    namespace: str
    service: str
    port: int
    deployment: str
    model_version: str
    pod_addresses: tuple[str, ...] = ()

    @property
    def metrics_url(self) -> str:
        """The canary's ``/metrics`` by the canary-only Service's DNS name (one pod per request; in-cluster only)."""
        return f"http://{self.service}.{self.namespace}.svc:{self.port}{METRICS_PATH}"

    @property
    def pod_metrics_urls(self) -> tuple[str, ...]:
        """Every ready canary pod's own ``/metrics``, at its pod IP."""
        return tuple(f"http://{address}{METRICS_PATH}" for address in self.pod_addresses)


CanaryCheck = Callable[[CanaryTarget], CanaryReport]


@dataclass(frozen=True)
class DeployResult:
    """What ``deploy`` did.

    Attributes:
        action: created | updated | switched | promoted | unchanged.
        strategy: The strategy used.
        model_name: Registered model name.
        model_version: The version now served.
        previous_version: The version served before ("" when none).
        namespace: Namespace.
        service: The Service's name.
        deployment: The Deployment that serves now.
        reason: One sentence saying what happened.
        canary: The canary check's verdict, when a canary ran.
    """

    action: str
    strategy: str
    model_name: str
    model_version: str
    previous_version: str
    namespace: str
    service: str
    deployment: str
    reason: str
    canary: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-serialisable dict (also the KFP artifact metadata)."""
        return asdict(self)


@dataclass(frozen=True)
class Waiting:
    """How long to wait for readiness and how (injectable so tests do not sleep).

    Attributes:
        timeout_s: Give up (and roll back) after this many seconds.
        poll_s: Seconds between readiness reads.
        sleep: ``time.sleep`` or a stand-in.
        clock: ``time.monotonic`` or a stand-in.
    """

    timeout_s: float = 300.0
    poll_s: float = 5.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic


def serving_name(model_name: str) -> str:
    """Turn a registered model name into a DNS label for the Service, Deployments and ``app`` label.

    Args:
        model_name: Registered model name.

    Returns:
        Lower case, runs of other characters as ``-``, at most ``MAX_SERVING_NAME`` characters.

    Raises:
        ParameterError: nothing usable is left.
    """
    name = re.sub(r"[^a-z0-9]+", "-", model_name.lower()).strip("-")[:MAX_SERVING_NAME].strip("-")
    if not name or not name[0].isalpha():
        raise ParameterError(
            f"model name {model_name!r} gives no valid Kubernetes name: it must start with a letter "
            "(the Service and Deployments are named after it)"
        )
    return name


def label_value(text: str) -> str:
    """``text`` as a Kubernetes label value (63 characters of ``[A-Za-z0-9._-]``, alphanumeric at both ends)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:MAX_DNS_LABEL].strip("-._")


def check_settings(settings: DeploySettings, strategy: str, canary_fraction: float) -> None:
    """Validate the parameters before any API call.

    Args:
        settings: The serving settings.
        strategy: One of ``STRATEGIES``.
        canary_fraction: Share of the stable replicas the canary runs, in (0, 1).

    Raises:
        ParameterError: unknown strategy, bad counts, fraction or version; a name that is no DNS label.
    """
    if strategy not in STRATEGIES:
        raise ParameterError(f"strategy={strategy!r}: expected one of {', '.join(STRATEGIES)}")
    if not str(settings.model_version).isdigit():
        raise ParameterError(f"model_version={settings.model_version!r}: expected a registry version number")
    if settings.replicas < 1:
        raise ParameterError(f"replicas={settings.replicas}: at least 1")
    if settings.max_replicas and settings.max_replicas < settings.replicas:
        raise ParameterError(
            f"max_replicas={settings.max_replicas} is below replicas={settings.replicas} (0 = no autoscaler)"
        )
    if not 1 <= settings.target_cpu_utilization <= 100:
        raise ParameterError(f"target_cpu_utilization={settings.target_cpu_utilization}: a percentage, 1-100")
    if not 0 < canary_fraction < 1:
        raise ParameterError(f"canary_fraction={canary_fraction}: must be between 0 and 1 (exclusive)")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", settings.namespace):
        raise ParameterError(f"namespace={settings.namespace!r}: not a valid Kubernetes namespace name")
    if not 1 <= settings.port <= 65535:
        raise ParameterError(f"port={settings.port}: expected 1-65535")
    claim = settings.prediction_log_claim
    if claim and not re.fullmatch(r"[a-z0-9]([-.a-z0-9]{0,251}[a-z0-9])?", claim):
        raise ParameterError(f"prediction_log_claim={claim!r}: not a valid PersistentVolumeClaim name")
    serving_name(settings.model_name)


# ----------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------


def resolve_version(
    client: MlflowClient, model_name: str, model_version: str, required_alias: str, tracking_uri: str
) -> str:
    """Check that ``model_version`` holds ``required_alias`` (or find the version that does, when empty).

    Args:
        client: A client bound to the registry.
        model_name: Registered model name.
        model_version: The version to serve; "" = the one under ``required_alias``.
        required_alias: The alias a servable version must hold (``champion``: set by the register stage on
            blessed models; ``previous_champion`` to roll back to the champion before).
        tracking_uri: The resolved registry URI, for messages.

    Returns:
        The version number, as text.

    Raises:
        NotBlessedError: the version does not hold the alias.
        RegistryError: no such model or version, or the registry failed.
    """
    from mlkeel.components.gate.logic import registry_call

    uri = tracking_uri
    if not model_version:
        registered = registry_call(
            uri, f"read registered model {model_name!r}", lambda: client.get_registered_model(model_name)
        )
        aliased = (registered.aliases or {}).get(required_alias)
        if not aliased:
            raise NotBlessedError(
                f"registered model {model_name!r} has no version under the {required_alias!r} alias: "
                "nothing blessed to deploy (the register stage sets it on blessed models)"
            )
        return str(aliased)
    version = registry_call(
        uri,
        f"read version {model_version} of {model_name!r}",
        lambda: client.get_model_version(model_name, str(model_version)),
    )
    aliases = sorted(version.aliases or [])
    if required_alias not in aliases:
        held = f"it holds {', '.join(repr(alias) for alias in aliases)}" if aliases else "it holds no alias"
        raise NotBlessedError(
            f"refusing to deploy {model_name!r} version {model_version}: it is not the {required_alias!r} "
            f"({held}); only a version the gate blessed and the register stage aliased is deployed"
            + (
                f" (to roll back on purpose, deploy the {PREVIOUS_CHAMPION_ALIAS!r} with that required alias)"
                if required_alias == CHAMPION_ALIAS
                else ""
            )
        )
    return str(version.version)


# ----------------------------------------------------------------------------------------------------------
# Rendering: kubernetes.client model objects
# ----------------------------------------------------------------------------------------------------------


def model_uri(settings: DeploySettings) -> str:
    """The ``models:/NAME/VERSION`` URI the serving container loads."""
    return f"models:/{settings.model_name}/{settings.model_version}"


def _labels(settings: DeploySettings, slot: str, track: str) -> dict[str, str]:
    return {
        ServingLabel.APP: settings.serving_name,
        ServingLabel.MODEL_NAME: label_value(settings.model_name),
        ServingLabel.MODEL_VERSION: str(settings.model_version),
        ServingLabel.SLOT: slot,
        ServingLabel.TRACK: track,
        ServingLabel.MANAGED_BY: "mlkeel",
    }


def _selector(settings: DeploySettings, slot: str, track: str) -> dict[str, str]:
    # Never the version: a Deployment's selector is immutable, and a rolling update changes the version.
    return {ServingLabel.APP: settings.serving_name, ServingLabel.SLOT: slot, ServingLabel.TRACK: track}


def deployment_name(settings: DeploySettings, slot_or_track: str) -> str:
    """``NAME-blue``, ``NAME-green`` or ``NAME-canary``."""
    return f"{settings.serving_name}-{slot_or_track}"


def render_deployment(settings: DeploySettings, slot: str, track: str = STABLE, replicas: int | None = None) -> Any:
    """Render the serving Deployment of ``settings`` for a slot.

    Args:
        settings: What to serve and how.
        slot: ``blue`` or ``green``: the slot the pods belong to (the Service selects a slot).
        track: ``stable``, or ``canary`` for the canary's pods (named ``NAME-canary``).
        replicas: Pods; default ``settings.replicas``.

    Returns:
        A ``kubernetes.client.V1Deployment``.
    """
    from kubernetes import client as k8s

    from mlkeel.images import stage_image

    labels = _labels(settings, slot, track)
    name = deployment_name(settings, CANARY if track == CANARY else slot)
    claim = settings.prediction_log_claim
    port_name = "http"
    limits = {"memory": settings.memory_limit}
    if settings.cpu_limit:
        limits["cpu"] = settings.cpu_limit
    container = k8s.V1Container(
        name=CONTAINER_NAME,
        image=settings.image or stage_image("serve"),
        image_pull_policy="IfNotPresent",
        command=["python", "-m", SERVE_MODULE],
        # 0.0.0.0: the app listens on loopback by default, which a Service cannot reach.
        args=[
            "--model",
            model_uri(settings),
            "--host",
            "0.0.0.0",
            "--port",
            str(settings.port),
            "--prediction-log",
            PREDICTION_LOG_DIR,
        ],
        ports=[k8s.V1ContainerPort(name=port_name, container_port=settings.port, protocol="TCP")],
        env=[
            k8s.V1EnvVar(
                name=ENV_TRACKING_URI,
                value_from=k8s.V1EnvVarSource(
                    secret_key_ref=k8s.V1SecretKeySelector(name=MLFLOW_SECRET_NAME, key=MLFLOW_SECRET_URI_KEY)
                ),
            ),
            k8s.V1EnvVar(name="MLFLOW_DISABLE_TELEMETRY", value="true"),
        ],
        resources=k8s.V1ResourceRequirements(
            requests={"cpu": settings.cpu_request, "memory": settings.memory_request}, limits=limits
        ),
        # Ready only once the model is loaded (the serving app's /readyz); restarted when /healthz stops answering.
        readiness_probe=k8s.V1Probe(
            http_get=k8s.V1HTTPGetAction(path=READINESS_PATH, port=port_name),
            period_seconds=5,
            failure_threshold=3,
            timeout_seconds=2,
        ),
        liveness_probe=k8s.V1Probe(
            http_get=k8s.V1HTTPGetAction(path=LIVENESS_PATH, port=port_name),
            initial_delay_seconds=10,
            period_seconds=10,
            failure_threshold=3,
            timeout_seconds=2,
        ),
        # Loading a model from the registry can take a while: liveness starts counting once this passes.
        startup_probe=k8s.V1Probe(
            http_get=k8s.V1HTTPGetAction(path=LIVENESS_PATH, port=port_name), period_seconds=5, failure_threshold=60
        ),
        # Kubernetes' own sleep action (on by default since 1.30): no shell or sleep binary needed in the image.
        lifecycle=k8s.V1Lifecycle(pre_stop=k8s.V1LifecycleHandler(sleep=k8s.V1SleepAction(seconds=PRE_STOP_SLEEP_S))),
        security_context=k8s.V1SecurityContext(
            allow_privilege_escalation=False,
            read_only_root_filesystem=True,
            run_as_non_root=True,
            run_as_user=RUNTIME_UID,
            capabilities=k8s.V1Capabilities(drop=["ALL"]),
        ),
        # The root filesystem is read-only: the model download, MLflow's cache and the prediction log go here.
        volume_mounts=[
            k8s.V1VolumeMount(name="tmp", mount_path="/tmp"),
            k8s.V1VolumeMount(name="home", mount_path="/home/mlkeel"),
            *([k8s.V1VolumeMount(name=PREDICTION_LOG_VOLUME, mount_path=PREDICTION_LOG_DIR)] if claim else []),
        ],
    )
    pod = k8s.V1PodSpec(
        containers=[container],
        service_account_name=settings.service_account or None,
        automount_service_account_token=False,
        security_context=k8s.V1PodSecurityContext(
            run_as_non_root=True,
            run_as_user=RUNTIME_UID,
            run_as_group=RUNTIME_UID,
            fs_group=RUNTIME_UID,
            seccomp_profile=k8s.V1SeccompProfile(type="RuntimeDefault"),
        ),
        volumes=[
            k8s.V1Volume(name="tmp", empty_dir=k8s.V1EmptyDirVolumeSource()),
            k8s.V1Volume(name="home", empty_dir=k8s.V1EmptyDirVolumeSource()),
            *(
                [
                    k8s.V1Volume(
                        name=PREDICTION_LOG_VOLUME,
                        persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=claim),
                    )
                ]
                if claim
                else []
            ),
        ],
    )
    return k8s.V1Deployment(
        api_version="apps/v1",
        kind="Deployment",
        metadata=k8s.V1ObjectMeta(
            name=name,
            namespace=settings.namespace,
            labels=labels,
            annotations={ServingLabel.SETTINGS_DIGEST: settings.digest(), ServingLabel.MODEL: model_uri(settings)},
        ),
        spec=k8s.V1DeploymentSpec(
            replicas=settings.replicas if replicas is None else replicas,
            selector=k8s.V1LabelSelector(match_labels=_selector(settings, slot, track)),
            strategy=k8s.V1DeploymentStrategy(
                type="RollingUpdate",
                # Never below the wanted capacity during a rollout: one extra pod at a time.
                rolling_update=k8s.V1RollingUpdateDeployment(max_surge=1, max_unavailable=0),
            ),
            revision_history_limit=3,
            template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=pod),
        ),
    )


def render_service(settings: DeploySettings, slot: str, canary: bool = False) -> Any:
    """Render the Service: the stable one (selects the slot), or the canary-only one.

    Args:
        settings: What is served.
        slot: The slot whose pods the Service selects.
        canary: True for ``NAME-canary``, which selects the canary's pods alone.

    Returns:
        A ``kubernetes.client.V1Service``.
    """
    from kubernetes import client as k8s

    selector = _selector(settings, slot, CANARY) if canary else {ServingLabel.APP: settings.serving_name}
    if not canary:
        selector[ServingLabel.SLOT] = slot
    annotations = {
        ServingLabel.MODEL_VERSION: str(settings.model_version),
        ServingLabel.ACTIVE_DEPLOYMENT: deployment_name(settings, CANARY if canary else slot),
        ServingLabel.SETTINGS_DIGEST: settings.digest(),
    }
    return k8s.V1Service(
        api_version="v1",
        kind="Service",
        metadata=k8s.V1ObjectMeta(
            name=deployment_name(settings, CANARY) if canary else settings.serving_name,
            namespace=settings.namespace,
            labels={ServingLabel.APP: settings.serving_name, ServingLabel.MANAGED_BY: "mlkeel"},
            annotations=annotations,
        ),
        spec=k8s.V1ServiceSpec(
            type="ClusterIP",
            selector=selector,
            ports=[k8s.V1ServicePort(name="http", port=settings.port, target_port="http", protocol="TCP")],
        ),
    )


def render_hpa(settings: DeploySettings, slot: str) -> Any:
    """Render the autoscaling/v2 HPA of the slot's Deployment (CPU utilisation target).

    Args:
        settings: ``replicas`` is the minimum, ``max_replicas`` the maximum.
        slot: The slot whose Deployment it scales.

    Returns:
        A ``kubernetes.client.V2HorizontalPodAutoscaler``.
    """
    from kubernetes import client as k8s

    return k8s.V2HorizontalPodAutoscaler(
        api_version="autoscaling/v2",
        kind="HorizontalPodAutoscaler",
        metadata=k8s.V1ObjectMeta(
            name=settings.serving_name,
            namespace=settings.namespace,
            labels={ServingLabel.APP: settings.serving_name, ServingLabel.MANAGED_BY: "mlkeel"},
            annotations={ServingLabel.SETTINGS_DIGEST: settings.digest()},
        ),
        spec=k8s.V2HorizontalPodAutoscalerSpec(
            scale_target_ref=k8s.V2CrossVersionObjectReference(
                api_version="apps/v1", kind="Deployment", name=deployment_name(settings, slot)
            ),
            min_replicas=settings.replicas,
            max_replicas=settings.max_replicas,
            metrics=[
                k8s.V2MetricSpec(
                    type="Resource",
                    resource=k8s.V2ResourceMetricSource(
                        name="cpu",
                        target=k8s.V2MetricTarget(
                            type="Utilization", average_utilization=settings.target_cpu_utilization
                        ),
                    ),
                )
            ],
        ),
    )


def to_manifest(obj: Any) -> dict[str, Any]:
    """A ``kubernetes.client`` model object as the plain dict ``kubectl apply`` would read (camelCase keys)."""
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(obj)


def render_all(settings: DeploySettings, slot: str = SLOTS[0]) -> list[dict[str, Any]]:
    """Every object deploy can create for ``settings``, as manifests (for review and schema validation).

    Args:
        settings: What to serve and how.
        slot: The slot to render.

    Returns:
        Deployment, Service, canary Deployment, canary Service, and the HPA when ``max_replicas`` is set.
    """
    objects = [
        render_deployment(settings, slot),
        render_service(settings, slot),
        render_deployment(settings, slot, CANARY, replicas=1),
        render_service(settings, slot, canary=True),
    ]
    if settings.max_replicas:
        objects.append(render_hpa(settings, slot))
    return [to_manifest(obj) for obj in objects]


# ----------------------------------------------------------------------------------------------------------
# API calls
# ----------------------------------------------------------------------------------------------------------


def _api(doing: str, call: Callable[[], Any]) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return call()
    except ApiException as error:
        raise DeployError(f"Kubernetes API: could not {doing}: {error.status} {error.reason}") from error


def _read_or_none(doing: str, call: Callable[[], Any]) -> Any:
    from kubernetes.client.exceptions import ApiException

    try:
        return call()
    except ApiException as error:
        if error.status == HTTP_NOT_FOUND:
            return None
        raise DeployError(f"Kubernetes API: could not {doing}: {error.status} {error.reason}") from error


def _delete(apis: KubeApis, kind: str, name: str, namespace: str) -> None:
    """Delete a Deployment/Service/HPA; one that is already gone is fine."""
    from kubernetes.client.exceptions import ApiException

    calls = {
        "deployment": apis.apps.delete_namespaced_deployment,
        "service": apis.core.delete_namespaced_service,
        "hpa": apis.autoscaling.delete_namespaced_horizontal_pod_autoscaler,
    }
    try:
        calls[kind](name=name, namespace=namespace)
    except ApiException as error:
        if error.status != HTTP_NOT_FOUND:
            raise DeployError(f"Kubernetes API: could not delete {kind} {namespace}/{name}: {error.status}") from error


def is_ready(deployment: Any) -> bool:
    """Whether a Deployment's latest spec is fully rolled out and every wanted pod is Ready.

    Args:
        deployment: A ``V1Deployment`` as read from the API.

    Returns:
        True when the controller has observed the latest generation and updated, ready and available replicas
        all equal the wanted replicas.
    """
    status, wanted = deployment.status, deployment.spec.replicas or 0
    if status is None:
        return False
    observed = status.observed_generation or 0
    return (
        observed >= (deployment.metadata.generation or 0)
        and (status.updated_replicas or 0) >= wanted
        and (status.ready_replicas or 0) >= wanted
        and (status.available_replicas or 0) >= wanted
        and (status.replicas or 0) == wanted  # no pods of the old template left
    )


def wait_ready(apis: KubeApis, name: str, namespace: str, waiting: Waiting) -> bool:
    """Poll a Deployment until it is Ready or ``waiting.timeout_s`` passes.

    Args:
        apis: The API clients.
        name: Deployment name.
        namespace: Namespace.
        waiting: Timeout, poll interval, sleep and clock.

    Returns:
        True when Ready in time.
    """
    deadline = waiting.clock() + waiting.timeout_s
    while True:
        current = _api(
            f"read deployment {namespace}/{name}",
            lambda: apis.apps.read_namespaced_deployment(name=name, namespace=namespace),
        )
        if is_ready(current):
            return True
        if waiting.clock() >= deadline:
            return False
        waiting.sleep(waiting.poll_s)


def _annotations(obj: Any) -> dict[str, str]:
    return dict((obj.metadata.annotations or {}) if obj is not None else {})


def _restorable(previous: Any, rendered: Any) -> Any:
    """The previous Deployment as a body for ``replace``: its spec and labels, the current resourceVersion."""
    previous.metadata.resource_version = None
    previous.metadata.managed_fields = None
    previous.status = None
    previous.metadata.labels = previous.metadata.labels or rendered.metadata.labels
    return previous


# ----------------------------------------------------------------------------------------------------------
# Strategies
# ----------------------------------------------------------------------------------------------------------


def _apply_hpa(apis: KubeApis, settings: DeploySettings, slot: str) -> None:
    name, namespace = settings.serving_name, settings.namespace
    existing = _read_or_none(
        f"read hpa {namespace}/{name}",
        lambda: apis.autoscaling.read_namespaced_horizontal_pod_autoscaler(name=name, namespace=namespace),
    )
    if not settings.max_replicas:
        if existing is not None:
            _delete(apis, "hpa", name, namespace)
        return
    body = render_hpa(settings, slot)
    if existing is None:
        _api(
            f"create hpa {namespace}/{name}",
            lambda: apis.autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace=namespace, body=body),
        )
    elif _annotations(existing).get(
        ServingLabel.SETTINGS_DIGEST
    ) != settings.digest() or existing.spec.scale_target_ref.name != deployment_name(settings, slot):
        _api(
            f"replace hpa {namespace}/{name}",
            lambda: apis.autoscaling.replace_namespaced_horizontal_pod_autoscaler(
                name=name, namespace=namespace, body=body
            ),
        )


def _switch_service(apis: KubeApis, settings: DeploySettings, service: Any, slot: str) -> None:
    """Create the Service, or patch its selector (and annotations) to ``slot``; keys dropped are set to null."""
    namespace, name = settings.namespace, settings.serving_name
    body = render_service(settings, slot)
    if service is None:
        _api(f"create service {namespace}/{name}", lambda: apis.core.create_namespaced_service(namespace, body))
        return
    wanted = dict(body.spec.selector)
    patch_selector: dict[str, str | None] = {key: None for key in (service.spec.selector or {}) if key not in wanted}
    patch_selector.update(wanted)
    patch = {"metadata": {"annotations": body.metadata.annotations}, "spec": {"selector": patch_selector}}
    _api(f"patch service {namespace}/{name}", lambda: apis.core.patch_namespaced_service(name, namespace, patch))


def _put_deployment(apis: KubeApis, body: Any, existing: Any) -> None:
    namespace, name = body.metadata.namespace, body.metadata.name
    if existing is None:
        _api(
            f"create deployment {namespace}/{name}",
            lambda: apis.apps.create_namespaced_deployment(namespace=namespace, body=body),
        )
    else:
        # Replace, not patch: the rendered object is the whole desired state (a strategic merge would keep
        # env variables or volumes this version no longer has).
        body.metadata.resource_version = existing.metadata.resource_version
        _api(
            f"replace deployment {namespace}/{name}",
            lambda: apis.apps.replace_namespaced_deployment(name=name, namespace=namespace, body=body),
        )


def _read_deployment(apis: KubeApis, name: str, namespace: str) -> Any:
    return _read_or_none(
        f"read deployment {namespace}/{name}",
        lambda: apis.apps.read_namespaced_deployment(name=name, namespace=namespace),
    )


def _rolling(apis: KubeApis, settings: DeploySettings, slot: str, active: Any, waiting: Waiting) -> str:
    """Update the active slot's Deployment in place; restore it (or delete a new one) when never Ready."""
    body = render_deployment(settings, slot)
    name = body.metadata.name
    if settings.max_replicas and active is not None:
        # The autoscaler owns the replica count: keep what it chose rather than reset it to the minimum.
        body.spec.replicas = max(active.spec.replicas or 0, settings.replicas)
    _put_deployment(apis, body, active)
    if wait_ready(apis, name, settings.namespace, waiting):
        return name
    if active is None:
        _delete(apis, "deployment", name, settings.namespace)
        rolled_back = f"deleted Deployment {name} (nothing served before)"
    else:
        restored = _restorable(active, body)
        current = _read_deployment(apis, name, settings.namespace)
        _put_deployment(apis, restored, current)
        rolled_back = (
            f"restored Deployment {name} to {_annotations(active).get(ServingLabel.MODEL, 'its previous template')}"
        )
    raise DeployError(
        f"{model_uri(settings)} did not become Ready within {waiting.timeout_s:g}s in Deployment "
        f"{settings.namespace}/{name}; rolled back: {rolled_back}"
    )


def _blue_green(apis: KubeApis, settings: DeploySettings, old_slot: str | None, waiting: Waiting) -> str:
    """Start the other slot, wait until Ready, then return it (the caller switches the Service)."""
    slot = SLOTS[1] if old_slot == SLOTS[0] else SLOTS[0]
    body = render_deployment(settings, slot)
    name = body.metadata.name
    leftover = _read_deployment(apis, name, settings.namespace)  # from a failed earlier attempt
    _put_deployment(apis, body, leftover)
    if not wait_ready(apis, name, settings.namespace, waiting):
        _delete(apis, "deployment", name, settings.namespace)
        raise DeployError(
            f"{model_uri(settings)} did not become Ready within {waiting.timeout_s:g}s in Deployment "
            f"{settings.namespace}/{name}; rolled back: deleted it, the Service still selects the {old_slot} slot"
        )
    return slot


def canary_replicas(replicas: int, fraction: float) -> int:
    """Pods for a canary: ``fraction`` of the stable replicas, at least one.

    Args:
        replicas: The stable Deployment's replicas.
        fraction: The canary's share, in (0, 1).

    Returns:
        ``max(1, round(replicas * fraction))``.
    """
    return max(1, round(replicas * fraction))


def canary_pod_addresses(
    apis: KubeApis, service: str, namespace: str, wanted: int, waiting: Waiting
) -> tuple[str, ...]:
    """The ready pods behind the canary-only Service, as ``IP:port``, once the endpoints controller lists them.

    The canary Deployment is Ready before the endpoints controller has necessarily caught up: this polls the
    Service's Endpoints until ``wanted`` ready addresses are there or ``waiting.timeout_s`` passes.

    Args:
        apis: The API clients.
        service: The canary-only Service's name.
        namespace: Namespace.
        wanted: The canary's replicas.
        waiting: Timeout, poll interval, sleep and clock.

    Returns:
        The sorted ``IP:port`` of the ready addresses (fewer than ``wanted`` after the timeout; maybe none).
    """
    deadline = waiting.clock() + waiting.timeout_s
    while True:
        endpoints = _read_or_none(
            f"read endpoints {namespace}/{service}",
            lambda: apis.core.read_namespaced_endpoints(name=service, namespace=namespace),
        )
        addresses = sorted(
            f"{address.ip}:{port.port}"
            for subset in (endpoints.subsets if endpoints is not None else None) or []
            for address in subset.addresses or []
            for port in subset.ports or []
        )
        if len(addresses) >= wanted or waiting.clock() >= deadline:
            return tuple(addresses)
        waiting.sleep(waiting.poll_s)


def _canary(
    apis: KubeApis,
    settings: DeploySettings,
    slot: str,
    active: Any,
    fraction: float,
    check: CanaryCheck,
    waiting: Waiting,
) -> CanaryReport:
    """Run the canary next to the stable pods; promote (rolling the stable Deployment) or remove it."""
    namespace = settings.namespace
    body = render_deployment(settings, slot, CANARY, replicas=canary_replicas(settings.replicas, fraction))
    name = body.metadata.name
    probe = render_service(settings, slot, canary=True)
    _put_deployment(apis, body, _read_deployment(apis, name, namespace))
    if (
        _read_or_none(
            f"read service {namespace}/{probe.metadata.name}",
            lambda: apis.core.read_namespaced_service(name=probe.metadata.name, namespace=namespace),
        )
        is None
    ):
        _api(
            f"create service {namespace}/{probe.metadata.name}",
            lambda: apis.core.create_namespaced_service(namespace=namespace, body=probe),
        )

    def remove_canary() -> None:
        _delete(apis, "service", probe.metadata.name, namespace)
        _delete(apis, "deployment", name, namespace)

    if not wait_ready(apis, name, namespace, waiting):
        remove_canary()
        raise DeployError(
            f"canary {model_uri(settings)} did not become Ready within {waiting.timeout_s:g}s; rolled back: "
            f"removed {namespace}/{name}, the stable version still serves"
        )
    addresses = canary_pod_addresses(apis, probe.metadata.name, namespace, body.spec.replicas, waiting)
    target = CanaryTarget(namespace, probe.metadata.name, settings.port, name, settings.model_version, addresses)
    report = check(target)
    logger.info("deploy: canary check: %s", report.reason)
    if not report.healthy:
        remove_canary()
        raise DeployError(
            f"canary {model_uri(settings)} failed its check: {report.reason}; rolled back: removed "
            f"{namespace}/{name}, the stable version still serves"
        )
    try:
        _rolling(apis, settings, slot, active, waiting)
    finally:
        remove_canary()
    return report


def deploy(
    apis: KubeApis,
    settings: DeploySettings,
    strategy: str = "rolling",
    canary_fraction: float = 0.2,
    canary_check: CanaryCheck | None = None,
    waiting: Waiting | None = None,
) -> DeployResult:
    """Serve ``settings.model_version`` with ``strategy``; roll back when it never becomes Ready.

    Registry checks come first (see ``deploy_model``); this function only talks to Kubernetes.

    Args:
        apis: The API clients (``kubernetes.client`` or a stand-in).
        settings: What to serve and how.
        strategy: rolling, blue-green or canary. A canary without a stable version to compare with (first
            deploy) is a rolling create.
        canary_fraction: The canary's share of the stable replicas, in (0, 1).
        canary_check: Judges a Ready canary; default ``metrics_error_rate_check()``.
        waiting: Readiness timeout and polling (default: 300 s, every 5 s).

    Returns:
        The ``DeployResult``.

    Raises:
        ParameterError: bad settings.
        DeployError: the API refused a call; the new version never became Ready or the canary failed (in both
            cases after rolling back).
    """
    check_settings(settings, strategy, canary_fraction)
    waiting = waiting or Waiting()
    namespace, service_name = settings.namespace, settings.serving_name
    service = _read_or_none(
        f"read service {namespace}/{service_name}",
        lambda: apis.core.read_namespaced_service(name=service_name, namespace=namespace),
    )
    served = _annotations(service)
    previous_version = served.get(ServingLabel.MODEL_VERSION, "")
    active_name = served.get(ServingLabel.ACTIVE_DEPLOYMENT, "")
    active = _read_deployment(apis, active_name, namespace) if active_name else None
    old_slot = (
        (active.spec.selector.match_labels or {}).get(ServingLabel.SLOT) if active is not None else None
    ) or None

    def result(action: str, deployment: str, reason: str, canary: CanaryReport | None = None) -> DeployResult:
        logger.info("deploy: %s", reason)
        return DeployResult(
            action=action,
            strategy=strategy,
            model_name=settings.model_name,
            model_version=str(settings.model_version),
            previous_version=previous_version,
            namespace=namespace,
            service=service_name,
            deployment=deployment,
            reason=reason,
            canary=asdict(canary) if canary else {},
        )

    if (
        active is not None
        and previous_version == str(settings.model_version)
        and served.get(ServingLabel.SETTINGS_DIGEST) == settings.digest()
        and _annotations(active).get(ServingLabel.SETTINGS_DIGEST) == settings.digest()
    ):
        return result(
            "unchanged",
            active_name,
            f"{model_uri(settings)} already serves from {namespace}/{active_name} with these settings: nothing to do",
        )

    report = None
    if strategy == "blue-green" and active is not None:
        slot = _blue_green(apis, settings, old_slot, waiting)
        action = "switched"
    elif strategy == "canary" and active is not None and old_slot:
        slot = old_slot
        report = _canary(
            apis,
            settings,
            slot,
            active,
            canary_fraction,
            canary_check or metrics_error_rate_check(),
            waiting,
        )
        action = "promoted"
    else:
        slot = old_slot or SLOTS[0]
        _rolling(apis, settings, slot, active, waiting)
        action = "created" if active is None else "updated"
    _switch_service(apis, settings, service, slot)
    if action == "switched" and active is not None and active.metadata.name != deployment_name(settings, slot):
        _delete(apis, "deployment", active.metadata.name, namespace)
    _apply_hpa(apis, settings, slot)
    name = deployment_name(settings, slot)
    before = f" (was version {previous_version})" if previous_version else ""
    return result(action, name, f"{strategy}: {model_uri(settings)} serves from {namespace}/{name}{before}", report)


# ----------------------------------------------------------------------------------------------------------
# The default canary check: the error rate on the canary's /metrics
# ----------------------------------------------------------------------------------------------------------


def error_rate(metrics_text: str, endpoint: str = PREDICT_PATH) -> tuple[float, float]:
    """Read ``(requests, 5xx share)`` of one endpoint from the serving app's Prometheus text.

    Args:
        metrics_text: The body of a ``/metrics`` response.
        endpoint: The endpoint whose requests count (``/predict``).

    Returns:
        ``(requests, error_rate)``; the rate is 0.0 without requests.

    Raises:
        DeployError: the request counter is not in the text (not the serving app, or another version of it).
    """
    total, errors = request_counts(metrics_text, endpoint)
    return total, (errors / total if total else 0.0)


def request_counts(metrics_text: str, endpoint: str = PREDICT_PATH) -> tuple[float, float]:
    """Read ``(requests, 5xx responses)`` of one endpoint from the serving app's Prometheus text.

    Args:
        metrics_text: The body of a ``/metrics`` response.
        endpoint: The endpoint whose requests count (``/predict``).

    Returns:
        ``(requests, errors)``: counts, so that several pods' add up.

    Raises:
        DeployError: the request counter is not in the text (not the serving app, or another version of it).
    """
    from prometheus_client.parser import text_string_to_metric_families

    total = errors = 0.0
    found = False
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            if sample.name != REQUESTS_METRIC:
                continue
            found = True
            if sample.labels.get(ENDPOINT_LABEL) != endpoint:
                continue
            total += sample.value
            if str(sample.labels.get(STATUS_LABEL, "")).startswith("5"):
                errors += sample.value
    if not found:
        raise DeployError(f"the canary's metrics hold no {REQUESTS_METRIC!r} counter: cannot judge its error rate")
    return total, errors


def metrics_error_rate_check(
    max_error_rate: float = 0.01,
    observe_s: float = 60.0,
    min_requests: int = 0,
    fetch: Callable[[str], str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> CanaryCheck:
    """Build the default canary check: after ``observe_s``, the canary's 5xx share must be <= ``max_error_rate``.

    The counters are read from every ready canary pod at its own IP (``CanaryTarget.pod_metrics_urls``) and
    summed; only a target without pod addresses falls back to the canary-only Service's DNS name.

    Args:
        max_error_rate: Largest acceptable share of 5xx responses.
        observe_s: Seconds of traffic to let through before reading the counters.
        min_requests: Fewer requests than this fails the check (0: no traffic passes on readiness alone).
        fetch: URL -> response text (default: an HTTP GET with a 10 s timeout).
        sleep: ``time.sleep`` or a stand-in.

    Returns:
        A ``CanaryCheck``.
    """
    if not 0 <= max_error_rate <= 1 or math.isnan(max_error_rate):
        raise ParameterError(f"max_error_rate={max_error_rate}: a share between 0 and 1")

    def http_get(url: str) -> str:
        import urllib.request

        # Never through HTTP_PROXY: a pod IP is reachable inside the cluster only, not from an egress proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url, timeout=10) as response:
            return response.read().decode()

    def check(target: CanaryTarget) -> CanaryReport:
        sleep(observe_s)
        requests = errors = 0.0
        urls = target.pod_metrics_urls or (target.metrics_url,)
        for url in urls:
            try:
                text = (fetch or http_get)(url)
            except OSError as error:
                return CanaryReport(False, f"could not read {url}: {error}")
            counted, failed = request_counts(text)
            requests, errors = requests + counted, errors + failed
        rate = errors / requests if requests else 0.0
        if requests < min_requests:
            return CanaryReport(
                False, f"only {requests:g} requests in {observe_s:g}s, fewer than {min_requests}", rate, requests
            )
        healthy = rate <= max_error_rate
        verdict = "within" if healthy else "above"
        pods = f" on {len(urls)} canary pods" if len(urls) > 1 else ""
        return CanaryReport(
            healthy,
            f"error rate {rate:.2%} over {requests:g} requests{pods}, {verdict} the limit {max_error_rate:.2%}",
            rate,
            requests,
        )

    return check


# ----------------------------------------------------------------------------------------------------------
# Entry point shared by the component and the CLI
# ----------------------------------------------------------------------------------------------------------


def deploy_model(
    apis: KubeApis,
    settings: DeploySettings,
    strategy: str = "rolling",
    required_alias: str = CHAMPION_ALIAS,
    tracking_uri: str = "",
    canary_fraction: float = 0.2,
    canary_check: CanaryCheck | None = None,
    waiting: Waiting | None = None,
    result_path: str = "",
) -> DeployResult:
    """Check the version in the registry, then ``deploy`` it.

    Args:
        apis: The API clients.
        settings: What to serve and how; ``model_version`` "" = the version under ``required_alias``.
        strategy: rolling, blue-green or canary.
        required_alias: The alias the version must hold.
        tracking_uri: MLflow registry URI ("" = ``$MLFLOW_TRACKING_URI``).
        canary_fraction: The canary's share of the stable replicas.
        canary_check: See ``deploy``.
        waiting: See ``deploy``.
        result_path: When set, the result is written there as JSON.

    Returns:
        The ``DeployResult``.

    Raises:
        NotBlessedError: the version does not hold ``required_alias``.
        RegistryError: the registry failed or does not hold the model/version.
        ParameterError: bad settings.
        DeployError: see ``deploy``.
    """
    outcome = deploy(
        apis,
        checked_settings(settings, strategy, required_alias, tracking_uri, canary_fraction),
        strategy=strategy,
        canary_fraction=canary_fraction,
        canary_check=canary_check,
        waiting=waiting,
    )
    if result_path:
        write_json_atomic(outcome.to_dict(), result_path)
    return outcome


def checked_settings(
    settings: DeploySettings, strategy: str, required_alias: str, tracking_uri: str, canary_fraction: float
) -> DeploySettings:
    """Validate the parameters, then check (or find) the version in the registry.

    Args:
        settings: ``model_version`` "" = the version under ``required_alias``.
        strategy: rolling, blue-green or canary.
        required_alias: The alias the version must hold.
        tracking_uri: MLflow registry URI ("" = ``$MLFLOW_TRACKING_URI``).
        canary_fraction: The canary's share of the replicas.

    Returns:
        ``settings`` with the registry's version.

    Raises:
        ParameterError: bad settings, no tracking URI.
        NotBlessedError: the version does not hold ``required_alias``.
        RegistryError: the registry failed or lacks the model/version.
    """
    from mlkeel.tracking import connect, resolve_tracking_uri

    if not settings.model_name.strip():
        raise ParameterError("model_name is empty: name the registered model to deploy")
    check_settings(replace(settings, model_version=settings.model_version or "1"), strategy, canary_fraction)
    resolved_uri = resolve_tracking_uri(tracking_uri)
    version = resolve_version(
        connect(resolved_uri), settings.model_name, str(settings.model_version), required_alias, resolved_uri
    )
    return replace(settings, model_version=version)


def render_version(
    settings: DeploySettings,
    strategy: str = "rolling",
    required_alias: str = CHAMPION_ALIAS,
    tracking_uri: str = "",
    canary_fraction: float = 0.2,
) -> list[dict[str, Any]]:
    """What ``deploy_model`` would create, as manifests, after the same registry checks (a dry run).

    Args:
        settings: See ``checked_settings``.
        strategy: See ``checked_settings``.
        required_alias: See ``checked_settings``.
        tracking_uri: See ``checked_settings``.
        canary_fraction: See ``checked_settings``.

    Returns:
        The manifests of ``render_all``.
    """
    return render_all(checked_settings(settings, strategy, required_alias, tracking_uri, canary_fraction))


def kube_apis(in_cluster: bool = False, context: str = "") -> KubeApis:
    """Build the API clients from the pod's ServiceAccount or a kubeconfig.

    Args:
        in_cluster: Use the pod's ServiceAccount token (KFP steps).
        context: Kubeconfig context ("" = the current one).

    Returns:
        The ``KubeApis``.

    Raises:
        DeployError: no usable configuration.
    """
    from kubernetes import client as k8s
    from kubernetes import config

    try:
        if in_cluster:
            config.load_incluster_config()
        else:
            config.load_kube_config(context=context or None)
    except (config.ConfigException, OSError) as error:
        where = "the pod's ServiceAccount" if in_cluster else f"kubeconfig context {context or '(current)'}"
        raise DeployError(f"no Kubernetes configuration from {where}: {error}") from error
    return KubeApis(apps=k8s.AppsV1Api(), core=k8s.CoreV1Api(), autoscaling=k8s.AutoscalingV2Api())
