"""A STAND-IN for the Kubernetes API calls of the deploy stage: in memory, for tests only. Not Kubernetes.

No API server can run on this machine, so ``mlkeel.components.deploy.logic`` is tested against this object. It
implements exactly the methods deploy calls on the official client (``kubernetes`` 30.1), with their keyword
arguments and return types:

    AppsV1Api        read / create / replace / patch / delete  _namespaced_deployment
    CoreV1Api        read / create / patch / delete            _namespaced_service
    AutoscalingV2Api read / create / replace / delete          _namespaced_horizontal_pod_autoscaler

What it reproduces from the real API server:
- objects come back as ``kubernetes.client`` models, deserialised by the client's own ``ApiClient.deserialize``;
- ``ApiException`` 404 for a missing object, 409 for create-over-existing and a stale ``resourceVersion`` on
  replace, 422 for an object that fails the Kubernetes OpenAPI schema (``mlkeel.k8s_schema``) or changes a
  Deployment's immutable ``spec.selector``;
- ``metadata.resourceVersion`` / ``generation`` / ``uid``, ``spec.clusterIP`` assigned on create;
- patches as merge patches (maps merge, ``null`` deletes a key, lists are replaced: what strategic merge does
  for the fields deploy patches: annotations, a Service selector, replicas);
- Deployment status, scripted per served model URI: Ready after N reads of the Deployment since its last spec
  change (``ready_after``), or never (``None``); ``generation`` / ``observedGeneration`` as a controller keeps them.

What it does NOT reproduce: admission control, RBAC, real pods or probes, the rollout of individual ReplicaSets,
label selection of endpoints, server-side apply, watch, list and field managers. It records every call
(``calls``) with the RBAC verb it needs, so a test can derive the Role deploy needs from what it did.
"""

from __future__ import annotations

import copy
import itertools
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import ApiClient
from kubernetes.client.exceptions import ApiException

from mlkeel.k8s_schema import ManifestError, validate_manifest

# Kind -> (apiVersion, REST resource, client model type).
KINDS = {
    "Deployment": ("apps/v1", "deployments", "V1Deployment"),
    "Service": ("v1", "services", "V1Service"),
    "HorizontalPodAutoscaler": ("autoscaling/v2", "horizontalpodautoscalers", "V2HorizontalPodAutoscaler"),
}
# RBAC API group of each resource.
API_GROUPS = {"deployments": "apps", "services": "", "horizontalpodautoscalers": "autoscaling"}


@dataclass(frozen=True)
class Call:
    """One API call: the RBAC verb and resource it needs, and its object."""

    verb: str
    resource: str
    namespace: str
    name: str


class FakeClock:
    """A clock that advances only by the sleeps it is given: a readiness timeout passes without waiting.

    Use as ``Waiting(sleep=clock.sleep, clock=clock)``.
    """

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


