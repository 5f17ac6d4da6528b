"""manifests/: every object valid against the Kubernetes OpenAPI schema, least-privilege RBAC, no literal secrets.

Offline: local kustomizations render with ``kubectl kustomize``; the KFP kustomizations pull remote bases from
GitHub, so only their own files are checked here (the render is skipped with that reason).
"""

from __future__ import annotations

import shutil
import subprocess
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from mlkeel.k8s_schema import (
    is_remote_kustomization,
    kustomization_dirs,
    kustomize,
    validate_files,
    validate_manifest,
    with_example_env_files,
    yaml_files,
)

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
KUSTOMIZATIONS = kustomization_dirs(MANIFESTS)
SERVING_NAMESPACE = "mlkeel-serving"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")


def _id(path: Path) -> str:
    return str(path.relative_to(MANIFESTS))


def _render(directory: Path, scratch: Path) -> list[dict]:
    return kustomize(with_example_env_files(MANIFESTS, directory, scratch))


def test_every_static_manifest_is_valid() -> None:
    assert validate_files(yaml_files(MANIFESTS)) >= 10


@needs_kubectl
@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=[_id(path) for path in KUSTOMIZATIONS])
def test_every_kustomization_renders_to_valid_objects(directory: Path, tmp_path: Path) -> None:
    if is_remote_kustomization(directory):
        pytest.skip(f"{_id(directory)} pulls a remote base from GitHub: kubectl kustomize cannot render it offline")
    documents = _render(directory, tmp_path)
    assert documents, f"{_id(directory)} rendered nothing"
    for document in documents:
        validate_manifest(document, f"kubectl kustomize {_id(directory)}")


def test_kfp_is_pinned_to_the_backend_release_of_the_kfp_sdk() -> None:
    sdk = metadata.version("kfp")
    remote = [path for path in KUSTOMIZATIONS if is_remote_kustomization(path)]
    assert {_id(path) for path in remote} == {"kfp/cluster-scoped-resources", "kfp/platform-agnostic"}
    for directory in remote:
        (resource,) = yaml.safe_load((directory / "kustomization.yaml").read_text())["resources"]
        assert resource.startswith("github.com/kubeflow/pipelines/manifests/kustomize/")
        assert resource.endswith(f"?ref={sdk}"), f"{resource} is not pinned to KFP {sdk}"


@needs_kubectl
def test_credentials_come_only_from_generated_env_files(tmp_path: Path) -> None:
    for path in yaml_files(MANIFESTS):
        for document in yaml.safe_load_all(path.read_text()):
            assert (document or {}).get("kind") != "Secret", f"{path}: a literal Secret in the repository"
    env_files = sorted(
        directory / env
        for directory in KUSTOMIZATIONS
        for generator in (yaml.safe_load((directory / "kustomization.yaml").read_text()).get("secretGenerator") or [])
        for env in generator.get("envs", [])
    )
    assert len(env_files) == 4
    for env_file in env_files:
        assert Path(f"{env_file}.example").is_file(), f"{env_file}: no committed example"
        ignored = subprocess.run(["git", "check-ignore", "-q", str(env_file)], cwd=REPO, check=False)
        assert ignored.returncode == 0, f"{env_file} is not git-ignored"
    rendered = _render(MANIFESTS / "mlflow", tmp_path)
    secrets = {doc["metadata"]["name"] for doc in rendered if doc["kind"] == "Secret"}
    assert secrets == {"mlflow-postgres", "mlflow-minio"}
    server = next(doc for doc in rendered if doc["kind"] == "Deployment" and doc["metadata"]["name"] == "mlflow")
    (container,) = server["spec"]["template"]["spec"]["containers"]
    assert "change-me" not in str(container)
    from_secrets = {env["name"] for env in container["env"] if "valueFrom" in env}
    assert {"POSTGRES_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= from_secrets


def test_the_deployer_role_is_namespaced_and_names_no_wildcard() -> None:
    """What the Role grants is checked against the calls deploy makes on a real API server
    (tests/cluster/test_deploy.py); here, that it stays inside one namespace."""
    documents = list(yaml.safe_load_all((MANIFESTS / "serving" / "rbac.yaml").read_text()))
    (role,) = [doc for doc in documents if doc["kind"] == "Role"]
    assert role["metadata"]["namespace"] == SERVING_NAMESPACE
    assert not any("*" in rule["verbs"] or "*" in rule["resources"] for rule in role["rules"])
    kinds = {doc.get("kind") for path in yaml_files(MANIFESTS) for doc in yaml.safe_load_all(path.read_text()) if doc}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}, "mlkeel's own manifests grant nothing cluster-wide"
    (binding,) = [doc for doc in documents if doc["kind"] == "RoleBinding"]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]


@pytest.mark.parametrize("pipeline", ["training", "monitoring"])
def test_compiled_pipelines_read_the_tracking_uri_from_the_secret_never_a_literal(pipeline: str) -> None:
    from mlkeel.constants import MLFLOW_SECRET_NAME, MLFLOW_SECRET_URI_KEY

    text = (REPO / "pipelines" / f"{pipeline}.yaml").read_text()
    spec, platform = yaml.safe_load_all(text)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    takes_uri = {
        component["executorLabel"]
        for component in spec["components"].values()
        if "executorLabel" in component  # a task, not a nested pipeline
        and "mlflow_tracking_uri" in component.get("inputDefinitions", {}).get("parameters", {})
    }
    assert takes_uri, "no task takes mlflow_tracking_uri"
    for executor in takes_uri:
        (secret,) = executors[executor]["secretAsEnv"]
        assert secret["secretName"] == MLFLOW_SECRET_NAME
        assert secret["keyToEnv"] == [{"secretKey": MLFLOW_SECRET_URI_KEY, "envVar": "MLFLOW_TRACKING_URI"}]
    # The pipeline parameter defaults to "" (the pods read the Secret); no URI value is compiled in.
    assert spec["root"]["inputDefinitions"]["parameters"]["mlflow_tracking_uri"]["defaultValue"] == ""
    for literal in ("mlflow.mlflow.svc", "sqlite:", "postgresql://", "http://mlflow"):
        assert literal not in text
