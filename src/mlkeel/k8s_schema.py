"""Validate Kubernetes manifests against the Kubernetes OpenAPI schemas, offline.

The schemas come bundled with the ``kubernetes-validate`` package (JSON schemas generated from each
Kubernetes release's OpenAPI document), so nothing is fetched. Validation is strict: a misspelt or unknown
field is an error, as ``kubectl apply --validate=strict`` would report it.

Used by the deploy stage's tests (every object it renders), tests/unit/test_manifests.py and
``make validate-manifests`` (``python -m mlkeel.k8s_schema manifests``), which also renders every local
kustomization with ``kubectl kustomize``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from mlkeel.errors import MlkeelError

# The Kubernetes minor the manifests target. One version moves three places together: this, kind's node image
# (manifests/kind/cluster.yaml) and the control plane the tests build (tools/kubecluster/go.mod);
# tests/cluster/test_control_plane.py fails when they disagree.
KUBERNETES_VERSION = "1.36.0"
KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
# Documents that are configuration files of tools, not Kubernetes API objects (no OpenAPI schema exists).
NOT_API_OBJECTS = {("kind.x-k8s.io/v1alpha4", "Cluster"), ("kustomize.config.k8s.io/v1beta1", "Kustomization")}
KUBECTL_TIMEOUT_S = 120
CRD_KIND = "CustomResourceDefinition"


class ManifestError(MlkeelError):
    """A manifest does not match the Kubernetes schema, or cannot be read or rendered."""


def describe(document: dict[str, Any]) -> str:
    """``Kind namespace/name`` of a manifest, for messages."""
    metadata = document.get("metadata") or {}
    where = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
    return f"{document.get('kind', '?')} {where}{metadata.get('name', '?')}"


def validate_manifest(document: dict[str, Any], source: str = "", version: str = KUBERNETES_VERSION) -> None:
    """Validate one Kubernetes object against the OpenAPI schema of its apiVersion/kind (strict).

    Args:
        document: The object as a dict (camelCase keys, as in YAML).
        source: Where it comes from (file name), for messages.
        version: Kubernetes version whose schemas to use.

    Raises:
        ManifestError: no apiVersion/kind, no schema for them, or a schema violation (the message names the
            object and the field path).
    """
    import kubernetes_validate

    prefix = f"{source}: " if source else ""
    if not isinstance(document, dict) or not document.get("apiVersion") or not document.get("kind"):
        raise ManifestError(f"{prefix}not a Kubernetes object (no apiVersion/kind)")
    try:
        kubernetes_validate.validate(document, version, strict=True)
    except kubernetes_validate.ValidationError as error:
        path = ".".join(str(part) for part in error.path) or "(top level)"
        raise ManifestError(f"{prefix}{describe(document)}: at {path}: {error.message}") from error
    except kubernetes_validate.SchemaNotFoundError as error:
        raise ManifestError(
            f"{prefix}{describe(document)}: no Kubernetes {version} schema for "
            f"{document['apiVersion']} {document['kind']} (a custom resource or a wrong apiVersion)"
        ) from error


def is_api_object(document: Any) -> bool:
    """Whether a YAML document is a Kubernetes API object (not empty, not a kind/kustomize config file)."""
    return (
        isinstance(document, dict)
        and bool(document.get("kind"))
        and (document.get("apiVersion"), document.get("kind")) not in NOT_API_OBJECTS
    )


def load_documents(text: str, source: str) -> list[dict[str, Any]]:
    """Parse a multi-document YAML string.

    Args:
        text: The YAML.
        source: Its name, for messages.

    Returns:
        The non-empty documents.

    Raises:
        ManifestError: not YAML.
    """
    import yaml

    try:
        return [document for document in yaml.safe_load_all(text) if document]
    except yaml.YAMLError as error:
        raise ManifestError(f"{source}: not valid YAML: {error}") from error


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """Render a local kustomization with ``kubectl kustomize`` (offline).

    Args:
        directory: A folder holding a kustomization.yaml.

    Returns:
        The rendered objects.

    Raises:
        ManifestError: kubectl is missing or the render fails (its message is quoted).
    """
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise ManifestError("kubectl is not installed: it renders the kustomizations (apt-get install kubectl)")
    completed = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S
    )
    if completed.returncode != 0:
        raise ManifestError(f"{directory}: kubectl kustomize failed: {completed.stderr.strip()}")
    return load_documents(completed.stdout, f"kubectl kustomize {directory}")


def is_remote_kustomization(directory: Path) -> bool:
    """Whether a kustomization pulls a remote base (a URL in ``resources``), which cannot render offline."""
    import yaml

    for name in KUSTOMIZATION_FILES:
        path = directory / name
        if path.is_file():
            spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
            return any("://" in str(item) or str(item).startswith("github.com/") for item in spec.get("resources", []))
    return False


def kustomization_dirs(root: Path) -> list[Path]:
    """Every folder under ``root`` (itself included) that holds a kustomization."""
    return sorted({path.parent for name in KUSTOMIZATION_FILES for path in root.rglob(name)})


def yaml_files(root: Path) -> Iterator[Path]:
    """Every ``*.yaml``/``*.yml`` under ``root``, sorted."""
    yield from sorted(path for pattern in ("*.yaml", "*.yml") for path in root.rglob(pattern))


def custom_resource_schemas(documents: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The OpenAPI schema of every (apiVersion, kind) the CustomResourceDefinitions among ``documents`` define.

    Args:
        documents: Kubernetes objects; only ``apiextensions.k8s.io/v1`` CustomResourceDefinitions are read.

    Returns:
        (``group/version``, kind) -> that version's ``openAPIV3Schema``.
    """
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for document in documents:
        if (document.get("apiVersion"), document.get("kind")) != ("apiextensions.k8s.io/v1", CRD_KIND):
            continue
        spec = document["spec"]
        for version in spec.get("versions", []):
            schemas[(f"{spec['group']}/{version['name']}", spec["names"]["kind"])] = version["schema"][
                "openAPIV3Schema"
            ]
    return schemas