class _Response:
    """What ``ApiClient.deserialize`` reads: an HTTP response's ``data``."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.data = json.dumps(document)


def _merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _model_uri(document: dict[str, Any]) -> str:
    args = document["spec"]["template"]["spec"]["containers"][0].get("args", [])
    return args[args.index("--model") + 1] if "--model" in args else ""


@dataclass
class KubernetesStandIn:
    """The in-memory API. ``apps``, ``core`` and ``autoscaling`` are what deploy's ``KubeApis`` wants.

    Attributes:
        ready_after: Model URI (``models:/NAME/VERSION``) -> reads until its Deployment is Ready (None = never).
        default_ready_after: For URIs not in ``ready_after``.
        objects: (kind, namespace, name) -> the stored object as a manifest dict.
        calls: Every call, in order.
    """

    ready_after: dict[str, int | None] = field(default_factory=dict)
    default_ready_after: int | None = 1
    objects: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    _reads: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _versions: itertools.count = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.apps = _Api(self, "Deployment", "deployment")
        self.core = _Api(self, "Service", "service")
        self.autoscaling = _Api(self, "HorizontalPodAutoscaler", "horizontal_pod_autoscaler")

    # -- what tests look at -------------------------------------------------------------------------------

    def writes(self) -> list[Call]:
        """Every call that changed something (not ``get``)."""
        return [call for call in self.calls if call.verb != "get"]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored manifest, or None."""
        return self.objects.get((kind, namespace, name))

    def names(self, kind: str, namespace: str) -> list[str]:
        """Names of the stored objects of a kind."""
        return sorted(name for (k, ns, name) in self.objects if k == kind and ns == namespace)

    def rbac_rules(self) -> dict[tuple[str, str], set[str]]:
        """(API group, resource) -> verbs used: the least a Role must grant for what was called."""
        rules: dict[tuple[str, str], set[str]] = {}
        for call in self.calls:
            rules.setdefault((API_GROUPS[call.resource], call.resource), set()).add(call.verb)
        return rules

    # -- the API ------------------------------------------------------------------------------------------

    def _fail(self, status: int, reason: str) -> ApiException:
        return ApiException(status=status, reason=reason)

    def _record(self, verb: str, kind: str, namespace: str, name: str) -> None:
        self.calls.append(Call(verb, KINDS[kind][1], namespace, name))

    def _out(self, kind: str, document: dict[str, Any]) -> Any:
        return ApiClient().deserialize(_Response(document), KINDS[kind][2])

    def _validated(self, kind: str, body: Any, namespace: str, name: str | None = None) -> dict[str, Any]:
        document = body if isinstance(body, dict) else ApiClient().sanitize_for_serialization(body)
        document = copy.deepcopy(document)
        document.setdefault("apiVersion", KINDS[kind][0])
        document.setdefault("kind", kind)
        metadata = document.setdefault("metadata", {})
        if metadata.get("namespace", namespace) != namespace:
            raise self._fail(400, f"the namespace of the object ({metadata['namespace']}) does not match {namespace}")
        if name is not None and metadata.get("name", name) != name:
            raise self._fail(400, f"the name of the object ({metadata.get('name')}) does not match {name}")
        metadata["namespace"] = namespace
        try:
            validate_manifest(document)
        except ManifestError as error:
            raise self._fail(422, f"Unprocessable Entity: {error}") from error
        return document

    def _status(self, key: tuple[str, str, str], document: dict[str, Any]) -> None:
        """Script a Deployment's status: Ready once it has been read ``ready_after`` times since its last change."""
        wanted = document["spec"].get("replicas", 1)
        needed = self.ready_after.get(_model_uri(document), self.default_ready_after)
        ready = needed is not None and self._reads.get(key, 0) >= needed
        generation = document["metadata"]["generation"]
        document["status"] = (
            {
                "observedGeneration": generation,
                "replicas": wanted,
                "updatedReplicas": wanted,
                "readyReplicas": wanted,
                "availableReplicas": wanted,
            }
            if ready
            else {"observedGeneration": generation, "replicas": wanted + 1, "updatedReplicas": 1, "readyReplicas": 0}
        )

    def read(self, kind: str, name: str, namespace: str) -> Any:
        self._record("get", kind, namespace, name)
        key = (kind, namespace, name)
        if key not in self.objects:
            raise self._fail(404, "Not Found")
        if kind == "Deployment":
            self._reads[key] = self._reads.get(key, 0) + 1
            self._status(key, self.objects[key])
        return self._out(kind, self.objects[key])

    def create(self, kind: str, namespace: str, body: Any) -> Any:
        document = self._validated(kind, body, namespace)
        name = document["metadata"]["name"]
        self._record("create", kind, namespace, name)
        key = (kind, namespace, name)
        if key in self.objects:
            raise self._fail(409, "AlreadyExists")
        metadata = document["metadata"]
        metadata.update(uid=str(uuid.uuid4()), resourceVersion=str(next(self._versions)), generation=1)
        if kind == "Service":
            document["spec"]["clusterIP"] = f"10.96.0.{len(self.objects) + 10}"
        self.objects[key] = document
        self._reads[key] = 0
        return self._out(kind, document)

    def _store_update(self, kind: str, key: tuple[str, str, str], document: dict[str, Any]) -> Any:
        old = self.objects[key]
        if kind == "Deployment" and document["spec"]["selector"] != old["spec"]["selector"]:
            raise self._fail(422, "spec.selector: Invalid value: field is immutable")
        if kind == "Service":
            document["spec"]["clusterIP"] = old["spec"]["clusterIP"]
        document.pop("status", None)
        metadata = document["metadata"]
        metadata.update(
            uid=old["metadata"]["uid"],
            resourceVersion=str(next(self._versions)),
            generation=old["metadata"]["generation"] + (document["spec"] != old["spec"]),
        )
        if document["spec"] != old["spec"]:
            self._reads[key] = 0
        self.objects[key] = document
        return self._out(kind, document)

    def replace(self, kind: str, name: str, namespace: str, body: Any) -> Any:
        document = self._validated(kind, body, namespace, name)
        self._record("update", kind, namespace, name)
        key = (kind, namespace, name)
        if key not in self.objects:
            raise self._fail(404, "Not Found")
        given = document["metadata"].get("resourceVersion")
        if given and given != self.objects[key]["metadata"]["resourceVersion"]:
            raise self._fail(409, "Conflict: the object has been modified")
        return self._store_update(kind, key, document)

    def patch(self, kind: str, name: str, namespace: str, body: dict[str, Any]) -> Any:
        self._record("patch", kind, namespace, name)
        key = (kind, namespace, name)
        if key not in self.objects:
            raise self._fail(404, "Not Found")
        merged = _merge(copy.deepcopy(self.objects[key]), body)
        merged.pop("status", None)
        return self._store_update(kind, key, self._validated(kind, merged, namespace, name))

    def delete(self, kind: str, name: str, namespace: str) -> Any:
        self._record("delete", kind, namespace, name)
        key = (kind, namespace, name)
        if self.objects.pop(key, None) is None:
            raise self._fail(404, "Not Found")
        return {"kind": "Status", "status": "Success"}


class _Api:
    """One client class's methods for one kind, named as in ``kubernetes.client``."""

    def __init__(self, server: KubernetesStandIn, kind: str, resource: str) -> None:
        import inspect

        from kubernetes import client

        self._server, self._kind = server, kind
        real = {"Deployment": client.AppsV1Api, "Service": client.CoreV1Api}.get(kind, client.AutoscalingV2Api)
        methods = {"read": self._read, "create": self._create, "patch": self._patch, "delete": self._delete}
        if kind != "Service":  # deploy patches its Service and never replaces it
            methods["replace"] = self._replace
        for verb, method in methods.items():
            name = f"{verb}_namespaced_{resource}"
            # Same name and the same positional parameters as the real client's method.
            wanted = [p for p in inspect.signature(getattr(real, name)).parameters if p not in ("self", "kwargs")]
            assert wanted == [p for p in inspect.signature(method).parameters if p != "_"], (name, wanted)
            setattr(self, name, method)

    def _read(self, name: str, namespace: str, **_: Any) -> Any:
        return self._server.read(self._kind, name, namespace)

    def _create(self, namespace: str, body: Any, **_: Any) -> Any:
        return self._server.create(self._kind, namespace, body)

    def _replace(self, name: str, namespace: str, body: Any, **_: Any) -> Any:
        return self._server.replace(self._kind, name, namespace, body)

    def _patch(self, name: str, namespace: str, body: Any, **_: Any) -> Any:
        return self._server.patch(self._kind, name, namespace, body)

    def _delete(self, name: str, namespace: str, **_: Any) -> Any:
        return self._server.delete(self._kind, name, namespace)