def _strict(schema: Any) -> Any:
    """A copy of a CRD's structural schema that refuses unknown fields, except where it preserves them.

    The API server prunes unknown fields (``kubectl apply --validate=strict`` rejects them): a misspelt field
    should fail here, as it does for built-in kinds.
    """
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict(value) for key, value in schema.items()}
    if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields"):
        strict.setdefault("additionalProperties", False)
    return strict


def validate_custom_resource(document: dict[str, Any], schema: dict[str, Any], source: str = "") -> None:
    """Validate a custom resource against its CRD's ``openAPIV3Schema`` (strict: unknown fields fail).

    Args:
        document: The object.
        schema: Its CRD version's ``openAPIV3Schema`` (``custom_resource_schemas``).
        source: Where it comes from (file name), for messages.

    Raises:
        ManifestError: a schema violation (the message names the object and the field path).
    """
    import jsonschema

    prefix = f"{source}: " if source else ""
    body = {key: value for key, value in document.items() if key not in ("apiVersion", "kind", "metadata")}
    strict = _strict(schema)
    strict["properties"] = {
        k: v for k, v in strict.get("properties", {}).items() if k not in ("apiVersion", "kind", "metadata")
    }
    error = jsonschema.exceptions.best_match(jsonschema.Draft7Validator(strict).iter_errors(body))
    if error is not None:
        path = ".".join(str(part) for part in error.absolute_path) or "(top level)"
        raise ManifestError(f"{prefix}{describe(document)}: at {path}: {error.message}")


def validate_files(paths: Iterable[Path]) -> int:
    """Validate every API object in the YAML files (kind/kustomize config files are skipped).

    Custom resources are validated against the CustomResourceDefinitions found among the same files (e.g. the
    Prometheus Operator's, vendored in manifests/monitoring/operator/crds/); other objects against the
    Kubernetes OpenAPI schemas.

    Args:
        paths: YAML files.

    Returns:
        How many objects were validated.

    Raises:
        ManifestError: the first invalid object.
    """
    loaded = [(path, load_documents(path.read_text(encoding="utf-8"), str(path))) for path in paths]
    custom = custom_resource_schemas(document for _, documents in loaded for document in documents)
    count = 0
    for path, documents in loaded:
        for document in documents:
            if not is_api_object(document):
                continue
            key = (document.get("apiVersion"), document.get("kind"))
            if key in custom:
                validate_custom_resource(document, custom[key], str(path))  # type: ignore[index]
            else:
                validate_manifest(document, str(path))
            count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    """``python -m mlkeel.k8s_schema DIR...``: validate every manifest and every local kustomization's render.

    Kustomizations whose secretGenerator reads an env file that does not exist yet (it is generated at
    ``make kind-up``) are rendered from a copy where the committed ``*.example`` stands in for it.

    Returns:
        0 when everything is valid, 1 otherwise (each problem on one line).
    """
    import tempfile

    roots = [Path(arg) for arg in (argv if argv is not None else sys.argv[1:])] or [Path("manifests")]
    problems = []
    for root in roots:
        try:
            print(f"{root}: {validate_files(yaml_files(root))} objects in files valid")
        except ManifestError as error:
            problems.append(str(error))
        for directory in kustomization_dirs(root):
            if is_remote_kustomization(directory):
                print(f"{directory}: remote bases: not rendered offline (its own files were validated)")
                continue
            with tempfile.TemporaryDirectory() as scratch:
                try:
                    documents = kustomize(with_example_env_files(root, directory, Path(scratch)))
                    for document in documents:
                        validate_manifest(document, f"kubectl kustomize {directory}")
                    print(f"{directory}: {len(documents)} rendered objects valid")
                except ManifestError as error:
                    problems.append(str(error))
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


def with_example_env_files(root: Path, directory: Path, scratch: Path) -> Path:
    """A copy of ``root`` in which each missing ``X.env`` is its committed ``X.env.example``.

    Args:
        root: The manifests folder (copied whole, for kustomizations that reach into a sibling).
        directory: A kustomization folder under ``root``.
        scratch: An empty folder to copy into.

    Returns:
        Where ``directory`` is in the copy.
    """
    copy = scratch / "manifests"
    shutil.copytree(root, copy)
    for example in copy.rglob("*.env.example"):
        target = example.with_suffix("")
        if not target.exists():
            shutil.copyfile(example, target)
    return copy / directory.resolve().relative_to(root.resolve())


if __name__ == "__main__":
    sys.exit(main())
